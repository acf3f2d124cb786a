//! Split-K over the output pixels, shared by the weight-gradient kernels: each chunk of pixels
//! writes a slice of partial sums of dw, and split_k_reduce adds them.

use super::buffers::WeightGradientBuffers;
use super::constants::{geometry_constants, tap_window_constants};
use super::tile::ConvTile;
use crate::device::{grid_1d, Dispatch, Gpu, Resource, Scratch};
use crate::error::Result;
use crate::kernels::shaders::SPLIT_K_REDUCE;
use crate::kernels::{groups_for, u32_of};
use crate::shape::Conv2dGeom;

/// The split-K reduction gives each workgroup at least this many output pixels, and splits until
/// about `SPLIT_K_WORKGROUPS` workgroups run (enough to fill a GPU; more only adds partials).
pub(super) const MIN_CHUNK: usize = 256;
pub(super) const SPLIT_K_WORKGROUPS: usize = 512;
/// The most bytes of split-K partial sums the block and large-tile weight gradients write (each
/// chunk adds a slice as large as dw).
pub(super) const SPLIT_K_SCRATCH_BYTES: usize = 64 << 20;

/// Output pixels per split-K chunk: the given number, or enough chunks that about `target`
/// workgroups run when each chunk has `per_chunk` of them, each chunk at least `MIN_CHUNK`
/// pixels and at most `most` chunks.
pub(super) fn split_k_chunk(
    pixels: usize,
    per_chunk: usize,
    target: usize,
    most: usize,
    chunk: Option<usize>,
) -> usize {
    let chunk = chunk.unwrap_or_else(|| {
        let want = target.div_ceil(per_chunk.max(1));
        let by_work = pixels.div_ceil(MIN_CHUNK);
        pixels.div_ceil(want.min(by_work.max(1)).min(most).max(1))
    });
    chunk.clamp(1, pixels.max(1))
}

/// The weight-gradient dispatches of a split-K kernel: `pipeline` over `grid` (its Params:
/// `params`, then the chunk) writes `b.dw` itself when there is one chunk, else one slice of
/// partial sums per chunk that `split_k_reduce` adds. It binds `b.dy`, `b.x`, then the output.
pub(super) fn split_k_dispatches(
    gpu: &Gpu,
    g: &Conv2dGeom,
    pipeline: std::sync::Arc<crate::device::Pipeline>,
    chunk: usize,
    grid: [u32; 3],
    params: &[u32],
    b: &WeightGradientBuffers<'_, Resource<'_>>,
) -> Result<Vec<Dispatch>> {
    let dw = b.dw;
    let bind = |out| [b.dy, b.x, Resource::Buffer(out)];
    let chunks = (g.n * g.oh * g.ow).div_ceil(chunk);
    let len = g.cout * (g.cin / g.args.groups) * g.kh * g.kw;
    let mut params = params.to_vec();
    params.push(u32_of("conv2d weight-gradient chunk", chunk)?);
    if chunks == 1 {
        return Ok(vec![Dispatch::with_resources(gpu, pipeline, &params, &bind(dw), grid)?]);
    }
    let part = gpu.shared_scratch(
        Scratch::SplitPartials,
        "conv2d weight-gradient partial sums",
        (chunks * len * 4) as u64,
    )?;
    let partial = Dispatch::with_resources(gpu, pipeline, &params, &bind(&part), grid)?;
    let reduce_pipeline = gpu.pipeline(&SPLIT_K_REDUCE, &[("WG", 256.0)])?;
    let reduce = Dispatch::new(
        gpu,
        reduce_pipeline,
        &[u32_of("conv2d weight gradient", len)?, chunks as u32],
        &[&part, dw],
        grid_1d(groups_for("split-K reduction", len, 256)?),
    )?
    .moving((chunks + 1) * len * 4);
    Ok(vec![partial, reduce])
}

/// A split-K weight-gradient kernel with lanes over weight columns (conv2d_bwd_weight or its
/// texture twin): `shader` with the register tile `tile` over `lanes` column lanes per block of
/// output channels, the pipeline constants `overrides` on top of the geometry's and the tile's,
/// and `params` the kernel's Params before the chunk.
pub(super) struct SplitKKernel<'a> {
    pub shader: &'static crate::device::Shader,
    pub tile: ConvTile,
    pub lanes: usize,
    pub overrides: &'a [(&'static str, f64)],
    pub params: &'a [u32],
}

/// The dispatches of the split-K weight-gradient kernel `k`, over chunks of `chunk` output
/// pixels or the default, binding `b`.
pub(super) fn split_k_weight_gradient(
    gpu: &Gpu,
    g: &Conv2dGeom,
    k: &SplitKKernel<'_>,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_, Resource<'_>>,
) -> Result<Vec<Dispatch>> {
    let SplitKKernel {
        shader,
        tile,
        lanes,
        overrides,
        params,
    } = *k;
    tile.check_backward()?;
    let groups = g.args.groups;
    let col_blocks = lanes.div_ceil(tile.wg).max(1);
    let channel_blocks = groups * (g.cout / groups).div_ceil(tile.ocb);
    let pixels = g.n * g.oh * g.ow;
    let chunk = split_k_chunk(
        pixels,
        col_blocks * channel_blocks,
        SPLIT_K_WORKGROUPS,
        usize::MAX,
        chunk,
    );
    let mut constants = geometry_constants(g);
    constants.push(("WG", tile.wg as f64));
    constants.push(("OCB", tile.ocb as f64));
    constants.extend(tap_window_constants(g));
    constants.extend_from_slice(overrides);
    let pipeline = gpu.pipeline(shader, &constants)?;
    let grid = [
        u32_of("conv2d weight column blocks", col_blocks)?,
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d output channel blocks", channel_blocks)?,
    ];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, params, b)
}
