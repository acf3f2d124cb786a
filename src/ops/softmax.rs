//! Softmax as an op, in one place: `torch.softmax(x, dim=-1)` over (N, K) (class scores, or an
//! attention-style gate), its backward dx = y * (dy - sum(dy * y)) from the output, lowering,
//! launcher and functional API; kernel `shaders/softmax.wgsl`; tests in
//! `tests/kernels/softmax.rs` and `tests/grad.rs`. (Training a classifier takes
//! `cross_entropy`, which fuses the softmax with the loss.)

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::shaders::SOFTMAX;
use crate::kernels::u32_of;
use crate::ops::lowering::LowerCtx;
use crate::tensor::{DType, Tensor};

impl Graph {
    /// Softmax over the last axis of x (N, K).
    pub fn softmax(&mut self, x: ValueId) -> Result<ValueId> {
        self.shape(x).matrix("softmax", "input (N, K)")?;
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::Softmax, vec![x], vec![(shape, DType::F32)])[0])
    }
}

/// [dy] -> dx from the forward's output.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId) -> ValueId {
    let shape = g.shape(n.inputs[0]).clone();
    g.add_node(Op::SoftmaxBwd, vec![n.outputs[0], dy], vec![(shape, DType::F32)])[0]
}

/// The launch of a Softmax ([x] -> [y]) or SoftmaxBwd ([y, dy] -> [dx]) node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let nk = g.shape(n.inputs[0]).matrix("softmax", "input (N, K)")?;
    let (i, o) = (|k: usize| ctx.input(n, k), |k: usize| ctx.output(n, k));
    Ok(vec![match n.op {
        Op::Softmax => launch(gpu, nk, &i(0), None, &o(0))?,
        Op::SoftmaxBwd => launch(gpu, nk, &i(0), Some(&i(1)), &o(0))?,
        ref other => unreachable!("softmax::lower called on {}", other.name()),
    }])
}

/// y = softmax(x) over rows of K; with `dy`, the backward: `a` is y and out is dx.
pub fn launch(
    gpu: &Gpu,
    [rows, k]: [usize; 2],
    a: &wgpu::Buffer,
    dy: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    u32_of("softmax elements", rows * k)?;
    let rows32 = u32_of("softmax rows", rows)?;
    let pipeline = gpu.pipeline(
        crate::kernels::shaders::reduction_variant(gpu, &SOFTMAX),
        &[("BACKWARD", f64::from(u8::from(dy.is_some())))],
    )?;
    Dispatch::new(
        gpu,
        pipeline,
        &[rows32, k as u32],
        &[a, dy.unwrap_or(gpu.dummy()), out],
        grid_1d(rows32),
    )
}

/// `torch.softmax(x, dim=-1)` for x (N, K).
pub fn softmax(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    x.expect_dtype("softmax", DType::F32)?;
    let nk = x.shape().matrix("softmax", "input (N, K)")?;
    let y = Tensor::empty(gpu, x.shape().clone())?;
    gpu.run(&[launch(gpu, nk, x.buffer(), None, y.buffer())?]);
    Ok(y)
}
