// conv2d forward as an implicit GEMM, shaped for how compute runs on SIMD hardware:
//   Y_g (Cout/g, N*OH*OW) = W_g (Cout/g, Cin/g*KH*KW) x im2col(X)_g (Cin/g*KH*KW, N*OH*OW).
// A workgroup owns OCB output channels of one group (grid z) and WG*4 output pixels (grid x/y);
// each invocation keeps an OCB x 4 register tile (OCB channels x 4 pixels). The weight index
// depends only on the workgroup and the loop counters, so every weight load is uniform (one
// scalar load broadcast to all lanes) and each gathered input value feeds OCB multiply-adds.
// The im2col matrix is never stored: each invocation decodes its 4 pixels once and gathers the
// window straight from x, zero outside the padding.
// Epilogue (fusion) and the training statistics (STATS) come from conv2d_epilogue.wgsl and
// conv2d_stats.wgsl: bias, residual and activation at the store, and per-block (mean, M2) of the
// stored values for the batch norm that follows.
// The geometry overrides (KH .. DW, the live taps KY0 .. KX1) come from conv2d_geometry.wgsl;
// `kernels::shaders` puts the three preludes in front of this file.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override WG: u32 = 64u;
// output channels per invocation, 1..=8 (the register tile's rows)
override OCB: u32 = 8u;
// loop order: taps outside and input channels inside (many channels per group), or the reverse
override TAPS_OUTER: bool = true;
// Consecutive pixels per invocation: lane l of a block takes its pixels l*PX .. l*PX+PX-1
// instead of l, l+WG, ... . Set by the host only for the channels-outside loop order when
// OW % PX == 0 (the PX pixels then share an output row) and the row segment fits SEG_MAX: each
// tap row of the window is then loaded once, as one segment, for all PX pixels and all taps of
// that row (a 3x3: 6 loads instead of 12), and the pixels are decoded once, not PX times.
override ROW_SEGMENT: bool = false;

