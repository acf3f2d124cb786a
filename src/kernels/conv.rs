//! conv2d kernels. Forward: a direct kernel that blocks 4 output channels per invocation.

use super::shaders::CONV2D_FWD;
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::ops::conv::Conv2dGeom;

const WG: usize = 64;
/// Output channels per invocation in conv2d_fwd.wgsl (OCB).
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

/// y (N, Cout, OH, OW) = conv2d(x (N, Cin, H, W), w (Cout, Cin/g, KH, KW)) [+ bias (Cout)].
pub fn forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let mut constants = geometry_constants(g);
    constants.push(("HAS_BIAS", f64::from(u8::from(bias.is_some()))));
    constants.push(("WG", WG as f64));
    let pipeline = gpu.pipeline(&CONV2D_FWD, &constants)?;
    let groups = g.args.groups;
    let blocks = groups * (g.cout / groups).div_ceil(OCB);
    let work = g.n * blocks * g.oh * g.ow;
    let params = [
        u32_of("conv2d batch", g.n)?,
        u32_of("conv2d input channels", g.cin)?,
        u32_of("conv2d input height", g.h)?,
        u32_of("conv2d input width", g.w)?,
        u32_of("conv2d output channels", g.cout)?,
        u32_of("conv2d output height", g.oh)?,
        u32_of("conv2d output width", g.ow)?,
        u32_of("conv2d groups", groups)?,
    ];
    u32_of("conv2d output elements", g.n * g.cout * g.oh * g.ow)?;
    let grid = grid_1d(groups_for("conv2d work items", work, WG)?);
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[x, w, bias.unwrap_or(gpu.dummy()), y],
        grid,
    )
}
