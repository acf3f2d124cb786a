// Zero (or constant) padding of H and W, and its transpose, the crop: dst (planes, OH, OW) reads
// src (planes, IH, IW) at (oy - off_y, ox - off_x), `value` where that falls outside. The pad
// has offsets (top, left) >= 0; its backward, the crop of the gradient, has (-top, -left), and
// every read falls inside. One invocation per output element, reads coalesced along a row.

override WG: u32 = 256u;

struct Params { planes: u32, ih: u32, iw: u32, oh: u32, ow: u32, off_y: i32, off_x: i32, value: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let plane = p.oh * p.ow;
    if (i >= p.planes * plane) {
        return;
    }
    let r = i % plane;
    let y = i32(r / p.ow) - p.off_y;
    let x = i32(r % p.ow) - p.off_x;
    var v = p.value;
    if (y >= 0 && y < i32(p.ih) && x >= 0 && x < i32(p.iw)) {
        v = src[(i / plane) * p.ih * p.iw + u32(y) * p.iw + u32(x)];
    }
    dst[i] = v;
}
