//! The buffers of a conv forward, and where it stores its output; the buffers of a conv weight
//! gradient.

use super::constants::{sizes, STATS_BLOCK};
use super::texture::{KeptOperands, SharedPacking, TransposedWeights};
use crate::device::{grid_1d, Dispatch, Gpu, Resource};
use crate::error::Result;
use crate::kernels::shaders::CONV2D_STATS_CONDENSE;
use crate::kernels::{groups_for, u32_of};
use crate::shape::Conv2dGeom;

/// The buffers of one conv forward: x (N, Cin, H, W), w (Cout, Cin/g, KH, KW), the optional
/// bias (Cout) and residual (like y), y (N, Cout, OH, OW), and the optional block statistics of y
/// for a training batch norm (see `STATS_BLOCK`).
#[derive(Clone, Copy)]
pub struct ForwardBuffers<'a> {
    pub x: &'a wgpu::Buffer,
    pub w: &'a wgpu::Buffer,
    pub bias: Option<&'a wgpu::Buffer>,
    pub residual: Option<&'a wgpu::Buffer>,
    pub y: &'a wgpu::Buffer,
    pub stats: Option<&'a wgpu::Buffer>,
    /// A training plan's record of the inputs to keep packed for their weight gradient
    /// (the texture kernels; see `texture::KeptOperands`); None packs x into scratch.
    pub kept: Option<&'a KeptOperands>,
    /// Where y's pixels go inside a larger map (the texture forward only; None: y is dense).
    pub placement: Option<Placement>,
    /// x already packed with at least this conv's padding (the texture forward only; None:
    /// the forward packs x itself).
    pub x_packed: Option<&'a SharedPacking>,
    /// w is another conv's weights, and this forward's weights their transposition (the
    /// texture forward only, which packs them transposed; None: w is this conv's own).
    pub w_transposed: Option<TransposedWeights>,
}

/// Where a forward stores its output map: pixel (oy, ox) of each (image, channel) plane at
/// (first[0] + stride[0]*oy, first[1] + stride[1]*ox) of an h x w plane. A strided conv's input
/// gradient stores each stride phase straight into its positions in dx this way, where a
/// scratch map and a scatter pass would write it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub h: usize,
    pub w: usize,
    pub first: [usize; 2],
    pub stride: [usize; 2],
}

impl Placement {
    /// The dense placement of `g`'s output: y itself.
    pub fn dense(g: &Conv2dGeom) -> Self {
        Placement {
            h: g.oh,
            w: g.ow,
            first: [0, 0],
            stride: [1, 1],
        }
    }

    /// Whether every pixel of `g`'s output lands inside the plane.
    pub(super) fn holds(&self, g: &Conv2dGeom) -> bool {
        let fits = |a: usize, out: usize, size: usize| out == 0 || self.first[a] + self.stride[a] * (out - 1) < size;
        self.stride[0] >= 1 && self.stride[1] >= 1 && fits(0, g.oh, self.h) && fits(1, g.ow, self.w)
    }
}

impl<'a> ForwardBuffers<'a> {
    /// y = conv2d(x, w) with no bias, residual or statistics (set those with struct update).
    pub fn new(x: &'a wgpu::Buffer, w: &'a wgpu::Buffer, y: &'a wgpu::Buffer) -> Self {
        ForwardBuffers {
            x,
            w,
            bias: None,
            residual: None,
            y,
            stats: None,
            kept: None,
            placement: None,
            x_packed: None,
            w_transposed: None,
        }
    }

    /// Whether these ask for what only the texture forward does: a placed output, a shared
    /// packing of x, or weights transposed as they are packed.
    pub(super) fn texture_only(&self) -> bool {
        self.placement.is_some() || self.x_packed.is_some() || self.w_transposed.is_some()
    }
}

/// The buffers of one conv weight gradient: dy (N, Cout, OH, OW) and x (N, Cin, H, W) in, dw
/// (Cout, Cin/g, KH, KW) out. The split-K kernels bind dy and x as `Resource`s (`I`): the
/// buffers themselves, or the textures the texture kernel packs them into.
#[derive(Clone, Copy)]
pub struct WeightGradientBuffers<'a, I = &'a wgpu::Buffer> {
    pub dy: I,
    pub x: I,
    pub dw: &'a wgpu::Buffer,
}

impl<'a> WeightGradientBuffers<'a> {
    /// These buffers as a split-K kernel binds them.
    pub(super) fn resources(&self) -> WeightGradientBuffers<'a, Resource<'a>> {
        WeightGradientBuffers {
            dy: Resource::Buffer(self.dy),
            x: Resource::Buffer(self.x),
            dw: self.dw,
        }
    }
}

/// The bindings of a forward kernel that stores through conv2d_epilogue's vec4 views and may
/// write statistics (the block, large-tile and vec4 depthwise kernels): x, w, bias, residual,
/// y, the statistics (`partials`, or a dummy), then y and the residual again as vec4s (the
/// epilogue's y4 and res4); absent ones bound to the dummy buffer.
pub(super) fn epilogue_bindings<'b>(
    gpu: &'b Gpu,
    b: &ForwardBuffers<'b>,
    partials: Option<&'b wgpu::Buffer>,
) -> [&'b wgpu::Buffer; 8] {
    let d = gpu.dummy();
    let residual = b.residual.unwrap_or(d);
    [
        b.x,
        b.w,
        b.bias.unwrap_or(d),
        residual,
        b.y,
        partials.unwrap_or(gpu.dummy_rw()),
        b.y,
        residual,
    ]
}

/// The one dispatch of a forward kernel that writes no statistics (the staged depthwise and
/// the cooperative-matrix kernels): bindings x, w, bias, residual and y, the absent ones bound
/// to the dummy buffer.
pub(super) fn epilogue_only_dispatch(
    gpu: &Gpu,
    pipeline: std::sync::Arc<crate::device::Pipeline>,
    g: &Conv2dGeom,
    b: &ForwardBuffers<'_>,
    grid: [u32; 3],
) -> Result<Vec<Dispatch>> {
    let d = gpu.dummy();
    Ok(vec![Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &[b.x, b.w, b.bias.unwrap_or(d), b.residual.unwrap_or(d), b.y],
        grid,
    )?])
}

/// The dispatch that merges the statistics of `g`'s output in sub-blocks of `fine` pixels
/// (`fine_stats`, (blocks of `fine`, Cout, 2), written by a kernel whose workgroups tile fewer
/// pixels than a statistics block) into `STATS_BLOCK` blocks in `stats`.
pub(super) fn condense_stats(
    gpu: &Gpu,
    g: &Conv2dGeom,
    fine: usize,
    fine_stats: &wgpu::Buffer,
    stats: &wgpu::Buffer,
) -> Result<Dispatch> {
    let pixels = g.n * g.oh * g.ow;
    let work = pixels.div_ceil(STATS_BLOCK) * g.cout;
    Dispatch::new(
        gpu,
        gpu.pipeline(&CONV2D_STATS_CONDENSE, &[])?,
        &[
            u32_of("conv2d output channels", g.cout)?,
            u32_of("conv2d output pixels", pixels)?,
            fine as u32,
            (STATS_BLOCK / fine) as u32,
        ],
        &[fine_stats, stats],
        grid_1d(groups_for("conv2d statistics blocks", work, 64)?),
    )
}
