//! Pooling kernels: one invocation per output element (backward: per input element).

use super::shaders::{
    variant, ADAPTIVE_AVG_POOL2D_BWD, ADAPTIVE_AVG_POOL2D_FWD, AVG_POOL2D_BWD, AVG_POOL2D_FWD, MAX_POOL2D_ARGMAX,
    MAX_POOL2D_BWD, MAX_POOL2D_FWD,
};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::shape::{DType, Pool2dGeom};

const WG: usize = 256;

fn params(g: &Pool2dGeom) -> Result<[u32; 5]> {
    u32_of("pool input elements", g.n * g.c * g.h * g.w)?;
    Ok([
        u32_of("pool planes", g.n * g.c)?,
        g.h as u32,
        g.w as u32,
        g.oh as u32,
        g.ow as u32,
    ])
}

/// Elements of the input and of the output map, for the bytes a pass moves.
fn sizes(g: &Pool2dGeom) -> (usize, usize) {
    (g.n * g.c * g.h * g.w, g.n * g.c * g.oh * g.ow)
}

fn grid(g: &Pool2dGeom) -> Result<[u32; 3]> {
    Ok(grid_1d(groups_for("pool output", g.n * g.c * g.oh * g.ow, WG)?))
}

fn window(g: &Pool2dGeom) -> Vec<(&'static str, f64)> {
    let a = &g.args;
    vec![
        ("KH", a.kernel[0] as f64),
        ("KW", a.kernel[1] as f64),
        ("SH", a.stride[0] as f64),
        ("SW", a.stride[1] as f64),
        ("PH", a.padding[0] as f64),
        ("PW", a.padding[1] as f64),
        ("WG", WG as f64),
    ]
}

/// Backward kernels have one invocation per input element.
fn input_grid(g: &Pool2dGeom) -> Result<[u32; 3]> {
    Ok(grid_1d(groups_for("pool input", g.n * g.c * g.h * g.w, WG)?))
}

fn max_window(g: &Pool2dGeom) -> Vec<(&'static str, f64)> {
    let mut c = window(g);
    c.push(("DH", g.args.dilation[0] as f64));
    c.push(("DW", g.args.dilation[1] as f64));
    c
}

/// The input and output maps' sizes as pipeline constants, for the backward kernels that
/// divide by them per element (constant divisors compile to multiplies and shifts).
fn map_sizes(g: &Pool2dGeom) -> [(&'static str, f64); 4] {
    [
        ("H", g.h as f64),
        ("W", g.w as f64),
        ("OH", g.oh as f64),
        ("OW", g.ow as f64),
    ]
}

fn avg_window(g: &Pool2dGeom) -> Vec<(&'static str, f64)> {
    let mut c = window(g);
    c.push(("COUNT_INCLUDE_PAD", f64::from(u8::from(g.args.count_include_pad))));
    c
}

/// x and y stored as `storage`.
pub fn max_forward(gpu: &Gpu, g: &Pool2dGeom, storage: DType, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(variant(gpu, &MAX_POOL2D_FWD, storage)?, &max_window(g))?;
    let (ins, outs) = sizes(g);
    Ok(Dispatch::new(gpu, pipeline, &params(g)?, &[x, y], grid(g)?)?.moving((ins + outs) * storage.size()))
}

/// dx from dy and the forward input x: the position of each window's maximum is recomputed
/// from x into a scratch buffer (one pass over the outputs), then each input element adds the
/// dy of the windows that chose it.
pub fn max_backward(
    gpu: &Gpu,
    g: &Pool2dGeom,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let outputs = g.n * g.c * g.oh * g.ow;
    let idx = gpu.scratch_buffer("max_pool2d argmax positions", (outputs.max(1) * 4) as u64)?;
    let argmax = gpu.pipeline(&MAX_POOL2D_ARGMAX, &max_window(g))?;
    let (ins, outs) = sizes(g);
    let argmax = Dispatch::new(gpu, argmax, &params(g)?, &[x, &idx], grid(g)?)?.moving(4 * (ins + outs));
    let mut constants = max_window(g);
    constants.extend(map_sizes(g));
    let pipeline = gpu.pipeline(&MAX_POOL2D_BWD, &constants)?;
    let scatter =
        Dispatch::new(gpu, pipeline, &params(g)?, &[dy, &idx, dx], input_grid(g)?)?.moving(4 * (ins + 2 * outs));
    Ok(vec![argmax, scatter])
}

/// x and y stored as `storage`.
pub fn avg_forward(gpu: &Gpu, g: &Pool2dGeom, storage: DType, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(variant(gpu, &AVG_POOL2D_FWD, storage)?, &avg_window(g))?;
    let (ins, outs) = sizes(g);
    Ok(Dispatch::new(gpu, pipeline, &params(g)?, &[x, y], grid(g)?)?.moving((ins + outs) * storage.size()))
}

pub fn avg_backward(gpu: &Gpu, g: &Pool2dGeom, dy: &wgpu::Buffer, dx: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&AVG_POOL2D_BWD, &avg_window(g))?;
    let (ins, outs) = sizes(g);
    Ok(Dispatch::new(gpu, pipeline, &params(g)?, &[dy, dx], input_grid(g)?)?.moving(4 * (ins + outs)))
}

pub fn adaptive_avg_backward(gpu: &Gpu, g: &Pool2dGeom, dy: &wgpu::Buffer, dx: &wgpu::Buffer) -> Result<Dispatch> {
    let mut constants = vec![("WG", WG as f64)];
    constants.extend(map_sizes(g));
    let pipeline = gpu.pipeline(&ADAPTIVE_AVG_POOL2D_BWD, &constants)?;
    let (ins, outs) = sizes(g);
    Ok(Dispatch::new(gpu, pipeline, &params(g)?, &[dy, dx], input_grid(g)?)?.moving(4 * (ins + outs)))
}

/// x and y stored as `storage`.
pub fn adaptive_avg_forward(
    gpu: &Gpu,
    g: &Pool2dGeom,
    storage: DType,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(variant(gpu, &ADAPTIVE_AVG_POOL2D_FWD, storage)?, &[("WG", WG as f64)])?;
    let (ins, outs) = sizes(g);
    Ok(Dispatch::new(gpu, pipeline, &params(g)?, &[x, y], grid(g)?)?.moving((ins + outs) * storage.size()))
}
