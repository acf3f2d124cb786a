//! The conv weight gradient: dw from dy and x, split over chunks of the output pixels (split-K)
//! and reduced.

use super::*;

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
/// The split-K reduction gives each workgroup at least this many output pixels, and splits until
/// about `SPLIT_K_WORKGROUPS` workgroups run (enough to fill a GPU; more only adds partials).
pub(super) const MIN_CHUNK: usize = 256;
pub(super) const SPLIT_K_WORKGROUPS: usize = 512;
/// The gpu family's split-K target: thousands of workgroups, so that a GPU with 100+ compute
/// units holds several per unit (512 would leave an H100's 132 SMs ~4 workgroups each, each
/// walking thousands of pixels alone).
pub(super) const BLOCK_SPLIT_K_WORKGROUPS: usize = 4096;
/// The most bytes of split-K partial sums the block weight gradient writes (each chunk adds a
/// slice as large as dw).
pub(super) const SPLIT_K_SCRATCH_BYTES: usize = 64 << 20;

/// Whether the weight gradient of `g` reads x packed in `g`'s own texture layout and dy packed
/// (the texture kernel, not on the swapped pointwise conv): then a training plan keeps the
/// forward's packing of x, and a stride-1 input gradient's packing of dy, for it
/// (`texture::KeptOperands`).
pub(super) fn weight_gradient_reads_packed_operands(gpu: &Gpu, g: &Conv2dGeom) -> bool {
    texture::weight_gradient_uses_texture(gpu, g) && swapped(gpu, g).is_none()
}

/// The swapped pointwise conv whose weight gradient computes dw^T for `g`, where that runs.
fn swapped(gpu: &Gpu, g: &Conv2dGeom) -> Option<Conv2dGeom> {
    texture::swapped_pointwise(g)
        .filter(|s| texture::weight_gradient_uses_texture(gpu, g) && texture::weight_gradient_uses_texture(gpu, s))
}

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
/// `params`, then the chunk) writes dw itself when there is one chunk, else one slice of partial
/// sums per chunk that `split_k_reduce` adds. `inputs` are its bindings before the output.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_k_dispatches(
    gpu: &Gpu,
    g: &Conv2dGeom,
    pipeline: std::sync::Arc<crate::device::Pipeline>,
    chunk: usize,
    grid: [u32; 3],
    params: &[u32],
    inputs: &[Resource],
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let bind = |out| {
        let mut r = inputs.to_vec();
        r.push(Resource::Buffer(out));
        r
    };
    let chunks = (g.n * g.oh * g.ow).div_ceil(chunk);
    let len = g.cout * (g.cin / g.args.groups) * g.kh * g.kw;
    let mut params = params.to_vec();
    params.push(u32_of("conv2d weight-gradient chunk", chunk)?);
    if chunks == 1 {
        return Ok(vec![Dispatch::with_resources(gpu, pipeline, &params, &bind(dw), grid)?]);
    }
    let part = gpu.scratch_buffer("conv2d weight-gradient partial sums", (chunks * len * 4) as u64)?;
    let partial = Dispatch::with_resources(gpu, pipeline, &params, &bind(&part), grid)?;
    let reduce_pipeline = gpu.pipeline(&SPLIT_K_REDUCE, &[("WG", 256.0)])?;
    let reduce = Dispatch::new(
        gpu,
        reduce_pipeline,
        &[u32_of("conv2d weight gradient", len)?, chunks as u32],
        &[&part, dw],
        grid_1d(groups_for("split-K reduction", len, 256)?),
    )?;
    Ok(vec![partial, reduce])
}

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

/// The dispatches of a split-K weight-gradient kernel with lanes over weight columns
/// (conv2d_bwd_weight or its texture twin): `tile` over `lanes` column lanes per block of
/// output channels, chunks of `chunk` output pixels or the default; `params` are the kernel's
/// Params before the chunk, `inputs` its bindings before the output.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_k_weight_gradient(
    gpu: &Gpu,
    g: &Conv2dGeom,
    shader: &'static crate::device::Shader,
    tile: ConvTile,
    lanes: usize,
    overrides: &[(&'static str, f64)],
    chunk: Option<usize>,
    params: &[u32],
    inputs: &[Resource],
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
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
    split_k_dispatches(gpu, g, pipeline, chunk, grid, params, inputs, dw)
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
