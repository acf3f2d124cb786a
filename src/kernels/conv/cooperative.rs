//! The cooperative-matrix (tensor core) variants of the gpu family's large-tile conv kernels
//! (conv2d_fwd_mm, conv2d_bwd_data_mm, conv2d_bwd_weight_mm; `shaders::cooperative_variant`):
//! the same tiles, loaders and epilogues, the operands staged as f16 and the products on
//! 16x16x16 fragments accumulated in f32. They run mixed precision's convs, forward (on f16
//! activations, with the training statistics) and backward (whose operands mixed precision
//! holds to f16 values), where the device has such fragments in 32-wide subgroups
//! (`GpuInfo::cooperative_f16`), or with emulated fragments for tests
//! (`GpuInfo::cooperative_emulated`). The variant table offers them before the f32 large tiles
//! wherever the operands are f16 (`splice_large_tiles`); the tuner times both.

use super::device::ConvDevice;
use super::tile::{ConvTile, TileKind};
use crate::device::{Gpu, Shader};
use crate::error::{Error, Result};
use crate::kernels::shaders::{cooperative_variant, is_cooperative, variant};
use crate::shape::DType;

/// A pass's f32 large tiles `tiles` into its `candidates` at `at`, with their cooperative-matrix
/// forms before them where the operands are `operands` f16 and the device runs the cooperative
/// kernels; with emulated fragments (tests) those go first of all, so that the untuned default
/// runs them wherever they are offered: the emulation exists to run them. Whether it offered
/// cooperative tiles.
pub(super) fn splice_large_tiles(
    dev: ConvDevice<'_>,
    candidates: &mut Vec<ConvTile>,
    at: usize,
    tiles: &[ConvTile],
    operands: DType,
) -> bool {
    candidates.splice(at..at, tiles.iter().copied());
    if operands != DType::F16 || !dev.info.cooperative_kernels() {
        return false;
    }
    let first = if dev.info.cooperative_emulated { 0 } else { at };
    // the split tiles have no cooperative form
    let unsplit = tiles.iter().filter(|t| t.kind == TileKind::Mm);
    candidates.splice(first..first, unsplit.map(|t| t.cooperative()));
    !tiles.is_empty()
}

/// The shader that runs large tile `tile` for `kernel` (a large-tile kernel, or a test's copy of
/// one or of its cooperative variant) storing `storage` activations (None for the gradients,
/// which store none): the kernel, or its f16 variant, for an f32 large tile; its cooperative
/// variant for a cooperative one, which takes f16 activations where it stores them and a device
/// that runs it (the error names the adapter and what it has).
pub(super) fn large_tile_kernel(
    gpu: &Gpu,
    kernel: &'static Shader,
    tile: ConvTile,
    storage: Option<DType>,
) -> Result<&'static Shader> {
    match tile.kind {
        TileKind::Mm | TileKind::MmSplit { .. } if is_cooperative(kernel) => {
            Err(tile.refuse(&format!("{} is a cooperative variant", kernel.name)))
        }
        TileKind::Mm | TileKind::MmSplit { .. } => variant(gpu, kernel, storage.unwrap_or(DType::F32)),
        TileKind::CoopMm => {
            let info = gpu.info();
            if !info.cooperative_kernels() {
                return Err(Error::arg(
                    "conv2d",
                    "kernel",
                    format!(
                        "{} has no cooperative matrices convoy can use (16x16x16 f16 -> f32 in 32-wide subgroups through wgpu's experimental feature; it reports: {})",
                        info.name,
                        match info.cooperative_matrix.is_empty() {
                            true => "none".to_string(),
                            false => info.cooperative_matrix.join(", "),
                        }
                    ),
                ));
            }
            if storage.is_some_and(|s| s != DType::F16) {
                return Err(tile.refuse("the cooperative-matrix forward takes f16 activations"));
            }
            gpu.require_f16("the cooperative-matrix conv kernels")?;
            match is_cooperative(kernel) {
                true => Ok(kernel),
                false => cooperative_variant(kernel, !info.cooperative_f16),
            }
        }
        _ => Err(tile.refuse("the large-tile kernels take the large tiles")),
    }
}
