// The f32 compute form of the gpu family's large-tile implicit GEMMs whose K runs over input
// channels x taps (conv2d_fwd_mm, conv2d_bwd_data_mm), after their loaders (conv2d_mm_load, the
// prelude before this one; WGSL has no include): the stages and the multiply-adds into the
// accumulators of conv2d_mm_acc that conv2d_mm_load's K loop `mm_k_loop` runs. The
// cooperative-matrix variants put conv2d_mm_coop in its place.
//
// Compute: 8 subgroups of 32 as 2 (channels) x 4 (pixels), each over a (BM / 2) x 32 part of
// the block; a lane holds 8 channels x 8 pixels (BM = 128; 4 x 8 for BM = 64) in the
// accumulators of conv2d_mm_acc (the prelude before this one). Per step of K a lane reads one
// vec4 of weights per channel quad and one vec4 of pixels per pixel quad from workgroup memory
// (the 8 lanes sharing a pixel quad read 8 different weight vec4s of one 128-byte run, the 4
// sharing a channel quad 4 consecutive pixel vec4s: one conflict-free pass each) and does 64
// multiply-adds. The 16 steps of a chunk are written out (`mac` called with constant rows): no
// loop counter, nothing for a driver to unroll.
//
// K runs in chunks of BK = 16, double-buffered: while the lanes multiply chunk c out of one stage
// of workgroup memory they hold chunk c+1 in registers (conv2d_mm_load's), and store it into the
// other stage before the one barrier per chunk. The weight stage is K-major, [k][channel], each row's vec4s swizzled
// (vec4 v of row k at v ^ (k % 8)) so that the 8 K rows x 4 channels a subgroup stores land in
// 32 different banks while a read of 8 consecutive vec4s stays one pass (padding the rows by 4
// floats would do the same, but 2 stages of 128 x 16 weights and 16 x 128 pixels fill 32 KiB,
// the limit of lavapipe and Apple GPUs); the pixel stage is [k][pixel]: a subgroup stores 32
// consecutive pixels of one row.

override A_GROUPS: u32 = BM / 32u;  // groups of 32 channels in the weight stage

// The stages, K row k = kh * 8 + ke, as nested arrays whose indices are either constants (the
// row a step reads, the rows a lane stores) or the same all along the K loop (a lane's
// position), so the index clamps of wgpu's checked modules are few and the constant parts of
// every address fold into the instruction.
// weights: [channel group of 32][stage][kh][ke][channel quad ^ ke][channel % 4]
var<workgroup> wa: array<array<array<array<array<vec4f, 8>, 8>, 2>, 2>, A_GROUPS>;
// im2col: [stage][kh][ke][pixel / 16][pixel quad % 4][pixel % 4]
var<workgroup> xb: array<array<array<array<array<vec4f, 4>, 8>, 8>, 2>, 2>;

// The compute form's part of conv2d_mm_load's K loop: nothing to set up or hand off (the
// accumulators start at zero), and a chunk of stage s as its 16 steps, written out.
fn tile_begin(lid: u32) {}

fn tile_step(s: u32) {
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
}

fn tile_end() {}

// One step of K, row kh * 8 + ke of stage s: the lane's weight quads (lo, and hi 32 channels
// on) times its pixel quads (l, and r 16 pixels on), into the accumulators.
fn mac(s: u32, kh: u32, ke: u32) {
    var ah = vec4f(0.0);
    if (BM == 128u) {
        ah = wa[a_grp + 1u][s][kh][ke][a_quad ^ ke];
    }
    acc_step(wa[a_grp][s][kh][ke][a_quad ^ ke], ah, xb[s][kh][ke][b_c16][b_quad], xb[s][kh][ke][b_c16 + 1u][b_quad]);
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

// The statistics' exchange of conv2d_fwd_mm through the pixel stage (free after the K loop's
// last barrier): vec4 `j` (< 2) of lane `lid`.
fn stats_put(lid: u32, j: u32, v: vec4f) {
    xb[lid / 128u][(lid / 64u) % 2u][(lid / 8u) % 8u][lid % 8u][j] = v;
}

fn stats_get(lid: u32, j: u32) -> vec4f {
    return xb[lid / 128u][(lid / 64u) % 2u][(lid / 8u) % 8u][lid % 8u][j];
}
