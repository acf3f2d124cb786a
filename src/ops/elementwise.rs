//! add, flatten, and the f32 <-> f16 conversions of mixed precision (cast, round_half).

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels;
use crate::ops::lowering::LowerCtx;
use crate::shape::Shape;
use crate::tensor::{DType, Tensor};

// The cast is a kernel launch, so it is defined here, above kernels, rather than in tensor.rs,
// which kernels sit on.
impl Tensor {
    /// This tensor converted to f16 storage (rounded to nearest) on the GPU, or to f32.
    /// Values beyond f16's range (65504) cannot be stored in it.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        let to_half = match (self.dtype(), dtype) {
            (a, b) if a == b => return Ok(self.clone()),
            (DType::F32, DType::F16) => true,
            (DType::F16, DType::F32) => false,
            (a, b) => {
                return Err(Error::arg(
                    "Tensor::to_dtype",
                    "dtype",
                    format!("no conversion from {a:?} to {b:?}"),
                ))
            }
        };
        if to_half {
            self.gpu().require_f16("an f16 tensor")?;
        }
        let out = Tensor::empty_of(self.gpu(), self.shape().clone(), dtype)?;
        let d = kernels::elementwise::cast(self.gpu(), self.numel(), to_half, self.buffer(), out.buffer())?;
        self.gpu().run(&[d]);
        Ok(out)
    }
}

/// a + b for tensors of the same shape (the residual connection).
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let storage = a.expect_activation("add")?;
    b.expect_dtype("add", storage)?;
    if a.shape() != b.shape() {
        return Err(Error::shape(
            "add",
            format!("two tensors of shape {}", a.shape()),
            b.shape(),
        ));
    }
    let y = Tensor::empty_of(gpu, a.shape().clone(), storage)?;
    gpu.run(&[kernels::elementwise::add(
        gpu,
        a.numel(),
        storage,
        a.buffer(),
        b.buffer(),
        y.buffer(),
    )?]);
    Ok(y)
}

/// `torch.flatten(x, 1)`: (N, ...) -> (N, prod(...)). A view: no copy, no kernel.
pub fn flatten(x: &Tensor) -> Result<Tensor> {
    let d = x.dims();
    if d.is_empty() {
        return Err(Error::shape("flatten", "a tensor of rank >= 1", x.shape()));
    }
    x.reshape([d[0], d[1..].iter().product()])
}

impl Graph {
    pub fn add(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        if self.shape(a) != self.shape(b) {
            return Err(Error::shape(
                "add",
                format!("two tensors of shape {}", self.shape(a)),
                self.shape(b),
            ));
        }
        let s = self.shape(a).clone();
        Ok(self.add_f32(Op::Add, vec![a, b], s))
    }

    /// x rounded to the nearest f16 value, stored f32 (`Op::RoundHalf`).
    pub(crate) fn round_half(&mut self, x: ValueId) -> ValueId {
        let s = self.shape(x).clone();
        self.add_f32(Op::RoundHalf, vec![x], s)
    }

    /// (N, ...) -> (N, prod(...)): a view of x's buffer.
    pub fn flatten(&mut self, x: ValueId) -> Result<ValueId> {
        let d = self.shape(x).dims().to_vec();
        if d.is_empty() {
            return Err(Error::shape("flatten", "a tensor of rank >= 1", self.shape(x)));
        }
        Ok(self.reshape(x, Shape::new(&[d[0], d[1..].iter().product()])))
    }

    pub(crate) fn reshape(&mut self, x: ValueId, shape: Shape) -> ValueId {
        debug_assert_eq!(shape.numel(), self.shape(x).numel());
        let dtype = self.value(x).dtype;
        self.add_node(Op::Reshape, vec![x], vec![(shape, dtype)])[0]
    }
}

/// An add passes dy to both inputs; a reshape reshapes it back.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId) -> Vec<Option<ValueId>> {
    match n.op {
        Op::Add => vec![Some(dy), Some(dy)],
        // the rounding's gradient passes straight through (as autocast's cast back to f32)
        Op::RoundHalf => vec![Some(dy)],
        Op::Reshape => {
            let shape = g.shape(n.inputs[0]).clone();
            vec![Some(g.reshape(dy, shape))]
        }
        ref other => unreachable!("elementwise::backward called on {}", other.name()),
    }
}

/// The launches of a elementwise node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let gpu = ctx.gpu;
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let ishape = |k: usize| ctx.in_shape(n, k);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = ctx.storage(n);
    Ok(match &n.op {
        Op::Add => vec![kernels::elementwise::add(
            gpu,
            ishape(0).numel(),
            storage,
            &i(0),
            &i(1),
            &o(0),
        )?],
        Op::Cast => {
            let to_half = storage == DType::F16;
            vec![kernels::elementwise::cast(
                gpu,
                ishape(0).numel(),
                to_half,
                &i(0),
                &o(0),
            )?]
        }
        Op::RoundHalf => vec![kernels::elementwise::round_half(gpu, ishape(0).numel(), &i(0), &o(0))?],
        Op::Reshape => vec![],
        other => unreachable!("elementwise::lower called on {}", other.name()),
    })
}
