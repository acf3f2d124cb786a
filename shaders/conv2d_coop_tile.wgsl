// The cooperative-matrix compute of the gpu family's large-tile implicit GEMMs (the variants of
// conv2d_fwd_mm, conv2d_bwd_data_mm and conv2d_bwd_weight_mm that `kernels::shaders::
// cooperative_variant` builds): the tile of their f32 form, a BM x 128 block of C += A (BM x K)
// x B (K x 128) per workgroup of 256 invocations, with the products on 16 x 16 x 16 fragments
// of f16 values accumulated in f32 (coop_fragments.wgsl, the prelude before this one, or its
// emulated form). The kernel's compute form (conv2d_mm_coop, conv2d_bwd_weight_mm_coop) stages
// each chunk of BK = 16 K rows as f16 into `sa` ([row][k], rows LDA apart) and `sb` ([k][column],
// rows LDB apart), two stages of each (double-buffered, one barrier per chunk), calls
// `tile_step` per chunk and `tile_end` after the last (`tile_begin` first): the steps the
// kernels' K loops run, as they run the f32 forms'.
//
// Subgroup sub = lid / 32 (the policy runs these kernels where subgroups are 32 wide, and
// invocations lid / 32 form one) owns the part of the block the f32 form's lanes of that
// subgroup hold: rows (sub / 4) * BM / 2 .. + BM / 2, columns (sub % 4) * 32 .. + 32; that is
// BM / 32 x 2 fragments (4 x 2 for BM = 128, 2 x 2 for 64), accumulators f<i><j> (named, not an
// array), 8 (4) products per chunk from BM / 32 A fragments and 2 B fragments. At the end each
// fragment goes through the subgroup's own area of workgroup memory into the accumulators of
// conv2d_mm_acc, laid out as the f32 form leaves them, so the kernels' epilogues (coalesced
// along the pixels, with the batch statistics) are the f32 form's, unchanged.
//
// Rows of every stage are 16-byte aligned, as fragment loads need, and padded off a multiple of
// 128 bytes (A: 48 bytes, B: 272, the result areas 80), so the 8 or 16 rows a fragment load
// reads fall in different banks. Workgroup memory: 2 x 128 x 24 + 2 x 16 x 136 f16 and
// 8 x 16 x 20 f32, 31,232 bytes for BM = 128 (WGSL has no unions: the result areas cannot
// reuse the stages), within the 32 KiB of lavapipe and Apple GPUs.

const LDA: u32 = BK + 8u;            // f16 per row of the A stage
const LDB: u32 = BN + 8u;            // f16 per row of the B stage
const LDC: u32 = 20u;                // f32 per row of a result area
const AREA: u32 = 16u * LDC;         // f32 per subgroup's result area
override A_STAGE: u32 = BM * LDA;    // f16 per stage of A
override SA_LEN: u32 = 2u * BM * LDA;

var<workgroup> sa: array<f16, SA_LEN>;
var<workgroup> sb: array<f16, 4352>;   // 2 x BK x LDB
var<workgroup> sc: array<f32, 2560>;   // 8 x AREA

// The subgroup's fragments of C: row block i (of 16 rows), column block j.
var<private> f00: Acc; var<private> f01: Acc;
var<private> f10: Acc; var<private> f11: Acc;
var<private> f20: Acc; var<private> f21: Acc;
var<private> f30: Acc; var<private> f31: Acc;

var<private> coop_sub: u32;    // the subgroup, lid / 32
var<private> coop_lane: u32;   // the lane in it, lid % 32 (the emulated fragments' layout)

// The accumulators from zero, the roles of invocation `lid`.
fn tile_begin(lid: u32) {
    coop_sub = lid / 32u;
    coop_lane = lid % 32u;
    f00 = acc_zero();
    f01 = acc_zero();
    f10 = acc_zero();
    f11 = acc_zero();
    f20 = acc_zero();
    f21 = acc_zero();
    f30 = acc_zero();
    f31 = acc_zero();
}

// One chunk (BK = 16 K rows) of stage s: the subgroup's fragments += its A rows x its B columns.
// Called by the whole workgroup (the products are subgroup operations).
fn tile_step(s: u32) {
    let a0 = s * A_STAGE + (coop_sub / 4u) * (BM / 2u) * LDA;
    let b0 = s * BK * LDB + (coop_sub % 4u) * 32u;
    let b_0 = frag_b(b0);
    let b_1 = frag_b(b0 + 16u);
    let a_0 = frag_a(a0);
    f00 = mma(a_0, b_0, f00);
    f01 = mma(a_0, b_1, f01);
    let a_1 = frag_a(a0 + 16u * LDA);
    f10 = mma(a_1, b_0, f10);
    f11 = mma(a_1, b_1, f11);
    if (BM == 128u) {
        let a_2 = frag_a(a0 + 32u * LDA);
        f20 = mma(a_2, b_0, f20);
        f21 = mma(a_2, b_1, f21);
        let a_3 = frag_a(a0 + 48u * LDA);
        f30 = mma(a_3, b_0, f30);
        f31 = mma(a_3, b_1, f31);
    }
}

// The fragments into the accumulators c<row><l|r> of conv2d_mm_acc: lane (a_quad, b_quad) of the
// f32 form holds rows a_quad * 4 .. + 3 (lo) and 32 on (hi) of its subgroup's part, columns
// b_quad * 4 .. + 3 (l) and 16 on (r). Called by the whole workgroup after the K loop's last
// barrier.
fn tile_end() {
    take(f00, 0u, 0u);
    take(f01, 0u, 1u);
    take(f10, 1u, 0u);
    take(f11, 1u, 1u);
    if (BM == 128u) {
        take(f20, 2u, 0u);
        take(f21, 2u, 1u);
        take(f30, 3u, 0u);
        take(f31, 3u, 1u);
    }
}

// Fragment (i, j) through the subgroup's result area: the lanes whose rows it holds (a_quad / 4
// == i % 2; lo rows for i < 2, hi for the others) take their 4 rows x 4 columns.
fn take(f: Acc, i: u32, j: u32) {
    let area = coop_sub * AREA;
    acc_store(f, area);
    workgroupBarrier();
    if (a_quad / 4u == i % 2u) {
        let at = area + (a_quad % 4u) * 4u * LDC + b_quad * 4u;
        let v0 = vec4f(sc[at], sc[at + 1u], sc[at + 2u], sc[at + 3u]);
        let v1 = vec4f(sc[at + LDC], sc[at + LDC + 1u], sc[at + LDC + 2u], sc[at + LDC + 3u]);
        let t = at + 2u * LDC;
        let v2 = vec4f(sc[t], sc[t + 1u], sc[t + 2u], sc[t + 3u]);
        let v3 = vec4f(sc[t + LDC], sc[t + LDC + 1u], sc[t + LDC + 2u], sc[t + LDC + 3u]);
        if (i < 2u && j == 0u) {
            c0l = v0;
            c1l = v1;
            c2l = v2;
            c3l = v3;
        } else if (i < 2u) {
            c0r = v0;
            c1r = v1;
            c2r = v2;
            c3r = v3;
        } else if (j == 0u) {
            c4l = v0;
            c5l = v1;
            c6l = v2;
            c7l = v3;
        } else {
            c4r = v0;
            c5r = v1;
            c6r = v2;
            c7r = v3;
        }
    }
    workgroupBarrier();
}
