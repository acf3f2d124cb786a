//! The conv input gradient: dx from dy and w.

use super::*;

/// dx (N, Cin, H, W) from dy (N, Cout, OH, OW) and w: the forward kernel's layout with input
/// channels as the tile rows (`tile.ocb` of them) and input pixels as its columns; with stride
/// S, one dispatch per stride phase (S*S of them). A stride-1 conv's input gradient is the
/// forward of dy with transposed weights where that forward is the faster kernel: the texture
/// forward on the cpu family (`backward_data_texture`), the block forward on the gpu family
/// (`backward_data_block`).
pub fn backward_data(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if transposes_to_forward(g) && texture::uses_texture(gpu, &transposed_geometry(g)) {
        return backward_data_texture(gpu, g, dy, w, dx);
    }
    let block = ConvTile::block_first(gpu, g.cin / g.args.groups) && transposes_to_forward(g);
    if is_pointwise_gemm(g) && !block {
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
            crate::graph::Act::None,
            DType::F32,
            w,
            dy,
            None,
            None,
            dx,
        )?]);
    }
    // the gpu family's stride-1 depthwise input gradient: the staged depthwise forward of dy
    // with the kernel flipped
    if gpu.policy().family == KernelFamily::Gpu
        && transposes_to_forward(g)
        && depthwise_staged_fits(&transposed_geometry(g))
    {
        return backward_data_depthwise(gpu, g, dy, w, dx);
    }
    if !taps_outer(g.cout / g.args.groups) {
        return Ok(vec![backward_data_narrow(gpu, g, dy, w, dx)?]);
    }
    // the largest stride phase's input pixels
    let [sh, sw] = g.args.stride;
    let pixels = g.n * g.h.div_ceil(sh) * g.w.div_ceil(sw);
    let mut candidates = ConvTile::candidates(gpu, g.cin / g.args.groups, pixels);
    if block {
        candidates.insert(0, ConvTile::BLOCK);
    }
    choose(gpu, "conv2d_bwd_data", g, Rows::Inputs, &candidates, |g, t| {
        backward_data_tiled(gpu, g, t, dy, w, dx)
    })
}

/// Whether the input gradient of `g` is a forward conv of dy: stride 1 (larger strides leave
/// holes between dy's taps) and each axis's padding at most the dilated kernel's reach, so
/// that the transposed conv's padding, d*(K-1) - P per axis, is not negative.
pub fn transposes_to_forward(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    a.stride == [1, 1] && a.padding[0] <= a.dilation[0] * (g.kh - 1) && a.padding[1] <= a.dilation[1] * (g.kw - 1)
}

/// The input gradient of a stride-1 conv through the block forward `kernel`
/// (conv2d_fwd_block): dx = conv2d(dy, wt) with wt the kernel flipped and its channel axes
/// swapped within each group (conv2d_transpose_weights, into a scratch buffer, first), padding
/// d*(K-1) - P. The input gradient then runs at the forward's efficiency: its 64 x 64 tiles of
/// input channels x input pixels, K = Cout/g x taps staged through workgroup memory.
pub fn backward_data_block(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if !transposes_to_forward(g) {
        return Err(
            ConvTile::BLOCK.refuse("the block input gradient needs stride 1 and padding <= d*(K-1) on each axis")
        );
    }
    through_forward(gpu, g, dy, w, dx, |t, b| {
        forward_block(gpu, kernel, t, Epilogue::default(), DType::F32, b)
    })
}

/// The input gradient of a stride-1 conv through the cpu family's texture forward
/// (conv2d_fwd_tex, after packing dy into an operand texture): dx = conv2d(dy, wt) with wt the
/// kernel flipped and its channel axes swapped within each group, padding d*(K-1) - P. On a CPU
/// driver the register kernel's per-lane storage loads of dy are loops over the lanes; the
/// texture forward fetches 4 channels of dy per texel in one gather.
pub fn backward_data_texture(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if !transposes_to_forward(g) || !texture::uses_texture(gpu, &transposed_geometry(g)) {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!(
                "{g:?}: the texture input gradient takes stride-1 convs whose dy fits an operand texture, with 3+ output channels per group, under the texture policy"
            ),
        ));
    }
    through_forward(gpu, g, dy, w, dx, |t, b| {
        forward(gpu, t, Epilogue::default(), DType::F32, b)
    })
}

/// The forward geometry whose output is the input gradient of a stride-1 conv `g`: dy as the
/// input, the flipped kernel with its channel axes swapped, padding d*(K-1) - P per axis
/// (callers check `transposes_to_forward`, which keeps it non-negative).
fn transposed_geometry(g: &Conv2dGeom) -> Conv2dGeom {
    let a = &g.args;
    Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: g.kh,
        kw: g.kw,
        oh: g.h,
        ow: g.w,
        args: crate::ops::Conv2dArgs::new(1, 0, 1, a.groups).hw(
            [1, 1],
            [
                (a.dilation[0] * (g.kh - 1)).saturating_sub(a.padding[0]),
                (a.dilation[1] * (g.kw - 1)).saturating_sub(a.padding[1]),
            ],
            a.dilation,
        ),
    }
}

