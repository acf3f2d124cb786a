// The f32 compute form of the gpu family's large-tile weight gradient (conv2d_bwd_weight_mm, the
// kernel after this prelude; WGSL has no include): the stages, the multiply-adds into the
// accumulators of conv2d_mm_acc, run by the kernel's loop over the chunks of output pixels.
// The cooperative-matrix variant puts conv2d_bwd_weight_mm_coop in its place. The kernel
// defines the loaders (`load_chunk`, `step_pixel`, the registers ra, rb, xa, xc and the lane's
// places lcb, lch) and the compute role (a_grp, a_quad, b_grp, b_quad).
//
// The stages are [pixel][vec4 of 4 channels or columns], a row's vec4 v stored at v ^ (pixel %
// 8): the 8 lanes of one store phase (8 consecutive pixels, the same vec4) land in 8 different
// bank groups, and a step's reads (one pixel row) stay one pass. 2 stages of 16 x (128 + 128)
// floats: 32 KiB, the limit of lavapipe and Apple GPUs.

override A_GROUPS: u32 = BM / 32u;  // groups of 32 channels in the dy stage

// dy: [channel group of 32][stage][pixel][channel quad ^ (pixel % 8)]
var<workgroup> da: array<array<array<array<vec4f, 8>, 16>, 2>, A_GROUPS>;
// im2col: [column group of 32][stage][pixel][column quad ^ (pixel % 8)]
var<workgroup> xb: array<array<array<array<vec4f, 8>, 16>, 2>, 4>;

// The compute form's part of the kernel's loop over the chunks: nothing to set up or hand off
// (the accumulators start at zero), and a chunk of stage s as its 16 pixels, written out.
fn tile_begin(lid: u32) {}

fn tile_step(s: u32) {
    mac(s, 0u);
    mac(s, 1u);
    mac(s, 2u);
    mac(s, 3u);
    mac(s, 4u);
    mac(s, 5u);
    mac(s, 6u);
    mac(s, 7u);
    mac(s, 8u);
    mac(s, 9u);
    mac(s, 10u);
    mac(s, 11u);
    mac(s, 12u);
    mac(s, 13u);
    mac(s, 14u);
    mac(s, 15u);
}

fn tile_end() {}

// One pixel of the chunk, row j of stage s: the lane's dy quads (lo, and hi 32 channels on)
// times its im2col quads (l, and r 16 columns on), into the accumulators.
fn mac(s: u32, j: u32) {
    let sw = j % 8u;
    var ah = vec4f(0.0);
    if (BM == 128u) {
        ah = da[a_grp + 1u][s][j][a_quad ^ sw];
    }
    acc_step(da[a_grp][s][j][a_quad ^ sw], ah, xb[b_grp][s][j][b_quad ^ sw], xb[b_grp][s][j][(b_quad + 4u) ^ sw]);
}

// This lane's share of the chunk in registers into stage `s`, at pixel row r (swizzled by r).
fn store_stage(s: u32, r: u32) {
    let sw = r % 8u;
    let cb = lcb;
    // dy: channels lch .. lch + 7 (group lch / 32, quads (lch % 32) / 4 and one more)
    if (BM == 128u) {
        let v = (cb % 4u) * 2u;
        da[cb / 4u][s][r][v ^ sw] = ra;
        da[cb / 4u][s][r][(v + 1u) ^ sw] = rb;
    } else {
        da[cb / 8u][s][r][(cb % 8u) ^ sw] = ra;
    }
    // im2col: columns cb*8 .. cb*8 + 7
    let v = (cb % 4u) * 2u;
    xb[cb / 4u][s][r][v ^ sw] = xa;
    xb[cb / 4u][s][r][(v + 1u) ^ sw] = xc;
}
