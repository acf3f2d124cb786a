// ShuffleNet's channel shuffle of x (N, C, HW) in GROUPS groups: the (GROUPS, C / GROUPS)
// channel grid transposed, y[n, j] = x[n, (j % GROUPS) * (C / GROUPS) + j / GROUPS]. Its
// backward is the shuffle in C / GROUPS groups.

override WG: u32 = 256u;
override GROUPS: u32 = 2u;

struct Params { total: u32, c: u32, hw: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total) {
        return;
    }
    let s = i % p.hw;
    let j = (i / p.hw) % p.c;
    let n = i / (p.hw * p.c);
    let src_at = (j % GROUPS) * (p.c / GROUPS) + j / GROUPS;
    y[i] = x[(n * p.c + src_at) * p.hw + s];
}
