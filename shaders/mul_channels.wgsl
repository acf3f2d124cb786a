// y (N, C, HW) = x (N, C, HW) * s (N, C): one scale per image and channel, broadcast over the
// map (squeeze-and-excite's gate). Also its input gradient: dx = dy * s.

override WG: u32 = 256u;

struct Params { total: u32, hw: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < p.total) {
        y[i] = x[i] * s[i / p.hw];
    }
}
