//! The activation family, in one place: which activations there are (`Act`), the graph
//! builder with its shape rule, the backward rule autodiff applies, the lowering to kernels,
//! the kernel launchers and the functional API. The formulas themselves are WGSL, once, in
//! `shaders/activation.wgsl`, which the activation kernels and every fused epilogue (conv,
//! batch norm, the 1x1-conv GEMM) start with; the float64 references the tests hold them to
//! are in `tests/common/reference.rs`, the tests in `tests/kernels/activation.rs`.
//!
//! Adding an activation: a variant here (code, name, whether its derivative follows from its
//! output), its formula and derivative in `activation.wgsl`, its reference in the tests.

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::Result;
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::shaders::{variant, ACTIVATION_BWD, ACTIVATION_FWD};
use crate::kernels::{groups_for, u32_of};
use crate::ops::lowering::LowerCtx;
pub use crate::shape::Act;
use crate::shape::DType;
use crate::tensor::Tensor;

// ---- graph: shape rule and backward rule ----

impl Graph {
    /// y = act(x), same shape as x.
    pub fn activation(&mut self, x: ValueId, act: Act) -> Result<ValueId> {
        act.check(act.name())?;
        if act == Act::None {
            return Ok(x);
        }
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::Activation(act), vec![x], vec![(shape, DType::F32)])[0])
    }

    pub fn relu(&mut self, x: ValueId) -> ValueId {
        self.activation(x, Act::Relu).expect("relu has no arguments to reject")
    }

    /// min(max(x, 0), 6): MobileNetV2's activation.
    pub fn relu6(&mut self, x: ValueId) -> ValueId {
        self.activation(x, Act::Relu6)
            .expect("relu6 has no arguments to reject")
    }
}

/// The backward of an `Activation` node: dx = dy * act'(.), from its output where that is
/// enough (`Act::grad_from_output`), else from its input.
pub(crate) fn backward(g: &mut Graph, n: &Node, act: Act, dy: ValueId) -> ValueId {
    let saved = if act.grad_from_output() {
        n.outputs[0]
    } else {
        n.inputs[0]
    };
    let shape = g.shape(n.inputs[0]).clone();
    g.add_node(Op::ActivationBwd(act), vec![dy, saved], vec![(shape, DType::F32)])[0]
}

// ---- lowering and kernels ----

const WG: usize = 256;

/// The launches of an `Activation` ([x] -> [y]) or `ActivationBwd` ([dy, saved] -> [dx]) node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let total = g.shape(n.inputs[0]).numel();
    let (i, o) = (|k: usize| ctx.input(n, k), |k: usize| ctx.output(n, k));
    Ok(vec![match n.op {
        Op::Activation(act) => forward(gpu, act, total, g.value(n.outputs[0]).dtype, &i(0), &o(0))?,
        Op::ActivationBwd(act) => backward_kernel(gpu, act, total, &i(0), &i(1), &o(0))?,
        ref other => unreachable!("activation::lower called on {}", other.name()),
    }])
}

/// y = act(x) over `total` elements, x and y stored as `storage` (f32 or f16).
pub fn forward(
    gpu: &Gpu,
    act: Act,
    total: usize,
    storage: DType,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    act.check(act.name())?;
    let [a, alpha] = act.constants();
    let pipeline = gpu.pipeline(variant(gpu, &ACTIVATION_FWD, storage)?, &[("WG", WG as f64), a, alpha])?;
    let grid = grid_1d(groups_for(act.name(), total, WG)?);
    Ok(
        Dispatch::new(gpu, pipeline, &[u32_of("activation elements", total)?], &[x, y], grid)?
            .moving(2 * storage.size() * total),
    )
}

/// dx = dy * act'(saved) over `total` elements; `saved` is the forward's output y where
/// `act.grad_from_output()`, else its input x.
pub fn backward_kernel(
    gpu: &Gpu,
    act: Act,
    total: usize,
    dy: &wgpu::Buffer,
    saved: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    act.check(act.name())?;
    let [a, alpha] = act.constants();
    let from_output = ("FROM_OUTPUT", f64::from(u8::from(act.grad_from_output())));
    let pipeline = gpu.pipeline(&ACTIVATION_BWD, &[("WG", WG as f64), a, alpha, from_output])?;
    let grid = grid_1d(groups_for(act.name(), total, WG)?);
    Dispatch::new(
        gpu,
        pipeline,
        &[u32_of("activation elements", total)?],
        &[dy, saved, dx],
        grid,
    )
    .map(|d| d.moving(3 * 4 * total))
}

// ---- functional API ----

/// `act(x)` on a tensor of any shape (`torch.nn.functional.relu`, `silu`, `gelu`, ...).
pub fn activation(gpu: &Gpu, x: &Tensor, act: Act) -> Result<Tensor> {
    let storage = x.expect_activation(act.name())?;
    let y = Tensor::empty_of(gpu, x.shape().clone(), storage)?;
    gpu.run(&[forward(gpu, act, x.numel(), storage, x.buffer(), y.buffer())?]);
    Ok(y)
}

/// `torch.relu`: max(x, 0), any shape.
pub fn relu(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    activation(gpu, x, Act::Relu)
}
