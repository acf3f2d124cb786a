// conv2d forward for GPUs (the gpu kernel family), the large-tile implicit GEMM:
//   Y_g (Cout/g, N*OH*OW) = W_g (Cout/g, K) x im2col(X)_g (K, N*OH*OW),  K = Cin/g*KH*KW.
// A workgroup of 256 invocations owns a BM x 128 block of Y_g: BM (128, or 64 for groups of 64
// channels or fewer) output channels of one group (grid z) by 128 output pixels (grid x/y).
//
// The tile, the compute and the double-buffered K loop are conv2d_mm_core's (the prelude before
// this file). The weight loader reads 8 consecutive lanes along K (4 rows of 32 B per subgroup),
// the im2col loader consecutive lanes along the output pixels (each lane decodes its pixel once;
// the K index into channel and tap divides by the override constants KH*KW and KW).
//
// Epilogue (bias, residual, activation) from conv2d_epilogue.wgsl, bounds-checked per row and
// pixel, each pixel's (image, offset) decoded once for its 8 channels, a lane's 4 pixels stored
// (and their residual read) as one vec4 where the plane's size is a multiple of 4 (VEC4); the geometry overrides
// from conv2d_geometry.wgsl. With STATS, also the (mean, M2) of each channel over the block's
// 128 pixels (a statistics sub-block; `kernels::conv` condenses each 2 into a STATS_BLOCK
// block): each lane's over its 8 pixels per channel in vec4 math on the values it stored, then
// the 16 lanes of a channel merged with Chan's formula through the pixel stage.
//
// Split-K (SPLIT_K, where the grid would leave a GPU's compute units idle): grid z holds the K
// slices too (slice = z / channel blocks), each slice runs p.kc chunks of K from its first and
// stores its raw sums, in vec4s where VEC4, into its slice of `split` (slices, N, Cout, OH, OW);
// conv2d_split_k_epilogue adds the slices and applies the epilogue and the statistics.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override STATS: bool = false;
// OH * OW % 4 == 0: a lane's 4 pixels (from a multiple of 4) lie in one plane, one vec4 of y
override VEC4: bool = false;
// The aligned variants, without the loaders' checks: FULL_TILES where the group's channels, K
// and the pixels are whole multiples of the tile (BM, 16, 128), UNPADDED where every tap of
// every output pixel lies inside the image (no padding, and no output past the taps' reach).
override FULL_TILES: bool = false;
override UNPADDED: bool = false;
override SPLIT_K: bool = false;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    kc: u32,  // chunks of BK per K slice (SPLIT_K; unread otherwise)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;           // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
// bindings 3 .. 5 (bias, residual, y): conv2d_epilogue
// (blocks of BN pixels, Cout, 2): each block's channel mean and M2; unwritten without STATS
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;
// SPLIT_K: the slices' raw sums (slices, N, Cout, OH, OW), as floats and as vec4s (naga takes
// one type per binding); unwritten otherwise
@group(0) @binding(9) var<storage, read_write> split: array<f32>;
@group(0) @binding(10) var<storage, read_write> split4: array<vec4f>;

