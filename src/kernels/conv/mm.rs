//! The gpu family's large-tile conv forward, conv2d_fwd_mm: an implicit GEMM in blocks of 128
//! (or 64) output channels x 128 output pixels per workgroup of 256 invocations, 8 x 8 (or
//! 4 x 8) outputs per invocation, K in double-buffered chunks of 16 (issue 38; the design of
//! llama.cpp's ggml-vulkan conv2d_mm). Where its grid fills the GPU it is the forward's default
//! on the gpu family, elsewhere a tuner candidate after the 64 x 64 block tile
//! (`variants::forward`, `mm_tiles`). With statistics it writes those of its 128-pixel blocks,
//! which a second dispatch condenses into `STATS_BLOCK` blocks (as the block tile's 64-pixel
//! ones). Where even the large tile's grid leaves a GPU short of work (the 14x14 and 7x7 stages
//! at small batches), the forward splits K (`TileKind::MmSplit`): each slice's raw sums go to
//! scratch, and conv2d_split_k_epilogue adds them, applies the epilogue and writes the
//! statistics in `STATS_BLOCK` blocks itself.

use super::buffers::{condense_stats, epilogue_bindings, ForwardBuffers, WeightGradientBuffers};
use super::constants::{epilogue_constants, forward_grid, geometry_constants, sizes, STATS_BLOCK};
use super::cooperative::{large_tile_kernel, splice_large_tiles};
use super::device::ConvDevice;
use super::phases::{phase_axis, PhaseAxis};
use super::split_k::{split_k_chunk, split_k_dispatches, SPLIT_K_SCRATCH_BYTES};
use super::tile::{ConvTile, TileKind, MM_SPLIT_MAX};
use crate::device::{grid_1d, Dispatch, Gpu, KernelFamily, Scratch, Shader};
use crate::error::Result;
use crate::kernels::shaders::{variant, CONV2D_SPLIT_K_EPILOGUE};
use crate::kernels::{groups_for, u32_of};
use crate::shape::{Conv2dGeom, DType, Epilogue};

/// Output pixels per workgroup of conv2d_fwd_mm (its BN).
pub(super) const MM_PIXELS: usize = 128;

/// The fewest output channels per group for which the gpu family offers the large tiles: a
/// narrower group leaves half or more of a 64-channel tile's rows idle (the block tile and the
/// register tiles serve it).
pub(super) const MM_MIN_ROWS: usize = 64;

/// Compute units assumed for the default: `GpuInfo` has no count of them (neither WebGPU nor
/// wgpu reports it), so the table takes a large GPU's, an H100's or H200's 132 SMs (the GPU
/// convoy has run on). A large tile is the default where its grid gives every unit 2
/// workgroups (llama.cpp's rule for its 128 x 128 conv tile); on a smaller GPU that only keeps
/// the block tile first on a few more mid-sized shapes, on a larger one (a B200's 148 SMs) it
/// makes the large tile the default on a few grids just short of 2 per unit; the tuner times
/// both either way.
pub(super) const GPU_UNITS: usize = 132;

/// Bytes of workgroup memory the large tile `tile` takes: in f32, 2 stages of 16 K rows of
/// `ocb` weights and of `MM_PIXELS` pixels (32 KiB for 128 x 128, the limit of lavapipe and
/// Apple GPUs); on cooperative matrices (conv2d_coop_tile), 2 f16 stages of `ocb` rows of 24
/// and of 16 rows of 136, and 8 result areas of 16 x 20 f32 (31,232 bytes for 128 x 128).
pub(super) fn mm_workgroup_bytes(tile: &ConvTile) -> usize {
    match tile.kind {
        TileKind::CoopMm => 2 * tile.ocb * 24 * 2 + 2 * 16 * 136 * 2 + 8 * 16 * 20 * 4,
        _ => 2 * 16 * (tile.ocb + MM_PIXELS) * 4,
    }
}

