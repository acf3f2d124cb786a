//! Elementwise kernels: add, and the f32 <-> f16 cast (activations: `ops::activation`).

use super::shaders::{lanes_for, variant, ADD, CAST, ROUND_HALF};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::shape::DType;

const WG: usize = 256;

/// y = a + b over `total` elements, all stored as `storage`.
pub fn add(
    gpu: &Gpu,
    total: usize,
    storage: DType,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let (shader, pack) = lanes_for(&ADD, total)?;
    let pipeline = gpu.pipeline(variant(gpu, shader, storage)?, &[("WG", WG as f64)])?;
    let grid = grid_1d(groups_for("add", total / pack, WG)?);
    Ok(
        Dispatch::new(gpu, pipeline, &[u32_of("add elements", total)?], &[a, b, y], grid)?
            .moving(3 * storage.size() * total),
    )
}

/// dst = src rounded to the nearest f16 value (ties to even, f16 subnormals kept, from 65520
/// on to infinity), stored as f32: `total` elements.
pub fn round_half(gpu: &Gpu, total: usize, src: &wgpu::Buffer, dst: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&ROUND_HALF, &[("WG", WG as f64)])?;
    let grid = grid_1d(groups_for("round_half", total, WG)?);
    let params = [u32_of("round_half elements", total)?];
    Ok(Dispatch::new(gpu, pipeline, &params, &[src, dst], grid)?.moving(8 * total))
}

/// dst = src converted between f32 and f16 (`to_half`: f32 -> f16, else f16 -> f32), `total`
/// elements; f16 rounds to nearest. Runs without shader-f16 (packed words).
pub fn cast(gpu: &Gpu, total: usize, to_half: bool, src: &wgpu::Buffer, dst: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&CAST, &[("WG", WG as f64), ("TO_HALF", f64::from(u8::from(to_half)))])?;
    let grid = grid_1d(groups_for("cast", total.div_ceil(2), WG)?);
    Ok(Dispatch::new(gpu, pipeline, &[u32_of("cast elements", total)?], &[src, dst], grid)?.moving(6 * total))
}