/// The input gradient of a stride-1 conv `g` as the forward `forward` runs on the transposed
/// geometry: the flipped, channel-swapped weights (conv2d_transpose_weights, into a scratch
/// buffer) first, then the forward of dy with them into dx.
fn through_forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    forward: impl FnOnce(&Conv2dGeom, &ForwardBuffers<'_>) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    let a = &g.args;
    let (cin_g, cout_g) = (g.cin / a.groups, g.cout / a.groups);
    let total = g.cin * cout_g * g.kh * g.kw;
    let wt = gpu.scratch_buffer("conv2d transposed weights", (total * 4) as u64)?;
    let transpose = Dispatch::new(
        gpu,
        gpu.pipeline(&CONV2D_TRANSPOSE_WEIGHTS, &[])?,
        &[
            u32_of("conv2d input channels per group", cin_g)?,
            u32_of("conv2d output channels per group", cout_g)?,
            g.kh as u32,
            g.kw as u32,
            u32_of("conv2d weights", total)?,
        ],
        &[w, &wt],
        grid_1d(groups_for("conv2d weights", total, 64)?),
    )?;
    let mut out = vec![transpose];
    out.extend(forward(&transposed_geometry(g), &ForwardBuffers::new(dy, &wt, dx))?);
    Ok(out)
}

/// The input gradient of a stride-1 depthwise conv through the staged depthwise forward
/// (conv2d_fwd_depthwise, the gpu family's): dx = the depthwise conv of dy with each channel's
/// kernel flipped, padding d*(K-1) - P.
pub fn backward_data_depthwise(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let transposed = transposed_geometry(g);
    if !transposes_to_forward(g) || !depthwise_staged_fits(&transposed) {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!("{g:?}: the staged depthwise input gradient takes stride-1 depthwise convs"),
        ));
    }
    through_forward(gpu, g, dy, w, dx, |t, b| {
        forward_depthwise(gpu, t, Epilogue::default(), DType::F32, b)
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
    if tile.kind == TileKind::Block {
        return backward_data_block(gpu, &CONV2D_FWD_BLOCK, g, dy, w, dx);
    }
    tile.check_backward()?;
    let groups = g.args.groups;
    if !taps_outer(g.cout / groups) {
        return Err(tile.refuse("groups with fewer than 4 output channels run backward_data_narrow"));
    }
    let channel_blocks = u32_of(
        "conv2d input channel blocks",
        groups * (g.cin / groups).div_ceil(tile.ocb),
    )?;
    let ([sh, sw], [ph, pw]) = (g.args.stride, g.args.padding);
    let mut out = Vec::with_capacity(sh * sw);
    for ry in 0..sh {
        for rx in 0..sw {
            // the input rows (columns) of this phase start at the first i with (i + P) % S == r
            let rows = g.h.saturating_sub((ry + sh - ph % sh) % sh).div_ceil(sh);
            let cols = g.w.saturating_sub((rx + sw - pw % sw) % sw).div_ceil(sw);
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
    let ([sh, sw], [ph, pw], dw) = (a.stride, a.padding, a.dilation[1]);
    // the accumulators of one cell row hold stride x cells values: at most SEGMENT_MAX (32)
    let cells = (SEGMENT_MAX / sw).min(NARROW_CELLS);
    if cells == 0 {
        return Err(Error::arg(
            "conv2d input gradient",
            "stride",
            format!("{sw} across is more than {SEGMENT_MAX}, the most the grouped-conv input gradient supports"),
        ));
    }
    let [_, (x0, x1)] = tap_window(g);
    let reach = (x1.max(1) - 1) * dw / sw;
    let segment = cells + reach - x0 * dw / sw;
    let mut constants = geometry_constants(g);
    constants.push(("CELLS", cells as f64));
    constants.push(("SEGMENT", f64::from(u8::from(segment <= SEGMENT_MAX))));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(&CONV2D_BWD_DATA_NARROW, &constants)?;
    let cell_rows = (g.h - 1 + ph) / sh + 1;
    let cell_cols = (g.w - 1 + pw) / sw + 1;
    let lanes = g.n * cell_rows * cell_cols.div_ceil(cells);
    let mut grid = grid_1d(groups_for("conv2d input-gradient cells", lanes, WG)?);
    grid[2] = u32_of("conv2d input channels", g.cin)?;
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)
}

/// Cells per invocation of conv2d_bwd_data_narrow (its CELLS), fewer for strides above 8.
pub(super) const NARROW_CELLS: usize = 4;
