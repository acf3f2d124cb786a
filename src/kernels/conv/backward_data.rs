//! The conv input gradient: dx from dy and w.

use super::buffers::{ForwardBuffers, Placement};
use super::constants::{
    geometry_constants, sizes, tap_window, tap_window_constants, taps_outer, transpose_constants, FWD_PIXELS,
    SEGMENT_MAX, STATS_BLOCK, WG,
};
use super::forward::{depthwise_vec4, forward, forward_block, forward_depthwise};
use super::mm::{backward_data_mm, forward_mm_split};
use super::phases::{all_taps, stride_phases, transposed_geometry, transposes_to_forward, Phase};
use super::texture;
use super::tile::{ConvTile, TileKind};
use super::tune::{choose, Rows};
use super::variants::{
    self, depthwise_staged_fits, depthwise_transposed_vec4_fits, depthwise_vec4_fits, InputGradient,
};
use crate::device::{grid_1d, Dispatch, Gpu, Scratch};
use crate::error::{Error, Result};
use crate::kernels::shaders::{
    CONV2D_BWD_DATA, CONV2D_BWD_DATA_DEPTHWISE_VEC4, CONV2D_BWD_DATA_MM, CONV2D_BWD_DATA_NARROW, CONV2D_FWD_BLOCK,
    CONV2D_FWD_MM, CONV2D_SCATTER_PHASE, CONV2D_SPLIT_K_EPILOGUE, CONV2D_TRANSPOSE_WEIGHTS,
};
use crate::kernels::{groups_for, u32_of};
use crate::shape::{Conv2dGeom, DType, Epilogue};

/// dx (N, Cin, H, W) from dy (N, Cout, OH, OW) and w: the forward kernel's layout with input
/// channels as the tile rows (`tile.ocb` of them) and input pixels as its columns; with stride
/// S, one dispatch per stride phase (S*S of them). Where a forward kernel is the faster one,
/// the input gradient is the forward of dy with transposed weights: the texture forward on the
/// cpu family, per stride phase (`backward_data_texture`), the block forward on the gpu family
/// (`backward_data_block` for stride 1, per stride phase for larger strides). `operands` is
/// F16 where dy and w hold f16 values (mixed precision's): the gpu family's large tiles may then
/// run on cooperative matrices.
pub fn backward_data(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    operands: DType,
    kept: Option<&texture::KeptOperands>,
) -> Result<Vec<Dispatch>> {
    match variants::input_gradient(gpu.into(), g, operands).kernel {
        InputGradient::ForwardPhases { phases, .. } => through_forward_phases(gpu, g, &phases, dy, w, dx, kept),
        InputGradient::PointwiseGemm => {
            // dX_n (Cin, H*W) = W^T (Cin, Cout) x dY_n (Cout, H*W)
            let rows = crate::kernels::gemm::RowsGeom {
                batch: g.n,
                m: g.cin,
                n: g.h * g.w,
                k: g.cout,
                trans_a: true,
            };
            let bufs = crate::kernels::gemm::GemmBuffers::new(w, dy, dx);
            let act = crate::shape::Act::None;
            let gemm = crate::kernels::gemm::gemm_rows(gpu, &rows, act, DType::F32, &bufs)?;
            Ok(vec![gemm])
        }
        InputGradient::DepthwiseVec4 => backward_data_depthwise_vec4(gpu, g, dy, w, dx),
        InputGradient::DepthwiseTransposedVec4 => Ok(vec![backward_data_depthwise_transposed(gpu, g, dy, w, dx)?]),
        InputGradient::Depthwise => backward_data_depthwise(gpu, g, dy, w, dx),
        InputGradient::Narrow => Ok(vec![backward_data_narrow(gpu, g, dy, w, dx)?]),
        InputGradient::Tiled(tiles) => choose(gpu, &tiles.tuner, g, Rows::Inputs, &tiles.candidates, |g, t| {
            backward_data_tiled(gpu, g, t, dy, w, dx)
        }),
    }
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
    let b = InputGradientBuffers { dy, w, dx };
    through_transposed_forward(gpu, g, ConvTile::BLOCK, "block", &b, |t, b| {
        forward_block(gpu, kernel, t, Epilogue::default(), DType::F32, b)
    })
}

