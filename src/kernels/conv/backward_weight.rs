//! The conv weight gradient: dw from dy and x, split over chunks of the output pixels (split-K)
//! and reduced.

use super::backward_data;
use super::buffers::WeightGradientBuffers;
use super::constants::{geometry_constants, sizes, tap_window_constants};
use super::mm::backward_weight_mm;
use super::split_k::{
    split_k_chunk, split_k_dispatches, split_k_weight_gradient, SplitKKernel, SPLIT_K_SCRATCH_BYTES, SPLIT_K_WORKGROUPS,
};
use super::texture;
use super::tile::{ConvTile, TileKind, BLOCK_CHANNELS};
use super::tune::{choose, Rows};
use super::variants::{self, depthwise_vec4_fits, weight_gradient_lanes, WeightGradient, NARROW_COLUMNS};
use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::kernels::shaders::{
    CONV2D_BWD_WEIGHT, CONV2D_BWD_WEIGHT_BLOCK, CONV2D_BWD_WEIGHT_DEPTHWISE_VEC4, CONV2D_BWD_WEIGHT_MM,
    CONV2D_BWD_WEIGHT_NARROW,
};
use crate::kernels::u32_of;
use crate::shape::{Conv2dGeom, DType};

/// The gpu family's split-K target: thousands of workgroups, so that a GPU with 100+ compute
/// units holds several per unit (512 would leave an H100's 132 SMs ~4 workgroups each, each
/// walking thousands of pixels alone).
pub(super) const BLOCK_SPLIT_K_WORKGROUPS: usize = 4096;

/// dw (Cout, Cin/g, KH, KW) from dy and x. Returns the dispatches to run in order: the split-K
/// partial products and their reduction (one dispatch when one chunk covers every pixel).
/// `operands` is F16 where dy and x hold f16 values (mixed precision's): the gpu family's large
/// tiles may then run on cooperative matrices. `kept` is the plan's record of inputs its
/// forwards left packed (texture kernels).
pub fn backward_weight(
    gpu: &Gpu,
    g: &Conv2dGeom,
    b: &WeightGradientBuffers<'_>,
    operands: DType,
    kept: Option<&texture::KeptOperands>,
) -> Result<Vec<Dispatch>> {
    match variants::weight_gradient(gpu.into(), g, operands).kernel {
        WeightGradient::DepthwiseVec4 => backward_weight_depthwise_vec4(gpu, g, None, b),
        WeightGradient::Narrow => backward_weight_narrow(gpu, g, None, b),
        WeightGradient::Swapped(s) => {
            // dw^T as the weight gradient of the conv from dy to x, then transposed into place
            let t = gpu.scratch_buffer("conv2d transposed weight gradient", (g.cout * g.cin * 4) as u64)?;
            let swapped = WeightGradientBuffers {
                dy: b.x,
                x: b.dy,
                dw: &t,
            };
            let mut out = backward_weight(gpu, &s, &swapped, operands, None)?;
            out.push(backward_data::transpose_weights(
                gpu,
                &s,
                [(0, 1, 1), (0, 1, 1)],
                &t,
                b.dw,
            )?);
            Ok(out)
        }
        WeightGradient::Texture { columns, tiles } => {
            choose(gpu, &tiles.tuner, g, Rows::Outputs, &tiles.candidates, |g, t| {
                texture::backward_weight(gpu, g, t, columns, None, b, kept)
            })
        }
        WeightGradient::Tiled(tiles) => choose(gpu, &tiles.tuner, g, Rows::Outputs, &tiles.candidates, |g, t| {
            backward_weight_tiled(gpu, g, t, None, b)
        }),
    }
}

/// The weight gradient of a depthwise conv whose rows are whole vec4s through
/// conv2d_bwd_weight_depthwise_vec4: split-K over chunks of each channel's output positions
/// (`chunk` of them, rounded up to a multiple of 4, or enough chunks to fill the device), then
/// split_k_reduce where there are several.
pub fn backward_weight_depthwise_vec4(
    gpu: &Gpu,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    backward_weight_depthwise_vec4_with(gpu, &CONV2D_BWD_WEIGHT_DEPTHWISE_VEC4, g, chunk, b)
}

