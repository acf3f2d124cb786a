// conv2d forward for GPUs (the gpu kernel family), the large-tile implicit GEMM:
//   Y_g (Cout/g, N*OH*OW) = W_g (Cout/g, K) x im2col(X)_g (K, N*OH*OW),  K = Cin/g*KH*KW.
// A workgroup of 256 invocations owns a BM x 128 block of Y_g: BM (128, or 64 for groups of 64
// channels or fewer) output channels of one group (grid z) by 128 output pixels (grid x/y).
//
// Compute: 8 subgroups of 32 as 2 (channels) x 4 (pixels), each over a (BM / 2) x 32 part of
// the block; a lane of one holds 8 channels x 8 pixels (BM = 128; 4 x 8 for BM = 64) as two
// quads of 4 channels, 32 apart (lo, hi), by two quads of 4 consecutive pixels, 16 apart (l, r):
// 16 vec4 accumulators named c<channel><quad>, every one indexed by constants only (a private
// array indexed by a loop variable goes to local memory on NVIDIA). Per step of K a lane reads
// one vec4 of weights per channel quad and one vec4 of pixels per pixel quad from workgroup
// memory (the 8 lanes sharing a pixel quad read 8 different weight vec4s of one 128-byte run,
// the 4 sharing a channel quad 4 consecutive pixel vec4s: one conflict-free pass each) and
// does 64 multiply-adds. The 16 steps of a chunk are written out (`mac` called with constant
// rows): no loop counter, nothing for a driver to unroll.
//
// K runs in chunks of BK = 16, double-buffered: while the lanes multiply chunk c out of one
// stage of workgroup memory they hold chunk c+1 in registers (ra*, rb*: named, not an array),
// loaded from global memory, and store it into the other stage before the one barrier per
// chunk. Global loads are coalesced: weights with 8 consecutive lanes along K (4 rows of 32 B
// per subgroup), the im2col rows with consecutive lanes along the output pixels (each lane
// decodes its pixel once; the K index into channel and tap divides by the override constants
// KH*KW and KW). The weight stage is K-major, [k][channel], each row's vec4s swizzled (vec4 v
// of row k at v ^ (k % 8)) so that the 8 K rows x 4 channels a subgroup stores land in 32
// different banks while a read of 8 consecutive vec4s stays one pass (padding the rows by 4
// floats would do the same, but 2 stages of 128 x 16 weights and 16 x 128 pixels fill 32 KiB,
// the limit of lavapipe and Apple GPUs); the pixel stage is [k][pixel]: a subgroup stores 32
// consecutive pixels of one row.
//
// Epilogue (bias, residual, activation) from conv2d_epilogue.wgsl, bounds-checked per row and
// pixel, each pixel's (image, offset) decoded once for its 8 channels; the geometry overrides
// from conv2d_geometry.wgsl. With STATS, also the (mean, M2) of each channel over the block's
// 128 pixels (a statistics sub-block; `kernels::conv` condenses each 2 into a STATS_BLOCK
// block): each lane's over its 8 pixels per channel in vec4 math on the values it stored, then
// the 16 lanes of a channel merged with Chan's formula through the pixel stage.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override BM: u32 = 128u;            // output channels per workgroup: 128 or 64
const BN: u32 = 128u;               // output pixels per workgroup
const BK: u32 = 16u;                // K per chunk
override A_GROUPS: u32 = BM / 32u;  // groups of 32 channels in the weight stage
override STATS: bool = false;

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

// The stages, K row k = kh * 8 + ke, as nested arrays whose indices are either constants (the
// row a step reads, the rows a lane stores) or the same all along the K loop (a lane's
// position), so the index clamps of wgpu's checked modules are few and the constant parts of
// every address fold into the instruction.
// weights: [channel group of 32][stage][kh][ke][channel quad ^ ke][channel % 4]
var<workgroup> wa: array<array<array<array<array<vec4f, 8>, 8>, 2>, 2>, A_GROUPS>;
// im2col: [stage][kh][ke][pixel / 16][pixel quad % 4][pixel % 4]
var<workgroup> xb: array<array<array<array<array<vec4f, 4>, 8>, 8>, 2>, 2>;

// The accumulators: c<i><l|r>: channel i of the lane's 8 (0-3: lo quad, 4-7: hi quad) at the
// 4 pixels of its left or right pixel quad.
var<private> c0l: vec4f; var<private> c0r: vec4f;
var<private> c1l: vec4f; var<private> c1r: vec4f;
var<private> c2l: vec4f; var<private> c2r: vec4f;
var<private> c3l: vec4f; var<private> c3r: vec4f;
var<private> c4l: vec4f; var<private> c4r: vec4f;
var<private> c5l: vec4f; var<private> c5r: vec4f;
var<private> c6l: vec4f; var<private> c6r: vec4f;
var<private> c7l: vec4f; var<private> c7r: vec4f;