// Per-lane constants of the loaders and the epilogue, set once in `main`.
var<private> kdim: u32;      // K of a group
var<private> nrows: u32;     // channels of this block inside its group
var<private> oc0: u32;       // first output channel of the block
var<private> wbase: u32;     // weight loader: wt offset of channel oc0 + wrow
var<private> q_ok: bool;     // im2col loader: the pixel is inside the output
var<private> iy0: i32;       // im2col loader: the pixel's window origin
var<private> ix0: i32;
var<private> xbase: u32;     // im2col loader: x offset of the pixel's image and group
var<private> plane: u32;     // OH * OW
var<private> slice_at: u32;  // SPLIT_K: the offset of this workgroup's slice in `split`

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + BM - 1u) / BM;
    kdim = cin_g * KH * KW;
    plane = p.oh * p.ow;
    let total = p.n * plane;
    // the K slice (SPLIT_K) and the channel block: uniform, from the workgroup and the Params
    var chunks = (cin_g * KH * KW + BK - 1u) / BK;
    var first = 0u;
    var z = wid.z;
    if (SPLIT_K) {
        let slice = wid.z / (p.groups * blocks_g);
        z = wid.z - slice * (p.groups * blocks_g);
        first = slice * p.kc;
        chunks = min(p.kc, chunks - min(chunks, first));
        slice_at = slice * p.n * p.cout * plane;
    }
    let g = z / blocks_g;
    oc0 = g * cout_g + (z % blocks_g) * BM;
    nrows = min(BM, (g + 1u) * cout_g - oc0);
    let p0 = (wid.x + wid.y * nwg.x) * BN;

    mm_roles(lid);
    // the weight loader's channel row in wt, the im2col loader's pixel
    wbase = (oc0 + wrow) * kdim;
    let q = p0 + xcol;
    q_ok = q < total;
    let qq = min(q, total - 1u);
    let img = qq / plane;
    let r = qq - img * plane;
    let oy = r / p.ow;
    iy0 = i32(oy * SH) - i32(PH);
    ix0 = i32((r - oy * p.ow) * SW) - i32(PW);
    xbase = (img * p.cin + g * cin_g) * p.h * p.w;

    mm_k_loop(first * BK, chunks, lid);

    // epilogue: channels m0 .. m0+3 (and m0+32 .. m0+35 for BM = 128), pixels col .. col+3 and
    // col+16 .. col+19
    let m0 = mm_lane_channel();
    let col = mm_lane_pixel(p0);
    let atl = pixel_offsets(col);
    let atr = pixel_offsets(col + 16u);
    let nl = min(total, col + 4u) - min(total, col);
    let nr = min(total, col + 20u) - min(total, col + 16u);
    // each accumulator becomes the values stored (for the statistics; 0 outside the output)
    c0l = store_row(c0l, m0, atl, nl);
    c0r = store_row(c0r, m0, atr, nr);
    c1l = store_row(c1l, m0 + 1u, atl, nl);
    c1r = store_row(c1r, m0 + 1u, atr, nr);
    c2l = store_row(c2l, m0 + 2u, atl, nl);
    c2r = store_row(c2r, m0 + 2u, atr, nr);
    c3l = store_row(c3l, m0 + 3u, atl, nl);
    c3r = store_row(c3r, m0 + 3u, atr, nr);
    if (BM == 128u) {
        let m4 = m0 + 32u;
        c4l = store_row(c4l, m4, atl, nl);
        c4r = store_row(c4r, m4, atr, nr);
        c5l = store_row(c5l, m4 + 1u, atl, nl);
        c5r = store_row(c5r, m4 + 1u, atr, nr);
        c6l = store_row(c6l, m4 + 2u, atl, nl);
        c6r = store_row(c6r, m4 + 2u, atr, nr);
        c7l = store_row(c7l, m4 + 3u, atl, nl);
        c7r = store_row(c7r, m4 + 3u, atr, nr);
    }
    if (STATS && !SPLIT_K) {
        write_stats(lid, max(total, p0) - p0, p0 / BN, nl, nr);
    }
}

// The weight of channel wrow + 32j of the block at K row k; zero past the group's channels or K.
fn load_weight(k: u32, j: u32) -> f32 {
    if (FULL_TILES) {
        return wt[wbase + 32u * j * kdim + k];
    }
    let ok = wrow + 32u * j < nrows && k < kdim;
    return select(0.0, wt[select(0u, wbase + 32u * j * kdim + k, ok)], ok);
}

// The im2col value of K row k at this lane's pixel: x at (channel, tap) k, zero in the padding
// or past K. The divisions are by override constants: a multiply and a shift once specialised.
fn load_pixel(k: u32) -> f32 {
    let ic = k / (KH * KW);
    let t = k - ic * (KH * KW);
    let ky = t / KW;
    let kx = t - ky * KW;
    let iy = iy0 + i32(ky * DH);
    let ix = ix0 + i32(kx * DW);
    let at = xbase + ic * p.h * p.w + u32(iy) * p.w + u32(ix);
    if (FULL_TILES && UNPADDED) {
        return f32(x[at]);
    }
    let inside = (FULL_TILES || (q_ok && k < kdim)) && (UNPADDED || (u32(iy) < p.h && u32(ix) < p.w));
    return select(0.0, f32(x[select(0u, at, inside)]), inside);
}

// The y offsets (channel 0) of the 4 output pixels from `q`: (image * Cout) * OH*OW + pixel
// offset; decoded once for all 8 channels of the lane (past the output: unused).
fn pixel_offsets(q: u32) -> vec4u {
    if (VEC4) {
        // q a multiple of 4 in a plane of a multiple of 4: the 4 pixels are consecutive in y
        return vec4u(pixel_offset(q)) + vec4u(0u, 1u, 2u, 3u);
    }
    return vec4u(pixel_offset(q), pixel_offset(q + 1u), pixel_offset(q + 2u), pixel_offset(q + 3u));
}

fn pixel_offset(q: u32) -> u32 {
    let img = q / plane;
    return img * p.cout * plane + (q - img * plane);
}

// Channel m of the block at the 4 pixels of `at`, of which the first `n` are inside the output;
// returns the values stored (before rounding to T), 0 where none is.
fn store_row(v: vec4f, m: u32, at: vec4u, n: u32) -> vec4f {
    if (m >= nrows) {
        return vec4f(0.0);
    }
    let oc = oc0 + m;
    let off = oc * plane;
    if (SPLIT_K) {
        store_split(v, at + vec4u(off + slice_at), n);
        return v;
    }
    if (VEC4 && n == 4u) {
        // 4 pixels from a multiple of 4 of a plane whose size is one: one aligned vec4 of y
        return store_output4(v, oc, at.x + off);
    }
    return store_output_quad(v, oc, at + vec4u(off), vec4u(0u, 1u, 2u, 3u) < vec4u(n));
}

