// The fused epilogue every conv2d forward kernel stores its outputs through; prepended to them
// by `kernels::shaders` (WGSL has no include). The kernel declares `alias T` (its activation
// storage) and binds bias, residual and y at bindings 3, 4 and 5.
// Epilogue (fusion): + bias, + residual (the skip connection), then the activation `act` of the
// `activation` prelude, which comes before this file.
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (Cout), unread without HAS_BIAS
@group(0) @binding(4) var<storage, read> res: array<T>;         // like y, unread without HAS_RESIDUAL
@group(0) @binding(5) var<storage, read_write> y: array<T>;     // (N, Cout, OH, OW)
// y and the residual again as vec4s, for kernels that store 4 aligned pixels at once
// (`store_output4`; unread by the others). naga takes one variable per binding, so the views
// are bindings of their own, bound to the same buffers.
@group(0) @binding(7) var<storage, read_write> y4: array<vec4<T>>;
@group(0) @binding(8) var<storage, read> res4: array<vec4<T>>;

// Store act(v + bias[oc] + res[at]) at y[at]; returns the value stored (before rounding to T),
// which the batch statistics are taken of.
fn store_output(v: f32, oc: u32, at: u32) -> f32 {
    var o = v;
    if (HAS_BIAS) {
        o += bias[oc];
    }
    if (HAS_RESIDUAL) {
        o += f32(res[at]);
    }
    o = act(o);
    y[at] = T(o);
    return o;
}

// `store_output` for 4 pixels at `at` where `ok`; returns the values stored (before rounding
// to T), zero where nothing is.
fn store_output_quad(v: vec4f, oc: u32, at: vec4u, ok: vec4<bool>) -> vec4f {
    var o = vec4f(0.0);
    if (ok.x) {
        o.x = store_output(v.x, oc, at.x);
    }
    if (ok.y) {
        o.y = store_output(v.y, oc, at.y);
    }
    if (ok.z) {
        o.z = store_output(v.z, oc, at.z);
    }
    if (ok.w) {
        o.w = store_output(v.w, oc, at.w);
    }
    return o;
}

// `store_output` for the 4 pixels from `at` (a multiple of 4: the 4 values one vec4 of y
// holds) in one 16-byte store (8 for f16); returns the values stored.
fn store_output4(v: vec4f, oc: u32, at: u32) -> vec4f {
    var o = v;
    if (HAS_BIAS) {
        o += vec4f(bias[oc]);
    }
    if (HAS_RESIDUAL) {
        o += vec4f(res4[at / 4u]);
    }
    o = act4(o);
    y4[at / 4u] = vec4<T>(o);
    return o;
}
