// The loaders and the lanes' roles of the gpu family's large-tile implicit GEMMs whose K runs
// over input channels x taps (conv2d_fwd_mm, conv2d_bwd_data_mm), shared by their two compute
// forms: conv2d_mm_core (f32 multiply-adds, the prelude after this one) and conv2d_mm_coop
// (cooperative matrices, which a variant puts in its place). A workgroup of 256 invocations
// computes a BM x 128 block C += A (BM x K) x B (K x 128): A the weights (BM channels by K), B the
// im2col columns (K by 128 pixels). The kernel defines `load_weight(k, j)` (A at K row k, channel
// wrow + 32j of the block) and `load_pixel(k)` (B at K row k, pixel xcol of the block), sets the
// roles with `mm_roles(lid)` and runs `mm_k_loop` (below, over the compute form's steps); the results are then in
// the accumulators of conv2d_mm_acc, a lane's 8 channels x 8 pixels (4 x 8 for BM = 64) at
// `mm_lane_channel()` and `mm_lane_pixel(p0)`.
//
// K runs in chunks of BK = 16: while the lanes multiply chunk c out of workgroup memory they hold
// chunk c+1 in registers (ra*, rb*: named, not an array), loaded from global memory, which the
// compute form's `store_stage` writes into its next stage. The loaders: weights with 8
// consecutive lanes along K, the im2col rows with consecutive lanes along the output pixels.

override BM: u32 = 128u;            // output channels per workgroup: 128 or 64
const BN: u32 = 128u;               // output pixels per workgroup
const BK: u32 = 16u;                // K per chunk

// The next chunk in registers: weights ra<h*4+j> (K row wk + 8h, channel wrow + 32j) and
// im2col values rb<e> (K row xk * 8 + e of this lane's pixel).
var<private> ra0: f32; var<private> ra1: f32; var<private> ra2: f32; var<private> ra3: f32;
var<private> ra4: f32; var<private> ra5: f32; var<private> ra6: f32; var<private> ra7: f32;
var<private> rb0: f32; var<private> rb1: f32; var<private> rb2: f32; var<private> rb3: f32;
var<private> rb4: f32; var<private> rb5: f32; var<private> rb6: f32; var<private> rb7: f32;

// The lanes' roles, set once by `mm_roles`.
var<private> wrow: u32;      // weight loader: first channel (of 4, 32 apart)
var<private> wk: u32;        // weight loader: K row in the chunk (and + 8)
var<private> xcol: u32;      // im2col loader: pixel in the block
var<private> xk: u32;        // im2col loader: which 8 K rows of the chunk (0: 0-7, 1: 8-15)
var<private> a_grp: u32;     // compute: the channel group of 32 of the lane's lo quad
var<private> a_quad: u32;    // compute: its channel quad in the group (before the swizzle)
var<private> b_c16: u32;     // compute: the run of 16 pixels of the lane's left quad
var<private> b_quad: u32;    // compute: its pixel quad in the run

// The loaders' and the compute role's positions of invocation `lid`: the weight loader at
// channels wrow + 32j (j < BM / 32), K rows wk and wk + 8; the im2col loader at pixel xcol, K
// rows xk * 8 + e (e < 8); the compute role in subgroup lid / 32 at channel half lid / 128 and
// pixel quarter (lid / 32) % 4, its lane (lid % 32) at channel quad (lid % 32) / 4 and pixel
// quad lid % 4.
fn mm_roles(lid: u32) {
    wrow = lid / 8u;
    wk = lid % 8u;
    xcol = lid % BN;
    xk = lid / BN;
    let lane = lid % 32u;
    let sub = lid / 32u;
    a_grp = (sub / 4u) * (BM / 64u);
    a_quad = lane / 4u;
    b_c16 = (sub % 4u) * 2u;
    b_quad = lane % 4u;
}

// The K loop over `chunks` chunks of BK from K row `k_first`, the results in the accumulators of conv2d_mm_acc: the
// next chunk loaded into registers while the compute form (`tile_begin`, `tile_step`,
// `tile_end`) multiplies the current one out of its stage, stored into the other stage before
// the one barrier per chunk. Called by the whole workgroup with a uniform count (from the
// uniform parameters: a browser's uniformity analysis takes a module-scope private as possibly
// non-uniform).
fn mm_k_loop(k_first: u32, chunks: u32, lid: u32) {
    tile_begin(lid);
    load_chunk(k_first);
    store_stage(0u);
    workgroupBarrier();
    for (var c = 0u; c < chunks; c++) {
        let s = c & 1u;
        let more = c + 1u < chunks;
        if (more) {
            load_chunk(k_first + (c + 1u) * BK);
        }
        tile_step(s);
        if (more) {
            store_stage(1u - s);
        }
        workgroupBarrier();
    }
    tile_end();
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

// The block's first channel m0 of the lane's lo quad (hi: m0 + 32) and its first pixel `col`
// (left quad; right: col + 16) from the block's first pixel p0, for the epilogue.
fn mm_lane_channel() -> u32 {
    return a_grp * 32u + a_quad * 4u;
}

fn mm_lane_pixel(p0: u32) -> u32 {
    return p0 + b_c16 * 16u + b_quad * 4u;
}
