//! The conv forward: y = act(conv2d(x, w) [+ bias] [+ residual]), the epilogue fused into the
//! store, and with `stats` the block statistics of y for a training batch norm.

use super::buffers::{condense_stats, epilogue_bindings, epilogue_only_dispatch, ForwardBuffers};
use super::constants::{
    epilogue_constants, forward_grid, forward_row_segment, geometry_constants, sizes, tap_window_constants, taps_outer,
    FWD_PIXELS, STATS_BLOCK,
};
use super::mm::forward_mm;
use super::texture;
use super::tile::{ConvTile, TileKind, BLOCK_CHANNELS, BLOCK_PIXELS};
use super::tune::{choose, Rows};
use super::variants::{
    self, depthwise_staged_fits, depthwise_vec4_fits, depthwise_window, Forward, DEPTHWISE_HALO_MAX, DEPTHWISE_TILE,
};
use crate::device::{grid_1d, Dispatch, Gpu, Scratch};
use crate::error::{Error, Result};
use crate::kernels::shaders::{
    variant, CONV2D_FWD, CONV2D_FWD_BLOCK, CONV2D_FWD_DEPTHWISE, CONV2D_FWD_DEPTHWISE_VEC4, CONV2D_FWD_MM,
};
use crate::kernels::u32_of;
use crate::shape::{Conv2dGeom, DType, Epilogue};

/// y (N, Cout, OH, OW) = act(conv2d(x (N, Cin, H, W), w (Cout, Cin/g, KH, KW)) [+ bias (Cout)]
/// [+ residual (like y)]), the epilogue fused into the store. x, residual and y are stored as
/// `storage` (f32, or f16 with f32 accumulation); w and bias are f32. With `stats`, also the
/// block statistics of y for a training batch norm (see `STATS_BLOCK`).
pub fn forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let ForwardBuffers {
        x,
        w,
        bias,
        residual,
        y,
        stats,
        ..
    } = *b;
    if b.texture_only() && !texture::uses_texture(gpu, g) {
        return Err(Error::arg(
            "conv2d forward",
            "buffers",
            format!(
                "{g:?}: only the texture forward stores into a placed output map, reads a shared packing or transposes weights as it packs them"
            ),
        ));
    }
    let choice = variants::forward(gpu.into(), g, storage, stats.is_some())?;
    match choice.kernel {
        Forward::DepthwiseVec4 => forward_depthwise_vec4(gpu, g, epi, storage, b),
        Forward::Depthwise => forward_depthwise(gpu, g, epi, storage, b),
        Forward::PointwiseGemm => {
            // a 1x1 conv is a GEMM per image: (Cout, Cin) x (Cin, H*W)
            let rows = crate::kernels::gemm::RowsGeom {
                batch: g.n,
                m: g.cout,
                n: g.h * g.w,
                k: g.cin,
                trans_a: false,
            };
            let bufs = crate::kernels::gemm::GemmBuffers {
                a: w,
                b: x,
                bias,
                residual,
                c: y,
            };
            let gemm = crate::kernels::gemm::gemm_rows(gpu, &rows, epi.act, storage, &bufs)?;
            Ok(vec![gemm])
        }
        Forward::Tiled { tiles, .. } => choose(gpu, &tiles.tuner, g, Rows::Outputs, &tiles.candidates, |g, t| {
            forward_tiled(gpu, g, t, epi, storage, b)
        }),
    }
}

/// `forward` with an explicit tile of any kind (for the tuner and its tests): the dispatches
/// to run in order.
pub fn forward_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let ForwardBuffers {
        x,
        w,
        bias,
        residual,
        y,
        stats,
        ..
    } = *b;
    tile.check()?;
    if b.texture_only() && !matches!(tile.kind, TileKind::Texture { .. }) {
        return Err(tile
            .refuse("only texture tiles store into a placed output map, read a shared packing or transpose weights"));
    }
    if tile.kind == TileKind::Block {
        return forward_block(gpu, &CONV2D_FWD_BLOCK, g, epi, storage, b);
    }
    if tile.is_large() {
        return forward_mm(gpu, &CONV2D_FWD_MM, g, tile, epi, storage, b);
    }
    if stats.is_some() && !tile.writes_stats_blocks(g.n * g.oh * g.ow) {
        return Err(tile.refuse(&format!(
            "block statistics need {STATS_BLOCK} pixels per workgroup, or one workgroup for all"
        )));
    }
    if let TileKind::Texture { .. } = tile.kind {
        return texture::forward(gpu, g, tile, epi, storage, b);
    }
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, bias, residual));
    constants.push(("STATS", f64::from(u8::from(stats.is_some()))));
    constants.push(("WG", tile.wg as f64));
    constants.push(("OCB", tile.ocb as f64));
    constants.push(("TAPS_OUTER", f64::from(u8::from(taps_outer(g.cin / g.args.groups)))));
    constants.push(("ROW_SEGMENT", f64::from(u8::from(forward_row_segment(g)))));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(variant(gpu, &CONV2D_FWD, storage)?, &constants)?;
    let grid = forward_grid(g, tile.wg * FWD_PIXELS, tile.ocb)?;
    let d = gpu.dummy();
    Ok(vec![Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &[
            x,
            w,
            bias.unwrap_or(d),
            residual.unwrap_or(d),
            y,
            stats.unwrap_or(gpu.dummy_rw()),
        ],
        grid,
    )?])
}

