// A conv's weights as the forward weights of its input gradient (the weight_transpose
// prelude's map, taps TH x TW) into wt (Cin, Cout/g, TH, TW): the gpu family's block and
// depthwise forwards read the copy (the texture packing reads w through the map itself). One
// invocation per wt element, in wt's order, so the stores are coalesced (the weights are small;
// the loads gather).

const WG: u32 = 64u;
override TH: u32 = 1u;
override TW: u32 = 1u;

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> wt: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total) {
        return;
    }
    let taps = TH * TW;
    let t = i % taps;
    let co = (i / taps) % COUT_G;
    let cin = i / (taps * COUT_G);
    wt[i] = w[transposed_weight_at(cin, co, t / TW, t % TW, TH, TW)];
}
