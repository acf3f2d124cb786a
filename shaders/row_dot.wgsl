// out[r] = sum_j a[r, j] * b[r, j] over rows of `len` contiguous values: the scale gradient of
// mul_channels (rows = (image, channel), a = dy, b = x). One workgroup per row, lanes striding
// the row (coalesced), then a tree in workgroup memory.

const WG: u32 = 64u;

struct Params { rows: u32, len: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * nwg.x;
    // rows past the end (the folded grid's last line) still reach every barrier
    let live = r < p.rows;
    let base = min(r, p.rows - 1u) * p.len;
    var acc = 0.0;
    for (var j = lid; j < p.len; j += WG) {
        acc += a[base + j] * b[base + j];
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st / 2u) {
        if (lid < st) {
            red[lid] += red[lid + st];
        }
        workgroupBarrier();
    }
    if (lid == 0u && live) {
        out[r] = red[0];
    }
}
