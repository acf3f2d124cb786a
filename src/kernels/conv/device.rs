//! What the conv kernels' choices read of a device: its kernel policy and the adapter's facts
//! that tiles follow. The variant table, the tiles and the texture layouts take it, so that each
//! is a pure function, unit-tested on a described adapter with no GPU.

use crate::device::{Gpu, GpuInfo, KernelFamily, KernelPolicy};

/// What the table reads of a device: its kernel policy and the adapter's facts that tiles
/// follow (SIMD width, cooperative matrices). `From<&Gpu>`, so launchers and tests pass a `Gpu`.
#[derive(Clone, Copy, Debug)]
pub struct ConvDevice<'a> {
    pub policy: &'a KernelPolicy,
    pub info: &'a GpuInfo,
}

impl<'a> From<&'a Gpu> for ConvDevice<'a> {
    fn from(gpu: &'a Gpu) -> ConvDevice<'a> {
        ConvDevice {
            policy: gpu.policy(),
            info: gpu.info(),
        }
    }
}

impl ConvDevice<'_> {
    pub(super) fn gpu_family(&self) -> bool {
        self.policy.family == KernelFamily::Gpu
    }

    pub(super) fn simd_width(&self) -> usize {
        self.info.simd_width as usize
    }
}
