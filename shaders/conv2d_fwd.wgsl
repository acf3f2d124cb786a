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
// OW % PX == 0 (the PX pixels then share an output row) and the row segment fits the host's
// SEGMENT_MAX (32): each tap row of the window is then loaded once, as one segment, for all PX
// pixels and all taps of that row (a 3x3: 6 loads instead of 12), and the pixels are decoded
// once, not PX times.
override ROW_SEGMENT: bool = false;

const PX: u32 = 4u;  // output pixels per invocation (the register tile's columns)
// A row segment: (PX - 1) * SW + (KX1 - 1 - KX0) * DW + 1 input columns. The host sets
// ROW_SEGMENT for segments of up to 32 (`SEGMENT_MAX`); the kernel keeps up to SEG_MAX of
// them, under up to SEG_TAPS taps (written out), and walks wider ones the channels-outside way.
const SEG_MAX: u32 = 16u;
const SEG_TAPS: u32 = 7u;
// derived from the geometry, never set by the host
override SEG_LEN: u32 = (PX - 1u) * SW + (max(KX1, KX0 + 1u) - KX0 - 1u) * DW + 1u;

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

    // this invocation's pixels (component j of each vector: pixel j): consecutive lanes take
    // consecutive pixels (neighbouring loads), or, with ROW_SEGMENT, consecutive pixels of one
    // row. Every private value below is a vector or an array indexed by constants only (loops
    // over the pixels and the tile's rows are written out): a private array indexed by a loop
    // variable is kept in indexable memory by some compilers (NVIDIA's local memory).
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    if (total == 0u) {
        // an empty batch (the grid still has a workgroup): nothing to store, and no image 0
        // whose channel planes the spare lanes below read
        return;
    }
    let block = wid.x + wid.y * nwg.x;
    let lanes = vec4u(0u, 1u, 2u, 3u);
    var ok: vec4<bool>;
    var xb: vec4u;   // offset of (n, first channel of group g) in x
    var yb: vec4u;   // offset of (n, oc0, pixel) in y
    var iy0: vec4i;
    var ix0: vec4i;
    if (ROW_SEGMENT) {
        let q = (block * WG + lid) * PX;
        let qq = min(q, total - 1u);
        let n = qq / plane;
        let r = qq % plane;
        ok = vec4<bool>(q < total);  // all or none: OW % PX == 0
        iy0 = vec4i(i32((r / p.ow) * SH) - i32(PH));
        ix0 = vec4i((r % p.ow + lanes) * SW) - i32(PW);
        xb = vec4u((n * p.cin + g * cin_g) * p.h * p.w);
        yb = (n * p.cout + oc0) * plane + r + lanes;
    } else {
        let q = block * WG * PX + lid + lanes * WG;
        ok = q < vec4u(total);
        let qq = min(q, vec4u(total - 1u));
        let n = qq / plane;
        let r = qq % plane;
        iy0 = vec4i((r / p.ow) * SH) - i32(PH);
        ix0 = vec4i((r % p.ow) * SW) - i32(PW);
        xb = (n * p.cin + g * cin_g) * p.h * p.w;
        yb = (n * p.cout + oc0) * plane + r;
    }

    var acc: array<vec4f, 8>;  // acc[o]: channel oc0 + o at the 4 pixels; constant indices only
    let plane_in = p.h * p.w;
    let h = vec4i(i32(p.h));
    let w = vec4i(i32(p.w));
    let zero = vec4i(0);
    if (TAPS_OUTER) {
        // Taps outside, input channels inside: a pixel's window offset for a tap is the same
        // in every input channel, so the index arithmetic and bounds checks run once per tap
        // and the inner loop is loads and multiply-adds only.
        for (var ky = KY0; ky < KY1; ky++) {
            for (var kx = KX0; kx < KX1; kx++) {
                let iy = iy0 + i32(ky * DH);
                let ix = ix0 + i32(kx * DW);
                let inside = ok & (iy >= zero) & (iy < h) & (ix >= zero) & (ix < w);
                // offset of (n, first channel of group g, iy, ix) in x
                let off = select(vec4u(0u), xb + vec4u(iy) * p.w + vec4u(ix), inside);
                let wtap = oc0 * w_oc + ky * KW + kx;
                for (var ic = 0u; ic < cin_g; ic++) {
                    let xc = ic * plane_in;
                    let xv = vec4f(f32(x[off.x + xc]), f32(x[off.y + xc]), f32(x[off.z + xc]), f32(x[off.w + xc]));
                    mac_rows(&acc, wtap + ic * taps, w_oc, noc, select(vec4f(0.0), xv, inside));
                }
            }
        }
    } else if (ROW_SEGMENT && KX1 - KX0 <= SEG_TAPS && SEG_LEN <= SEG_MAX) {
        // Input channels outside, the PX pixels side by side in one row: per channel and tap
        // row, the input columns under all of them are one segment, loaded once. The segment's
        // elements under tap t are t*DW + j*SW: override constants, so with the taps written
        // out every index into `seg` is a constant once the pipeline is specialised.
        let col0 = ix0.x + i32(KX0 * DW);  // the segment's first input column
        for (var ic = 0u; ic < cin_g; ic++) {
            let xc = ic * plane_in;
            let wc = (oc0 * cin_g + ic) * taps;
            for (var ky = KY0; ky < KY1; ky++) {
                let iy = iy0.x + i32(ky * DH);
                // one unsigned compare per axis: a negative coordinate wraps past the bound
                let row_in = ok.x && u32(iy) < p.h;
                let at = i32(xb.x + xc) + iy * i32(p.w) + col0;
                var seg: array<vec4f, 4>;  // element e at seg[e / 4][e % 4]
                seg[0] = segment4(at, col0, row_in, 0u);
                if (SEG_LEN > 4u) {
                    seg[1] = segment4(at, col0, row_in, 4u);
                }
                if (SEG_LEN > 8u) {
                    seg[2] = segment4(at, col0, row_in, 8u);
                }
                if (SEG_LEN > 12u) {
                    seg[3] = segment4(at, col0, row_in, 12u);
                }
                let wi = wc + ky * KW + KX0;
                // tap t: elements j*SW + t*DW, j = 0 .. 3 (the min keeps a dead tap's index in
                // bounds: an override index past the array fails the pipeline)
                if (KX1 > KX0) {
                    let i0 = 0u;
                    let i1 = SW;
                    let i2 = 2u * SW;
                    let i3 = 3u * SW;
                    mac_rows(&acc, wi, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
                if (KX1 - KX0 > 1u) {
                    let i0 = DW;
                    let i1 = SW + DW;
                    let i2 = 2u * SW + DW;
                    let i3 = 3u * SW + DW;
                    mac_rows(&acc, wi + 1u, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
                if (KX1 - KX0 > 2u) {
                    let i0 = 2u * DW;
                    let i1 = SW + 2u * DW;
                    let i2 = 2u * SW + 2u * DW;
                    let i3 = 3u * SW + 2u * DW;
                    mac_rows(&acc, wi + 2u, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
                if (KX1 - KX0 > 3u) {
                    let i0 = 3u * DW;
                    let i1 = SW + 3u * DW;
                    let i2 = 2u * SW + 3u * DW;
                    let i3 = 3u * SW + 3u * DW;
                    mac_rows(&acc, wi + 3u, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
                if (KX1 - KX0 > 4u) {
                    let i0 = 4u * DW;
                    let i1 = SW + 4u * DW;
                    let i2 = 2u * SW + 4u * DW;
                    let i3 = 3u * SW + 4u * DW;
                    mac_rows(&acc, wi + 4u, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
                if (KX1 - KX0 > 5u) {
                    let i0 = 5u * DW;
                    let i1 = SW + 5u * DW;
                    let i2 = 2u * SW + 5u * DW;
                    let i3 = 3u * SW + 5u * DW;
                    mac_rows(&acc, wi + 5u, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
                if (KX1 - KX0 > 6u) {
                    let i0 = 6u * DW;
                    let i1 = SW + 6u * DW;
                    let i2 = 2u * SW + 6u * DW;
                    let i3 = 3u * SW + 6u * DW;
                    mac_rows(&acc, wi + 6u, w_oc, noc, vec4f(seg[min(i0 / 4u, 3u)][i0 % 4u], seg[min(i1 / 4u, 3u)][i1 % 4u], seg[min(i2 / 4u, 3u)][i2 % 4u], seg[min(i3 / 4u, 3u)][i3 % 4u]));
                }
            }
        }
    } else {
        // Input channels outside (few of them: the stem, depthwise; also ROW_SEGMENT's pixels
        // when their segment is wider than the written-out taps): the window of one channel
        // plane is walked tap by tap while it is in cache; rows are checked once per channel.
        for (var ic = 0u; ic < cin_g; ic++) {
            let xc = ic * plane_in;
            let wc = (oc0 * cin_g + ic) * taps;
            for (var ky = KY0; ky < KY1; ky++) {
                let iy = iy0 + i32(ky * DH);
                let row_ok = ok & (iy >= zero) & (iy < h);
                let row = vec4i(xb + xc) + iy * i32(p.w);
                for (var kx = KX0; kx < KX1; kx++) {
                    let ix = ix0 + i32(kx * DW);
                    let inside = row_ok & (ix >= zero) & (ix < w);
                    let at = select(vec4u(0u), vec4u(row + ix), inside);
                    let xv = vec4f(f32(x[at.x]), f32(x[at.y]), f32(x[at.z]), f32(x[at.w]));
                    mac_rows(&acc, wc + ky * KW + kx, w_oc, noc, select(vec4f(0.0), xv, inside));
                }
            }
        }
    }

    // epilogue, row by row (rows past noc are not stored); acc keeps the values stored, zero
    // where no pixel is, for the statistics
    acc[0] = store_output_quad(acc[0], oc0, yb, ok);
    if (OCB > 1u && noc > 1u) {
        acc[1] = store_output_quad(acc[1], oc0 + 1u, yb + plane, ok);
    }
    if (OCB > 2u && noc > 2u) {
        acc[2] = store_output_quad(acc[2], oc0 + 2u, yb + 2u * plane, ok);
    }
    if (OCB > 3u && noc > 3u) {
        acc[3] = store_output_quad(acc[3], oc0 + 3u, yb + 3u * plane, ok);
    }
    if (OCB > 4u && noc > 4u) {
        acc[4] = store_output_quad(acc[4], oc0 + 4u, yb + 4u * plane, ok);
    }
    if (OCB > 5u && noc > 5u) {
        acc[5] = store_output_quad(acc[5], oc0 + 5u, yb + 5u * plane, ok);
    }
    if (OCB > 6u && noc > 6u) {
        acc[6] = store_output_quad(acc[6], oc0 + 6u, yb + 6u * plane, ok);
    }
    if (OCB > 7u && noc > 7u) {
        acc[7] = store_output_quad(acc[7], oc0 + 7u, yb + 7u * plane, ok);
    }

    if (STATS) {
        let start = block * WG * PX;  // past total in the spare workgroups of a 2D grid
        let left = max(total, start) - start;  // valid pixels of this block (<= WG * PX)
        let mine = lane_count(lid, left);
        lane_stats4(0u, lid, acc[0], ok, mine);
        if (OCB > 1u) {
            lane_stats4(1u, lid, acc[1], ok, mine);
        }
        if (OCB > 2u) {
            lane_stats4(2u, lid, acc[2], ok, mine);
        }
        if (OCB > 3u) {
            lane_stats4(3u, lid, acc[3], ok, mine);
        }
        if (OCB > 4u) {
            lane_stats4(4u, lid, acc[4], ok, mine);
        }
        if (OCB > 5u) {
            lane_stats4(5u, lid, acc[5], ok, mine);
        }
        if (OCB > 6u) {
            lane_stats4(6u, lid, acc[6], ok, mine);
        }
        if (OCB > 7u) {
            lane_stats4(7u, lid, acc[7], ok, mine);
        }
        write_block_stats(lid, left, noc, block, oc0, p.cout);
    }
}

// The tile's OCB rows += each row's weight at `wi` (rows w_oc apart) x the 4 pixels xv. Rows
// past noc reread the last channel's weights; they are not stored.
fn mac_rows(acc: ptr<function, array<vec4f, 8>>, wi: u32, w_oc: u32, noc: u32, xv: vec4f) {
    (*acc)[0] += wt[wi] * xv;
    if (OCB > 1u) {
        (*acc)[1] += wt[wi + min(1u, noc - 1u) * w_oc] * xv;
    }
    if (OCB > 2u) {
        (*acc)[2] += wt[wi + min(2u, noc - 1u) * w_oc] * xv;
    }
    if (OCB > 3u) {
        (*acc)[3] += wt[wi + min(3u, noc - 1u) * w_oc] * xv;
    }
    if (OCB > 4u) {
        (*acc)[4] += wt[wi + min(4u, noc - 1u) * w_oc] * xv;
    }
    if (OCB > 5u) {
        (*acc)[5] += wt[wi + min(5u, noc - 1u) * w_oc] * xv;
    }
    if (OCB > 6u) {
        (*acc)[6] += wt[wi + min(6u, noc - 1u) * w_oc] * xv;
    }
    if (OCB > 7u) {
        (*acc)[7] += wt[wi + min(7u, noc - 1u) * w_oc] * xv;
    }
}

// Elements k0 .. k0+3 of a row segment starting at x offset `at`, input column col0: zero
// outside the image or past the segment.
fn segment4(at: i32, col0: i32, row_in: bool, k0: u32) -> vec4f {
    let k = vec4i(vec4u(k0) + vec4u(0u, 1u, 2u, 3u));
    let inside = vec4<bool>(row_in) & (vec4u(col0 + k) < vec4u(p.w)) & (vec4u(k) < vec4u(SEG_LEN));
    let off = select(vec4u(0u), vec4u(at + k), inside);
    return select(vec4f(0.0), vec4f(f32(x[off.x]), f32(x[off.y]), f32(x[off.z]), f32(x[off.w])), inside);
}

// How many of the block's first `left` pixels invocation `l` holds (pixels l, l + WG, ...; with
// ROW_SEGMENT l*PX .. l*PX+PX-1, all or none: `left` is then a multiple of PX).
fn lane_count(l: u32, left: u32) -> u32 {
    if (ROW_SEGMENT) {
        return select(0u, PX, l * PX < left);
    }
    return select(0u, min(PX, (left - l - 1u) / WG + 1u), l < left);
}