/// The large tiles the gpu family's forward offers for `g` (the default first), and whether
/// the first is the forward's default: none without the gpu family, for groups of fewer than
/// `MM_MIN_ROWS` channels, or where the device's workgroup memory is too small (WebGPU's
/// default 16 KiB); 128 x 128 for groups wider than 64 channels, then 64 x 128. The first is
/// the default where its grid has at least 2 workgroups per compute unit (`GPU_UNITS`), else
/// the block tile stays first and these go to the tuner.
pub(super) fn mm_tiles<'a>(dev: impl Into<ConvDevice<'a>>, g: &Conv2dGeom) -> (Vec<ConvTile>, bool) {
    let tiles = mm_tile_set(dev.into(), g.cout / g.args.groups);
    let first = tiles.first().is_some_and(|t| mm_workgroups(g, t) >= 2 * GPU_UNITS);
    (tiles, first)
}

/// The workgroups of the large tile `tile`'s forward grid over `g`, unsplit.
fn mm_workgroups(g: &Conv2dGeom, tile: &ConvTile) -> usize {
    let rows = g.cout / g.args.groups;
    (g.n * g.oh * g.ow).div_ceil(MM_PIXELS) * g.args.groups * rows.div_ceil(tile.ocb)
}

/// The fewest chunks of K (16 rows each) a slice of a split forward runs: a slice also loads
/// its first chunk before any multiply-add and stores a raw sum per output (which the second
/// pass reads back), so fewer would spend a large share of its time on those.
pub(super) const MM_SPLIT_MIN_CHUNKS: usize = 8;

/// The large tile `tile` split over K so that its forward grid over `g` gives every compute
/// unit (`GPU_UNITS`) 2 workgroups: the fewest slices that do, at most `MM_SPLIT_MAX`, each of
/// at least `MM_SPLIT_MIN_CHUNKS` chunks, their raw sums at most `SPLIT_K_SCRATCH_BYTES`; the
/// count is the launcher's (K's chunks shared out evenly, no slice empty). None where the grid
/// fills the GPU unsplit or fewer than 2 slices are possible.
pub(super) fn mm_split_tile(g: &Conv2dGeom, tile: ConvTile) -> Option<ConvTile> {
    let workgroups = mm_workgroups(g, &tile).max(1);
    let chunks = split_chunks(g);
    let outputs = (g.n * g.cout * g.oh * g.ow * 4).max(1);
    let most = (chunks / MM_SPLIT_MIN_CHUNKS)
        .min(MM_SPLIT_MAX)
        .min(SPLIT_K_SCRATCH_BYTES / outputs);
    let want = (2 * GPU_UNITS).div_ceil(workgroups).min(most);
    let slices = chunks.div_ceil(chunks.div_ceil(want.max(1)));
    (workgroups < 2 * GPU_UNITS && slices >= 2).then(|| tile.split(slices))
}

/// The chunks of 16 K rows of `g`'s forward (a group's input channels x taps).
fn split_chunks(g: &Conv2dGeom) -> usize {
    ((g.cin / g.args.groups) * g.kh * g.kw).div_ceil(16)
}

/// The large tiles for `rows` tile rows per group on `dev` (128 x 128 first): none without the
/// gpu family, for fewer than `MM_MIN_ROWS` rows, or in the browser (compiling conv2d_fwd_mm
/// lost the device of headless Chromium's WebGPU on lavapipe in the browser test; the browser
/// keeps the block tiles); 128 x 128 only for more than 64 rows; each only where the device's
/// workgroup memory holds its stages.
fn mm_tile_set(dev: ConvDevice<'_>, rows: usize) -> Vec<ConvTile> {
    if dev.policy.family != KernelFamily::Gpu || rows < MM_MIN_ROWS || cfg!(target_arch = "wasm32") {
        return Vec::new();
    }
    let memory = dev.info.limits.max_compute_workgroup_storage_size as usize;
    [ConvTile::MM_128, ConvTile::MM_64]
        .into_iter()
        .filter(|t| (t.ocb == 64 || rows > 64) && mm_workgroup_bytes(t) <= memory)
        .collect()
}

