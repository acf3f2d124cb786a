//! batch_norm kernels: per-channel batch statistics, and the normalisation itself.

use super::shaders::{BATCH_NORM_APPLY, BATCH_NORM_STATS};
use super::{f32_bits, groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::{Error, Result};

const WG: usize = 256;

/// Batch mean and biased variance of x (N, C, HW) per channel into `mean`, `var` (C); when
/// `update_running`, also running = (1 - momentum) * running + momentum * batch (unbiased var).
#[allow(clippy::too_many_arguments)]
pub fn stats(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    momentum: f32,
    update_running: bool,
    x: &wgpu::Buffer,
    mean: &wgpu::Buffer,
    var: &wgpu::Buffer,
    running_mean: &wgpu::Buffer,
    running_var: &wgpu::Buffer,
) -> Result<Dispatch> {
    let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
    if c > max {
        return Err(Error::Limit {
            what: "batch_norm channels (one workgroup each)".into(),
            need: c as u64,
            max: max as u64,
        });
    }
    let pipeline = gpu.pipeline(&BATCH_NORM_STATS, &[])?;
    u32_of("batch_norm elements", n * c * hw)?;
    let params = [
        n as u32,
        c as u32,
        hw as u32,
        f32_bits(momentum),
        u32::from(update_running),
    ];
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[x, mean, var, running_mean, running_var],
        [c as u32, 1, 1],
    )
}

/// y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel of x (N, C, HW).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    eps: f32,
    x: &wgpu::Buffer,
    mean: &wgpu::Buffer,
    var: &wgpu::Buffer,
    gamma: &wgpu::Buffer,
    beta: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let total = n * c * hw;
    let pipeline = gpu.pipeline(&BATCH_NORM_APPLY, &[("WG", WG as f64)])?;
    let params = [
        u32_of("batch_norm elements", total)?,
        c as u32,
        hw as u32,
        f32_bits(eps),
    ];
    let grid = grid_1d(groups_for("batch_norm", total, WG)?);
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[x, mean, var, gamma, beta, y],
        grid,
    )
}
