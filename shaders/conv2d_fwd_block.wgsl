// conv2d forward for GPUs (the gpu kernel family): an implicit GEMM in block tiles staged
// through workgroup memory,
//   Y_g (Cout/g, N*OH*OW) = W_g (Cout/g, K) x im2col(X)_g (K, N*OH*OW),  K = Cin/g*KH*KW.
// A workgroup of 256 invocations owns a 64 x 64 block of Y_g: 64 output channels of one group
// (grid z) by 64 output pixels (grid x/y). It walks K in chunks of TK = 8, double-buffered: while
// the invocations multiply chunk c out of workgroup memory, they hold chunk c+1 in registers,
// loaded from global memory, and store it into the other stage before the one barrier per chunk.
// Loads are coalesced: the weight chunk (64 x 8) with consecutive lanes along K (contiguous in
// wt), the im2col chunk (8 x 64) with consecutive lanes along the pixels (contiguous in x for a
// stride-1 row; each lane decodes its pixel once). Each invocation keeps a 4 x 4 register tile
// (4 channels x 4 consecutive pixels) and reads one vec4 of weights and one vec4 of pixels from
// workgroup memory per step of K: 16 multiply-adds for 2 vector loads.
// Epilogue (bias, residual, activation) from conv2d_epilogue.wgsl; the geometry overrides from
// conv2d_geometry.wgsl. With STATS, also the (mean, M2) of each channel over the block's 64
// pixels (a statistics sub-block; `kernels::conv` condenses them into STATS_BLOCK blocks).

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override STATS: bool = false;
// OH * OW % 4 == 0: a lane's 4 pixels (from a multiple of 4) lie in one plane, one vec4 of y
override VEC4: bool = false;

const BM: u32 = 64u;        // output channels per workgroup
const BN: u32 = 64u;        // output pixels per workgroup
const TK: u32 = 8u;         // K per chunk
const AV: u32 = BM / 4u + 1u;  // vec4s per K row of the weight stage: 16 + 1 of padding, so the
                               // 8 K rows one warp stores land in different banks
const BV: u32 = BN / 4u;    // vec4s per K row of the pixel stage

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;           // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
// bindings 3 .. 5 (bias, residual, y): conv2d_epilogue
// (blocks of BN pixels, Cout, 2): each block's channel mean and M2; unwritten without STATS
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

