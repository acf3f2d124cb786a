// A conv's weights as the forward weights of its input gradient: for stride 1, dx is the conv of
// dy with the kernel flipped and the channel axes swapped within each group, so the gpu family's
// block forward computes it. wt (Cin, Cout/g, KH, KW) from w (Cout, Cin/g, KH, KW):
// wt[g*Cin/g + ci, co, ky, kx] = w[g*Cout/g + co, ci, KH-1-ky, KW-1-kx]. One invocation per wt
// element, in wt's order, so the stores are coalesced (the weights are small; the loads gather).

const WG: u32 = 64u;

struct Params { cin_g: u32, cout_g: u32, kh: u32, kw: u32, total: u32 }

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
    let taps = p.kh * p.kw;
    let t = i % taps;
    let co = (i / taps) % p.cout_g;
    let cin = i / (taps * p.cout_g);
    let group = cin / p.cin_g;
    let ci = cin % p.cin_g;
    let ky = p.kh - 1u - t / p.kw;
    let kx = p.kw - 1u - t % p.kw;
    wt[i] = w[(((group * p.cout_g + co) * p.cin_g + ci) * p.kh + ky) * p.kw + kx];
}
