//! Elementwise kernels: relu, add.

use super::shaders::{ADD, RELU, RELU_BWD};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;

const WG: usize = 256;

/// y = min(max(x, 0), max) over `total` elements (max = f32::MAX for relu, 6 for relu6).
pub fn relu(gpu: &Gpu, total: usize, max: f32, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&RELU, &[("WG", WG as f64), ("MAX", max as f64)])?;
    let grid = grid_1d(groups_for("relu", total, WG)?);
    Dispatch::new(gpu, pipeline, &[u32_of("relu elements", total)?], &[x, y], grid)
}

/// y = a + b over `total` elements.
pub fn add(gpu: &Gpu, total: usize, a: &wgpu::Buffer, b: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&ADD, &[("WG", WG as f64)])?;
    let grid = grid_1d(groups_for("add", total, WG)?);
    Dispatch::new(gpu, pipeline, &[u32_of("add elements", total)?], &[a, b, y], grid)
}

/// dx = dy where 0 < y < max, else 0, over `total` elements (y: the relu/relu6 output).
pub fn relu_backward(
    gpu: &Gpu,
    total: usize,
    max: f32,
    dy: &wgpu::Buffer,
    y: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&RELU_BWD, &[("WG", WG as f64), ("MAX", max as f64)])?;
    let grid = grid_1d(groups_for("relu backward", total, WG)?);
    Dispatch::new(gpu, pipeline, &[u32_of("relu elements", total)?], &[dy, y, dx], grid)
}