var<workgroup> wa: array<vec4f, 272>;  // 2 stages x TK x AV: weights [k][channel]
var<workgroup> xb: array<vec4f, 256>;  // 2 stages x TK x BV: im2col [k][pixel]; statistics after

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + BM - 1u) / BM;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * BM;
    let nrows = min(BM, (g + 1u) * cout_g - oc0);
    let taps = KH * KW;
    let kdim = cin_g * taps;
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let hw = p.h * p.w;
    let block = wid.x + wid.y * nwg.x;
    let p0 = block * BN;

    // loader of the pixel stage: column `col`, K rows lid / 64 and lid / 64 + 4
    let col = lid % BN;
    let krow = lid / BN;
    let q = p0 + col;
    let q_ok = q < total;
    let qq = min(q, total - 1u);
    let r = qq % plane;
    let iy0 = i32((r / p.ow) * SH) - i32(PH);
    let ix0 = i32((r % p.ow) * SW) - i32(PW);
    let xbase = ((qq / plane) * p.cin + g * cin_g) * hw;

    // compute role: channels ty*4 .. ty*4+3, pixels tx*4 .. tx*4+3
    let tx = lid % 16u;
    let ty = lid / 16u;
    // acc[i]: channel ty*4+i at the 4 pixels. Every private value of this kernel is indexed by
    // constants only (the epilogue and the statistics are written out, not looped over an
    // index), so that no compiler has to keep the tile in memory it can index (NVIDIA's local
    // memory, where the old statistics tail's `v[i][j]` put it).
    var acc = mat4x4f();

    let chunks = (kdim + TK - 1u) / TK;
    // this lane's share of a chunk: weights lid and lid + 256, im2col rows krow and krow + 4
    var ra0 = load_weight(0u, lid, oc0, nrows, kdim);
    var ra1 = load_weight(0u, lid + 256u, oc0, nrows, kdim);
    var rb0 = load_pixel(krow, q_ok, iy0, ix0, xbase, kdim, taps, hw);
    var rb1 = load_pixel(krow + 4u, q_ok, iy0, ix0, xbase, kdim, taps, hw);
    // chunk 0 into stage 0
    store_stage(0u, lid, col, krow, ra0, ra1, rb0, rb1);
    workgroupBarrier();
    for (var c = 0u; c < chunks; c++) {
        let s = c % 2u;
        let more = c + 1u < chunks;
        if (more) {
            let k0 = (c + 1u) * TK;
            ra0 = load_weight(k0, lid, oc0, nrows, kdim);
            ra1 = load_weight(k0, lid + 256u, oc0, nrows, kdim);
            rb0 = load_pixel(k0 + krow, q_ok, iy0, ix0, xbase, kdim, taps, hw);
            rb1 = load_pixel(k0 + krow + 4u, q_ok, iy0, ix0, xbase, kdim, taps, hw);
        }
        // the chunk's TK = 8 steps of K: a loop, as it indexes nothing private (written out, it
        // cost 12 more registers on AMD's compiler)
        let a0 = s * TK * AV + ty;
        let b0 = s * TK * BV + tx;
        for (var kk = 0u; kk < TK; kk++) {
            acc = mac(acc, wa[a0 + kk * AV], xb[b0 + kk * BV]);
        }
        if (more) {
            store_stage(1u - s, lid, col, krow, ra0, ra1, rb0, rb1);
        }
        workgroupBarrier();
    }

    // epilogue: 4 channels x 4 consecutive pixels q0 .. q0+3. The lane's valid pixels are a
    // prefix of them (`mine`); their offsets in y (channel 0's; + oc * plane) are decoded once:
    // consecutive, unless the 4 cross from one image into the next (or the plane is smaller).
    // Where the plane's size is a multiple of 4 (VEC4) and all 4 are valid, one vec4 store
    // through the epilogue prelude's vec4 view of y; else scalar stores.
    let left = max(total, p0) - p0;  // valid pixels of the block (0 in a 2D grid's spare ones)
    let mine = min(4u, max(left, tx * 4u) - tx * 4u);
    let ok = vec4u(0u, 1u, 2u, 3u) < vec4u(mine);
    let q0 = p0 + tx * 4u;
    let r0 = q0 % plane;
    var yo = vec4u((q0 / plane) * p.cout * plane + r0) + vec4u(0u, 1u, 2u, 3u);
    if (r0 + 3u >= plane) {
        let q = vec4u(q0) + vec4u(0u, 1u, 2u, 3u);
        yo = (q / plane) * (p.cout * plane) + q % plane;
    }
    // the values stored (the statistics' input), zero where nothing is
    var vals = mat4x4f();
    let m = ty * 4u;
    if (m < nrows) {
        vals[0] = store4(acc[0], oc0 + m, yo + (oc0 + m) * plane, ok);
    }
    if (m + 1u < nrows) {
        vals[1] = store4(acc[1], oc0 + m + 1u, yo + (oc0 + m + 1u) * plane, ok);
    }
    if (m + 2u < nrows) {
        vals[2] = store4(acc[2], oc0 + m + 2u, yo + (oc0 + m + 2u) * plane, ok);
    }
    if (m + 3u < nrows) {
        vals[3] = store4(acc[3], oc0 + m + 3u, yo + (oc0 + m + 3u) * plane, ok);
    }
    if (STATS) {
        write_stats(lid, tx, ty, vals, ok, f32(mine), left, nrows, block, oc0);
    }
}

// One step of K on the 4 x 4 tile: channel i's 4 pixels += weight a[i] x the pixels b.
fn mac(t: mat4x4f, a: vec4f, b: vec4f) -> mat4x4f {
    return mat4x4f(t[0] + a.x * b, t[1] + a.y * b, t[2] + a.z * b, t[3] + a.w * b);
}

// Channel oc's 4 values v through the epilogue into y at `at` where `ok`; returns the values
// stored (before rounding to T), zero where nothing is.
fn store4(v: vec4f, oc: u32, at: vec4u, ok: vec4<bool>) -> vec4f {
    if (VEC4 && all(ok)) {
        // 4 pixels from a multiple of 4 of one plane: one aligned vec4 of y
        return store_output4(v, oc, at.x);
    }
    return store_output_quad(v, oc, at, ok);
}

// Weight `e` (0 .. 512) of the chunk at K offset k0: channel e / TK, K row e % TK (consecutive
// lanes read consecutive K); zero past the group's channels or K.
fn load_weight(k0: u32, e: u32, oc0: u32, nrows: u32, kdim: u32) -> f32 {
    let m = e / TK;
    let k = k0 + e % TK;
    let ok = m < nrows && k < kdim;
    return select(0.0, wt[select(0u, (oc0 + m) * kdim + k, ok)], ok);
}

// The im2col value of K row k for this lane's pixel: x at (channel, tap) k, zero in the padding
// or past K.
fn load_pixel(k: u32, q_ok: bool, iy0: i32, ix0: i32, xbase: u32, kdim: u32, taps: u32, hw: u32) -> f32 {
    let ic = k / taps;
    let t = k % taps;
    let iy = iy0 + i32((t / KW) * DH);
    let ix = ix0 + i32((t % KW) * DW);
    let inside = q_ok && k < kdim && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    return select(0.0, f32(x[select(0u, xbase + ic * hw + u32(iy) * p.w + u32(ix), inside)]), inside);
}

