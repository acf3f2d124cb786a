// A conv's weights as the forward weights of its input gradient. For stride 1, dx is the conv of
// dy with the kernel flipped and the channel axes swapped within each group; for stride S, each
// stride phase of dx (the input positions i with (i + P) % S == r) is such a conv with only the
// taps k = k0, k0 + step, ... (those with k*D % S == r), flipped. wt (Cin, Cout/g, TH, TW) from
// w (Cout, Cin/g, KH, KW):
//   wt[g*Cin/g + ci, co, ty, tx] = w[g*Cout/g + co, ci, k0y + (TH-1-ty)*step_y, k0x + (TW-1-tx)*step_x]
// (stride 1: k0 = 0, step = 1, T = K). One invocation per wt element, in wt's order, so the
// stores are coalesced (the weights are small; the loads gather). The shape is pipeline
// constants: the index arithmetic divides by constants, which compile to multiplies and
// shifts, where a divisor from a uniform is one scalar divide per lane on lavapipe (and a
// long sequence on GPUs, which have no integer divider).

const WG: u32 = 64u;
override CIN_G: u32 = 1u;
override COUT_G: u32 = 1u;
override TH: u32 = 1u;
override TW: u32 = 1u;
override KH: u32 = 1u;
override KW: u32 = 1u;
override K0Y: u32 = 0u;
override STEP_Y: u32 = 1u;
override K0X: u32 = 0u;
override STEP_X: u32 = 1u;

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
    let group = cin / CIN_G;
    let ci = cin % CIN_G;
    let ky = K0Y + (TH - 1u - t / TW) * STEP_Y;
    let kx = K0X + (TW - 1u - t % TW) * STEP_X;
    wt[i] = w[(((group * COUT_G + co) * CIN_G + ci) * KH + ky) * KW + kx];
}
