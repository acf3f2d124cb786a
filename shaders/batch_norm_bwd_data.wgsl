// batch_norm training backward, input gradient through the batch statistics (M = N*H*W):
// dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma).
// Fused epilogue: dy is multiplied by the activation's derivative, taken from the output y
// (`act_grad_from_output` of the `activation` prelude) or, with FROM_OUTPUT false, from the
// value before the activation that the forward saved (bound as y), and
// with a fused residual the masked dy is also the residual's gradient (written to dr).
// A lane takes PACK consecutive elements of one channel (the elementwise_lanes prelude: 1, or 4
// in its vec4 form), so the channel's parameters are loaded once per lane.

// The saved activations' storage (x and y; dy and dx are f32): f32, or f16 in the variant
// `kernels::shaders::variant` builds (mixed precision keeps them in f16).
alias T = f32;
alias TV = T;

override WG: u32 = 256u;
override HAS_RESIDUAL: bool = false;
// the saved tensor is the output y (the derivative follows from it), else the value before
// the activation
override FROM_OUTPUT: bool = true;
// The channel count C and the plane size HW are pipeline constants: the channel of an element
// comes from divisions by constants, which compile to multiplies and shifts, where a divisor
// from a uniform is one scalar divide per lane on lavapipe (and a long sequence on GPUs).
override C: u32 = 1u;
override HW: u32 = 1u;

struct Params { total: u32, eps: f32, count: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<FV>;         // (N, C, HW)
@group(0) @binding(2) var<storage, read> x: array<TV>;          // (N, C, HW)
@group(0) @binding(3) var<storage, read> mean: array<f32>;      // (C)
@group(0) @binding(4) var<storage, read> var_: array<f32>;      // (C)
@group(0) @binding(5) var<storage, read> gamma: array<f32>;     // (C)
@group(0) @binding(6) var<storage, read> dgamma: array<f32>;    // (C)
@group(0) @binding(7) var<storage, read> dbeta: array<f32>;     // (C)
@group(0) @binding(8) var<storage, read> y: array<TV>;          // (N, C, HW), unread without ACT
@group(0) @binding(9) var<storage, read_write> dx: array<FV>;   // (N, C, HW)
@group(0) @binding(10) var<storage, read_write> dr: array<FV>;  // (N, C, HW), unwritten without HAS_RESIDUAL

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total / PACK) {
        return;
    }
    let e = i * PACK;
    let c = (e / HW) % C;
    var inv = FV(inverseSqrt(var_[c] + p.eps));
    var m = FV(mean[c]);
    var ga = FV(gamma[c]);
    var dga = FV(dgamma[c]);
    var dbe = FV(dbeta[c]);
    if (STRADDLE) {
        let c2 = (c + 1u) % C;
        let next = in_next_plane(e);
        inv = select(inv, FV(inverseSqrt(var_[c2] + p.eps)), next);
        m = select(m, FV(mean[c2]), next);
        ga = select(ga, FV(gamma[c2]), next);
        dga = select(dga, FV(dgamma[c2]), next);
        dbe = select(dbe, FV(dbeta[c2]), next);
    }
    let xhat = (FV(x[i]) - m) * inv;
    var g = dy[i];
    if (ACT != 0u) {
        let d = select(act_grad_v(FV(y[i])), act_grad_from_output_v(FV(y[i])), FROM_OUTPUT);
        g = select(g * d, FV(0.0), d == FV(0.0));
    }
    dx[i] = ga * inv / p.count * (p.count * g - dbe - xhat * dga);
    if (HAS_RESIDUAL) {
        dr[i] = g;
    }
}
