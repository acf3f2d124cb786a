//! Optimizer update kernels. Hyperparameters live in a GPU buffer of 8 floats per parameter
//! group that the host rewrites before each step: a schedule never rebuilds a plan.

use super::shaders::{lanes_for, ADAMW_STEP, SGD_STEP};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;

const WG: usize = 256;

/// Floats per parameter group in the hyperparameter buffer:
/// lr, momentum, weight_decay, beta1, beta2, eps, bias_correction1, bias_correction2.
pub const HYPER_STRIDE: usize = 8;

/// The buffers of an SGD step: the hyperparameters (`HYPER_STRIDE` floats per group), the
/// gradient, and the parameter and its momentum buffer (updated in place), each `total` long.
#[derive(Clone, Copy)]
pub struct SgdBuffers<'a> {
    pub hyper: &'a wgpu::Buffer,
    pub grad: &'a wgpu::Buffer,
    pub param: &'a wgpu::Buffer,
    pub momentum: &'a wgpu::Buffer,
}

/// In place: param and momentum buffer from grad (PyTorch's SGD, dampening 0).
pub fn sgd(gpu: &Gpu, total: usize, group: usize, nesterov: bool, b: &SgdBuffers<'_>) -> Result<Dispatch> {
    let (shader, pack) = lanes_for(&SGD_STEP, total)?;
    let pipeline = gpu.pipeline(
        shader,
        &[("WG", WG as f64), ("NESTEROV", f64::from(u8::from(nesterov)))],
    )?;
    let grid = grid_1d(groups_for("sgd", total / pack, WG)?);
    let params = [u32_of("sgd elements", total)?, group as u32];
    // grad read; param and momentum read and written
    Ok(Dispatch::new(gpu, pipeline, &params, &[b.hyper, b.grad, b.param, b.momentum], grid)?.moving(5 * 4 * total))
}

/// The buffers of an AdamW step: the hyperparameters (`HYPER_STRIDE` floats per group), the
/// gradient, and the parameter and its first and second moments (updated in place), each
/// `total` long.
#[derive(Clone, Copy)]
pub struct AdamWBuffers<'a> {
    pub hyper: &'a wgpu::Buffer,
    pub grad: &'a wgpu::Buffer,
    pub param: &'a wgpu::Buffer,
    pub m: &'a wgpu::Buffer,
    pub v: &'a wgpu::Buffer,
}

/// In place: param and both moment buffers from grad (PyTorch's AdamW).
pub fn adamw(gpu: &Gpu, total: usize, group: usize, b: &AdamWBuffers<'_>) -> Result<Dispatch> {
    let (shader, pack) = lanes_for(&ADAMW_STEP, total)?;
    let pipeline = gpu.pipeline(shader, &[("WG", WG as f64)])?;
    let grid = grid_1d(groups_for("adamw", total / pack, WG)?);
    let params = [u32_of("adamw elements", total)?, group as u32];
    // grad read; param and both moments read and written
    Ok(Dispatch::new(gpu, pipeline, &params, &[b.hyper, b.grad, b.param, b.m, b.v], grid)?.moving(7 * 4 * total))
}
