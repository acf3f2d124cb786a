//! GEMM launchers: the 64 x 64 tile GEMM (gemm.wgsl), which linear layers and their backward
//! products run on, and the batched row-tiled GEMM (gemm_rows.wgsl), which 1x1 convolutions run
//! on. Which one a linear layer takes, or whether it runs as a 1x1 conv, is `ops::linear::gemm`'s
//! choice: the launchers here only launch, so kernels/conv can call them without a circle.

use super::shaders::{variant, GEMM, GEMM_ROWS};
use super::u32_of;
use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::shape::DType;

/// Output tile of gemm.wgsl (BM = BN).
pub const TILE: usize = 64;

/// Sizes and layout of C (M, N) = op(A) (M, K) * op(B) (K, N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmGeom {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// The buffers of a GEMM: A and B in, the optional bias and residual, C out. The tile GEMM
/// takes no residual.
#[derive(Clone, Copy)]
pub struct GemmBuffers<'a> {
    pub a: &'a wgpu::Buffer,
    pub b: &'a wgpu::Buffer,
    pub bias: Option<&'a wgpu::Buffer>,
    pub residual: Option<&'a wgpu::Buffer>,
    pub c: &'a wgpu::Buffer,
}

impl<'a> GemmBuffers<'a> {
    /// C = op(A) op(B) with no bias or residual (set those with struct update).
    pub fn new(a: &'a wgpu::Buffer, b: &'a wgpu::Buffer, c: &'a wgpu::Buffer) -> Self {
        GemmBuffers {
            a,
            b,
            bias: None,
            residual: None,
            c,
        }
    }
}

/// C = op(A) op(B) [+ bias] through the 64 x 64 tile GEMM (gemm.wgsl) whatever the shape and
/// policy (`ops::linear::gemm` chooses; `bench gemm` times this kernel by name).
pub fn gemm_tile(gpu: &Gpu, g: &GemmGeom, storage: DType, bufs: &GemmBuffers<'_>) -> Result<Vec<Dispatch>> {
    let GemmBuffers {
        a,
        b,
        bias,
        residual,
        c,
    } = *bufs;
    if residual.is_some() {
        return Err(Error::arg("gemm", "residual", "the tile GEMM adds no residual"));
    }
    let constants = [
        ("TRANS_A", f64::from(u8::from(g.trans_a))),
        ("TRANS_B", f64::from(u8::from(g.trans_b))),
        ("HAS_BIAS", f64::from(u8::from(bias.is_some()))),
    ];
    let pipeline = gpu.pipeline(variant(gpu, &GEMM, storage)?, &constants)?;
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
    Ok(vec![Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[a, b, bias.unwrap_or(gpu.dummy()), c],
        grid,
    )?])
}

/// Shape of the batched row-tiled GEMM: C_z (M, N) = A (M, K) x B_z (K, N) for z < batch, with
/// N a multiple of 4 (B and C are read and written as vec4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowsGeom {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// A is stored as (K, M).
    pub trans_a: bool,
}

/// Invocations per workgroup and rows per invocation of gemm_rows.
pub(crate) const ROWS_WG: usize = 64;
const ROWS_RB: usize = 8;

/// The row-tiled GEMM (uniform A loads, vec4 B loads), with the conv epilogue: plus bias per
/// row, plus residual, then the activation `act`. B, residual and C are
/// stored as `storage`; A and bias are f32.
pub fn gemm_rows(
    gpu: &Gpu,
    g: &RowsGeom,
    act: crate::shape::Act,
    storage: DType,
    bufs: &GemmBuffers<'_>,
) -> Result<Dispatch> {
    let GemmBuffers {
        a,
        b,
        bias,
        residual,
        c,
    } = *bufs;
    if !g.n.is_multiple_of(4) || g.m == 0 || g.n == 0 {
        return Err(Error::Arg {
            op: "gemm_rows".into(),
            arg: "n".into(),
            reason: format!("{g:?}: N must be a positive multiple of 4 (vec4 rows)"),
        });
    }
    for (what, v) in [
        ("gemm A", g.m * g.k),
        ("gemm B", g.batch * g.k * g.n),
        ("gemm C", g.batch * g.m * g.n),
    ] {
        u32_of(what, v)?;
    }
    let [act, alpha] = act.constants();
    let constants = [
        ("WG", ROWS_WG as f64),
        ("RB", ROWS_RB as f64),
        ("TRANS_A", f64::from(u8::from(g.trans_a))),
        ("HAS_BIAS", f64::from(u8::from(bias.is_some()))),
        ("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))),
        act,
        alpha,
    ];
    let pipeline = gpu.pipeline(variant(gpu, &GEMM_ROWS, storage)?, &constants)?;
    let row_blocks = g.m.div_ceil(ROWS_RB);
    let mut grid = crate::device::grid_1d(super::groups_for("gemm columns", g.n / 4, ROWS_WG)?);
    grid[2] = u32_of("gemm row blocks x batch", row_blocks * g.batch)?;
    let params = [g.m as u32, (g.n / 4) as u32, g.k as u32, row_blocks as u32];
    let d = gpu.dummy();
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[a, b, bias.unwrap_or(d), residual.unwrap_or(d), c],
        grid,
    )
}