// The next chunk in registers: weights ra<h*4+j> (K row wk + 8h, channel wrow + 32j) and
// im2col values rb<e> (K row xk * 8 + e of this lane's pixel).
var<private> ra0: f32; var<private> ra1: f32; var<private> ra2: f32; var<private> ra3: f32;
var<private> ra4: f32; var<private> ra5: f32; var<private> ra6: f32; var<private> ra7: f32;
var<private> rb0: f32; var<private> rb1: f32; var<private> rb2: f32; var<private> rb3: f32;
var<private> rb4: f32; var<private> rb5: f32; var<private> rb6: f32; var<private> rb7: f32;

// Per-lane constants of the loaders and the epilogue, set once in `main`.
var<private> kdim: u32;      // K of a group
var<private> nrows: u32;     // channels of this block inside its group
var<private> oc0: u32;       // first output channel of the block
var<private> wrow: u32;      // weight loader: first channel (of 4, 32 apart)
var<private> wk: u32;        // weight loader: K row in the chunk (and + 8)
var<private> wbase: u32;     // weight loader: wt offset of channel oc0 + wrow
var<private> xcol: u32;      // im2col loader: pixel in the block
var<private> xk: u32;        // im2col loader: which 8 K rows of the chunk (0: 0-7, 1: 8-15)
var<private> q_ok: bool;     // im2col loader: the pixel is inside the output
var<private> iy0: i32;       // im2col loader: the pixel's window origin
var<private> ix0: i32;
var<private> xbase: u32;     // im2col loader: x offset of the pixel's image and group
var<private> plane: u32;     // OH * OW
var<private> a_grp: u32;     // compute: the channel group of 32 of the lane's lo quad
var<private> a_quad: u32;    // compute: its channel quad in the group (before the swizzle)
var<private> b_c16: u32;     // compute: the run of 16 pixels of the lane's left quad
var<private> b_quad: u32;    // compute: its pixel quad in the run

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + BM - 1u) / BM;
    let g = wid.z / blocks_g;
    oc0 = g * cout_g + (wid.z % blocks_g) * BM;
    nrows = min(BM, (g + 1u) * cout_g - oc0);
    kdim = cin_g * KH * KW;
    plane = p.oh * p.ow;
    let total = p.n * plane;
    let p0 = (wid.x + wid.y * nwg.x) * BN;

    // the weight loader: channels wrow + 32j (j < BM / 32), K rows wk and wk + 8
    wrow = lid / 8u;
    wk = lid % 8u;
    wbase = (oc0 + wrow) * kdim;
    // the im2col loader: pixel xcol, K rows xk * 8 + e (e < 8)
    xcol = lid % BN;
    xk = lid / BN;
    let q = p0 + xcol;
    q_ok = q < total;
    let qq = min(q, total - 1u);
    let img = qq / plane;
    let r = qq - img * plane;
    let oy = r / p.ow;
    iy0 = i32(oy * SH) - i32(PH);
    ix0 = i32((r - oy * p.ow) * SW) - i32(PW);
    xbase = (img * p.cin + g * cin_g) * p.h * p.w;

    // the compute role: subgroup (lid / 32) at channel half lid / 128 and pixel quarter
    // (lid / 32) % 4; lane (lid % 32) at channel quad (lid % 32) / 4, pixel quad lid % 4
    let lane = lid % 32u;
    let sub = lid / 32u;
    a_grp = (sub / 4u) * (BM / 64u);
    a_quad = lane / 4u;
    b_c16 = (sub % 4u) * 2u;
    b_quad = lane % 4u;

    // from the uniform p, not the private kdim: the K loop holds barriers, and a browser's
    // uniformity analysis takes a module-scope private as possibly non-uniform
    let chunks = (cin_g * KH * KW + BK - 1u) / BK;
    load_chunk(0u);
    store_stage(0u);
    workgroupBarrier();
    for (var c = 0u; c < chunks; c++) {
        let s = c & 1u;
        let more = c + 1u < chunks;
        if (more) {
            load_chunk((c + 1u) * BK);
        }
        mac(s, 0u, 0u);
        mac(s, 0u, 1u);
        mac(s, 0u, 2u);
        mac(s, 0u, 3u);
        mac(s, 0u, 4u);
        mac(s, 0u, 5u);
        mac(s, 0u, 6u);
        mac(s, 0u, 7u);
        mac(s, 1u, 0u);
        mac(s, 1u, 1u);
        mac(s, 1u, 2u);
        mac(s, 1u, 3u);
        mac(s, 1u, 4u);
        mac(s, 1u, 5u);
        mac(s, 1u, 6u);
        mac(s, 1u, 7u);
        if (more) {
            store_stage(1u - s);
        }
        workgroupBarrier();
    }

    // epilogue: channels m0 .. m0+3 (and m0+32 .. m0+35 for BM = 128), pixels col .. col+3 and
    // col+16 .. col+19
    let m0 = (sub / 4u) * (BM / 2u) + (lane / 4u) * 4u;
    let col = p0 + (sub % 4u) * 32u + (lane % 4u) * 4u;
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
    if (STATS) {
        write_stats(lid, max(total, p0) - p0, p0 / BN, nl, nr);
    }
}