/// That `tile` is one of the large tiles (in f32 or on cooperative matrices), which `kernel`
/// takes, and that the device's workgroup memory holds its stages.
fn check_mm_tile(gpu: &Gpu, tile: ConvTile, kernel: &str) -> Result<()> {
    tile.check()?;
    if !tile.is_large() {
        return Err(tile.refuse(&format!("{kernel} takes the large tiles")));
    }
    let bytes = mm_workgroup_bytes(&tile);
    let memory = gpu.limits().max_compute_workgroup_storage_size as usize;
    if bytes > memory {
        return Err(tile.refuse(&format!(
            "it needs {bytes} bytes of workgroup memory, the device has {memory}"
        )));
    }
    Ok(())
}

/// `mm_tiles` of `g` among the forward's `candidates` (the block tile's first), their
/// cooperative-matrix forms before them for `storage` f16 (`splice_large_tiles`): first where
/// their grid fills the GPU (and `why` says so), else right after the block tile (and `why`
/// says they are there for the tuner). Whether it offered any.
pub(super) fn offer_mm_tiles(
    dev: ConvDevice<'_>,
    g: &Conv2dGeom,
    storage: DType,
    candidates: &mut Vec<ConvTile>,
    why: &mut String,
) -> bool {
    let (mut tiles, fills) = mm_tiles(dev, g);
    let rows = g.cout / g.args.groups;
    // where the first does not fill the GPU, it split over K first, if K allows
    let split = tiles.first().and_then(|&t| mm_split_tile(g, t));
    if let Some(t) = split {
        tiles.insert(0, t);
    }
    let first = fills || split.is_some();
    splice_large_tiles(dev, candidates, usize::from(!first), &tiles, storage);
    match split {
        Some(t) => {
            *why = format!(
                "gpu family, {rows} channels per group, large tiles split over K ({}) filling {GPU_UNITS} compute units twice",
                t.slices()
            )
        }
        None if fills => {
            *why = format!("gpu family, {rows} channels per group, large tiles filling {GPU_UNITS} compute units twice")
        }
        None if !tiles.is_empty() => why.push_str("; large tiles for the tuner"),
        None => {}
    }
    !tiles.is_empty()
}

/// y = act(conv2d(x, w) [+ bias] [+ residual]) through `kernel` (conv2d_fwd_mm; its tests pass
/// copies with a barrier removed) in the large tile `tile` (`ConvTile::MM_128` or `MM_64`, or
/// either split over K); with `b.stats`, the statistics of its 128-pixel blocks into a scratch
/// buffer and a second dispatch that condenses them into `b.stats`. Split, the raw sums of its
/// slices into scratch and `split_k_epilogue` after it.
pub fn forward_mm(
    gpu: &Gpu,
    kernel: &'static Shader,
    g: &Conv2dGeom,
    tile: ConvTile,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    check_mm_tile(gpu, tile, "conv2d_fwd_mm")?;
    if let TileKind::MmSplit { .. } = tile.kind {
        return forward_mm_split(gpu, [kernel, &CONV2D_SPLIT_K_EPILOGUE], g, tile, epi, storage, b);
    }
    let fine = match b.stats {
        Some(_) => {
            let bytes = (g.n * g.oh * g.ow).div_ceil(MM_PIXELS) * g.cout * 2 * 4;
            Some(gpu.shared_scratch(
                Scratch::FineStats,
                "conv2d statistics of 128-pixel blocks",
                bytes as u64,
            )?)
        }
        None => None,
    };
    let mut constants = mm_constants(g, tile);
    constants.extend(epilogue_constants(epi, b.bias, b.residual));
    constants.push(("STATS", f64::from(u8::from(fine.is_some()))));
    let pipeline = gpu.pipeline(large_tile_kernel(gpu, kernel, tile, Some(storage))?, &constants)?;
    let grid = forward_grid(g, MM_PIXELS, tile.ocb)?;
    let [x, w, bias, residual, y, partials, y4, res4] = epilogue_bindings(gpu, b, fine.as_ref());
    let none = gpu.dummy_rw();
    let conv = Dispatch::new(
        gpu,
        pipeline,
        &mm_params(g, split_chunks(g))?,
        &[x, w, bias, residual, y, partials, y4, res4, none, none],
        grid,
    )?;
    match (fine, b.stats) {
        (Some(fine), Some(stats)) => Ok(vec![conv, condense_stats(gpu, g, MM_PIXELS, &fine, stats)?]),
        _ => Ok(vec![conv]),
    }
}

