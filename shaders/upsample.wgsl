// Upsampling of x (N*C planes of H x W) by an integer SCALE, as nn.Upsample(scale_factor=SCALE)
// with align_corners=False: nearest (the input pixel o / SCALE) or BILINEAR (source coordinate
// (o + 1/2) / SCALE - 1/2, clamped at 0, between its two neighbours). BACKWARD: the input
// gradient as a gather, each input pixel summing the output gradients that read it with the
// weights they read it with (no atomics, one writer per element).

override WG: u32 = 256u;
override SCALE: u32 = 2u;
override BILINEAR: bool = false;
override BACKWARD: bool = false;

struct Params { planes: u32, h: u32, w: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;        // x, or dy with BACKWARD
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;  // y, or dx with BACKWARD

// Output index o's two source pixels and the second one's weight, along an axis of `n` inputs.
fn taps(o: u32, n: u32) -> vec3f {
    if (!BILINEAR) {
        let i = f32(o / SCALE);
        return vec3f(i, i, 0.0);
    }
    let s = max((f32(o) + 0.5) * (1.0 / f32(SCALE)) - 0.5, 0.0);
    let i0 = min(u32(s), n - 1u);
    let i1 = min(i0 + 1u, n - 1u);
    return vec3f(f32(i0), f32(i1), s - f32(i0));
}

// The weight with which output o reads input i along an axis of `n` inputs.
fn weight(o: u32, i: u32, n: u32) -> f32 {
    let t = taps(o, n);
    var w = 0.0;
    if (u32(t.x) == i) {
        w += select(1.0, 1.0 - t.z, BILINEAR);
    }
    if (BILINEAR && u32(t.y) == i) {
        w += t.z;
    }
    return w;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let oh = p.h * SCALE;
    let ow = p.w * SCALE;
    if (!BACKWARD) {
        if (i >= p.planes * oh * ow) {
            return;
        }
        let base = (i / (oh * ow)) * p.h * p.w;
        let r = i % (oh * ow);
        let ty = taps(r / ow, p.h);
        let tx = taps(r % ow, p.w);
        let y0 = base + u32(ty.x) * p.w;
        let y1 = base + u32(ty.y) * p.w;
        let top = (1.0 - tx.z) * src[y0 + u32(tx.x)] + tx.z * src[y0 + u32(tx.y)];
        let bottom = (1.0 - tx.z) * src[y1 + u32(tx.x)] + tx.z * src[y1 + u32(tx.y)];
        dst[i] = (1.0 - ty.z) * top + ty.z * bottom;
        return;
    }
    if (i >= p.planes * p.h * p.w) {
        return;
    }
    let base = (i / (p.h * p.w)) * oh * ow;
    let iy = (i % (p.h * p.w)) / p.w;
    let ix = i % p.w;
    // the outputs that can read input (iy, ix): within one input pixel's span either side
    let y_lo = max(i32(iy * SCALE) - i32(SCALE), 0);
    let y_hi = min((iy + 2u) * SCALE, oh);
    let x_lo = max(i32(ix * SCALE) - i32(SCALE), 0);
    let x_hi = min((ix + 2u) * SCALE, ow);
    var acc = 0.0;
    for (var oy = u32(y_lo); oy < y_hi; oy++) {
        let wy = weight(oy, iy, p.h);
        if (wy == 0.0) {
            continue;
        }
        for (var ox = u32(x_lo); ox < x_hi; ox++) {
            acc += wy * weight(ox, ix, p.w) * src[base + oy * ow + ox];
        }
    }
    dst[i] = acc;
}
