//! The conv weight gradient: dw from dy and x, split over chunks of the output pixels (split-K)
//! and reduced.

use super::backward_data;
use super::constants::{geometry_constants, sizes, tap_window, WG};
use super::split_k::{split_k_chunk, split_k_dispatches, split_k_weight_gradient, SPLIT_K_WORKGROUPS};
use super::texture::{self, swapped};
use super::tile::{ConvTile, TileKind, BLOCK_CHANNELS};
use super::tune::{choose, Rows};
use crate::device::{Dispatch, Gpu, Resource};
use crate::error::{Error, Result};
use crate::kernels::shaders::{CONV2D_BWD_WEIGHT, CONV2D_BWD_WEIGHT_BLOCK, CONV2D_BWD_WEIGHT_NARROW};
use crate::kernels::u32_of;
use crate::shape::Conv2dGeom;

/// Invocations of conv2d_bwd_weight per block of output channels: one per live tap and run of
/// `BWD_WEIGHT_COLUMNS` input channels of a group (its columns).
pub(super) fn weight_gradient_lanes(g: &Conv2dGeom) -> usize {
    let [(y0, y1), (x0, x1)] = tap_window(g);
    (g.cin / g.args.groups).div_ceil(BWD_WEIGHT_COLUMNS) * (y1 - y0) * (x1 - x0)
}

/// Weight columns per group (Cin/g * KH * KW) up to which the weight gradient runs
/// conv2d_bwd_weight_narrow (its MAX_COLS): conv2d_bwd_weight spreads the columns over the
/// lanes, 4 per invocation, so a depthwise 3x3 (9 columns) would leave almost every lane idle.
pub(super) const NARROW_COLUMNS: usize = 32;
/// Weight columns per invocation of conv2d_bwd_weight (its KC).
pub(super) const BWD_WEIGHT_COLUMNS: usize = 4;
/// The gpu family's split-K target: thousands of workgroups, so that a GPU with 100+ compute
/// units holds several per unit (512 would leave an H100's 132 SMs ~4 workgroups each, each
/// walking thousands of pixels alone).
pub(super) const BLOCK_SPLIT_K_WORKGROUPS: usize = 4096;
/// The most bytes of split-K partial sums the block weight gradient writes (each chunk adds a
/// slice as large as dw).
pub(super) const SPLIT_K_SCRATCH_BYTES: usize = 64 << 20;

/// dw (Cout, Cin/g, KH, KW) from dy and x. Returns the dispatches to run in order: the split-K
/// partial products and their reduction (one dispatch when one chunk covers every pixel).
/// `kept` is the plan's record of inputs its forwards left packed (texture kernels).
pub fn backward_weight(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
    kept: Option<&texture::KeptOperands>,
) -> Result<Vec<Dispatch>> {
    let cols = (g.cin / g.args.groups) * g.kh * g.kw;
    let texture = texture::weight_gradient_uses_texture(gpu, g);
    // the texture kernel first: resnet_mini's 16- and 32-column projections (4 and 8 texel
    // columns) took 3.2-3.9 ms each through the narrow kernel, ~0.8 through textures
    if cols <= NARROW_COLUMNS && !texture {
        return backward_weight_narrow(gpu, g, None, dy, x, dw);
    }
    if let Some(s) = swapped(gpu, g) {
        // dw^T as the weight gradient of the conv from dy to x, then transposed into place
        let t = gpu.scratch_buffer("conv2d transposed weight gradient", (g.cout * g.cin * 4) as u64)?;
        let mut out = backward_weight(gpu, &s, x, dy, &t, None)?;
        out.push(backward_data::transpose_weights(
            gpu,
            &s,
            [(0, 1, 1), (0, 1, 1)],
            &t,
            dw,
        )?);
        return Ok(out);
    }
    // workgroups no wider than the (live) columns they cover, and of 32 rather than 64 lanes
    // where that leaves fewer lanes idle (ResNet's 64-channel 3x3: 144 lanes in 160, not 192;
    // r18_l1 weight gradient ~2450 -> ~2050 ms on lavapipe, Zen 3)
    let columns = texture::weight_gradient_columns(g);
    let lanes = if texture {
        texture::weight_gradient_lanes(g, columns)
    } else {
        weight_gradient_lanes(g)
    };
    let idle = |wg: usize| lanes.div_ceil(wg) * wg - lanes;
    let wg = if texture && lanes <= TEXTURE_ONE_WORKGROUP {
        lanes.next_multiple_of(gpu.info().simd_width.clamp(4, 64) as usize)
    } else if lanes <= WG / 2 {
        lanes.next_power_of_two().max(16)
    } else if idle(WG / 2) < idle(WG) {
        WG / 2
    } else {
        WG
    };
    let rows = g.cout / g.args.groups;
    let mut candidates = ConvTile::candidates_after(ConvTile::register(rows, wg), rows);
    if ConvTile::block_first(gpu, rows) {
        candidates.insert(0, ConvTile::BLOCK);
    }
    if texture {
        return choose(gpu, "conv2d_bwd_weight_tex", g, Rows::Outputs, &candidates, |g, t| {
            texture::backward_weight(gpu, g, t, columns, None, dy, x, dw, kept)
        });
    }
    choose(gpu, "conv2d_bwd_weight", g, Rows::Outputs, &candidates, |g, t| {
        backward_weight_tiled(gpu, g, t, None, dy, x, dw)
    })
}

/// Column lanes up to which conv2d_bwd_weight_tex runs them all in one workgroup of whole
/// SIMD groups (8 lanes on lavapipe): a CPU driver runs a workgroup as a loop over its SIMD
/// groups, so a power of two only idles lanes (resnet_mini's 16-channel 3x3: 18 lanes in 32;
/// r18_l1: 72 in 96). Wider, the 32- or 64-lane blocks win: fewer column blocks split the
/// pixels into more chunks (BENCHMARKS.md, "Measurements moved out of doc comments").
const TEXTURE_ONE_WORKGROUP: usize = 96;

/// `backward_weight` through the split-K kernel with an explicit tile and, optionally, a fixed
/// number of pixels per chunk.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    chunk: Option<usize>,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if tile.kind == TileKind::Block {
        return backward_weight_block(gpu, &CONV2D_BWD_WEIGHT_BLOCK, g, chunk, dy, x, dw);
    }
    let inputs = [Resource::Buffer(dy), Resource::Buffer(x)];
    let lanes = weight_gradient_lanes(g);
    split_k_weight_gradient(
        gpu,
        g,
        &CONV2D_BWD_WEIGHT,
        tile,
        lanes,
        &[],
        chunk,
        &sizes(g)?,
        &inputs,
        dw,
    )
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
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
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
    let inputs = [Resource::Buffer(dy), Resource::Buffer(x)];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &inputs, dw)
}

/// The weight gradient of a conv whose groups have at most 32 weight columns (depthwise, few
/// input channels per group): one workgroup per output channel and chunk of output pixels,
/// each lane accumulating every column (conv2d_bwd_weight_narrow), optionally with a fixed
/// number of pixels per chunk.
pub fn backward_weight_narrow(
    gpu: &Gpu,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
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
    let inputs = [Resource::Buffer(dy), Resource::Buffer(x)];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &inputs, dw)
}