/// The input gradient of the stride-1 conv `g` as `forward` (the `name` input gradient, in
/// `tile`) of dy on the transposed geometry, every tap of the weights flipped and transposed
/// first (`through_forward`); refused where `g` does not transpose to a forward.
fn through_transposed_forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    name: &str,
    b: &InputGradientBuffers<'_>,
    forward: impl FnOnce(&Conv2dGeom, &ForwardBuffers<'_>) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    if !transposes_to_forward(g) {
        return Err(tile.refuse(&format!(
            "the {name} input gradient needs stride 1 and padding <= d*(K-1) on each axis"
        )));
    }
    let weights = texture::TransposedWeights {
        conv: *g,
        taps: all_taps(g),
    };
    through_forward(gpu, &weights, &transposed_geometry(g), false, b, forward)
}

/// The input gradient of a stride-1 conv as the large-tile forward of dy split over K in `tile`
/// (`TileKind::MmSplit`; `variants::input_gradient` offers it where conv2d_bwd_data_mm's grid
/// leaves a GPU idle): the weights flipped and transposed, then conv2d_fwd_mm's slices and
/// conv2d_split_k_epilogue.
pub fn backward_data_split(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let b = InputGradientBuffers { dy, w, dx };
    let kernels = [&CONV2D_FWD_MM, &CONV2D_SPLIT_K_EPILOGUE];
    through_transposed_forward(gpu, g, tile, "split", &b, |t, b| {
        forward_mm_split(gpu, kernels, t, tile, Epilogue::default(), DType::F32, b)
    })
}

/// The input gradient through the cpu family's texture forward (conv2d_fwd_tex, after packing dy
/// into an operand texture), one stride phase at a time: each phase of dx is the forward of dy
/// with that phase's taps flipped and their channel axes swapped (as the weights are packed),
/// stored straight into its positions in dx (a `Placement`); a phase no tap reaches gets zeros
/// (conv2d_scatter_phase). On a CPU driver the register kernel's per-lane
/// storage loads of dy are loops over the lanes; the texture forward fetches 4 channels of dy
/// per texel in one gather.
pub fn backward_data_texture(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let Some((phases, _)) = variants::forward_phases(gpu.into(), g).filter(|_| gpu.policy().texture_operands) else {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!(
                "{g:?}: the texture input gradient takes convs with 3+ output channels per group whose dy fits an operand texture and whose padding is within the kernel's reach, under the texture policy"
            ),
        ));
    };
    through_forward_phases(gpu, g, &phases, dy, w, dx, None)
}

