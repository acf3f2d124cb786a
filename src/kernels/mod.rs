//! Kernel launchers: for each op family, which WGSL kernel runs, with which override constants,
//! uniform sizes and grid. They take raw buffers so the functional API and compiled plans share them.

pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod loss;
pub mod loss_scale;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod shaders;
pub mod stats;

use crate::error::{Error, Result};

/// A size as the u32 the kernels index with, or a clear error naming it.
pub(crate) fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Limit {
        what: format!("{what} (kernels index with 32-bit integers)"),
        need: v as u64,
        max: u32::MAX as u64,
    })
}

/// Workgroups of `wg` invocations that cover `total` items.
pub(crate) fn groups_for(what: &str, total: usize, wg: usize) -> Result<u32> {
    u32_of(what, total.div_ceil(wg))
}

pub(crate) fn f32_bits(v: f32) -> u32 {
    v.to_bits()
}
