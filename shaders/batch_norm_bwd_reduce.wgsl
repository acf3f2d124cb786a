// batch_norm training backward, reductions: per channel, dbeta = sum(dy) and
// dgamma = sum(dy * xhat) with xhat = (x - mean) / sqrt(var + eps). One workgroup per channel,
// or with SPLIT several (grid y), each over `chunk` of the channel's values, writing its two
// partial sums for batch_norm_bwd_finish to add: a channel of a large map on a GPU is then
// spread over many compute units instead of one.
// Fused activation (the `activation` prelude): dy is first multiplied by its derivative, taken
// from the output y or (FROM_OUTPUT false) from the saved value before the activation.
// A lane takes PACK consecutive values of its channel at a time (the elementwise_lanes prelude:
// 1, or 4 in its vec4 form; `chunk` is then a multiple of 4).

// The saved activations' storage (x and y; dy and dx are f32): f32, or f16 in the variant
// `kernels::shaders::variant` builds (mixed precision keeps them in f16).
alias T = f32;
alias TV = T;

override WG: u32 = 256u;
override SPLIT: bool = false;
// the saved tensor is the output y (the derivative follows from it), else the value before
// the activation
override FROM_OUTPUT: bool = true;
// The channel count C and the plane size HW are pipeline constants: the channel of an element
// comes from divisions by constants, which compile to multiplies and shifts, where a divisor
// from a uniform is one scalar divide per lane on lavapipe (and a long sequence on GPUs).
override C: u32 = 1u;
override HW: u32 = 1u;

struct Params { n: u32, eps: f32, chunk: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<FV>;           // (N, C, HW)
@group(0) @binding(2) var<storage, read> x: array<TV>;            // (N, C, HW)
@group(0) @binding(3) var<storage, read> mean: array<f32>;         // (C)
@group(0) @binding(4) var<storage, read> var_: array<f32>;         // (C) biased batch variance
@group(0) @binding(5) var<storage, read> y: array<TV>;            // (N, C, HW) output, unread without ACT
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>; // (C)
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;  // (C)
@group(0) @binding(8) var<storage, read_write> partials: array<f32>; // (C, splits, 2) with SPLIT

// The upstream gradient through the fused activation (a select, not a branch: a CPU driver
// runs per-lane branches with lane masks, paying for both sides).
fn grad(j: u32) -> FV {
    if (ACT == 0u) {
        return dy[j];
    }
    let d = select(act_grad_v(FV(y[j])), act_grad_from_output_v(FV(y[j])), FROM_OUTPUT);
    return select(dy[j] * d, FV(0.0), d == FV(0.0));
}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        lanes: Lanes) {
    let lid = lanes.index;
    let c = wid.x;
    let count = p.n * HW;
    let start = wid.y * p.chunk;
    let end = min(start + p.chunk, count);
    let m = mean[c];
    let inv = inverseSqrt(var_[c] + p.eps);
    var sa = 0.0;
    var sb = 0.0;
    for (var i = start + lid * PACK; i < end; i += WG * PACK) {
        let j = (((i / HW) * C + c) * HW + i % HW) / PACK;
        let g = grad(j);
        sa += lane_sum(g);
        sb += lane_sum(g * (FV(x[j]) - m) * inv);
    }
    let total = workgroup_sum4(vec4f(sa, sb, 0.0, 0.0), lanes);
    if (lid == 0u) {
        if (SPLIT) {
            let at = (c * nwg.y + wid.y) * 2u;
            partials[at] = total.x;
            partials[at + 1u] = total.y;
        } else {
            dbeta[c] = total.x;
            dgamma[c] = total.y;
        }
    }
}
