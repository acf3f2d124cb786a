// conv2d weight gradient for GPUs (the gpu kernel family), the large-tile split-K implicit GEMM:
//   dW_g (Cout/g, K) = dY_g (Cout/g, N*OH*OW) x im2col(X)_g^T (N*OH*OW, K),  K = Cin/g*KH*KW.
// A workgroup of 256 invocations owns a BM x 128 block of dW_g: BM (128, or 64 for groups of 64
// channels or fewer) output channels of one group (grid z) by 128 weight columns (grid x), summed
// over one chunk of the output pixels (grid y: the split-K `kernels::conv` sizes to fill the GPU);
// each chunk writes its partial sums to its own slice of `part` (with one chunk, `part` is dw),
// which split_k_reduce adds.
//
// The compute role is conv2d_fwd_mm's, with the output pixels as the reduction: 8 subgroups of
// 32 as 2 (channels) x 4 (columns), a lane holding 8 channels x 8 columns (4 x 8 for BM = 64) in
// the accumulators of conv2d_mm_acc (a prelude); per pixel of a chunk it
// reads one vec4 of dy per channel quad and one vec4 of im2col per column quad from workgroup
// memory and does 64 multiply-adds; the 16 pixels of a chunk written out (`mac` with constant
// rows).
//
// The pixels run in chunks of BK = 16, double-buffered with the next chunk in registers. Both
// operands are loaded by the same lanes: lane (r, cb) = (lid % 16, lid / 16) holds the chunk's
// pixel r and loads dy at 8 (4 for BM = 64) channels and x under 8 weight columns, cb*8 on, at
// that pixel. 16 consecutive lanes take 16 consecutive pixels: 64 contiguous bytes of dy, and of
// x for a stride-1 row. Each lane decodes its 8 columns (channel plane, tap offsets) once, before
// the loop, and steps its pixel's (image, row, column) counters by 16 per chunk with no division.
// The stages and the multiply-adds of each chunk (`tile_step`) are the compute form's:
// conv2d_bwd_weight_mm_core (f32, the prelude before this file) or, in the cooperative-matrix
// variant, conv2d_bwd_weight_mm_coop on conv2d_coop_tile.

override BM: u32 = 128u;            // output channels per workgroup: 128 or 64
const BN: u32 = 128u;               // weight columns per workgroup
const BK: u32 = 16u;                // output pixels per chunk

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    chunk: u32,  // output pixels per split-K chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> x: array<f32>;           // (N, Cin, H, W)
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // (chunks, Cout, K)

// The next chunk in registers: dy at the lane's channels (ra: 0-3, rb: 4-7) and x under its
// columns (xa: 0-3, xb_: 4-7).
var<private> ra: vec4f; var<private> rb: vec4f;
var<private> xa: vec4f; var<private> xc: vec4f;

// The loader's 8 columns, decoded once: each one's channel-plane offset in x (from the group's
// first channel plane) and tap offsets (rows, columns) from a pixel's window origin.
var<private> off_a: vec4u; var<private> off_b: vec4u;
var<private> ty_a: vec4i; var<private> ty_b: vec4i;
var<private> tx_a: vec4i; var<private> tx_b: vec4i;
var<private> cols_ok_a: vec4<bool>; var<private> cols_ok_b: vec4<bool>;

// The loader's pixel: its index, image, row and column, stepped by BK per chunk.
var<private> q: u32;
var<private> q1: u32;        // the chunk's end
var<private> qn: u32;
var<private> qy: u32;
var<private> qx: u32;
var<private> ch_ok: vec4u;   // (valid channels from the lane's first, ...) as a vector compare
var<private> oc0: u32;       // first output channel of the block
var<private> nrows: u32;     // channels of this block inside its group
var<private> lcb: u32;       // the loader's block of 8 columns (and 8, or 4, channels)
var<private> lch: u32;       // the loader's first channel in the block
var<private> gx: u32;        // x offset of the group's first channel plane in an image

// The steps of the pixel counters per chunk: BK = STEP_ROWS rows and STEP_X columns, with the
// rows in (images, rows) with and without a carry out of the columns.
var<private> step_x: u32;
var<private> step_n0: u32; var<private> step_y0: u32;
var<private> step_n1: u32; var<private> step_y1: u32;