/// The input gradient for the phases `forward_phases` found, each through `forward`: the
/// texture forward on the cpu family, storing each phase in place; the block forward or the
/// tuner's choice on the gpu family, into a scratch map put in place by conv2d_scatter_phase.
/// Stride 1 is one phase, dx itself.
fn through_forward_phases(
    gpu: &Gpu,
    g: &Conv2dGeom,
    phases: &[Phase],
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    kept: Option<&texture::KeptOperands>,
) -> Result<Vec<Dispatch>> {
    let dense = g.args.stride == [1, 1];
    // the cpu family's phases all run the texture forward (`forward_phases`)
    let texture = gpu.policy().texture_operands;
    let in_place = !dense && texture;
    let planes = g.n * g.cin;
    // (first, count, step) per axis of a map scattered into dx
    let scatter = |rows: [usize; 3], cols: [usize; 3], zero: bool, phase: &wgpu::Buffer| -> Result<Dispatch> {
        let total = planes * rows[1] * cols[1];
        Dispatch::new(
            gpu,
            gpu.pipeline(
                &CONV2D_SCATTER_PHASE,
                &[
                    ("ZERO", f64::from(u8::from(zero))),
                    ("ROWS", rows[1] as f64),
                    ("COLS", cols[1] as f64),
                ],
            )?,
            &[
                u32_of("conv2d input planes", planes)?,
                g.h as u32,
                g.w as u32,
                rows[0] as u32,
                cols[0] as u32,
                rows[2] as u32,
                cols[2] as u32,
            ],
            &[phase, dx],
            grid_1d(groups_for("conv2d input-gradient phase", total, 64)?),
        )
        .map(|d| d.moving((1 + usize::from(!zero)) * 4 * total))
    };
    let mut out = Vec::new();
    // dy packed once for every phase with taps (and kept for the weight gradient where the
    // plan wants it), where each phase packed it with its own padding
    let readers: Vec<Conv2dGeom> = phases.iter().filter_map(|p| p.geom).collect();
    let (shared, packing) = match in_place {
        true => texture::pack_for_phases(gpu, g, &readers, dy, kept)?.map_or((None, vec![]), |(s, d)| (Some(s), d)),
        false => (None, vec![]),
    };
    if in_place && phases.iter().any(|p| p.geom.is_none()) {
        // phases no tap reaches: one pass zeroes all of dx, and the phases with taps then store
        // over their positions (one dispatch where a zero pass per phase took S*S - 1; a 1x1
        // stride-2 projection has 3 such phases)
        out.push(scatter([0, g.h, 1], [0, g.w, 1], true, gpu.dummy())?);
    }
    out.extend(packing);
    let into_dx = InputGradientBuffers { dy, w, dx };
    for phase in phases {
        let (py, px, geom) = (phase.rows, phase.cols, phase.geom);
        let (rows, cols) = (
            [py.first, py.count, g.args.stride[0]],
            [px.first, px.count, g.args.stride[1]],
        );
        let Some(geom) = geom else {
            if !in_place {
                out.push(scatter(rows, cols, true, gpu.dummy())?);
            }
            continue;
        };
        let weights = texture::TransposedWeights {
            conv: *g,
            taps: phase.taps(),
        };
        if dense {
            // dy's one packing (no phases): kept for the weight gradient where the plan wants it
            out.extend(through_forward(gpu, &weights, &geom, texture, &into_dx, |t, b| {
                forward(gpu, t, Epilogue::default(), DType::F32, &ForwardBuffers { kept, ..*b })
            })?);
        } else if in_place {
            // the texture forward stores the phase straight into its positions in dx
            let placement = Placement {
                h: g.h,
                w: g.w,
                first: [py.first, px.first],
                stride: g.args.stride,
            };
            out.extend(through_forward(gpu, &weights, &geom, true, &into_dx, |t, b| {
                let b = ForwardBuffers {
                    placement: Some(placement),
                    x_packed: shared.as_ref(),
                    ..*b
                };
                forward(gpu, t, Epilogue::default(), DType::F32, &b)
            })?);
        } else {
            let bytes = (planes * py.count * px.count * 4) as u64;
            let phase = gpu.shared_scratch(Scratch::PhaseMap, "conv2d input-gradient phase", bytes)?;
            let into_phase = InputGradientBuffers { dx: &phase, ..into_dx };
            out.extend(through_forward(gpu, &weights, &geom, false, &into_phase, |t, b| {
                forward(gpu, t, Epilogue::default(), DType::F32, b)
            })?);
            out.push(scatter(rows, cols, false, &phase)?);
        }
    }
    Ok(out)
}

/// The buffers of an input gradient run as a forward: dy in, w the conv's own weights
/// (transposed on the way), dx out (or the scratch map of one stride phase of it).
#[derive(Clone, Copy)]
struct InputGradientBuffers<'a> {
    dy: &'a wgpu::Buffer,
    w: &'a wgpu::Buffer,
    dx: &'a wgpu::Buffer,
}

