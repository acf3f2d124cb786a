//! conv2d kernels, one file per pass. Forward: an implicit GEMM with a register tile of up to 8
//! output channels x 4 pixels per invocation, the gpu family's 64 x 64 block tile staged through
//! workgroup memory (on f16 activations, on cooperative matrices where the GPU has them), or the
//! CPU family's texture tile; with few channels per group, 4 pixels of
//! one row sharing their window's row segments. Input gradient: the same over the flipped
//! kernel, one dispatch per stride phase, or, for groups with few output channels (depthwise), a
//! direct kernel over cells of stride x stride pixels. Weight gradient: a split-K GEMM over the
//! output pixels, with lanes over the weight columns, in block tiles, or over the pixels for
//! narrow groups.

mod backward_data;
mod backward_weight;
mod cooperative;
mod forward;
pub mod texture;
mod tile;
mod tune;

pub use backward_data::{
    backward_data, backward_data_block, backward_data_depthwise, backward_data_narrow, backward_data_texture,
    backward_data_tiled, transposes_to_forward,
};
pub use backward_weight::{backward_weight, backward_weight_block, backward_weight_narrow, backward_weight_tiled};
pub use cooperative::{cooperative_takes, forward_cooperative};
pub use forward::{
    depthwise_staged_fits, forward, forward_block, forward_depthwise, forward_tiled, is_pointwise_gemm, ForwardBuffers,
    Placement,
};
pub use tile::{ConvTile, TileKind};

use backward_weight::*;
use forward::*;
use tile::*;
use tune::*;

use crate::device::{grid_1d, Dispatch, Gpu, KernelFamily, Resource};
use crate::error::{Error, Result};
use crate::kernels::shaders::{
    variant, CONV2D_BWD_DATA, CONV2D_BWD_DATA_NARROW, CONV2D_BWD_WEIGHT, CONV2D_BWD_WEIGHT_BLOCK,
    CONV2D_BWD_WEIGHT_NARROW, CONV2D_FWD, CONV2D_FWD_BLOCK, CONV2D_FWD_DEPTHWISE, CONV2D_SCATTER_PHASE,
    CONV2D_STATS_CONDENSE, CONV2D_TRANSPOSE_WEIGHTS, SPLIT_K_REDUCE,
};
use crate::kernels::{groups_for, u32_of};
use crate::shape::{Conv2dGeom, DType, Epilogue};

pub(super) const WG: usize = 64;

pub(super) fn geometry_constants(g: &Conv2dGeom) -> Vec<(&'static str, f64)> {
    let a = &g.args;
    vec![
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("SH", a.stride[0] as f64),
        ("SW", a.stride[1] as f64),
        ("PH", a.padding[0] as f64),
        ("PW", a.padding[1] as f64),
        ("DH", a.dilation[0] as f64),
        ("DW", a.dilation[1] as f64),
    ]
}

