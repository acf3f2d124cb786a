//! conv2d: arguments, the shape rule, and the functional entry point.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId, ValueKind};
use crate::kernels;
use crate::kernels::conv::texture::{FoldedWeights, KeptOperands};
use crate::ops::lowering::{LowerCtx, LowerHook};
pub use crate::shape::{Conv2dArgs, Conv2dGeom};
use crate::tensor::{DType, Tensor};
use std::rc::Rc;

/// y = conv2d(x, weight) + bias, as `torch.nn.functional.conv2d`.
/// x: (N, Cin, H, W); weight: (Cout, Cin/groups, KH, KW); bias: (Cout).
pub fn conv2d(gpu: &Gpu, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, args: Conv2dArgs) -> Result<Tensor> {
    let storage = x.expect_activation("conv2d input")?;
    weight.expect_dtype("conv2d weight", DType::F32)?;
    let geom = Conv2dGeom::new(x.shape(), weight.shape(), args)?;
    if let Some(b) = bias {
        b.expect_dtype("conv2d bias", DType::F32)?;
        if b.dims() != [geom.cout] {
            return Err(Error::shape(
                "conv2d",
                format!("bias of shape [{}]", geom.cout),
                b.shape(),
            ));
        }
    }
    let y = Tensor::empty_of(gpu, geom.out_shape(), storage)?;
    let ds = kernels::conv::forward(
        gpu,
        &geom,
        Default::default(),
        storage,
        &kernels::conv::ForwardBuffers {
            x: x.buffer(),
            w: weight.buffer(),
            bias: bias.map(|b| b.buffer()),
            residual: None,
            y: y.buffer(),
            stats: None,
            kept: None,
            placement: None,
            x_packed: None,
            w_transposed: None,
        },
    )?;
    gpu.run(&ds);
    Ok(y)
}

impl Graph {
    pub fn conv2d(&mut self, x: ValueId, w: ValueId, bias: Option<ValueId>, args: Conv2dArgs) -> Result<ValueId> {
        let g = Conv2dGeom::new(self.shape(x), self.shape(w), args)?;
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            self.expect_vector("conv2d", "bias", b, g.cout)?;
            inputs.push(b);
        }
        let op = Op::Conv2d {
            args,
            bias: bias.is_some(),
            epi: Default::default(),
            stats: false,
        };
        Ok(self.add_f32(op, inputs, g.out_shape()))
    }
}

/// Gradients of [x, w, bias]: the input gradient, the weight gradient and the bias's channel
/// sums of dy, where wanted.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId, want: &[bool]) -> Result<Vec<Option<ValueId>>> {
    let Op::Conv2d { args, bias, epi, .. } = n.op else {
        unreachable!("conv::backward called on {}", n.op.name())
    };
    if !epi.is_none() {
        return Err(Error::arg(
            "autodiff",
            n.op.name(),
            "a conv with a fused epilogue is inference-only",
        ));
    }
    let s = |g: &Graph, i: usize| g.shape(n.inputs[i]).clone();
    let dx = want[0].then(|| g.add_f32(Op::Conv2dBwdData { args }, vec![dy, n.inputs[1]], s(g, 0)));
    let dw = want[1].then(|| g.add_f32(Op::Conv2dBwdWeight { args }, vec![dy, n.inputs[0]], s(g, 1)));
    let db = (bias && want[2]).then(|| g.add_f32(Op::ChannelSum, vec![dy], s(g, 2)));
    Ok(vec![dx, dw, db])
}

