// max_pool2d backward: each input element gathers dy from the output windows whose maximum it
// is, by the window maxima's positions that max_pool2d_argmax wrote to a scratch buffer (so the
// graph stores no index tensor: the positions are recomputed from x in the backward). An
// element visits only the windows that cover it: per axis the outputs from ceil((i + P -
// (K-1)*D) / S) to floor((i + P) / S), at most ceil(K / S) of them (2 of a 3x3 stride-2
// window's 3; it stepped all K taps before, testing each). The maps' sizes are pipeline
// constants, so the index arithmetic divides by constants (multiplies and shifts; a divisor
// from a uniform is one scalar divide per lane on lavapipe).

override KH: u32 = 2u;
override KW: u32 = 2u;
override SH: u32 = 2u;
override SW: u32 = 2u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override WG: u32 = 256u;
override H: u32 = 1u;
override W: u32 = 1u;
override OH: u32 = 1u;
override OW: u32 = 1u;

struct Params { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read> idx: array<u32>;       // (N, C, OH, OW), from max_pool2d_argmax
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (N, C, H, W)

// Flat index (iy * W + ix) of the maximum of window (oy, ox) in `plane`.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.nc * H * W) {
        return;
    }
    let ix = i % W;
    let iy = (i / W) % H;
    let plane = i / (W * H);
    let me = iy * W + ix;
    let y = covering(iy + PH, KH, SH, DH, OH);
    let x = covering(ix + PW, KW, SW, DW, OW);
    var s = 0.0;
    for (var oy = y.x; oy <= y.y; oy++) {
        // a tap lands on this row only where the offset is a whole number of dilations
        if ((iy + PH - oy * SH) % DH != 0u) {
            continue;
        }
        for (var ox = x.x; ox <= x.y; ox++) {
            if ((ix + PW - ox * SW) % DW != 0u) {
                continue;
            }
            let o = (plane * OH + oy) * OW + ox;
            s += select(0.0, dy[o], idx[o] == me);
        }
    }
    dx[i] = s;
}

// The first and last outputs (inclusive; first > last when none) along one axis whose window
// of K taps, S apart with dilation D, covers padded coordinate t.
fn covering(t: u32, K: u32, S: u32, D: u32, O: u32) -> vec2u {
    let reach = (K - 1u) * D;
    let first = select(0u, (t - reach + S - 1u) / S, t > reach);
    let last = min(t / S, O - 1u);
    return vec2u(first, last);
}
