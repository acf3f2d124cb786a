// batch_norm normalisation: y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c].
// Training binds the batch statistics, eval binds the running statistics.
// Epilogue (fusion): + residual, then the activation `act` (the `activation` prelude), in the
// same pass; with HAS_PRE (training, an activation whose gradient needs its input) the value
// before the activation is stored too, for the fused backward.
// A lane takes PACK consecutive elements of one channel (the elementwise_lanes prelude: 1, or 4
// in its vec4 form), so the channel's parameters are loaded once per lane.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;
alias TV = T;

override WG: u32 = 256u;
override HAS_RESIDUAL: bool = false;
override HAS_PRE: bool = false;
// The channel count C and the plane size HW are pipeline constants: the channel of an element
// comes from divisions by constants, which compile to multiplies and shifts, where a divisor
// from a uniform is one scalar divide per lane on lavapipe (and a long sequence on GPUs).
override C: u32 = 1u;
override HW: u32 = 1u;

struct Params { total: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<TV>;         // (N, C, H, W)
@group(0) @binding(2) var<storage, read> mean: array<f32>;     // (C)
@group(0) @binding(3) var<storage, read> var_: array<f32>;     // (C)
@group(0) @binding(4) var<storage, read> gamma: array<f32>;    // (C)
@group(0) @binding(5) var<storage, read> beta: array<f32>;     // (C)
@group(0) @binding(6) var<storage, read> res: array<TV>;       // like x, unread without HAS_RESIDUAL
@group(0) @binding(7) var<storage, read_write> y: array<TV>;   // (N, C, H, W)
@group(0) @binding(8) var<storage, read_write> pre: array<TV>; // like y, unwritten without HAS_PRE

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total / PACK) {
        return;
    }
    let e = i * PACK;
    let c = (e / HW) % C;
    var m = FV(mean[c]);
    var scale = FV(gamma[c] * inverseSqrt(var_[c] + p.eps));
    var b = FV(beta[c]);
    if (STRADDLE) {
        let c2 = (c + 1u) % C;
        let next = in_next_plane(e);
        m = select(m, FV(mean[c2]), next);
        scale = select(scale, FV(gamma[c2] * inverseSqrt(var_[c2] + p.eps)), next);
        b = select(b, FV(beta[c2]), next);
    }
    var v = (FV(x[i]) - m) * scale + b;
    if (HAS_RESIDUAL) {
        v += FV(res[i]);
    }
    if (HAS_PRE) {
        pre[i] = TV(v);
    }
    y[i] = TV(act_v(v));
}
