//! Loss and metric kernels over logits (N, K) and i32 labels (N).

use super::shaders::{CROSS_ENTROPY_FWD, TOPK_ACCURACY};
use super::{f32_bits, u32_of};
use crate::device::{Dispatch, Gpu};
use crate::error::Result;

/// Mean softmax cross-entropy with label smoothing into `loss` (1 value).
pub fn cross_entropy(
    gpu: &Gpu,
    [n, k]: [usize; 2],
    smoothing: f32,
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    loss: &wgpu::Buffer,
) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&CROSS_ENTROPY_FWD, &[])?;
    u32_of("cross_entropy logits", n * k)?;
    Dispatch::new(
        gpu,
        pipeline,
        &[n as u32, k as u32, f32_bits(smoothing)],
        &[logits, labels, loss],
        [1, 1, 1],
    )
}

/// Fraction of rows whose label is among the `topk` highest logits, into `acc` (1 value).
pub fn topk_accuracy(
    gpu: &Gpu,
    [n, k]: [usize; 2],
    topk: usize,
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    acc: &wgpu::Buffer,
) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&TOPK_ACCURACY, &[])?;
    u32_of("accuracy logits", n * k)?;
    Dispatch::new(
        gpu,
        pipeline,
        &[n as u32, k as u32, u32_of("top-k", topk)?],
        &[logits, labels, acc],
        [1, 1, 1],
    )
}
