// The activations, defined once: the activation kernels and every fused epilogue (conv,
// batch norm, the 1x1-conv GEMM) start with this file (`kernels::shaders` preludes), and
// `ops::activation::Act` is its Rust side (the codes below are `Act::code`).
// ACT: 0 none, 1 relu, 2 relu6, 3 leaky_relu (slope ACT_ALPHA), 4 sigmoid, 5 hardsigmoid,
// 6 silu, 7 hardswish, 8 gelu (erf form), 9 gelu (tanh approximation). Formulas and gradients
// are PyTorch's, including where each gradient switches at a kink.
override ACT: u32 = 0u;
override ACT_ALPHA: f32 = 0.01;

// 1 / (1 + e^-x), without overflow: e^-x is inf for x < -88 and gives 0.
fn act_sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

const GELU_TANH_K: f32 = 0.7978845608028654;  // sqrt(2 / pi)
const GELU_TANH_C: f32 = 0.044715;

// GELU's tanh form through t = e^-2|u| (in (0, 1], never overflowing, where a driver's own tanh
// may compute e^2u and give inf / inf): 1 + tanh(u) = 2 / (1 + t) for u >= 0 and 2t / (1 + t)
// below, and 1 - tanh(u)^2 = 4t / (1 + t)^2, so neither subtracts nearly equal numbers and the
// far left tail keeps its relative accuracy.
fn act_gelu_tanh(x: f32, grad: bool) -> f32 {
    let u = GELU_TANH_K * (x + GELU_TANH_C * x * x * x);
    let t = exp(-2.0 * abs(u));
    let half_one_plus = select(t, 1.0, u >= 0.0) / (1.0 + t);  // (1 + tanh u) / 2
    if (!grad) {
        return x * half_one_plus;
    }
    let sech2 = 4.0 * t / ((1.0 + t) * (1.0 + t));
    return half_one_plus + 0.5 * x * sech2 * GELU_TANH_K * (1.0 + 3.0 * GELU_TANH_C * x * x);
}

// Phi(x) = P(Z <= x) = erfc(-x / sqrt 2) / 2, with erfc from its Chebyshev fit (relative error
// below 1.2e-7 over the whole line): relative accuracy also in the far left tail, where
// 1 + erf(x) would cancel to nothing.
fn act_normal_cdf(x: f32) -> f32 {
    let z = abs(x) * 0.70710678118654752;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * exp(-z * z + poly);
    return select(1.0 - 0.5 * erfc, 0.5 * erfc, x < 0.0);
}

fn act(x: f32) -> f32 {
    switch ACT {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        case 3u: { return select(x * ACT_ALPHA, x, x > 0.0); }
        case 4u: { return act_sigmoid(x); }
        case 5u: { return clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case 6u: { return x * act_sigmoid(x); }
        case 7u: { return x * clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case 8u: { return x * act_normal_cdf(x); }
        case 9u: { return act_gelu_tanh(x, false); }
        default: { return x; }
    }
}

fn act4(v: vec4f) -> vec4f {
    return vec4f(act(v.x), act(v.y), act(v.z), act(v.w));
}

// d act / dx at the input x, as PyTorch's backward kernels take it (relu: 0 at x = 0; relu6
// and hardsigmoid: 0 at their kinks; hardswish: x / 3 + 1/2 on [-3, 3]).
fn act_grad(x: f32) -> f32 {
    switch ACT {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return select(0.0, 1.0, x > 0.0 && x < 6.0); }
        case 3u: { return select(ACT_ALPHA, 1.0, x > 0.0); }
        case 4u: {
            let s = act_sigmoid(x);
            return s * (1.0 - s);
        }
        case 5u: { return select(0.0, 1.0 / 6.0, x > -3.0 && x < 3.0); }
        case 6u: {
            let s = act_sigmoid(x);
            return s * (1.0 + x * (1.0 - s));
        }
        case 7u: { return select(select(x / 3.0 + 0.5, 1.0, x > 3.0), 0.0, x < -3.0); }
        case 8u: { return act_normal_cdf(x) + x * 0.3989422804014327 * exp(-0.5 * x * x); }
        case 9u: { return act_gelu_tanh(x, true); }
        default: { return 1.0; }
    }
}

// The same derivative from the output y = act(x), for the activations where y determines it
// (`Act::grad_from_output`): relu, relu6, leaky_relu with a positive slope, sigmoid and
// hardsigmoid. Their backward then needs only the output, which the forward keeps anyway.
fn act_grad_from_output(y: f32) -> f32 {
    switch ACT {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return select(0.0, 1.0, y > 0.0 && y < 6.0); }
        case 3u: { return select(ACT_ALPHA, 1.0, y > 0.0); }
        case 4u: { return y * (1.0 - y); }
        case 5u: { return select(0.0, 1.0 / 6.0, y > 0.0 && y < 1.0); }
        default: { return 1.0; }
    }
}
