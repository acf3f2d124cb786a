//! batch_norm kernels: per-channel batch statistics, and the normalisation itself.

use super::shaders::{BATCH_NORM_APPLY, BATCH_NORM_BWD_DATA, BATCH_NORM_BWD_REDUCE, BATCH_NORM_STATS, CHANNEL_SUM};
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
    per_channel_grid(gpu, "batch_norm", c)?;
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
    Dispatch::new(gpu, pipeline, &params, &[x, mean, var, gamma, beta, y], grid)
}

/// Kernels that give each channel one workgroup: the channel count must fit one grid dimension.
fn per_channel_grid(gpu: &Gpu, what: &str, c: usize) -> Result<[u32; 3]> {
    let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
    if c > max {
        return Err(Error::Limit {
            what: format!("{what} channels (one workgroup each)"),
            need: c as u64,
            max: max as u64,
        });
    }
    Ok([c as u32, 1, 1])
}

/// y (C) = sum of x (N, C, HW) over N and HW: the bias gradient of conv2d and linear.
pub fn channel_sum(gpu: &Gpu, [n, c, hw]: [usize; 3], x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let grid = per_channel_grid(gpu, "channel_sum", c)?;
    u32_of("channel_sum elements", n * c * hw)?;
    let pipeline = gpu.pipeline(&CHANNEL_SUM, &[])?;
    Dispatch::new(gpu, pipeline, &[n as u32, c as u32, hw as u32], &[x, y], grid)
}

/// batch_norm training backward: dgamma, dbeta (C) by reduction, then dx elementwise.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    eps: f32,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    mean: &wgpu::Buffer,
    var: &wgpu::Buffer,
    gamma: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    dgamma: &wgpu::Buffer,
    dbeta: &wgpu::Buffer,
) -> Result<[Dispatch; 2]> {
    let total = n * c * hw;
    let grid = per_channel_grid(gpu, "batch_norm backward", c)?;
    let reduce = gpu.pipeline(&BATCH_NORM_BWD_REDUCE, &[])?;
    let params = [n as u32, c as u32, hw as u32, f32_bits(eps)];
    let r = Dispatch::new(gpu, reduce, &params, &[dy, x, mean, var, dgamma, dbeta], grid)?;
    let data = gpu.pipeline(&BATCH_NORM_BWD_DATA, &[("WG", WG as f64)])?;
    let params = [
        u32_of("batch_norm elements", total)?,
        c as u32,
        hw as u32,
        f32_bits(eps),
        f32_bits((n * hw) as f32),
    ];
    let grid = grid_1d(groups_for("batch_norm backward", total, WG)?);
    let d = Dispatch::new(gpu, data, &params, &[dy, x, mean, var, gamma, dgamma, dbeta, dx], grid)?;
    Ok([r, d])
}
