//! conv2d kernels. Forward: a direct kernel that blocks 4 output channels per invocation.

use super::shaders::{CONV2D_BWD_DATA, CONV2D_BWD_WEIGHT, CONV2D_FWD};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::graph::Epilogue;
use crate::ops::conv::Conv2dGeom;

const WG: usize = 64;
/// Channels per invocation: output channels in conv2d_fwd and conv2d_bwd_weight (OCB), input
/// channels in conv2d_bwd_data (ICB).
const OCB: usize = 4;

fn geometry_constants(g: &Conv2dGeom) -> Vec<(&'static str, f64)> {
    let a = &g.args;
    vec![
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("SH", a.stride as f64),
        ("SW", a.stride as f64),
        ("PH", a.padding as f64),
        ("PW", a.padding as f64),
        ("DH", a.dilation as f64),
        ("DW", a.dilation as f64),
    ]
}

/// y (N, Cout, OH, OW) = act(conv2d(x (N, Cin, H, W), w (Cout, Cin/g, KH, KW)) [+ bias (Cout)]
/// [+ residual (like y)]), the epilogue fused into the store.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    epi: Epilogue,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let mut constants = geometry_constants(g);
    constants.push(("HAS_BIAS", f64::from(u8::from(bias.is_some()))));
    constants.push(("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))));
    constants.push(("ACT", f64::from(epi.act.code())));
    constants.push(("WG", WG as f64));
    let pipeline = gpu.pipeline(&CONV2D_FWD, &constants)?;
    let groups = g.args.groups;
    let blocks = groups * (g.cout / groups).div_ceil(OCB);
    let work = g.n * blocks * g.oh * g.ow;
    let grid = grid_1d(groups_for("conv2d work items", work, WG)?);
    let d = gpu.dummy();
    Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &[x, w, bias.unwrap_or(d), residual.unwrap_or(d), y],
        grid,
    )
}

/// The Params struct shared by the three conv kernels.
fn sizes(g: &Conv2dGeom) -> Result<[u32; 8]> {
    u32_of("conv2d input elements", g.n * g.cin * g.h * g.w)?;
    u32_of("conv2d output elements", g.n * g.cout * g.oh * g.ow)?;
    Ok([
        u32_of("conv2d batch", g.n)?,
        u32_of("conv2d input channels", g.cin)?,
        u32_of("conv2d input height", g.h)?,
        u32_of("conv2d input width", g.w)?,
        u32_of("conv2d output channels", g.cout)?,
        u32_of("conv2d output height", g.oh)?,
        u32_of("conv2d output width", g.ow)?,
        u32_of("conv2d groups", g.args.groups)?,
    ])
}

/// dx (N, Cin, H, W) from dy (N, Cout, OH, OW) and w: one invocation per input pixel and
/// block of 4 input channels.
pub fn backward_data(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let mut constants = geometry_constants(g);
    constants.push(("WG", WG as f64));
    let pipeline = gpu.pipeline(&CONV2D_BWD_DATA, &constants)?;
    // one invocation per (input pixel, block of OCB input channels of a group)
    let groups = g.args.groups;
    let blocks = groups * (g.cin / groups).div_ceil(OCB);
    let grid = grid_1d(groups_for("conv2d input grad", g.n * blocks * g.h * g.w, WG)?);
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)
}

/// dw (Cout, Cin/g, KH, KW) from dy and x: one invocation per tap and block of 4 output
/// channels reduces over N*OH*OW.
pub fn backward_weight(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<Dispatch> {
    let mut constants = geometry_constants(g);
    constants.push(("WG", WG as f64));
    let pipeline = gpu.pipeline(&CONV2D_BWD_WEIGHT, &constants)?;
    // one invocation per (block of OCB output channels of a group, tap)
    let groups = g.args.groups;
    let blocks = groups * (g.cout / groups).div_ceil(OCB);
    let work = blocks * (g.cin / groups) * g.kh * g.kw;
    let grid = grid_1d(groups_for("conv2d weight grad", work, WG)?);
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, x, dw], grid)
}
