//! The f16 conv forward on cooperative matrices (tensor cores): conv2d_fwd_coop, an implicit
//! GEMM in 64 x 64 blocks whose products run on 16x16x16 f16 fragments accumulated in f32. A
//! candidate of the gpu family's inference forward on f16 activations wherever the device
//! enabled them (`GpuInfo::cooperative_f16`), after the block tile: the tuner takes it where it
//! runs faster (on an H200, the 7x7 and 14x14 stages; BENCHMARKS.md). The weights are rounded
//! to f16 inside the kernel, the one rounding beyond the f16 storage the caller chose.

use super::buffers::{epilogue_only_dispatch, ForwardBuffers};
use super::constants::{epilogue_constants, forward_grid, geometry_constants};
use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::kernels::shaders::CONV2D_FWD_COOP;
use crate::shape::{Conv2dGeom, Epilogue};

/// Output channels and pixels of one workgroup's block (the kernel's BM and BN).
const COOP_BLOCK: usize = 64;

/// y = act(conv2d(x, w) [+ bias] [+ residual]) on f16 activations through conv2d_fwd_coop;
/// an error naming the adapter where it has no cooperative matrices convoy can use.
pub fn forward_cooperative(gpu: &Gpu, g: &Conv2dGeom, epi: Epilogue, b: &ForwardBuffers<'_>) -> Result<Vec<Dispatch>> {
    if !gpu.info().cooperative_f16 {
        return Err(Error::arg(
            "conv2d",
            "kernel",
            format!(
                "{} has no cooperative matrices convoy can use (16x16x16 f16 -> f32 in 32-wide subgroups through wgpu's experimental feature; it reports: {})",
                gpu.info().name,
                match gpu.info().cooperative_matrix.is_empty() {
                    true => "none".to_string(),
                    false => gpu.info().cooperative_matrix.join(", "),
                }
            ),
        ));
    }
    if b.stats.is_some() {
        return Err(Error::arg(
            "conv2d",
            "kernel",
            "the cooperative-matrix forward is for inference: it writes no batch statistics",
        ));
    }
    gpu.require_f16("the cooperative-matrix conv forward")?;
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, b.bias, b.residual));
    let pipeline = gpu.pipeline(&CONV2D_FWD_COOP, &constants)?;
    epilogue_only_dispatch(gpu, pipeline, g, b, forward_grid(g, COOP_BLOCK, COOP_BLOCK)?)
}