/// The override constants of conv2d_fwd_mm in `tile` over `g` but the epilogue's and STATS:
/// the geometry, BM, VEC4, the aligned variants (FULL_TILES: whole tiles in every dimension;
/// UNPADDED: every tap inside the image, `taps_inside`), SPLIT_K.
fn mm_constants(g: &Conv2dGeom, tile: ConvTile) -> Vec<(&'static str, f64)> {
    let mut constants = geometry_constants(g);
    constants.push(("BM", tile.ocb as f64));
    constants.push(("VEC4", f64::from(u8::from((g.oh * g.ow).is_multiple_of(4)))));
    let kdim = (g.cin / g.args.groups) * g.kh * g.kw;
    let full = (g.cout / g.args.groups).is_multiple_of(tile.ocb)
        && kdim.is_multiple_of(16)
        && (g.n * g.oh * g.ow).is_multiple_of(MM_PIXELS);
    constants.push(("FULL_TILES", f64::from(u8::from(full))));
    constants.push(("UNPADDED", f64::from(u8::from(taps_inside(g)))));
    constants.push(("SPLIT_K", f64::from(u8::from(tile.slices() > 1))));
    constants
}

/// Whether every tap of every output pixel of `g` lies inside its input: no padding, and the
/// last output's window ends inside the image. Not implied by the padding alone: a stride
/// phase of an input gradient run as a forward (`backward_data`'s phases) has no padding but
/// more outputs than its taps reach inside dy (its last rows read past the edge as zeros).
fn taps_inside(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    let fits = |out: usize, k: usize, i: usize, size: usize| {
        out == 0 || (out - 1) * a.stride[i] + (k.max(1) - 1) * a.dilation[i] < size
    };
    a.padding == [0, 0] && fits(g.oh, g.kh, 0, g.h) && fits(g.ow, g.kw, 1, g.w)
}

/// conv2d_fwd_mm's Params: the conv's sizes, then `kc`, the chunks of K per slice.
fn mm_params(g: &Conv2dGeom, kc: usize) -> Result<Vec<u32>> {
    let mut params = sizes(g)?.to_vec();
    params.push(u32_of("conv2d K chunks per slice", kc)?);
    Ok(params)
}