// One step of K, row kh * 8 + ke of stage s: the lane's weight quads (lo, and hi 32 channels
// on) times its pixel quads (l, and r 16 pixels on), into the accumulators.
fn mac(s: u32, kh: u32, ke: u32) {
    let al = wa[a_grp][s][kh][ke][a_quad ^ ke];
    let bl = xb[s][kh][ke][b_c16][b_quad];
    let br = xb[s][kh][ke][b_c16 + 1u][b_quad];
    c0l += al.x * bl;
    c0r += al.x * br;
    c1l += al.y * bl;
    c1r += al.y * br;
    c2l += al.z * bl;
    c2r += al.z * br;
    c3l += al.w * bl;
    c3r += al.w * br;
    if (BM == 128u) {
        let ah = wa[a_grp + 1u][s][kh][ke][a_quad ^ ke];
        c4l += ah.x * bl;
        c4r += ah.x * br;
        c5l += ah.y * bl;
        c5r += ah.y * br;
        c6l += ah.z * bl;
        c6r += ah.z * br;
        c7l += ah.w * bl;
        c7r += ah.w * br;
    }
}

// The chunk at K offset k0 into the registers ra*, rb*.
fn load_chunk(k0: u32) {
    let ka = k0 + wk;
    let kb = ka + 8u;
    ra0 = load_weight(ka, 0u);
    ra1 = load_weight(ka, 1u);
    ra4 = load_weight(kb, 0u);
    ra5 = load_weight(kb, 1u);
    if (BM == 128u) {
        ra2 = load_weight(ka, 2u);
        ra3 = load_weight(ka, 3u);
        ra6 = load_weight(kb, 2u);
        ra7 = load_weight(kb, 3u);
    }
    let k = k0 + xk * 8u;
    rb0 = load_pixel(k);
    rb1 = load_pixel(k + 1u);
    rb2 = load_pixel(k + 2u);
    rb3 = load_pixel(k + 3u);
    rb4 = load_pixel(k + 4u);
    rb5 = load_pixel(k + 5u);
    rb6 = load_pixel(k + 6u);
    rb7 = load_pixel(k + 7u);
}

// The weight of channel wrow + 32j of the block at K row k; zero past the group's channels or K.
fn load_weight(k: u32, j: u32) -> f32 {
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
    let inside = q_ok && k < kdim && u32(iy) < p.h && u32(ix) < p.w;
    let at = xbase + ic * p.h * p.w + u32(iy) * p.w + u32(ix);
    return select(0.0, f32(x[select(0u, at, inside)]), inside);
}

// This lane's share of the chunk in registers into stage `s`.
fn store_stage(s: u32) {
    // weights: K rows wk, wk + 8 x channels wrow + 32j (group j), swizzled by wk
    let v = (wrow / 4u) ^ wk;
    let c = wrow % 4u;
    wa[0][s][0][wk][v][c] = ra0;
    wa[1][s][0][wk][v][c] = ra1;
    wa[0][s][1][wk][v][c] = ra4;
    wa[1][s][1][wk][v][c] = ra5;
    if (BM == 128u) {
        // groups 2 and 3, named from A_GROUPS: a GLSL compiler (wgpu's GL backend) refuses a
        // constant index past the array even in this branch, dead where BM = 64 leaves 2 groups
        wa[A_GROUPS - 2u][s][0][wk][v][c] = ra2;
        wa[A_GROUPS - 1u][s][0][wk][v][c] = ra3;
        wa[A_GROUPS - 2u][s][1][wk][v][c] = ra6;
        wa[A_GROUPS - 1u][s][1][wk][v][c] = ra7;
    }
    // im2col: K rows xk * 8 + e at pixel xcol
    let p16 = xcol / 16u;
    let pq = (xcol / 4u) % 4u;
    let pc = xcol % 4u;
    xb[s][xk][0][p16][pq][pc] = rb0;
    xb[s][xk][1][p16][pq][pc] = rb1;
    xb[s][xk][2][p16][pq][pc] = rb2;
    xb[s][xk][3][p16][pq][pc] = rb3;
    xb[s][xk][4][p16][pq][pc] = rb4;
    xb[s][xk][5][p16][pq][pc] = rb5;
    xb[s][xk][6][p16][pq][pc] = rb6;
    xb[s][xk][7][p16][pq][pc] = rb7;
}