/// `backward_weight_depthwise_vec4` through `kernel` (conv2d_bwd_weight_depthwise_vec4, or a
/// test's altered copy of it).
pub fn backward_weight_depthwise_vec4_with(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    if !depthwise_vec4_fits(g) {
        return Err(Error::arg(
            "conv2d weight gradient",
            "kernel",
            format!("{g:?}: conv2d_bwd_weight_depthwise_vec4 takes depthwise convs with W and OW multiples of 4"),
        ));
    }
    // a GPU's 64 lanes over consecutive units and thousands of workgroups; a CPU driver's one
    // SIMD vector walking runs of units, a few hundred workgroups
    let lanes = variants::depthwise_vec4_lanes(gpu.into()) as usize;
    let carry = lanes < 64;
    let target = if carry {
        SPLIT_K_WORKGROUPS
    } else {
        BLOCK_SPLIT_K_WORKGROUPS
    };
    let pixels = g.n * g.oh * g.ow;
    let chunk = split_k_chunk(pixels, g.cout, target, usize::MAX, chunk).next_multiple_of(4);
    let mut constants = geometry_constants(g);
    constants.extend(tap_window_constants(g));
    constants.push(("WG", lanes as f64));
    constants.push(("CARRY", f64::from(u8::from(carry))));
    let pipeline = gpu.pipeline(kernel, &constants)?;
    // the channels over x, folded into z past the device's 65,535 workgroups a dimension
    let across = g.cout.min(65_535);
    let grid = [
        u32_of("conv2d depthwise channels", across)?,
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d depthwise channels", g.cout.div_ceil(across))?,
    ];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &b.resources())
}

/// `backward_weight` through the split-K kernel with an explicit tile and, optionally, a fixed
/// number of pixels per chunk.
pub fn backward_weight_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    match tile.kind {
        TileKind::Block => return backward_weight_block(gpu, &CONV2D_BWD_WEIGHT_BLOCK, g, chunk, b),
        TileKind::Mm | TileKind::CoopMm => return backward_weight_mm(gpu, &CONV2D_BWD_WEIGHT_MM, g, tile, chunk, b),
        _ => {}
    }
    let kernel = SplitKKernel {
        shader: &CONV2D_BWD_WEIGHT,
        tile,
        lanes: weight_gradient_lanes(g),
        overrides: &[],
        params: &sizes(g)?,
    };
    split_k_weight_gradient(gpu, g, &kernel, chunk, &b.resources())
}

/// The gpu family's weight gradient through `kernel` (conv2d_bwd_weight_block; its tests pass
/// copies with a barrier removed): 64 x 64 blocks of dw staged
/// through workgroup memory, split over chunks of the output pixels so that about
/// `BLOCK_SPLIT_K_WORKGROUPS` workgroups run (each at least `MIN_CHUNK` pixels, the partial sums
/// at most `SPLIT_K_SCRATCH_BYTES`), or over chunks of `chunk` pixels.
pub fn backward_weight_block(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let groups = g.args.groups;
    let cols = (g.cin / groups) * g.kh * g.kw;
    let col_blocks = cols.div_ceil(BLOCK_CHANNELS);
    let channel_blocks = groups * (g.cout / groups).div_ceil(BLOCK_CHANNELS);
    let pixels = g.n * g.oh * g.ow;
    let most = SPLIT_K_SCRATCH_BYTES / (g.cout * cols * 4).max(1);
    let chunk = split_k_chunk(
        pixels,
        col_blocks * channel_blocks,
        BLOCK_SPLIT_K_WORKGROUPS,
        most,
        chunk,
    );
    let pipeline = gpu.pipeline(kernel, &geometry_constants(g))?;
    let grid = [
        u32_of("conv2d weight column blocks", col_blocks)?,
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d output channel blocks", channel_blocks)?,
    ];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &b.resources())
}

/// The weight gradient of a conv whose groups have at most 32 weight columns (depthwise, few
/// input channels per group): one workgroup per output channel and chunk of output pixels,
/// each lane accumulating every column (conv2d_bwd_weight_narrow), optionally with a fixed
/// number of pixels per chunk.
pub fn backward_weight_narrow(
    gpu: &Gpu,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let cin_g = g.cin / g.args.groups;
    let cols = cin_g * g.kh * g.kw;
    if cols > NARROW_COLUMNS {
        return Err(Error::arg(
            "conv2d weight gradient",
            "weight columns per group",
            format!("{cols} (Cin/groups x KH x KW) is more than the narrow kernel's {NARROW_COLUMNS}"),
        ));
    }
    let pixels = g.n * g.oh * g.ow;
    let chunk = split_k_chunk(pixels, g.cout, SPLIT_K_WORKGROUPS, usize::MAX, chunk);
    let mut constants = geometry_constants(g);
    constants.push(("CIN_G", cin_g as f64));
    let pipeline = gpu.pipeline(&CONV2D_BWD_WEIGHT_NARROW, &constants)?;
    let grid = [
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d output channels", g.cout)?,
        1,
    ];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &b.resources())
}