/// The forward through `kernel` (conv2d_fwd_block; its tests pass copies with a barrier
/// removed): 64 x 64 block tiles staged in workgroup memory. With `stats`, the kernel writes the
/// statistics of its 64-pixel blocks to a scratch buffer and a second dispatch condenses each 4
/// of them into one `STATS_BLOCK` block.
pub fn forward_block(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let ForwardBuffers {
        bias, residual, stats, ..
    } = *b;
    let pixels = g.n * g.oh * g.ow;
    let fine = match stats {
        Some(_) => {
            let bytes = pixels.div_ceil(BLOCK_PIXELS) * g.cout * 2 * 4;
            Some(gpu.shared_scratch(Scratch::FineStats, "conv2d statistics of 64-pixel blocks", bytes as u64)?)
        }
        None => None,
    };
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, bias, residual));
    constants.push(("STATS", f64::from(u8::from(stats.is_some()))));
    constants.push(("VEC4", f64::from(u8::from((g.oh * g.ow).is_multiple_of(4)))));
    let pipeline = gpu.pipeline(variant(gpu, kernel, storage)?, &constants)?;
    let grid = forward_grid(g, BLOCK_PIXELS, BLOCK_CHANNELS)?;
    let conv = Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &epilogue_bindings(gpu, b, fine.as_ref()),
        grid,
    )?;
    let (Some(fine), Some(stats)) = (fine, stats) else {
        return Ok(vec![conv]);
    };
    Ok(vec![conv, condense_stats(gpu, g, BLOCK_PIXELS, &fine, stats)?])
}

/// The depthwise forward through conv2d_fwd_depthwise (the gpu family's, without statistics):
/// one workgroup per 16 x 16 output tile of one (image, channel) plane, its input window and
/// weights staged in workgroup memory.
pub fn forward_depthwise(
    gpu: &Gpu,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    if !depthwise_staged_fits(g) || b.stats.is_some() {
        return Err(Error::arg(
            "conv2d",
            "kernel",
            format!("{g:?}: the staged depthwise kernel takes depthwise convs whose tile window fits {DEPTHWISE_HALO_MAX} values, without statistics"),
        ));
    }
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, b.bias, b.residual));
    // the window array sized to this geometry: workgroup memory, and so residency, as needed
    constants.push(("HALO", depthwise_window(g) as f64));
    let pipeline = gpu.pipeline(variant(gpu, &CONV2D_FWD_DEPTHWISE, storage)?, &constants)?;
    let t = DEPTHWISE_TILE;
    let tiles = g.oh.div_ceil(t) * g.ow.div_ceil(t);
    let workgroups = u32_of("conv2d depthwise tiles", tiles * g.n * g.cout)?;
    epilogue_only_dispatch(gpu, pipeline, g, b, grid_1d(workgroups))
}

/// The depthwise forward through conv2d_fwd_depthwise_vec4 (both families; with `stats`, the
/// statistics of its `STATS_BLOCK` blocks written straight into them): one workgroup per block
/// of one channel, 4 outputs of a row per invocation from whole vec4s of the input rows.
pub fn forward_depthwise_vec4(
    gpu: &Gpu,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    depthwise_vec4(gpu, g, epi, storage, b, false)
}

/// `forward_depthwise_vec4`, with each channel's kernel read flipped where `flip` (the input
/// gradient of a stride-1 depthwise conv, `g` then its transposed geometry).
pub(super) fn depthwise_vec4(
    gpu: &Gpu,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
    flip: bool,
) -> Result<Vec<Dispatch>> {
    if !depthwise_vec4_fits(g) {
        return Err(Error::arg(
            "conv2d",
            "kernel",
            format!("{g:?}: conv2d_fwd_depthwise_vec4 takes depthwise convs with W and OW multiples of 4 and the columns under 4 outputs within 4 vec4s"),
        ));
    }
    let mut constants = geometry_constants(g);
    constants.extend(tap_window_constants(g));
    constants.extend(epilogue_constants(epi, b.bias, b.residual));
    constants.push(("STATS", f64::from(u8::from(b.stats.is_some()))));
    let lanes = variants::depthwise_vec4_lanes(gpu.into());
    constants.push(("WG", f64::from(lanes)));
    constants.push(("FLIP", f64::from(u8::from(flip))));
    let pipeline = gpu.pipeline(variant(gpu, &CONV2D_FWD_DEPTHWISE_VEC4, storage)?, &constants)?;
    let blocks = (g.n * g.oh * g.ow).div_ceil(STATS_BLOCK);
    let workgroups = u32_of("conv2d depthwise blocks", blocks * g.cout)?;
    let bindings = epilogue_bindings(gpu, b, b.stats);
    Ok(vec![Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &bindings,
        grid_1d(workgroups),
    )?])
}