const PX: u32 = 4u;  // output pixels per invocation (the register tile's columns)
const SEG_MAX: u32 = 32u;  // longest row segment: (PX - 1) * SW + (KX1 - 1 - KX0) * DW + 1

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;           // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
// bindings 3 .. 6 (bias, residual, y, the block statistics): conv2d_epilogue and conv2d_stats

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + OCB - 1u) / OCB;
    // uniform over the workgroup: the channel block
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * OCB;
    let noc = min(OCB, (g + 1u) * cout_g - oc0);
    let taps = KH * KW;
    let w_oc = cin_g * taps;  // stride between output channels in wt

    // this invocation's pixels: consecutive lanes take consecutive pixels (neighbouring loads),
    // or, with ROW_SEGMENT, consecutive pixels of one row
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let block = wid.x + wid.y * nwg.x;
    var xb: array<u32, PX>;   // offset of (n, first channel of group g) in x
    var yb: array<u32, PX>;   // offset of (n, oc0, pixel) in y
    var iy0: array<i32, PX>;
    var ix0: array<i32, PX>;
    var ok: array<bool, PX>;
    if (ROW_SEGMENT) {
        let q = (block * WG + lid) * PX;
        let qq = min(q, total - 1u);
        let n = qq / plane;
        let r = qq % plane;
        for (var j = 0u; j < PX; j++) {
            ok[j] = q < total;  // all or none: OW % PX == 0
            iy0[j] = i32((r / p.ow) * SH) - i32(PH);
            ix0[j] = i32((r % p.ow + j) * SW) - i32(PW);
            xb[j] = (n * p.cin + g * cin_g) * p.h * p.w;
            yb[j] = (n * p.cout + oc0) * plane + r + j;
        }
    } else {
        for (var j = 0u; j < PX; j++) {
            let q = block * WG * PX + lid + j * WG;
            ok[j] = q < total;
            let qq = min(q, total - 1u);
            let n = qq / plane;
            let r = qq % plane;
            iy0[j] = i32((r / p.ow) * SH) - i32(PH);
            ix0[j] = i32((r % p.ow) * SW) - i32(PW);
            xb[j] = (n * p.cin + g * cin_g) * p.h * p.w;
            yb[j] = (n * p.cout + oc0) * plane + r;
        }
    }

    var acc: array<vec4f, 8>;
    let plane_in = p.h * p.w;
    if (TAPS_OUTER) {
        // Taps outside, input channels inside: a pixel's window offset for a tap is the same
        // in every input channel, so the index arithmetic and bounds checks run once per tap
        // and the inner loop is loads and multiply-adds only.
        for (var ky = KY0; ky < KY1; ky++) {
            for (var kx = KX0; kx < KX1; kx++) {
                var off: array<u32, PX>;  // offset of (n, first channel of group g, iy, ix) in x
                var inside: array<bool, PX>;
                for (var j = 0u; j < PX; j++) {
                    let iy = iy0[j] + i32(ky * DH);
                    let ix = ix0[j] + i32(kx * DW);
                    inside[j] = ok[j] && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
                    off[j] = select(0u, xb[j] + u32(iy) * p.w + u32(ix), inside[j]);
                }
                let wtap = oc0 * w_oc + ky * KW + kx;
                for (var ic = 0u; ic < cin_g; ic++) {
                    let xc = ic * plane_in;
                    var xv: vec4f;
                    for (var j = 0u; j < PX; j++) {
                        xv[j] = select(0.0, f32(x[off[j] + xc]), inside[j]);
                    }
                    let wi = wtap + ic * taps;
                    for (var o = 0u; o < OCB; o++) {
                        // rows past noc reread the last channel's weights; they are not stored
                        acc[o] += wt[wi + min(o, noc - 1u) * w_oc] * xv;
                    }
                }
            }
        }
    } else if (ROW_SEGMENT) {
        // Input channels outside, the PX pixels side by side in one row: per channel and tap
        // row, the input columns under all of them are one segment, loaded once.
        let seg_len = (PX - 1u) * SW + (max(KX1, KX0 + 1u) - KX0 - 1u) * DW + 1u;
        let col0 = ix0[0] + i32(KX0 * DW);  // the segment's first input column
        for (var ic = 0u; ic < cin_g; ic++) {
            let xc = ic * plane_in;
            let wc = (oc0 * cin_g + ic) * taps;
            for (var ky = KY0; ky < KY1; ky++) {
                let iy = iy0[0] + i32(ky * DH);
                // one unsigned compare per axis: a negative coordinate wraps past the bound
                let row_in = ok[0] && u32(iy) < p.h;
                let at = i32(xb[0] + xc) + iy * i32(p.w) + col0;
                var seg: array<f32, SEG_MAX>;
                for (var i = 0u; i < seg_len; i++) {
                    let inside = row_in && u32(col0 + i32(i)) < p.w;
                    seg[i] = select(0.0, f32(x[select(0u, u32(at + i32(i)), inside)]), inside);
                }
                for (var kx = KX0; kx < KX1; kx++) {
                    var xv: vec4f;
                    for (var j = 0u; j < PX; j++) {
                        xv[j] = seg[j * SW + (kx - KX0) * DW];
                    }
                    let wi = wc + ky * KW + kx;
                    for (var o = 0u; o < OCB; o++) {
                        acc[o] += wt[wi + min(o, noc - 1u) * w_oc] * xv;
                    }
                }
            }
        }
    } else {
        // Input channels outside (few of them: the stem, depthwise): the window of one channel
        // plane is walked tap by tap while it is in cache; rows are checked once per channel.
        for (var ic = 0u; ic < cin_g; ic++) {
            let xc = ic * plane_in;
            let wc = (oc0 * cin_g + ic) * taps;
            for (var ky = KY0; ky < KY1; ky++) {
                var row: array<i32, PX>;   // -1 where the row is outside the image
                for (var j = 0u; j < PX; j++) {
                    let iy = iy0[j] + i32(ky * DH);
                    row[j] = select(-1, i32(xb[j] + xc) + iy * i32(p.w), ok[j] && iy >= 0 && iy < i32(p.h));
                }
                for (var kx = KX0; kx < KX1; kx++) {
                    var xv: vec4f;
                    for (var j = 0u; j < PX; j++) {
                        let ix = ix0[j] + i32(kx * DW);
                        let inside = row[j] >= 0 && ix >= 0 && ix < i32(p.w);
                        let v = f32(x[select(0u, u32(row[j] + ix), inside)]);
                        xv[j] = select(0.0, v, inside);
                    }
                    let wi = wc + ky * KW + kx;
                    for (var o = 0u; o < OCB; o++) {
                        acc[o] += wt[wi + min(o, noc - 1u) * w_oc] * xv;
                    }
                }
            }
        }
    }

    for (var j = 0u; j < PX; j++) {
        if (!ok[j]) {
            continue;
        }
        for (var o = 0u; o < noc; o++) {
            acc[o][j] = store_output(acc[o][j], oc0 + o, yb[j] + o * plane);
        }
    }

    if (STATS) {
        let start = block * WG * PX;  // past total in the spare workgroups of a 2D grid
        let left = max(total, start) - start;  // valid pixels of this block (<= WG * PX)
        let mine = lane_count(lid, left);
        var okv: array<bool, 8>;
        for (var j = 0u; j < PX; j++) {
            okv[j] = ok[j];
        }
        for (var o = 0u; o < OCB; o++) {
            var vals: array<f32, 8>;
            for (var j = 0u; j < PX; j++) {
                vals[j] = acc[o][j];
            }
            lane_stats(o, lid, vals, okv, mine);
        }
        write_block_stats(lid, left, noc, block, oc0, p.cout);
    }
}

// How many of the block's first `left` pixels invocation `l` holds (pixels l, l + WG, ...; with
// ROW_SEGMENT l*PX .. l*PX+PX-1, all or none: `left` is then a multiple of PX).
fn lane_count(l: u32, left: u32) -> u32 {
    if (ROW_SEGMENT) {
        return select(0u, PX, l * PX < left);
    }
    return select(0u, min(PX, (left - l - 1u) / WG + 1u), l < left);
}