/// `forward_mm` in the split large tile `tile` (`TileKind::MmSplit`), K's chunks shared out
/// evenly among at most its slices: `kernels[0]` (conv2d_fwd_mm) stores each slice's raw sums
/// into scratch (its grid's z runs over the slices too), then `kernels[1]`
/// (conv2d_split_k_epilogue; its tests pass a copy with its barrier removed) adds them, applies
/// the epilogue and, with `b.stats`, writes the statistics.
pub fn forward_mm_split(
    gpu: &Gpu,
    kernels: [&'static Shader; 2],
    g: &Conv2dGeom,
    tile: ConvTile,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    check_mm_tile(gpu, tile, "conv2d_fwd_mm")?;
    let [kernel, epilogue] = kernels;
    let TileKind::MmSplit { slices } = tile.kind else {
        return Err(tile.refuse("conv2d_fwd_mm's split launcher takes a split tile"));
    };
    let chunks = split_chunks(g);
    let kc = chunks.div_ceil(slices).max(1);
    let slices = chunks.div_ceil(kc).max(1);
    let outputs = g.n * g.cout * g.oh * g.ow;
    let part = gpu.shared_scratch(
        Scratch::SplitPartials,
        "conv2d split-K partial sums",
        (slices * outputs * 4) as u64,
    )?;
    let mut constants = mm_constants(g, tile);
    constants.extend(epilogue_constants(Epilogue::default(), None, None));
    constants.push(("STATS", 0.0));
    let pipeline = gpu.pipeline(large_tile_kernel(gpu, kernel, tile, Some(storage))?, &constants)?;
    let mut grid = forward_grid(g, MM_PIXELS, tile.ocb)?;
    grid[2] = u32_of("conv2d channel blocks x K slices", grid[2] as usize * slices)?;
    let (d, none) = (gpu.dummy(), gpu.dummy_rw());
    let conv = Dispatch::new(
        gpu,
        pipeline,
        &mm_params(g, kc)?,
        &[b.x, b.w, d, d, none, none, none, d, &part, &part],
        grid,
    )?;
    Ok(vec![
        conv,
        split_k_epilogue(gpu, epilogue, g, slices, &part, epi, storage, b)?,
    ])
}

/// The dispatch that adds the `slices` slices of raw sums in `part` ((slices, N, Cout, OH, OW)
/// f32) into y = act(sum [+ bias] [+ residual]) and, with `b.stats`, writes y's statistics in
/// `STATS_BLOCK` blocks (conv2d_split_k_epilogue: a workgroup per block of one channel).
#[allow(clippy::too_many_arguments)]
fn split_k_epilogue(
    gpu: &Gpu,
    kernel: &'static Shader,
    g: &Conv2dGeom,
    slices: usize,
    part: &wgpu::Buffer,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Dispatch> {
    let plane = g.oh * g.ow;
    let pixels = g.n * plane;
    let mut constants = epilogue_constants(epi, b.bias, b.residual).to_vec();
    constants.push(("STATS", f64::from(u8::from(b.stats.is_some()))));
    constants.push(("VEC4", f64::from(u8::from(plane.is_multiple_of(4)))));
    let pipeline = gpu.pipeline(variant(gpu, kernel, storage)?, &constants)?;
    let d = gpu.dummy();
    let residual = b.residual.unwrap_or(d);
    let outputs = pixels * g.cout;
    let moved = slices * outputs * 4 + outputs * storage.size() * (1 + usize::from(b.residual.is_some()));
    Ok(Dispatch::new(
        gpu,
        pipeline,
        &[
            u32_of("conv2d batch", g.n)?,
            u32_of("conv2d output channels", g.cout)?,
            u32_of("conv2d output plane", plane)?,
            slices as u32,
        ],
        &[
            part,
            part,
            b.bias.unwrap_or(d),
            residual,
            b.y,
            b.stats.unwrap_or(gpu.dummy_rw()),
            b.y,
            residual,
        ],
        grid_1d(groups_for(
            "conv2d statistics blocks",
            pixels.div_ceil(STATS_BLOCK) * g.cout,
            1,
        )?),
    )?
    .moving(moved))
}

/// Weight columns per workgroup of conv2d_bwd_weight_mm (its BN).
pub(super) const MM_COLUMNS: usize = 128;

/// Output pixels per chunk of conv2d_bwd_weight_mm's loop (its BK): the default split-K chunks
/// are multiples of it, so that no split ends inside a step.
const MM_STEP_PIXELS: usize = 16;

/// The split-K target of the large-tile weight gradient: each workgroup does 4x the block
/// tile's work per pixel, so a quarter of its workgroups (`BLOCK_SPLIT_K_WORKGROUPS`) keeps
/// the same work in flight: ~8 per compute unit of a 132-unit GPU.
pub(super) const MM_SPLIT_K_WORKGROUPS: usize = 1024;

/// The large tiles the gpu family's weight gradient offers for `g` (the default first), and
/// whether the first is the default: as `mm_tiles` for the forward (wide groups, the workgroup
/// memory, never in the browser), the grid counted with the split-K chunks the launcher would
/// give it (at least `MIN_CHUNK` pixels each).
pub(super) fn mm_weight_tiles<'a>(dev: impl Into<ConvDevice<'a>>, g: &Conv2dGeom) -> (Vec<ConvTile>, bool) {
    let tiles = mm_tile_set(dev.into(), g.cout / g.args.groups);
    let first = tiles.first().is_some_and(|t| {
        let (blocks, chunks) = mm_weight_grid(g, t, None);
        blocks * chunks >= 2 * GPU_UNITS
    });
    (tiles, first)
}

/// conv2d_bwd_weight_mm's blocks of dw (column blocks x channel blocks) in `tile` and its
/// split-K chunks of output pixels (`chunk` each, or the default: about
/// `MM_SPLIT_K_WORKGROUPS` workgroups, each chunk a multiple of 16 pixels and at least
/// `MIN_CHUNK`, the partial sums at most `SPLIT_K_SCRATCH_BYTES`); and the chunk.
fn mm_weight_split(g: &Conv2dGeom, tile: &ConvTile, chunk: Option<usize>) -> ([usize; 2], usize) {
    let groups = g.args.groups;
    let cols = (g.cin / groups) * g.kh * g.kw;
    let blocks = [cols.div_ceil(MM_COLUMNS), groups * (g.cout / groups).div_ceil(tile.ocb)];
    let pixels = g.n * g.oh * g.ow;
    let most = SPLIT_K_SCRATCH_BYTES / (g.cout * cols * 4).max(1);
    let chunk = match chunk {
        Some(c) => c.clamp(1, pixels.max(1)),
        None => split_k_chunk(pixels, blocks[0] * blocks[1], MM_SPLIT_K_WORKGROUPS, most, None)
            .next_multiple_of(MM_STEP_PIXELS)
            .min(pixels.max(1)),
    };
    (blocks, chunk)
}

/// The workgroups of dw's blocks and the split-K chunks of `mm_weight_split`.
fn mm_weight_grid(g: &Conv2dGeom, tile: &ConvTile, chunk: Option<usize>) -> (usize, usize) {
    let (blocks, chunk) = mm_weight_split(g, tile, chunk);
    (blocks[0] * blocks[1], (g.n * g.oh * g.ow).div_ceil(chunk))
}

/// dw (Cout, Cin/g, KH, KW) from dy and x through `kernel` (conv2d_bwd_weight_mm; its tests
/// pass copies with a barrier removed) in the large tile `tile` (`ConvTile::MM_128` or
/// `MM_64`): blocks of `tile.ocb` output channels x 128 weight columns, split over chunks of
/// the output pixels (`chunk` each, or enough to fill the GPU) whose partial sums
/// split_k_reduce adds.
pub fn backward_weight_mm(
    gpu: &Gpu,
    kernel: &'static Shader,
    g: &Conv2dGeom,
    tile: ConvTile,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    check_mm_tile(gpu, tile, "conv2d_bwd_weight_mm")?;
    let ([col_blocks, channel_blocks], chunk) = mm_weight_split(g, &tile, chunk);
    let mut constants = geometry_constants(g);
    constants.push(("BM", tile.ocb as f64));
    let pipeline = gpu.pipeline(large_tile_kernel(gpu, kernel, tile, None)?, &constants)?;
    let grid = [
        u32_of("conv2d weight column blocks", col_blocks)?,
        u32_of("conv2d weight-gradient chunks", (g.n * g.oh * g.ow).div_ceil(chunk))?,
        u32_of("conv2d output channel blocks", channel_blocks)?,
    ];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &b.resources())
}