// SPLIT_K: the raw sums `v` of the first `n` of 4 pixels at `at` in this slice, one vec4 where
// they are 4 consecutive from a multiple of 4 (VEC4: OH*OW and so each slice a multiple of 4).
fn store_split(v: vec4f, at: vec4u, n: u32) {
    if (VEC4 && n == 4u) {
        split4[at.x / 4u] = v;
        return;
    }
    if (n > 0u) {
        split[at.x] = v.x;
    }
    if (n > 1u) {
        split[at.y] = v.y;
    }
    if (n > 2u) {
        split[at.z] = v.z;
    }
    if (n > 3u) {
        split[at.w] = v.w;
    }
}

// The block statistics. Each lane takes the (mean, M2) of its 8 channels over its valid pixels
// (nl of its left quad, nr of its right), 4 channels per vec4; then, for its lo channels and
// then its hi ones, it leaves them with the compute form (`stats_put`: workgroup memory free
// after the K loop) and one lane per channel merges the 16 lanes that hold it (4 lanes of each
// of 4 subgroups) with Chan's formula and writes the block's (mean, M2). `left`: valid pixels of
// the block from its first.
fn write_stats(lid: u32, left: u32, block: u32, nl: u32, nr: u32) {
    let ml = select(vec4f(0.0), vec4f(1.0), vec4u(nl) > vec4u(0u, 1u, 2u, 3u));
    let mr = select(vec4f(0.0), vec4f(1.0), vec4u(nr) > vec4u(0u, 1u, 2u, 3u));
    let inv = 1.0 / f32(max(nl + nr, 1u));
    let s0 = lane_stats(c0l, c0r, ml, mr, inv);
    let s1 = lane_stats(c1l, c1r, ml, mr, inv);
    let s2 = lane_stats(c2l, c2r, ml, mr, inv);
    let s3 = lane_stats(c3l, c3r, ml, mr, inv);
    merge_stats(lid, left, block, 0u, vec4f(s0.x, s1.x, s2.x, s3.x), vec4f(s0.y, s1.y, s2.y, s3.y));
    if (BM == 128u) {
        // the lo channels' readers are done
        workgroupBarrier();
        let s4 = lane_stats(c4l, c4r, ml, mr, inv);
        let s5 = lane_stats(c5l, c5r, ml, mr, inv);
        let s6 = lane_stats(c6l, c6r, ml, mr, inv);
        let s7 = lane_stats(c7l, c7r, ml, mr, inv);
        merge_stats(lid, left, block, 1u, vec4f(s4.x, s5.x, s6.x, s7.x), vec4f(s4.y, s5.y, s6.y, s7.y));
    }
}

// One half of `write_stats`: the lanes' (mean, M2) of their lo (hi = 0) or hi (hi = 1)
// channels, 4 per vec4, merged per channel. Called by the whole workgroup after a barrier (the
// K loop's last, or the one after the lo half's readers).
fn merge_stats(lid: u32, left: u32, block: u32, hi: u32, mean: vec4f, m2: vec4f) {
    stats_put(lid, 0u, mean);
    stats_put(lid, 1u, m2);
    workgroupBarrier();
    // channel lid: channel half wm, then (hi, quad, component) as the compute role lays it out
    let wm = lid / (BM / 2u);
    let in_half = lid % (BM / 2u);
    if (lid < nrows && left > 0u && in_half / 32u == hi) {
        let quad = (in_half % 32u) / 4u;
        let comp = in_half % 4u;
        var cn = 0.0;
        var cm = 0.0;
        var c2 = 0.0;
        for (var k = 0u; k < 16u; k++) {
            // lane (subgroup wm * 4 + k / 4, lane quad * 4 + k % 4): pixels 32 (k / 4) + 4 (k % 4)
            // and 16 on
            let src = (wm * 4u + k / 4u) * 32u + quad * 4u + k % 4u;
            let first = (k / 4u) * 32u + (k % 4u) * 4u;
            let na = held(left, first) + held(left, first + 16u);
            let nn = max(cn + na, 1.0);
            let dm = stats_get(src, 0u)[comp] - cm;
            cm += dm * (na / nn);
            c2 += stats_get(src, 1u)[comp] + dm * dm * (cn * na / nn);
            cn += na;
        }
        let out = (block * p.cout + oc0 + lid) * 2u;
        partials[out] = cm;
        partials[out + 1u] = c2;
    }
}

// (mean, M2) of one channel of a lane over the valid pixels (masks ml, mr) of its two quads.
fn lane_stats(vl: vec4f, vr: vec4f, ml: vec4f, mr: vec4f, inv: f32) -> vec2f {
    let mean = (dot(vl, ml) + dot(vr, mr)) * inv;
    let dl = (vl - mean) * ml;
    let dr = (vr - mean) * mr;
    return vec2f(mean, dot(dl, dl) + dot(dr, dr));
}

// How many of the 4 pixels from `first` (relative to the block) are among its `left` valid ones.
fn held(left: u32, first: u32) -> f32 {
    return f32(min(4u, max(left, first) - first));
}