/// The input gradient of `t.conv` (or one stride phase of it) as the forward `forward` runs on
/// `geom`, the transposed geometry: the weights' taps `t.taps` per axis ((k0, step, count): k0,
/// k0 + step, ...) flipped and channel-swapped (conv2d_transpose_weights, into a scratch buffer)
/// first, then the forward of dy with them into `b.dx`. A `texture` forward packs them
/// transposed from w itself (`ForwardBuffers::w_transposed`), with no transposed copy.
fn through_forward(
    gpu: &Gpu,
    t: &texture::TransposedWeights,
    geom: &Conv2dGeom,
    texture: bool,
    b: &InputGradientBuffers<'_>,
    forward: impl FnOnce(&Conv2dGeom, &ForwardBuffers<'_>) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    let InputGradientBuffers { dy, w, dx } = *b;
    if texture {
        let b = ForwardBuffers {
            w_transposed: Some(*t),
            ..ForwardBuffers::new(dy, w, dx)
        };
        return forward(geom, &b);
    }
    let (g, taps) = (&t.conv, t.taps);
    let (cout_g, [(_, _, th), (_, _, tw)]) = (g.cout / g.args.groups, taps);
    let wt = gpu.shared_scratch(
        Scratch::TransposedWeights,
        "conv2d transposed weights",
        (g.cin * cout_g * th * tw * 4) as u64,
    )?;
    let transpose = transpose_weights(gpu, g, taps, w, &wt)?;
    let mut dispatches = vec![transpose];
    dispatches.extend(forward(geom, &ForwardBuffers::new(dy, &wt, dx))?);
    Ok(dispatches)
}

/// The dispatch of conv2d_transpose_weights: `w` of `g` (Cout, Cin/g, KH, KW) into `wt` (Cin,
/// Cout/g, TH, TW) with the taps `taps` per axis ((k0, step, count)) flipped and the channel
/// axes swapped within each group (`transpose_constants`).
pub(super) fn transpose_weights(
    gpu: &Gpu,
    g: &Conv2dGeom,
    taps: [(usize, usize, usize); 2],
    w: &wgpu::Buffer,
    wt: &wgpu::Buffer,
) -> Result<Dispatch> {
    let a = &g.args;
    let (cin_g, cout_g) = (g.cin / a.groups, g.cout / a.groups);
    let [(_, _, th), (_, _, tw)] = taps;
    let total = g.cin * cout_g * th * tw;
    u32_of("conv2d input channels per group", cin_g)?;
    u32_of("conv2d output channels per group", cout_g)?;
    let mut constants = transpose_constants(g, taps).to_vec();
    constants.extend([("TH", th as f64), ("TW", tw as f64)]);
    Dispatch::new(
        gpu,
        gpu.pipeline(&CONV2D_TRANSPOSE_WEIGHTS, &constants)?,
        &[u32_of("conv2d weights", total)?],
        &[w, wt],
        grid_1d(groups_for("conv2d weights", total, 64)?),
    )
    .map(|d| d.moving(2 * 4 * total))
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
    let weights = texture::TransposedWeights {
        conv: *g,
        taps: all_taps(g),
    };
    let b = InputGradientBuffers { dy, w, dx };
    through_forward(gpu, &weights, &transposed, false, &b, |t, b| {
        forward_depthwise(gpu, t, Epilogue::default(), DType::F32, b)
    })
}

/// The input gradient of a stride-1 depthwise conv through conv2d_fwd_depthwise_vec4: dy's
/// forward with each channel's kernel read flipped (one dispatch, no transposed copy).
pub fn backward_data_depthwise_vec4(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let transposed = transposed_geometry(g);
    if !transposes_to_forward(g) || !depthwise_vec4_fits(&transposed) {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!(
                "{g:?}: the vec4 depthwise input gradient takes stride-1 depthwise convs whose rows are whole vec4s"
            ),
        ));
    }
    let b = ForwardBuffers::new(dy, w, dx);
    depthwise_vec4(gpu, &transposed, Epilogue::default(), DType::F32, &b, true)
}

/// The input gradient of a depthwise conv through conv2d_bwd_data_depthwise_vec4: the
/// transposed conv direct, 4 values of a dx row per invocation, for the strides across that
/// divide 4 (`depthwise_transposed_vec4_fits`).
pub fn backward_data_depthwise_transposed(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    if !depthwise_transposed_vec4_fits(g) {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!("{g:?}: conv2d_bwd_data_depthwise_vec4 takes depthwise convs with W a multiple of 4 and a stride across that divides 4"),
        ));
    }
    let lanes = variants::depthwise_vec4_lanes(gpu.into());
    let mut constants = geometry_constants(g);
    constants.push(("WG", f64::from(lanes)));
    let pipeline = gpu.pipeline(&CONV2D_BWD_DATA_DEPTHWISE_VEC4, &constants)?;
    let blocks = (g.n * g.h * g.w).div_ceil(STATS_BLOCK);
    let workgroups = u32_of("conv2d depthwise input-gradient blocks", blocks * g.cin)?;
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid_1d(workgroups))
}

/// `backward_data` with an explicit tile (register, block or large).
pub fn backward_data_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    match tile.kind {
        TileKind::Block if g.args.stride != [1, 1] => {
            // the strided conv's phases each through the forward (`forward_phases`' path)
            let Some(phases) = stride_phases(g) else {
                return Err(tile.refuse("a stride phase would need a negative padding"));
            };
            return through_forward_phases(gpu, g, &phases, dy, w, dx, None);
        }
        TileKind::Block => return backward_data_block(gpu, &CONV2D_FWD_BLOCK, g, dy, w, dx),
        TileKind::MmSplit { .. } => return backward_data_split(gpu, g, tile, dy, w, dx),
        TileKind::Mm | TileKind::CoopMm => {
            return Ok(vec![backward_data_mm(gpu, &CONV2D_BWD_DATA_MM, g, tile, dy, w, dx)?])
        }
        _ => {}
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