// The compute role, as conv2d_fwd_mm's.
var<private> a_grp: u32;     // the channel group of 32 of the lane's lo quad
var<private> a_quad: u32;    // its channel quad in the group (before the swizzle)
var<private> b_grp: u32;     // the column group of 32 of the lane's column quads
var<private> b_quad: u32;    // its left quad in the group (the right one: + 4)

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let kdim = cin_g * KH * KW;
    let blocks_g = (cout_g + BM - 1u) / BM;
    let g = wid.z / blocks_g;
    oc0 = g * cout_g + (wid.z % blocks_g) * BM;
    nrows = min(BM, (g + 1u) * cout_g - oc0);
    let k0 = wid.x * BN;
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let q0 = wid.y * p.chunk;
    q1 = min(q0 + p.chunk, total);

    // the loader: pixel r of each chunk, channels lch .. lch + 7 (lch .. lch + 3 for BM = 64)
    // and columns k0 + cb*8 .. + 7
    let r = lid % BK;
    let cb = lid / BK;
    lcb = cb;
    lch = cb * (BM / 16u);
    ch_ok = vec4u(nrows - min(nrows, lch));
    gx = g * cin_g * p.h * p.w;
    let c0 = k0 + cb * 8u;
    let ka = vec4u(c0) + vec4u(0u, 1u, 2u, 3u);
    let kb = ka + vec4u(4u);
    cols_ok_a = ka < vec4u(kdim);
    cols_ok_b = kb < vec4u(kdim);
    let taps = KH * KW;
    let hw = p.h * p.w;
    off_a = (ka / taps) * hw;
    off_b = (kb / taps) * hw;
    ty_a = vec4i(((ka % taps) / KW) * DH);
    ty_b = vec4i(((kb % taps) / KW) * DH);
    tx_a = vec4i(((ka % taps) % KW) * DW);
    tx_b = vec4i(((kb % taps) % KW) * DW);
    // the pixel: decoded once, then stepped
    q = q0 + r;
    let qq = min(q, total - 1u);
    qn = qq / plane;
    let rem = qq - qn * plane;
    qy = rem / p.ow;
    qx = rem - qy * p.ow;
    step_x = BK % p.ow;
    let rows = BK / p.ow;
    step_n0 = rows / p.oh;
    step_y0 = rows - step_n0 * p.oh;
    step_n1 = (rows + 1u) / p.oh;
    step_y1 = rows + 1u - step_n1 * p.oh;

    // the compute role: subgroup lid / 32 at channel half lid / 128 and column quarter
    // (lid / 32) % 4; lane lid % 32 at channel quad (lid % 32) / 4, column quad lid % 4
    let lane = lid % 32u;
    let sub = lid / 32u;
    a_grp = (sub / 4u) * (BM / 64u);
    a_quad = lane / 4u;
    b_grp = sub % 4u;
    b_quad = lane % 4u;

    // from the uniform p and the workgroup id, not a private: the loop holds barriers, and a
    // browser's uniformity analysis takes a module-scope private as possibly non-uniform
    let chunks = (min(q0 + p.chunk, p.n * p.oh * p.ow) - min(q0, p.n * p.oh * p.ow) + BK - 1u) / BK;
    wgrad_k_loop(chunks, r, lid);

    // epilogue: channels m0 .. m0+3 (and m0+32 .. m0+35 for BM = 128), columns col .. col+3 and
    // col+16 .. col+19
    let m0 = a_grp * 32u + a_quad * 4u;
    let col = k0 + b_grp * 32u + b_quad * 4u;
    let nl = min(kdim, col + 4u) - min(kdim, col);
    let nr = min(kdim, col + 20u) - min(kdim, col + 16u);
    let at = (wid.y * p.cout + oc0 + m0) * kdim + col;
    store_row(c0l, m0, at, nl);
    store_row(c0r, m0, at + 16u, nr);
    store_row(c1l, m0 + 1u, at + kdim, nl);
    store_row(c1r, m0 + 1u, at + kdim + 16u, nr);
    store_row(c2l, m0 + 2u, at + 2u * kdim, nl);
    store_row(c2r, m0 + 2u, at + 2u * kdim + 16u, nr);
    store_row(c3l, m0 + 3u, at + 3u * kdim, nl);
    store_row(c3r, m0 + 3u, at + 3u * kdim + 16u, nr);
    if (BM == 128u) {
        let at4 = at + 32u * kdim;
        store_row(c4l, m0 + 32u, at4, nl);
        store_row(c4r, m0 + 32u, at4 + 16u, nr);
        store_row(c5l, m0 + 33u, at4 + kdim, nl);
        store_row(c5r, m0 + 33u, at4 + kdim + 16u, nr);
        store_row(c6l, m0 + 34u, at4 + 2u * kdim, nl);
        store_row(c6r, m0 + 34u, at4 + 2u * kdim + 16u, nr);
        store_row(c7l, m0 + 35u, at4 + 3u * kdim, nl);
        store_row(c7r, m0 + 35u, at4 + 3u * kdim + 16u, nr);
    }
}

