//! Loss and metric kernels over logits (N, K) and i32 labels (N).

use super::shaders::{reduction_variant, CROSS_ENTROPY_BWD, CROSS_ENTROPY_FWD, TOPK_ACCURACY};
use super::{f32_bits, groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
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
    let pipeline = gpu.pipeline(reduction_variant(gpu, &CROSS_ENTROPY_FWD), &[])?;
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
    let pipeline = gpu.pipeline(reduction_variant(gpu, &TOPK_ACCURACY), &[])?;
    u32_of("accuracy logits", n * k)?;
    Dispatch::new(
        gpu,
        pipeline,
        &[n as u32, k as u32, u32_of("top-k", topk)?],
        &[logits, labels, acc],
        [1, 1, 1],
    )
}

/// dlogits (N, K) of the mean smoothed cross-entropy (upstream gradient 1: the loss is the root),
/// times the loss scale where `scaler` is given (mixed precision: `kernels::loss_scale`).
pub fn cross_entropy_backward(
    gpu: &Gpu,
    [n, k]: [usize; 2],
    smoothing: f32,
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    dlogits: &wgpu::Buffer,
    scaler: Option<&wgpu::Buffer>,
) -> Result<Dispatch> {
    const WG: usize = 64;
    let scaled = f64::from(u8::from(scaler.is_some()));
    let pipeline = gpu.pipeline(&CROSS_ENTROPY_BWD, &[("WG", WG as f64), ("SCALED", scaled)])?;
    u32_of("cross_entropy logits", n * k)?;
    let grid = grid_1d(groups_for("cross_entropy rows", n, WG)?);
    Dispatch::new(
        gpu,
        pipeline,
        &[n as u32, k as u32, f32_bits(smoothing)],
        &[logits, labels, dlogits, scaler.unwrap_or(logits)],
        grid,
    )
}