// This lane's share of a chunk into stage `s`: its two weights (channels lid / TK and
// lid / TK + 32, K row lid % TK) and its two im2col values (K rows krow and krow + 4).
fn store_stage(s: u32, lid: u32, col: u32, krow: u32, ra0: f32, ra1: f32, rb0: f32, rb1: f32) {
    let m = lid / TK;
    let wrow = (s * TK + lid % TK) * AV + m / 4u;
    wa[wrow][m % 4u] = ra0;
    wa[wrow + 8u][m % 4u] = ra1;  // channel m + 32
    let xrow = (s * TK + krow) * BV + col / 4u;
    xb[xrow][col % 4u] = rb0;
    xb[xrow + 4u * BV][col % 4u] = rb1;
}

// The block statistics: each lane's (mean, M2) of its 4 channels over its `n_mine` valid pixels
// (`ok`; `vals` holds channel i's values in column i), as vec4s over the channels with constant
// indices only, merged with Chan's formula across the 16 lanes of a channel row in two rounds
// through workgroup memory (the pixel stage, free after the main loop's last barrier): lane tx
// merges lane tx + 8's into its own slot, then one lane per channel merges the 8 slots and
// writes them. `left`: valid pixels of the block from p0.
fn write_stats(lid: u32, tx: u32, ty: u32, vals: mat4x4f, ok: vec4<bool>, n_mine: f32, left: u32, nrows: u32,
               block: u32, oc0: u32) {
    // pixel j's values of the 4 channels, zero where the pixel is not valid
    let t = transpose(vals);
    let z = vec4f(0.0);
    let v0 = select(z, t[0], ok.x);
    let v1 = select(z, t[1], ok.y);
    let v2 = select(z, t[2], ok.z);
    let v3 = select(z, t[3], ok.w);
    // summed in pixel order, as one channel at a time would be
    let mean = (((v0 + v1) + v2) + v3) / max(n_mine, 1.0);
    let d0 = select(z, v0 - mean, ok.x);
    let d1 = select(z, v1 - mean, ok.y);
    let d2 = select(z, v2 - mean, ok.z);
    let d3 = select(z, v3 - mean, ok.w);
    let m2 = ((d0 * d0 + d1 * d1) + d2 * d2) + d3 * d3;
    // round 1: lanes tx >= 8 hand their (mean, M2) to lane tx - 8 (8 x 16 rows x 2 vec4 = 256)
    if (tx >= 8u) {
        let at = (ty * 8u + tx - 8u) * 2u;
        xb[at] = mean;
        xb[at + 1u] = m2;
    }
    workgroupBarrier();
    // each lane tx < 8 overwrites the slot only it reads: no barrier between
    if (tx < 8u) {
        let at = (ty * 8u + tx) * 2u;
        let nb = held(left, tx * 4u + 32u);
        let merged = chan(n_mine, mean, m2, nb, xb[at], xb[at + 1u]);
        xb[at] = merged[0];
        xb[at + 1u] = merged[1];
    }
    workgroupBarrier();
    // round 2: one lane per channel merges the 8 lanes of its row in pixel order
    if (lid < nrows && left > 0u) {
        let row = lid / 4u;
        let comp = lid % 4u;
        var cn = 0.0;
        var cm = 0.0;
        var c2 = 0.0;
        for (var l = 0u; l < 8u; l++) {
            let at = (row * 8u + l) * 2u;
            let na = held(left, l * 4u) + held(left, l * 4u + 32u);
            let nn = max(cn + na, 1.0);
            let d = xb[at][comp] - cm;
            cm += d * (na / nn);
            c2 += xb[at + 1u][comp] + d * d * (cn * na / nn);
            cn += na;
        }
        let out = (block * p.cout + oc0 + lid) * 2u;
        partials[out] = cm;
        partials[out + 1u] = c2;
    }
}

// How many of the 4 pixels from `first` (relative to the block) are among its `left` valid ones.
fn held(left: u32, first: u32) -> f32 {
    return f32(min(4u, max(left, first) - first));
}

// Chan's merge of (na, mean a, M2 a) and (nb, mean b, M2 b), per component.
fn chan(na: f32, ma: vec4f, m2a: vec4f, nb: f32, mb: vec4f, m2b: vec4f) -> array<vec4f, 2> {
    let nn = max(na + nb, 1.0);
    let d = mb - ma;
    return array<vec4f, 2>(ma + d * (nb / nn), m2a + m2b + d * d * (na * nb / nn));
}