// The loop over `chunks` chunks of BK output pixels, the results in the accumulators of
// conv2d_mm_acc: the next chunk loaded into registers (the loader's pixel row r of each chunk)
// while the compute form (`tile_begin`, `tile_step`, `tile_end`) multiplies the current one out
// of its stage, stored into the other stage before the one barrier per chunk. Called by the
// whole workgroup with a uniform count.
fn wgrad_k_loop(chunks: u32, r: u32, lid: u32) {
    tile_begin(lid);
    load_chunk();
    store_stage(0u, r);
    workgroupBarrier();
    for (var c = 0u; c < chunks; c++) {
        let s = c & 1u;
        let more = c + 1u < chunks;
        if (more) {
            step_pixel();
            load_chunk();
        }
        tile_step(s);
        if (more) {
            store_stage(1u - s, r);
        }
        workgroupBarrier();
    }
    tile_end();
}

// The lane's pixel BK further: columns first, a carry into the rows, rows into images.
fn step_pixel() {
    q += BK;
    qx += step_x;
    let carry = qx >= p.ow;
    qx = select(qx, qx - p.ow, carry);
    qy += select(step_y0, step_y1, carry);
    qn += select(step_n0, step_n1, carry);
    if (qy >= p.oh) {
        qy -= p.oh;
        qn += 1u;
    }
}

// The chunk at the lane's pixel into the registers: dy at its channels, x under its columns
// (zero past the chunk, the group's channels or K, and in the padding).
fn load_chunk() {
    let q_ok = q < q1;
    let plane = p.oh * p.ow;
    let pix = qy * p.ow + qx;
    let d_ok = vec4<bool>(q_ok) & (vec4u(0u, 1u, 2u, 3u) < ch_ok);
    let d0 = (qn * p.cout + oc0 + lch) * plane + pix;
    let d_at = vec4u(d0) + vec4u(0u, 1u, 2u, 3u) * plane;
    let dz = vec4u(0u);
    let da_at = select(dz, d_at, d_ok);
    ra = select(vec4f(0.0), vec4f(dy[da_at.x], dy[da_at.y], dy[da_at.z], dy[da_at.w]), d_ok);
    if (BM == 128u) {
        let e_ok = vec4<bool>(q_ok) & (vec4u(4u, 5u, 6u, 7u) < ch_ok);
        let e_at = select(dz, d_at + vec4u(4u * plane), e_ok);
        rb = select(vec4f(0.0), vec4f(dy[e_at.x], dy[e_at.y], dy[e_at.z], dy[e_at.w]), e_ok);
    }
    let iy0 = i32(qy * SH) - i32(PH);
    let ix0 = i32(qx * SW) - i32(PW);
    let base = qn * p.cin * p.h * p.w + gx;
    xa = load_columns(q_ok, base, iy0, ix0, off_a, ty_a, tx_a, cols_ok_a);
    xc = load_columns(q_ok, base, iy0, ix0, off_b, ty_b, tx_b, cols_ok_b);
}

// x under 4 of the lane's columns at the pixel whose window starts at (iy0, ix0) of the image
// at `base`.
fn load_columns(q_ok: bool, base: u32, iy0: i32, ix0: i32, off: vec4u, ty: vec4i, tx: vec4i,
                ok: vec4<bool>) -> vec4f {
    let iy = vec4i(iy0) + ty;
    let ix = vec4i(ix0) + tx;
    let inside = vec4<bool>(q_ok) & ok & (vec4u(iy) < vec4u(p.h)) & (vec4u(ix) < vec4u(p.w));
    let at = select(vec4u(0u), vec4u(base) + off + vec4u(iy) * p.w + vec4u(ix), inside);
    return select(vec4f(0.0), vec4f(x[at.x], x[at.y], x[at.z], x[at.w]), inside);
}

// Channel m of the block at 4 consecutive columns of `part` from `at`, of which the first `n`
// are inside K.
fn store_row(v: vec4f, m: u32, at: u32, n: u32) {
    if (m >= nrows) {
        return;
    }
    if (n > 0u) {
        part[at] = v.x;
    }
    if (n > 1u) {
        part[at + 1u] = v.y;
    }
    if (n > 2u) {
        part[at + 2u] = v.z;
    }
    if (n > 3u) {
        part[at + 3u] = v.w;
    }
}