/// The constants of the weight_transpose prelude: the weights of `g` (Cout, Cin/g, KH, KW) as
/// the forward weights of its input gradient, with the taps `taps` per axis ((k0, step, count))
/// flipped and the channel axes swapped within each group.
pub(super) fn transpose_constants(g: &Conv2dGeom, taps: [(usize, usize, usize); 2]) -> [(&'static str, f64); 8] {
    let [(k0y, step_y, _), (k0x, step_x, _)] = taps;
    [
        ("CIN_G", (g.cin / g.args.groups) as f64),
        ("COUT_G", (g.cout / g.args.groups) as f64),
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("K0Y", k0y as f64),
        ("STEP_Y", step_y as f64),
        ("K0X", k0x as f64),
        ("STEP_X", step_x as f64),
    ]
}

/// The taps [lo, hi) of one axis that some output position reaches inside the input; the
/// taps outside read only padding for every output (a 3x3 conv with padding 1 on a 1x1 map
/// uses only its centre tap), so the kernels skip them (override constants KY0..KX1).
pub(super) fn live_taps(
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    input: usize,
    output: usize,
) -> (usize, usize) {
    let live = |t: usize| (0..output).any(|o| (o * stride + t * dil).checked_sub(pad).is_some_and(|i| i < input));
    match ((0..k).find(|&t| live(t)), (0..k).rev().find(|&t| live(t))) {
        (Some(lo), Some(hi)) => (lo, hi + 1),
        _ => (0, 0),
    }
}

/// The live tap window of `g`: [KY0, KY1) and [KX0, KX1).
pub(super) fn tap_window(g: &Conv2dGeom) -> [(usize, usize); 2] {
    let a = &g.args;
    [
        live_taps(g.kh, a.stride[0], a.padding[0], a.dilation[0], g.h, g.oh),
        live_taps(g.kw, a.stride[1], a.padding[1], a.dilation[1], g.w, g.ow),
    ]
}

/// Output pixels per block of the statistics a conv writes for the training batch norm after it
/// (`forward`'s `stats`: (blocks, Cout, 2) of mean and sum of squared deviations, blocks =
/// ceil(N*OH*OW / STATS_BLOCK)); `kernels::norm::merge_stats` combines them.
pub const STATS_BLOCK: usize = 256;

/// Output pixels per invocation of conv2d_fwd and conv2d_bwd_data (their PX). Fixed: fewer per
/// invocation for small maps (fewer idle lanes) measured slower on lavapipe, 2x for r18_l4 at
/// batch 8 (each uniform weight load then feeds fewer multiply-adds).
pub const FWD_PIXELS: usize = 4;

/// The loop order of the implicit-GEMM kernels for `k` reduced channels per group: taps
/// outside and channels inside, so each tap's index arithmetic and bounds checks run once for
/// all channels, unless there are too few channels to pay for it: the 3-channel stem and
/// depthwise convs walk one channel's window tap by tap instead (their planes stay in cache);
/// ResNeXt's 4 channels per group already gain (BENCHMARKS.md, "conv2d loop order: taps
/// outside, channels inside").
/// For the input gradient (k = output channels per group) it picks the kernel: conv2d_bwd_data
/// has the taps-outside order only, narrower groups run conv2d_bwd_data_narrow.
pub(super) fn taps_outer(k: usize) -> bool {
    k >= 4
}

/// Longest row segment the kernels keep in registers (their SEG_MAX).
pub(super) const SEGMENT_MAX: usize = 32;

/// Whether conv2d_fwd runs with ROW_SEGMENT: the channels-outside loop order (few input
/// channels per group: depthwise, the stem) and rows that hold whole invocations (OW a multiple
/// of FWD_PIXELS), so each invocation's pixels are neighbours in one row and each tap row of
/// their window is one segment of input (BENCHMARKS.md, "Depthwise input gradient over stride
/// cells, row-segment forward, weight-gradient lanes").
pub(super) fn forward_row_segment(g: &Conv2dGeom) -> bool {
    let [_, (x0, x1)] = tap_window(g);
    !taps_outer(g.cin / g.args.groups)
        && g.ow.is_multiple_of(FWD_PIXELS)
        && x1 > x0
        && (FWD_PIXELS - 1) * g.args.stride[1] + (x1 - x0 - 1) * g.args.dilation[1] < SEGMENT_MAX
}

/// The Params struct of the conv kernels (the weight gradients append their chunk size).
pub(super) fn sizes(g: &Conv2dGeom) -> Result<[u32; 8]> {
    u32_of("conv2d input elements", g.n * g.cin * g.h * g.w)?;
    u32_of("conv2d output elements", g.n * g.cout * g.oh * g.ow)?;
    Ok([
        u32_of("conv2d batch", g.n)?,
        u32_of("conv2d input channels", g.cin)?,
        u32_of("conv2d input height", g.h)?,
        u32_of("conv2d input width", g.w)?,
        u32_of("conv2d output channels", g.cout)?,
        u32_of("conv2d output height", g.oh)?,
        u32_of("conv2d output width", g.ow)?,
        u32_of("conv2d groups", g.args.groups)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::{live_taps, pixel_workgroup};

    #[test]
    fn live_taps_are_the_taps_some_output_reads_inside_the_input() {
        // (k, stride, pad, dilation, input, output) -> [lo, hi)
        assert_eq!(live_taps(3, 1, 1, 1, 1, 1), (1, 2)); // 3x3 on a 1x1 map: the centre
        assert_eq!(live_taps(3, 2, 1, 1, 2, 1), (1, 3)); // stride 2 onto 1x1
        assert_eq!(live_taps(5, 1, 2, 1, 2, 2), (1, 4));
        assert_eq!(live_taps(3, 1, 1, 1, 7, 7), (0, 3)); // every tap on a larger map
        assert_eq!(live_taps(3, 1, 2, 2, 1, 1), (1, 2)); // dilated
        assert_eq!(live_taps(1, 2, 1, 1, 1, 2), (0, 0)); // only padding
    }

    #[test]
    fn pixel_workgroups_leave_the_fewest_lanes_idle() {
        // (pixels, SIMD width) -> invocations per workgroup, each invocation taking 4 pixels
        assert_eq!(pixel_workgroup(18, 4, 8, 64), 8); // a small map: the fewest that cover it
        assert_eq!(pixel_workgroup(60, 4, 8, 64), 16);
        assert_eq!(pixel_workgroup(256, 4, 8, 64), 64);
        assert_eq!(pixel_workgroup(18, 4, 32, 64), 8); // small maps cover alike on any device
        assert_eq!(pixel_workgroup(392, 4, 8, 64), 8); // 98 lanes: 6 idle at 8 wide, 30 at 64
        assert_eq!(pixel_workgroup(392, 4, 32, 64), 64); // 30 idle at 32 and 64 wide: the wider
        assert_eq!(pixel_workgroup(1568, 4, 8, 64), 8);
        assert_eq!(pixel_workgroup(1568, 4, 16, 64), 16);
        assert_eq!(pixel_workgroup(25088, 4, 8, 64), 64); // whole workgroups at every width
        assert_eq!(pixel_workgroup(1000, 4, 128, 64), 64); // SIMD width unknown: never above 64
    }
}
