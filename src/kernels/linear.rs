//! GEMM: linear layers now, 1x1 convolutions and the backward products later.

use super::shaders::GEMM;
use super::u32_of;
use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};

/// Output tile of gemm.wgsl (BM = BN).
const TILE: usize = 64;

/// Sizes and layout of C (M, N) = op(A) (M, K) * op(B) (K, N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmGeom {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

pub fn gemm(
    gpu: &Gpu,
    g: &GemmGeom,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    c: &wgpu::Buffer,
) -> Result<Dispatch> {
    let constants = [
        ("TRANS_A", f64::from(u8::from(g.trans_a))),
        ("TRANS_B", f64::from(u8::from(g.trans_b))),
        ("HAS_BIAS", f64::from(u8::from(bias.is_some()))),
    ];
    let pipeline = gpu.pipeline(&GEMM, &constants)?;
    for (what, v) in [("gemm A", g.m * g.k), ("gemm B", g.k * g.n), ("gemm C", g.m * g.n)] {
        u32_of(what, v)?;
    }
    let grid = [g.n.div_ceil(TILE) as u32, g.m.div_ceil(TILE) as u32, 1];
    let max = gpu.limits().max_compute_workgroups_per_dimension;
    if grid[0] > max || grid[1] > max {
        return Err(Error::Limit {
            what: format!("gemm of {}x{} tiles", grid[1], grid[0]),
            need: grid[0].max(grid[1]) as u64,
            max: max as u64,
        });
    }
    let params = [g.m as u32, g.n as u32, g.k as u32];
    Dispatch::new(gpu, pipeline, &params, &[a, b, bias.unwrap_or(gpu.dummy()), c], grid)
}