// The y offsets (channel 0) of the 4 output pixels from `q`: (image * Cout) * OH*OW + pixel
// offset; decoded once for all 8 channels of the lane (past the output: unused).
fn pixel_offsets(q: u32) -> vec4u {
    return vec4u(pixel_offset(q), pixel_offset(q + 1u), pixel_offset(q + 2u), pixel_offset(q + 3u));
}

fn pixel_offset(q: u32) -> u32 {
    let img = q / plane;
    return img * p.cout * plane + (q - img * plane);
}

// Channel m of the block at the 4 pixels of `at`, of which the first `n` are inside the output;
// returns the values stored (before rounding to T), 0 where none is.
fn store_row(v: vec4f, m: u32, at: vec4u, n: u32) -> vec4f {
    var o = vec4f(0.0);
    if (m >= nrows) {
        return o;
    }
    let oc = oc0 + m;
    let off = oc * plane;
    if (n > 0u) {
        o.x = store_output(v.x, oc, at.x + off);
    }
    if (n > 1u) {
        o.y = store_output(v.y, oc, at.y + off);
    }
    if (n > 2u) {
        o.z = store_output(v.z, oc, at.z + off);
    }
    if (n > 3u) {
        o.w = store_output(v.w, oc, at.w + off);
    }
    return o;
}

// The block statistics. Each lane takes the (mean, M2) of its 8 channels over its valid pixels
// (nl of its left quad, nr of its right), 4 channels per vec4, and leaves them in the pixel
// stage (free after the K loop's last barrier); then one lane per channel merges the 16 lanes
// that hold it (4 lanes of each of 4 subgroups) with Chan's formula and writes the block's
// (mean, M2). `left`: valid pixels of the block from its first.
fn write_stats(lid: u32, left: u32, block: u32, nl: u32, nr: u32) {
    let ml = select(vec4f(0.0), vec4f(1.0), vec4u(nl) > vec4u(0u, 1u, 2u, 3u));
    let mr = select(vec4f(0.0), vec4f(1.0), vec4u(nr) > vec4u(0u, 1u, 2u, 3u));
    let inv = 1.0 / f32(max(nl + nr, 1u));
    let s0 = lane_stats(c0l, c0r, ml, mr, inv);
    let s1 = lane_stats(c1l, c1r, ml, mr, inv);
    let s2 = lane_stats(c2l, c2r, ml, mr, inv);
    let s3 = lane_stats(c3l, c3r, ml, mr, inv);
    let s4 = lane_stats(c4l, c4r, ml, mr, inv);
    let s5 = lane_stats(c5l, c5r, ml, mr, inv);
    let s6 = lane_stats(c6l, c6r, ml, mr, inv);
    let s7 = lane_stats(c7l, c7r, ml, mr, inv);
    // lane lid's 4 vec4s: mean and M2 of its lo channels, then of its hi ones
    let a = lid / 128u;
    let b = (lid / 64u) % 2u;
    let c = (lid / 8u) % 8u;
    let d = lid % 8u;
    xb[a][b][c][d][0] = vec4f(s0.x, s1.x, s2.x, s3.x);
    xb[a][b][c][d][1] = vec4f(s0.y, s1.y, s2.y, s3.y);
    xb[a][b][c][d][2] = vec4f(s4.x, s5.x, s6.x, s7.x);
    xb[a][b][c][d][3] = vec4f(s4.y, s5.y, s6.y, s7.y);
    workgroupBarrier();
    if (lid >= nrows || left == 0u) {
        return;
    }
    // channel lid: channel half wm, then (hi, quad, component) as the compute role lays it out
    let wm = lid / (BM / 2u);
    let in_half = lid % (BM / 2u);
    let hi = in_half / 32u;
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
        let a = src / 128u;
        let b = (src / 64u) % 2u;
        let c = (src / 8u) % 8u;
        let d = src % 8u;
        let nn = max(cn + na, 1.0);
        let dm = xb[a][b][c][d][hi * 2u][comp] - cm;
        cm += dm * (na / nn);
        c2 += xb[a][b][c][d][hi * 2u + 1u][comp] + dm * dm * (cn * na / nn);
        cn += na;
    }
    let out = (block * p.cout + oc0 + lid) * 2u;
    partials[out] = cm;
    partials[out + 1u] = c2;
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
