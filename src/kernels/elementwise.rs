//! Elementwise kernels: relu, add, and the f32 <-> f16 cast.

use super::shaders::{variant, ADD, CAST, RELU, RELU_BWD};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::tensor::DType;

const WG: usize = 256;

/// y = min(max(x, 0), max) over `total` elements (max = f32::MAX for relu, 6 for relu6); x and
/// y stored as `storage`.
pub fn relu(gpu: &Gpu, total: usize, max: f32, storage: DType, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(variant(gpu, &RELU, storage)?, &[("WG", WG as f64), ("MAX", max as f64)])?;
    let grid = grid_1d(groups_for("relu", total, WG)?);
    Dispatch::new(gpu, pipeline, &[u32_of("relu elements", total)?], &[x, y], grid)
}

/// y = a + b over `total` elements, all stored as `storage`.
pub fn add(
    gpu: &Gpu,
    total: usize,
    storage: DType,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(variant(gpu, &ADD, storage)?, &[("WG", WG as f64)])?;
    let grid = grid_1d(groups_for("add", total, WG)?);
    Dispatch::new(gpu, pipeline, &[u32_of("add elements", total)?], &[a, b, y], grid)
}

/// dst = src converted between f32 and f16 (`to_half`: f32 -> f16, else f16 -> f32), `total`
/// elements; f16 rounds to nearest. Runs without shader-f16 (packed words).
pub fn cast(gpu: &Gpu, total: usize, to_half: bool, src: &wgpu::Buffer, dst: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&CAST, &[("WG", WG as f64), ("TO_HALF", f64::from(u8::from(to_half)))])?;
    let grid = grid_1d(groups_for("cast", total.div_ceil(2), WG)?);
    Dispatch::new(gpu, pipeline, &[u32_of("cast elements", total)?], &[src, dst], grid)
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
