//! The channel-scale family, in one place: y = x * s with x (N, C, H, W) and s (N, C) or
//! (N, C, 1, 1), one scale per image and channel (squeeze-and-excite's gate, MobileNetV3 and
//! EfficientNet). Shape rule, backward rule (dx = dy * s, ds = sum over the map of dy * x),
//! lowering, launchers and functional API; kernels `shaders/mul_channels.wgsl` and
//! `shaders/row_dot.wgsl`; tests in `tests/kernels/mul_channels.rs` and `tests/grad.rs`.

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::shaders::{MUL_CHANNELS, ROW_DOT};
use crate::kernels::{groups_for, u32_of};
use crate::ops::lowering::LowerCtx;
use crate::tensor::{DType, Tensor};

const WG: usize = 256;

/// (N, C, H*W) of x, after checking that s holds one value per (image, channel).
fn check(op: &str, x: &crate::shape::Shape, s: &crate::shape::Shape) -> Result<[usize; 3]> {
    let [n, c, h, w] = x.nchw(op, "input")?;
    let d = s.dims();
    if !(d == [n, c] || d == [n, c, 1, 1]) {
        return Err(Error::shape(
            op,
            format!("a scale of shape [{n}, {c}] or [{n}, {c}, 1, 1]"),
            s,
        ));
    }
    Ok([n, c, h * w])
}

impl Graph {
    /// x (N, C, H, W) * s (N, C) or (N, C, 1, 1), broadcast over H and W.
    pub fn mul_channels(&mut self, x: ValueId, s: ValueId) -> Result<ValueId> {
        check("mul_channels", self.shape(x), self.shape(s))?;
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::MulChannels, vec![x, s], vec![(shape, DType::F32)])[0])
    }
}

/// Gradients of [x, s] from dy, where wanted.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId, want: &[bool]) -> Vec<Option<ValueId>> {
    let (x, s) = (n.inputs[0], n.inputs[1]);
    let dx = want[0].then(|| {
        let shape = g.shape(x).clone();
        g.add_node(Op::MulChannels, vec![dy, s], vec![(shape, DType::F32)])[0]
    });
    let ds = want[1].then(|| {
        let shape = g.shape(s).clone();
        g.add_node(Op::MulChannelsBwdScale, vec![dy, x], vec![(shape, DType::F32)])[0]
    });
    vec![dx, ds]
}

/// The launch of a `MulChannels` ([x, s] -> [y]) or `MulChannelsBwdScale` ([dy, x] -> [ds]) node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let (i, o) = (|k: usize| ctx.input(n, k), |k: usize| ctx.output(n, k));
    Ok(vec![match n.op {
        Op::MulChannels => {
            let dims = check("mul_channels", g.shape(n.inputs[0]), g.shape(n.inputs[1]))?;
            forward(gpu, dims, &i(0), &i(1), &o(0))?
        }
        Op::MulChannelsBwdScale => {
            let dims = check("mul_channels backward", g.shape(n.inputs[1]), g.shape(n.outputs[0]))?;
            scale_gradient(gpu, dims, &i(0), &i(1), &o(0))?
        }
        ref other => unreachable!("mul_channels::lower called on {}", other.name()),
    }])
}

/// y = x * s[n, c] over x (N, C, HW).
pub fn forward(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    x: &wgpu::Buffer,
    s: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let total = n * c * hw;
    let pipeline = gpu.pipeline(&MUL_CHANNELS, &[("WG", WG as f64)])?;
    let grid = grid_1d(groups_for("mul_channels", total, WG)?);
    let params = [u32_of("mul_channels elements", total)?, hw as u32];
    Dispatch::new(gpu, pipeline, &params, &[x, s, y], grid)
}

/// ds[n, c] = sum over the map of dy * x, for x and dy (N, C, HW).
pub fn scale_gradient(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    ds: &wgpu::Buffer,
) -> Result<Dispatch> {
    u32_of("mul_channels elements", n * c * hw)?;
    let rows = u32_of("mul_channels rows (images x channels)", n * c)?;
    let pipeline = gpu.pipeline(crate::kernels::shaders::reduction_variant(gpu, &ROW_DOT), &[])?;
    Dispatch::new(gpu, pipeline, &[rows, hw as u32], &[dy, x, ds], grid_1d(rows))
}

/// `x * s` for x (N, C, H, W) and s (N, C) or (N, C, 1, 1) (float32).
pub fn mul_channels(gpu: &Gpu, x: &Tensor, s: &Tensor) -> Result<Tensor> {
    x.expect_dtype("mul_channels", DType::F32)?;
    s.expect_dtype("mul_channels", DType::F32)?;
    let dims = check("mul_channels", x.shape(), s.shape())?;
    let y = Tensor::empty(gpu, x.shape().clone())?;
    gpu.run(&[forward(gpu, dims, x.buffer(), s.buffer(), y.buffer())?]);
    Ok(y)
}
