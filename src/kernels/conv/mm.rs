//! The gpu family's large-tile conv forward, conv2d_fwd_mm: an implicit GEMM in blocks of 128
//! (or 64) output channels x 128 output pixels per workgroup of 256 invocations, 8 x 8 (or
//! 4 x 8) outputs per invocation, K in double-buffered chunks of 16 (issue 38; the design of
//! llama.cpp's ggml-vulkan conv2d_mm). Where its grid fills the GPU it is the forward's default
//! on the gpu family, elsewhere a tuner candidate after the 64 x 64 block tile
//! (`variants::forward`, `mm_tiles`). With statistics it writes those of its 128-pixel blocks,
//! which a second dispatch condenses into `STATS_BLOCK` blocks (as the block tile's 64-pixel
//! ones).

use super::buffers::{condense_stats, ForwardBuffers};
use super::constants::{epilogue_constants, forward_grid, geometry_constants, sizes};
use super::device::ConvDevice;
use super::tile::{ConvTile, TileKind};
use crate::device::{Dispatch, Gpu, KernelFamily, Shader};
use crate::error::Result;
use crate::kernels::shaders::variant;
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

/// Bytes of workgroup memory conv2d_fwd_mm takes with `bm` output channels per workgroup:
/// 2 stages of 16 K rows of `bm` weights and of `MM_PIXELS` pixels (32 KiB for 128 x 128, the
/// limit of lavapipe and Apple GPUs).
pub(super) fn mm_workgroup_bytes(bm: usize) -> usize {
    2 * 16 * (bm + MM_PIXELS) * 4
}

/// The large tiles the gpu family's forward offers for `g` (the default first), and whether
/// the first is the forward's default: none without the gpu family, for groups of fewer than
/// `MM_MIN_ROWS` channels, or where the device's workgroup memory is too small (WebGPU's
/// default 16 KiB); 128 x 128 for groups wider than 64 channels, then 64 x 128. The first is
/// the default where its grid has at least 2 workgroups per compute unit (`GPU_UNITS`), else
/// the block tile stays first and these go to the tuner.
pub(super) fn mm_tiles<'a>(dev: impl Into<ConvDevice<'a>>, g: &Conv2dGeom) -> (Vec<ConvTile>, bool) {
    let dev = dev.into();
    let rows = g.cout / g.args.groups;
    // never in the browser: compiling this kernel lost the device of headless Chromium's
    // WebGPU (on lavapipe) in the browser test; the browser keeps the block tiles
    if dev.policy.family != KernelFamily::Gpu || rows < MM_MIN_ROWS || cfg!(target_arch = "wasm32") {
        return (Vec::new(), false);
    }
    let memory = dev.info.limits.max_compute_workgroup_storage_size as usize;
    let tiles: Vec<ConvTile> = [ConvTile::MM_128, ConvTile::MM_64]
        .into_iter()
        .filter(|t| (t.ocb == 64 || rows > 64) && mm_workgroup_bytes(t.ocb) <= memory)
        .collect();
    let workgroups = |t: &ConvTile| (g.n * g.oh * g.ow).div_ceil(MM_PIXELS) * g.args.groups * rows.div_ceil(t.ocb);
    let first = tiles.first().is_some_and(|t| workgroups(t) >= 2 * GPU_UNITS);
    (tiles, first)
}

/// `mm_tiles` of `g` among the forward's `candidates` (the block tile's first): first where
/// their grid fills the GPU (and `why` says so), else right after the block tile (and `why`
/// says they are there for the tuner). Whether it offered any.
pub(super) fn offer_mm_tiles(
    dev: ConvDevice<'_>,
    g: &Conv2dGeom,
    candidates: &mut Vec<ConvTile>,
    why: &mut String,
) -> bool {
    let (tiles, first) = mm_tiles(dev, g);
    let at = usize::from(!first);
    candidates.splice(at..at, tiles.iter().copied());
    match first {
        true => {
            let rows = g.cout / g.args.groups;
            *why = format!("gpu family, {rows} channels per group, large tiles filling {GPU_UNITS} compute units twice")
        }
        false if !tiles.is_empty() => why.push_str("; large tiles for the tuner"),
        false => {}
    }
    !tiles.is_empty()
}

/// y = act(conv2d(x, w) [+ bias] [+ residual]) through `kernel` (conv2d_fwd_mm; its tests pass
/// copies with a barrier removed) in the large tile `tile` (`ConvTile::MM_128` or `MM_64`);
/// with `b.stats`, the statistics of its 128-pixel blocks into a scratch buffer and a second
/// dispatch that condenses them into `b.stats`.
pub fn forward_mm(
    gpu: &Gpu,
    kernel: &'static Shader,
    g: &Conv2dGeom,
    tile: ConvTile,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    tile.check()?;
    if tile.kind != TileKind::Mm {
        return Err(tile.refuse("conv2d_fwd_mm takes the large tiles"));
    }
    let bytes = mm_workgroup_bytes(tile.ocb);
    let memory = gpu.limits().max_compute_workgroup_storage_size as usize;
    if bytes > memory {
        return Err(tile.refuse(&format!(
            "it needs {bytes} bytes of workgroup memory, the device has {memory}"
        )));
    }
    let fine = match b.stats {
        Some(_) => {
            let bytes = (g.n * g.oh * g.ow).div_ceil(MM_PIXELS) * g.cout * 2 * 4;
            Some(gpu.scratch_buffer("conv2d statistics of 128-pixel blocks", bytes as u64)?)
        }
        None => None,
    };
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, b.bias, b.residual));
    constants.push(("BM", tile.ocb as f64));
    constants.push(("STATS", f64::from(u8::from(fine.is_some()))));
    let pipeline = gpu.pipeline(variant(gpu, kernel, storage)?, &constants)?;
    let grid = forward_grid(g, MM_PIXELS, tile.ocb)?;
    let d = gpu.dummy();
    let conv = Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &[
            b.x,
            b.w,
            b.bias.unwrap_or(d),
            b.residual.unwrap_or(d),
            b.y,
            fine.as_ref().unwrap_or(gpu.dummy_rw()),
        ],
        grid,
    )?;
    match (fine, b.stats) {
        (Some(fine), Some(stats)) => Ok(vec![conv, condense_stats(gpu, g, MM_PIXELS, &fine, stats)?]),
        _ => Ok(vec![conv]),
    }
}
