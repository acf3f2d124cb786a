// A conv's weights as the forward weights of its input gradient. For stride 1, dx is the conv of
// dy with the kernel flipped and the channel axes swapped within each group; for stride S, each
// stride phase of dx (the input positions i with (i + P) % S == r) is such a conv with only the
// taps k = k0, k0 + step, ... (those with k*D % S == r), flipped. wt (Cin, Cout/g, TH, TW) from
// w (Cout, Cin/g, KH, KW):
//   wt[g*Cin/g + ci, co, ty, tx] = w[g*Cout/g + co, ci, k0y + (TH-1-ty)*step_y, k0x + (TW-1-tx)*step_x]
// (stride 1: k0 = 0, step = 1, T = K). One invocation per wt element, in wt's order, so the
// stores are coalesced (the weights are small; the loads gather).

const WG: u32 = 64u;

struct Params {
    cin_g: u32, cout_g: u32, th: u32, tw: u32,
    total: u32, kh: u32, kw: u32, k0y: u32,
    step_y: u32, k0x: u32, step_x: u32,
}

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
    let taps = p.th * p.tw;
    let t = i % taps;
    let co = (i / taps) % p.cout_g;
    let cin = i / (taps * p.cout_g);
    let group = cin / p.cin_g;
    let ci = cin % p.cin_g;
    let ky = p.k0y + (p.th - 1u - t / p.tw) * p.step_y;
    let kx = p.k0x + (p.tw - 1u - t % p.tw) * p.step_x;
    wt[i] = w[(((group * p.cout_g + co) * p.cin_g + ci) * p.kh + ky) * p.kw + kx];
}