/// The launches of a conv node; `ctx.kept` is the plan's record of activations kept packed for
/// a weight gradient (`install`).
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let gpu = ctx.gpu;
    let kept = ctx.kept.as_deref();
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let ishape = |k: usize| ctx.in_shape(n, k);
    let oshape = |k: usize| ctx.out_shape(n, k);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = ctx.storage(n);
    Ok(match &n.op {
        Op::Conv2d { args, bias, epi, stats } => {
            let geom = Conv2dGeom::new(ishape(0), ishape(1), *args)?;
            let b = bias.then(|| i(2));
            let r = epi.residual.then(|| i(2 + usize::from(*bias)));
            let partials = stats.then(|| o(1));
            kernels::conv::forward(
                gpu,
                &geom,
                *epi,
                storage,
                &kernels::conv::ForwardBuffers {
                    x: &i(0),
                    w: &i(1),
                    bias: b.as_ref(),
                    residual: r.as_ref(),
                    y: &o(0),
                    stats: partials.as_ref(),
                    kept,
                    placement: None,
                    x_packed: None,
                    w_transposed: None,
                },
            )?
        }
        Op::Conv2dBwdData { args } => {
            let geom = Conv2dGeom::new(oshape(0), ishape(1), *args)?;
            kernels::conv::backward_data(gpu, &geom, &i(0), &i(1), &o(0), ctx.operands(n), kept)?
        }
        Op::Conv2dBwdWeight { args } => {
            let geom = Conv2dGeom::new(ishape(1), oshape(0), *args)?;
            let (dy, x, dw) = (i(0), i(1), o(0));
            let bufs = kernels::conv::WeightGradientBuffers {
                dy: &dy,
                x: &x,
                dw: &dw,
            };
            kernels::conv::backward_weight(gpu, &geom, &bufs, ctx.operands(n), kept)?
        }
        Op::ChannelSum => vec![kernels::norm::channel_sum(
            gpu,
            crate::shape::batch_channels_spatial(ishape(0).dims()),
            &i(0),
            &o(0),
        )?],
        other => unreachable!("conv::lower called on {}", other.name()),
    })
}

/// Install the plan's record of activations to keep packed (the operands (dy, x) of every
/// weight gradient node that reads them as packed textures) in `ctx`, with its hook.
pub(crate) fn install(ctx: &mut LowerCtx) -> Result<()> {
    let g = ctx.graph;
    let mut kept = KeptOperands::default();
    let updated = g.updated_params();
    for n in &g.nodes {
        match &n.op {
            Op::Conv2dBwdWeight { args } => {
                let geom = Conv2dGeom::new(g.shape(n.inputs[1]), g.shape(n.outputs[0]), *args)?;
                kept.want(ctx.gpu, &geom, &ctx.input(n, 0), &ctx.input(n, 1));
            }
            // a conv's and a linear layer's (which runs as a 1x1 conv on the cpu family)
            Op::Conv2d { .. } | Op::Linear => {
                // the weights, or the tensor they view
                let w = g.view_base(n.inputs[1]);
                let constant = match g.value(w).kind {
                    ValueKind::Param { .. } => !updated.contains(&w),
                    ValueKind::Derived => true,
                    _ => false,
                };
                if constant {
                    kept.constant_weights(&ctx.input(n, 1));
                }
            }
            Op::FoldBn { eps, bias } => {
                if let Some(f) = packing_fold(ctx, n, *eps, *bias)? {
                    kept.fold_into_packing(&ctx.output(n, 0), f);
                }
            }
            _ => {}
        }
    }
    let kept = Rc::new(kept);
    ctx.add_hook(kept.clone());
    ctx.kept = Some(kept);
    Ok(())
}

/// Where every reader of fold_bn node `n`'s folded weights is a conv forward that packs them
/// (the cpu family's texture forward), those packings fold the batch norm in themselves: the
/// conv's weights and the batch norm's scale, which the packing takes from here.
fn packing_fold(ctx: &LowerCtx, n: &Node, eps: f32, bias: bool) -> Result<Option<FoldedWeights>> {
    let g = ctx.graph;
    let folded = n.outputs[0];
    let mut readers = g.nodes.iter().filter(|r| r.inputs.contains(&folded)).peekable();
    if readers.peek().is_none() {
        return Ok(None);
    }
    for r in readers {
        let Op::Conv2d { args, stats, .. } = &r.op else {
            return Ok(None);
        };
        let only_weights = r.inputs.iter().filter(|&&v| v == folded).count() == 1 && r.inputs[1] == folded;
        let geom = Conv2dGeom::new(g.shape(r.inputs[0]), g.shape(folded), *args)?;
        if !only_weights || !kernels::conv::forward_packs_weights(ctx.gpu.into(), &geom, ctx.storage(r), *stats)? {
            return Ok(None);
        }
    }
    let k = usize::from(bias);
    Ok(Some(FoldedWeights {
        w: ctx.input(n, 0),
        gamma: ctx.input(n, 1 + k),
        run_var: ctx.input(n, 4 + k),
        eps,
    }))
}

/// The packings of the buffers a node writes are stale after it; what its dispatches pack for a
/// later weight gradient is recorded in the order the plan runs.
impl LowerHook for KeptOperands {
    fn before(&self, outputs: &[&wgpu::Buffer]) {
        for b in outputs {
            self.written(b);
        }
    }

    fn after(&self, dispatches: &[Dispatch]) {
        self.lowered(dispatches);
    }
}
