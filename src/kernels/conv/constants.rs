//! What the conv kernels share below their launchers: the override constants of their
//! pipelines (geometry, live taps, epilogue), their Params and grid, and the sizes the kernels
//! and launchers agree on.

use crate::device::grid_1d;
use crate::error::Result;
use crate::kernels::{groups_for, u32_of};
use crate::shape::{Conv2dGeom, Epilogue};

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

/// The tap window overrides (KY0..KX1) of `g`: its live taps (`tap_window`).
pub(super) fn tap_window_constants(g: &Conv2dGeom) -> [(&'static str, f64); 4] {
    let [(y0, y1), (x0, x1)] = tap_window(g);
    [
        ("KY0", y0 as f64),
        ("KY1", y1 as f64),
        ("KX0", x0 as f64),
        ("KX1", x1 as f64),
    ]
}

/// The forward kernels' epilogue overrides: bias, residual, activation.
pub(super) fn epilogue_constants(
    epi: Epilogue,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
) -> [(&'static str, f64); 4] {
    let [act, alpha] = epi.act.constants();
    [
        ("HAS_BIAS", f64::from(u8::from(bias.is_some()))),
        ("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))),
        act,
        alpha,
    ]
}

/// The forward kernels' grid: blocks of `pixels` output pixels (x, y) by blocks of `channels`
/// output channels within each group (z).
pub(super) fn forward_grid(g: &Conv2dGeom, pixels: usize, channels: usize) -> Result<[u32; 3]> {
    let groups = g.args.groups;
    let channel_blocks = groups * (g.cout / groups).div_ceil(channels);
    let mut grid = grid_1d(groups_for("conv2d output pixels", g.n * g.oh * g.ow, pixels)?);
    grid[2] = u32_of("conv2d channel blocks", channel_blocks)?;
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::live_taps;

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
}