/// The most stride phases conv2d_bwd_data_mm's parameters hold: strides up to 4 x 4.
pub(super) const MM_PHASES_MAX: usize = 16;

/// The widest kernel whose phases conv2d_bwd_data_mm decodes exactly (its f32 division by the
/// taps across).
const MM_PHASE_TAPS_MAX: usize = 1024;

/// Whether conv2d_bwd_data_mm takes the input gradient of `g`: at most `MM_PHASES_MAX` stride
/// phases and kernels of at most `MM_PHASE_TAPS_MAX` taps per axis.
pub(super) fn mm_phases_fit(g: &Conv2dGeom) -> bool {
    let [sh, sw] = g.args.stride;
    sh * sw <= MM_PHASES_MAX && g.kh.max(g.kw) <= MM_PHASE_TAPS_MAX
}

/// dx (N, Cin, H, W) from dy and w through `kernel` (conv2d_bwd_data_mm; its tests pass copies
/// with a barrier removed) in the large tile `tile`: every stride phase of dx (stride 1: one)
/// as a GEMM of `tile.ocb` input channels x 128 of the phase's pixels per workgroup, all phases
/// in one dispatch, w read in place and dx stored in place; a phase no tap reaches gets zeros.
pub fn backward_data_mm(
    gpu: &Gpu,
    kernel: &'static Shader,
    g: &Conv2dGeom,
    tile: ConvTile,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    check_mm_tile(gpu, tile, "conv2d_bwd_data_mm")?;
    if !mm_phases_fit(g) {
        return Err(tile.refuse(&format!(
            "conv2d_bwd_data_mm takes at most {MM_PHASES_MAX} stride phases and {MM_PHASE_TAPS_MAX} taps per axis: stride {:?}, kernel {}x{}",
            g.args.stride, g.kh, g.kw
        )));
    }
    let a = &g.args;
    let (groups, cout_g) = (a.groups, g.cout / a.groups);
    let axis = |i: usize, size: usize, k: usize| -> Vec<PhaseAxis> {
        (0..a.stride[i])
            .map(|r| phase_axis(size, k, a.stride[i], a.padding[i], a.dilation[i], r))
            .filter(|p| p.count > 0)
            .collect()
    };
    let (rows, cols) = (axis(0, g.h, g.kh), axis(1, g.w, g.kw));
    // (first, count, k0, taps) per axis, then (dy's row and column of tap 0 at position 0, K)
    let mut params: Vec<u32> = sizes(g)?.to_vec();
    params.extend([(rows.len() * cols.len()) as u32, 0, 0, 0]);
    let mut pixels = 0;
    for py in &rows {
        for px in &cols {
            let base = |p: &PhaseAxis, i: usize| {
                let at = (p.first + a.padding[i]) as i64 - (p.k0 * a.dilation[i]) as i64;
                at.div_euclid(a.stride[i] as i64)
            };
            let k = cout_g * py.taps * px.taps;
            let words = [
                py.first as i64,
                py.count as i64,
                py.k0 as i64,
                py.taps as i64,
                px.first as i64,
                px.count as i64,
                px.k0 as i64,
                px.taps as i64,
                base(py, 0),
                base(px, 1),
                k as i64,
                0,
            ];
            for v in words {
                let v = i32::try_from(v).map_err(|_| tile.refuse(&format!("{g:?}: a phase value of {v} past i32")))?;
                params.push(v as u32);
            }
            pixels = pixels.max(g.n * py.count * px.count);
        }
    }
    params.resize(12 + 12 * MM_PHASES_MAX, 0);
    // every phase of an axis steps its taps and their dy rows alike
    let steps = |i: usize| phase_axis(1, 1, a.stride[i], 0, a.dilation[i], 0);
    let (sy, sx) = (steps(0), steps(1));
    let mut constants = geometry_constants(g);
    constants.extend([
        ("BM", tile.ocb as f64),
        ("COUT_G", cout_g as f64),
        ("STEP_Y", sy.step as f64),
        ("STEP_X", sx.step as f64),
        ("DIL_Y", sy.dil as f64),
        ("DIL_X", sx.dil as f64),
    ]);
    let pipeline = gpu.pipeline(large_tile_kernel(gpu, kernel, tile, None)?, &constants)?;
    let mut grid = grid_1d(groups_for("conv2d input-gradient phase pixels", pixels, MM_PIXELS)?);
    let blocks = rows.len() * cols.len() * groups * (g.cin / groups).div_ceil(tile.ocb);
    grid[2] = u32_of("conv2d input-gradient phases x channel blocks", blocks)?;
    Dispatch::new(gpu, pipeline, &params, &[dy, w, dx], grid)
}
