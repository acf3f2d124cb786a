//! The pooling family, in one place: max_pool2d, avg_pool2d and adaptive_avg_pool2d, with
//! square or non-square windows. Arguments and shape rules, graph builders, backward rules,
//! lowering and the functional API; launchers in `kernels/pool.rs`, kernels
//! `shaders/*pool2d*.wgsl`, tests in `tests/kernels/pool.rs` and `tests/grad.rs`.

use crate::device::{Dispatch, Gpu};
use crate::error::Result;
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels;
use crate::ops::lowering::LowerCtx;
pub use crate::shape::{Pool2dArgs, Pool2dGeom};
use crate::tensor::{DType, Tensor};

impl Graph {
    pub fn max_pool2d(&mut self, x: ValueId, args: Pool2dArgs) -> Result<ValueId> {
        let g = Pool2dGeom::new("max_pool2d", self.shape(x), args)?;
        Ok(self.add_f32(Op::MaxPool2d(args), vec![x], g.out_shape()))
    }

    pub fn avg_pool2d(&mut self, x: ValueId, args: Pool2dArgs) -> Result<ValueId> {
        let g = Pool2dGeom::new("avg_pool2d", self.shape(x), args)?;
        Ok(self.add_f32(Op::AvgPool2d(args), vec![x], g.out_shape()))
    }

    pub fn adaptive_avg_pool2d(&mut self, x: ValueId, out: [usize; 2]) -> Result<ValueId> {
        let g = Pool2dGeom::adaptive(self.shape(x), out)?;
        Ok(self.add_f32(Op::AdaptiveAvgPool2d(out), vec![x], g.out_shape()))
    }
}

/// The input gradient of a pooling node from dy (max pooling also reads x for its argmax).
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId) -> ValueId {
    let (x, shape) = (n.inputs[0], g.shape(n.inputs[0]).clone());
    match n.op {
        Op::MaxPool2d(a) => g.add_f32(Op::MaxPool2dBwd(a), vec![dy, x], shape),
        Op::AvgPool2d(a) => g.add_f32(Op::AvgPool2dBwd(a), vec![dy], shape),
        Op::AdaptiveAvgPool2d(_) => g.add_f32(Op::AdaptiveAvgPool2dBwd, vec![dy], shape),
        ref other => unreachable!("pool::backward called on {}", other.name()),
    }
}

/// The launches of a pooling node or its backward.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let (i, o) = (|k: usize| ctx.input(n, k), |k: usize| ctx.output(n, k));
    let (ishape, oshape) = (|k: usize| ctx.in_shape(n, k), |k: usize| ctx.out_shape(n, k));
    let storage = g.value(n.outputs[0]).dtype;
    Ok(match n.op {
        Op::MaxPool2d(a) => {
            let geom = Pool2dGeom::new("max_pool2d", ishape(0), a)?;
            vec![kernels::pool::max_forward(gpu, &geom, storage, &i(0), &o(0))?]
        }
        Op::AvgPool2d(a) => {
            let geom = Pool2dGeom::new("avg_pool2d", ishape(0), a)?;
            vec![kernels::pool::avg_forward(gpu, &geom, storage, &i(0), &o(0))?]
        }
        Op::AdaptiveAvgPool2d(out) => {
            let geom = Pool2dGeom::adaptive(ishape(0), out)?;
            vec![kernels::pool::adaptive_avg_forward(gpu, &geom, storage, &i(0), &o(0))?]
        }
        Op::MaxPool2dBwd(a) => {
            let geom = Pool2dGeom::new("max_pool2d", ishape(1), a)?;
            kernels::pool::max_backward(gpu, &geom, &i(0), &i(1), &o(0))?
        }
        Op::AvgPool2dBwd(a) => {
            let geom = Pool2dGeom::new("avg_pool2d", oshape(0), a)?;
            vec![kernels::pool::avg_backward(gpu, &geom, &i(0), &o(0))?]
        }
        Op::AdaptiveAvgPool2dBwd => {
            let dy = ishape(0).dims();
            let geom = Pool2dGeom::adaptive(oshape(0), [dy[2], dy[3]])?;
            vec![kernels::pool::adaptive_avg_backward(gpu, &geom, &i(0), &o(0))?]
        }
        ref other => unreachable!("pool::lower called on {}", other.name()),
    })
}

/// The launcher of one pooling kernel: geometry, input and output buffers.
type PoolKernel = fn(&Gpu, &Pool2dGeom, DType, &wgpu::Buffer, &wgpu::Buffer) -> Result<crate::device::Dispatch>;

fn pool(op: &str, gpu: &Gpu, x: &Tensor, geom: Pool2dGeom, kernel: PoolKernel) -> Result<Tensor> {
    let storage = x.expect_activation(op)?;
    let y = Tensor::empty_of(gpu, geom.out_shape(), storage)?;
    gpu.run(&[kernel(gpu, &geom, storage, x.buffer(), y.buffer())?]);
    Ok(y)
}

/// `torch.nn.functional.max_pool2d`. x: (N, C, H, W).
pub fn max_pool2d(gpu: &Gpu, x: &Tensor, args: Pool2dArgs) -> Result<Tensor> {
    pool(
        "max_pool2d",
        gpu,
        x,
        Pool2dGeom::new("max_pool2d", x.shape(), args)?,
        kernels::pool::max_forward,
    )
}

/// `torch.nn.functional.avg_pool2d`. x: (N, C, H, W).
pub fn avg_pool2d(gpu: &Gpu, x: &Tensor, args: Pool2dArgs) -> Result<Tensor> {
    pool(
        "avg_pool2d",
        gpu,
        x,
        Pool2dGeom::new("avg_pool2d", x.shape(), args)?,
        kernels::pool::avg_forward,
    )
}

/// `torch.nn.functional.adaptive_avg_pool2d`. x: (N, C, H, W) -> (N, C, out[0], out[1]).
pub fn adaptive_avg_pool2d(gpu: &Gpu, x: &Tensor, out: [usize; 2]) -> Result<Tensor> {
    let geom = Pool2dGeom::adaptive(x.shape(), out)?;
    pool("adaptive_avg_pool2d", gpu, x, geom, kernels::pool::adaptive_avg_forward)
}
