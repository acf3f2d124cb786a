// The second half of a split-K reduction: y[i] = sum over the chunks c of part[c * len + i].
// One invocation per output element; consecutive lanes read consecutive elements.

override WG: u32 = 256u;

struct Params { len: u32, chunks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;     // (chunks, len)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (len)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.len) {
        return;
    }
    var s = 0.0;
    for (var c = 0u; c < p.chunks; c++) {
        s += part[c * p.len + i];
    }
    y[i] = s;
}
