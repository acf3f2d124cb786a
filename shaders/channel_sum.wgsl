// Per-channel sum over (N, HW) of x (N, C, HW): the bias gradient of conv2d (dy) and of linear
// (dy as (N, C, 1)). One workgroup per channel.

override WG: u32 = 256u;

struct Params { n: u32, c: u32, hw: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // (N, C, HW)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (C)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, lanes: Lanes) {
    let lid = lanes.index;
    let c = wid.x;
    let count = p.n * p.hw;
    var s = 0.0;
    for (var i = lid; i < count; i += WG) {
        s += x[((i / p.hw) * p.c + c) * p.hw + i % p.hw];
    }
    let total = workgroup_sum(s, lanes);
    if (lid == 0u) {
        y[c] = total;
    }
}
