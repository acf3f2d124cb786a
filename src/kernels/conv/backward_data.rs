//! The conv input gradient: dx from dy and w.

use super::*;

/// dx (N, Cin, H, W) from dy (N, Cout, OH, OW) and w: the forward kernel's layout with input
/// channels as the tile rows (`tile.ocb` of them) and input pixels as its columns; with stride
/// S, one dispatch per stride phase (S*S of them).
pub fn backward_data(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if is_pointwise_gemm(g) {
        // dX_n (Cin, H*W) = W^T (Cin, Cout) x dY_n (Cout, H*W)
        let rows = crate::kernels::linear::RowsGeom {
            batch: g.n,
            m: g.cin,
            n: g.h * g.w,
            k: g.cout,
            trans_a: true,
        };
        return Ok(vec![crate::kernels::linear::gemm_rows(
            gpu,
            &rows,
            0,
            DType::F32,
            w,
            dy,
            None,
            None,
            dx,
        )?]);
    }
    if !taps_outer(g.cout / g.args.groups) {
        return Ok(vec![backward_data_narrow(gpu, g, dy, w, dx)?]);
    }
    // the largest stride phase's input pixels
    let s = g.args.stride;
    let pixels = g.n * g.h.div_ceil(s) * g.w.div_ceil(s);
    let candidates = ConvTile::candidates(gpu, g.cin / g.args.groups, pixels);
    choose(gpu, "conv2d_bwd_data", g, &candidates, |g, t| {
        backward_data_tiled(gpu, g, t, dy, w, dx)
    })
}

/// `backward_data` with an explicit register tile.
pub fn backward_data_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    tile.check_backward()?;
    let groups = g.args.groups;
    if !taps_outer(g.cout / groups) {
        return Err(tile.refuse("groups with fewer than 4 output channels run backward_data_narrow"));
    }
    let channel_blocks = u32_of(
        "conv2d input channel blocks",
        groups * (g.cin / groups).div_ceil(tile.ocb),
    )?;
    let (s, pad) = (g.args.stride, g.args.padding);
    let mut out = Vec::with_capacity(s * s);
    for ry in 0..s {
        for rx in 0..s {
            // the input rows (columns) of this phase start at the first i with (i + P) % S == r
            let rows = g.h.saturating_sub((ry + s - pad % s) % s).div_ceil(s);
            let cols = g.w.saturating_sub((rx + s - pad % s) % s).div_ceil(s);
            if rows * cols == 0 {
                continue;
            }
            let mut constants = geometry_constants(g);
            constants.push(("WG", tile.wg as f64));
            constants.push(("ICB", tile.ocb as f64));
            constants.push(("RY", ry as f64));
            constants.push(("RX", rx as f64));
            constants.extend(tap_window_constants(g));
            let pipeline = gpu.pipeline(&CONV2D_BWD_DATA, &constants)?;
            let pixels = g.n * rows * cols;
            let mut grid = grid_1d(groups_for("conv2d input pixels", pixels, tile.wg * FWD_PIXELS)?);
            grid[2] = channel_blocks;
            out.push(Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)?);
        }
    }
    Ok(out)
}

/// The input gradient of a conv whose groups have fewer than 4 output channels (depthwise, a
/// small depth multiplier), through conv2d_bwd_data_narrow: a direct transposed convolution in
/// one dispatch, each invocation computing `CELLS` cells of stride x stride input pixels (every
/// stride phase) from the dy segments they share.
pub fn backward_data_narrow(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let a = &g.args;
    // the accumulators of one cell row hold stride x cells values: at most SEGMENT_MAX (32)
    let cells = (SEGMENT_MAX / a.stride).min(NARROW_CELLS);
    if cells == 0 {
        return Err(Error::arg(
            "conv2d input gradient",
            "stride",
            format!(
                "{} is more than {SEGMENT_MAX}, the most the grouped-conv input gradient supports",
                a.stride
            ),
        ));
    }
    let [_, (x0, x1)] = tap_window(g);
    let reach = (x1.max(1) - 1) * a.dilation / a.stride;
    let segment = cells + reach - x0 * a.dilation / a.stride;
    let mut constants = geometry_constants(g);
    constants.push(("CELLS", cells as f64));
    constants.push(("SEGMENT", f64::from(u8::from(segment <= SEGMENT_MAX))));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(&CONV2D_BWD_DATA_NARROW, &constants)?;
    let cell_rows = (g.h - 1 + a.padding) / a.stride + 1;
    let cell_cols = (g.w - 1 + a.padding) / a.stride + 1;
    let lanes = g.n * cell_rows * cell_cols.div_ceil(cells);
    let mut grid = grid_1d(groups_for("conv2d input-gradient cells", lanes, WG)?);
    grid[2] = u32_of("conv2d input channels", g.cin)?;
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)
}

/// Cells per invocation of conv2d_bwd_data_narrow (its CELLS), fewer for strides above 8.
pub(super) const NARROW_CELLS: usize = 4;
