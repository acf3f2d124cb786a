//! batch_norm over (N, H, W) per channel, training and eval, as `torch.nn.functional.batch_norm`.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Act, Graph, Node, Op, ValueId};
use crate::kernels;
use crate::ops::lowering::LowerCtx;
use crate::shape::{batch_channels_spatial, Shape};
use crate::tensor::{DType, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormArgs {
    /// Use batch statistics and update the running ones (true), or use the running ones (false).
    pub training: bool,
    pub momentum: f32,
    pub eps: f32,
}

impl Default for BatchNormArgs {
    fn default() -> Self {
        BatchNormArgs {
            training: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

/// Learned affine parameters and running statistics of one batch-norm layer, each (C).
pub struct BatchNormState<'a> {
    pub weight: &'a Tensor,
    pub bias: &'a Tensor,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
}

/// Normalise x (N, C, H, W) per channel. In training, the running statistics are updated in
/// place on the GPU and the batch mean and biased variance are returned beside y (for backward);
/// in eval, the running statistics are used and returned as they are.
pub fn batch_norm(
    gpu: &Gpu,
    x: &Tensor,
    state: &BatchNormState<'_>,
    args: BatchNormArgs,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "batch_norm";
    let storage = x.expect_activation(OP)?;
    let [n, c, h, w] = x.shape().nchw(OP, "input")?;
    for (name, t) in [
        ("weight", state.weight),
        ("bias", state.bias),
        ("running_mean", state.running_mean),
        ("running_var", state.running_var),
    ] {
        t.expect_dtype(OP, DType::F32)?;
        if t.dims() != [c] {
            return Err(Error::shape(
                OP,
                format!("{name} of shape [{c}] (input {})", x.shape()),
                t.shape(),
            ));
        }
    }
    if args.eps.is_nan() || args.eps <= 0.0 {
        return Err(Error::arg(OP, "eps", format!("{} must be positive", args.eps)));
    }
    let dims = [n, c, h * w];
    let mut dispatches = Vec::with_capacity(2);
    let (mean, var) = if args.training {
        if n * h * w < 2 {
            return Err(Error::shape(OP, "more than 1 value per channel in training", x.shape()));
        }
        let mean = Tensor::empty(gpu, [c])?;
        let var = Tensor::empty(gpu, [c])?;
        let bufs = kernels::norm::StatsBuffers {
            input: x.buffer(),
            mean: mean.buffer(),
            var: var.buffer(),
            running_mean: state.running_mean.buffer(),
            running_var: state.running_var.buffer(),
        };
        let d = kernels::norm::stats(gpu, dims, args.momentum, true, storage, &bufs)?;
        dispatches.push(d);
        (mean, var)
    } else {
        (state.running_mean.clone(), state.running_var.clone())
    };
    let y = Tensor::empty_of(gpu, x.shape().clone(), storage)?;
    let bufs = kernels::norm::ApplyBuffers {
        x: x.buffer(),
        mean: mean.buffer(),
        var: var.buffer(),
        gamma: state.weight.buffer(),
        beta: state.bias.buffer(),
        residual: None,
        y: y.buffer(),
        pre: None,
    };
    let d = kernels::norm::apply(gpu, dims, args.eps, Default::default(), storage, &bufs)?;
    dispatches.push(d);
    // statistics and normalisation in one submit
    gpu.run(&dispatches);
    Ok((y, mean, var))
}

impl Graph {
    /// Batch norm over (N, H, W). `stats` = [gamma, beta, running_mean, running_var], each (C).
    pub fn batch_norm(
        &mut self,
        x: ValueId,
        stats: [ValueId; 4],
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<ValueId> {
        let [n, c, h, w] = self.shape(x).nchw("batch_norm", "input")?;
        for (what, v) in ["weight", "bias", "running_mean", "running_var"].into_iter().zip(stats) {
            self.expect_vector("batch_norm", what, v, c)?;
        }
        if training && n * h * w < 2 {
            return Err(Error::shape(
                "batch_norm",
                "more than 1 value per channel in training",
                self.shape(x),
            ));
        }
        let op = Op::BatchNorm {
            training,
            momentum,
            eps,
            epi: Default::default(),
            partials: false,
        };
        let shape = self.shape(x).clone();
        let mut outs = vec![(shape, DType::F32)];
        if training {
            outs.push((Shape::new(&[c]), DType::F32));
            outs.push((Shape::new(&[c]), DType::F32));
        }
        Ok(self.add_node(op, [&[x][..], &stats[..]].concat(), outs)[0])
    }
}

/// Gradients of a training batch norm's inputs [x, gamma, beta, running_mean, running_var,
/// residual if fused, conv statistics if fused]: y = act(bn(x) + r), one fused backward that
/// takes dy through the activation (from y, or from the saved bn(x) + r where the activation's
/// gradient needs its input) and also yields dr.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId) -> Result<Vec<Option<ValueId>>> {
    let Op::BatchNorm {
        training: true,
        eps,
        epi,
        partials,
        ..
    } = n.op
    else {
        return Err(Error::arg(
            "autodiff",
            n.op.name(),
            "backward through eval-mode batch_norm is not supported; train in training mode",
        ));
    };
    let x = n.inputs[0];
    let (mean, var, gamma) = (n.outputs[1], n.outputs[2], n.inputs[1]);
    let xs = g.shape(x).clone();
    let c = g.shape(gamma).clone();
    let mut inputs = vec![dy, x, mean, var, gamma];
    if epi.act != Act::None {
        // what the activation's derivative is taken from: its output, or the value before it
        inputs.push(if epi.act.grad_from_output() {
            n.outputs[0]
        } else {
            n.outputs[3]
        });
    }
    let mut shapes = vec![(xs.clone(), DType::F32), (c.clone(), DType::F32), (c, DType::F32)];
    if epi.residual {
        shapes.push((xs, DType::F32));
    }
    let outs = g.add_node(Op::BatchNormBwd { eps, epi }, inputs, shapes);
    let mut grads = vec![Some(outs[0]), Some(outs[1]), Some(outs[2]), None, None];
    if epi.residual {
        grads.push(Some(outs[3]));
    }
    if partials {
        // the statistics are x's: dx above is already the full gradient through them
        grads.push(None);
    }
    Ok(grads)
}

/// The launches of a norm node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let gpu = ctx.gpu;
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let ishape = |k: usize| ctx.in_shape(n, k);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = ctx.storage(n);
    Ok(match &n.op {
        Op::BatchNorm { training, eps, epi, .. } => {
            let dims = batch_channels_spatial(ishape(0).dims());
            let (gamma, beta, rm, rv) = (i(1), i(2), i(3), i(4));
            let r = epi.residual.then(|| i(5));
            if *training {
                Vec::from(train_dispatches(ctx, n, true)?)
            } else {
                let bufs = kernels::norm::ApplyBuffers {
                    x: &i(0),
                    mean: &rm,
                    var: &rv,
                    gamma: &gamma,
                    beta: &beta,
                    residual: r.as_ref(),
                    y: &o(0),
                    pre: None,
                };
                vec![kernels::norm::apply(gpu, dims, *eps, *epi, storage, &bufs)?]
            }
        }
        Op::BatchNormBwd { .. } => {
            let d = backward_dispatches(ctx, n)?;
            d.reduce.into_iter().chain([d.data]).collect()
        }
        Op::FoldBn { eps, bias } => {
            let k = usize::from(*bias);
            let wshape = ishape(0).dims();
            let b = bias.then(|| i(1));
            let (gamma, beta, rm, rv) = (i(1 + k), i(2 + k), i(3 + k), i(4 + k));
            // where the convs that read the folded weights pack them, the packings fold them
            // (`ops::conv::install`) and this computes the bias alone, binding neither weight
            // buffer (the folded one is then never bound, so never cleared nor touched)
            let (w, w_out) = (i(0), o(0));
            let packs = ctx.kept.as_ref().is_some_and(|k| k.folds_into_packing(&w_out));
            let (per, w, w_out) = match packs {
                true => (0, gpu.dummy(), gpu.dummy_rw()),
                false => (wshape[1..].iter().product(), &w, &w_out),
            };
            let folded = kernels::norm::FoldBuffers {
                w,
                b: b.as_ref(),
                gamma: &gamma,
                beta: &beta,
                rm: &rm,
                rv: &rv,
                w_out,
                b_out: &o(1),
            };
            vec![kernels::norm::fold(gpu, [wshape[0], per], *eps, &folded)?]
        }
        other => unreachable!("norm::lower called on {}", other.name()),
    })
}

/// A training batch norm's launches: batch statistics (also updating the running statistics
/// when `update_running`), then the normalisation with its epilogue.
fn train_dispatches(ctx: &LowerCtx, n: &Node, update_running: bool) -> Result<[Dispatch; 2]> {
    let Op::BatchNorm {
        momentum,
        eps,
        epi,
        partials,
        ..
    } = n.op
    else {
        unreachable!("norm::train_dispatches called on {}", n.op.name())
    };
    let gpu = ctx.gpu;
    let i = |k: usize| ctx.input(n, k);
    let dims = batch_channels_spatial(ctx.in_shape(n, 0).dims());
    let (mean, var) = (ctx.output(n, 1), ctx.output(n, 2));
    let r = epi.residual.then(|| i(5));
    let (x, rm, rv) = (i(0), i(3), i(4));
    let bufs = kernels::norm::StatsBuffers {
        input: &x,
        mean: &mean,
        var: &var,
        running_mean: &rm,
        running_var: &rv,
    };
    let stats = if partials {
        let partials = i(n.inputs.len() - 1);
        let bufs = kernels::norm::StatsBuffers {
            input: &partials,
            ..bufs
        };
        kernels::norm::merge_stats(gpu, dims, momentum, update_running, &bufs)?
    } else {
        kernels::norm::stats(gpu, dims, momentum, update_running, ctx.storage(n), &bufs)?
    };
    let (gamma, beta, y) = (i(1), i(2), ctx.output(n, 0));
    // the value before an activation whose gradient needs it (the fused backward reads it)
    let pre = n.outputs.get(3).map(|&v| ctx.buffer(v));
    let bufs = kernels::norm::ApplyBuffers {
        x: &x,
        mean: &mean,
        var: &var,
        gamma: &gamma,
        beta: &beta,
        residual: r.as_ref(),
        y: &y,
        pre: pre.as_ref(),
    };
    // x, y and the residual in the node's storage (f16 in mixed precision); the statistics f32
    let apply = kernels::norm::apply(gpu, dims, eps, epi, ctx.storage(n), &bufs)?;
    Ok([stats, apply])
}

/// A batch norm backward's launches: the per-channel sums into dgamma and dbeta, then dx (with
/// the epilogue's activation mask and residual gradient).
fn backward_dispatches(ctx: &LowerCtx, n: &Node) -> Result<kernels::norm::BnBackwardDispatches> {
    let Op::BatchNormBwd { eps, epi } = n.op else {
        unreachable!("norm::backward_dispatches called on {}", n.op.name())
    };
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let y = (epi.act != crate::graph::Act::None).then(|| i(5));
    let dr = epi.residual.then(|| o(3));
    let bufs = kernels::norm::BnBackward {
        dy: &i(0),
        x: &i(1),
        mean: &i(2),
        var: &i(3),
        gamma: &i(4),
        y: y.as_ref(),
        dx: &o(0),
        dgamma: &o(1),
        dbeta: &o(2),
        dr: dr.as_ref(),
        // the forward's values it reads, f16 in mixed precision (`passes::precision`)
        saved: ctx.graph.value(n.inputs[1]).dtype,
    };
    kernels::norm::backward(
        ctx.gpu,
        batch_channels_spatial(ctx.in_shape(n, 0).dims()),
        eps,
        epi,
        &bufs,
    )
}

/// A node lowered around a host synchronisation point: `before` runs, then the host replaces
/// `sync` (per-channel values, each `channels` long) by their average over the ranks, then
/// `after` runs. Only synchronised batch norm is lowered this way (`lower_synced`).
pub(crate) struct SplitLowering {
    pub before: Vec<Dispatch>,
    pub sync: Vec<wgpu::Buffer>,
    pub channels: usize,
    /// `sync` is [batch mean, biased batch variance] (averaged as mean and E[x^2]); otherwise
    /// plain per-channel sums.
    pub mean_var: bool,
    pub after: Vec<Dispatch>,
    /// Names the node in errors and logs.
    pub what: String,
}

/// Synchronised batch norm (data-parallel training): batch statistics over every rank's batch.
/// Forward: local statistics, [host: average], running statistics over the global batch
/// (`samples` holds its size), normalise. Backward: local per-channel sums of dy and
/// dy * x_hat, [host: weighted sum], dx. None for every other node (and eval batch norms),
/// which lower as usual.
pub(crate) fn lower_synced(ctx: &LowerCtx, n: &Node, samples: &wgpu::Buffer) -> Result<Option<SplitLowering>> {
    let g = ctx.graph;
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let channels = || batch_channels_spatial(ctx.in_shape(n, 0).dims());
    match &n.op {
        Op::BatchNorm {
            training: true,
            momentum,
            ..
        } => {
            let [_, c, hw] = channels();
            let [stats, apply] = train_dispatches(ctx, n, false)?;
            let (mean, var, rm, rv) = (o(1), o(2), i(3), i(4));
            let bufs = kernels::norm::StatsBuffers {
                input: samples,
                mean: &mean,
                var: &var,
                running_mean: &rm,
                running_var: &rv,
            };
            let running = kernels::norm::running_update(ctx.gpu, [c, hw], *momentum, &bufs)?;
            Ok(Some(SplitLowering {
                before: vec![stats],
                sync: vec![mean, var],
                channels: c,
                mean_var: true,
                after: vec![running, apply],
                what: format!("batch norm statistics of '{}'", g.value(n.inputs[3]).name),
            }))
        }
        Op::BatchNormBwd { .. } => {
            // the reduction writes the local sums into dgamma, dbeta; dx reads them back
            let d = backward_dispatches(ctx, n)?;
            Ok(Some(SplitLowering {
                before: d.reduce,
                sync: vec![o(1), o(2)],
                channels: channels()[1],
                mean_var: false,
                after: vec![d.data],
                what: format!("batch norm gradient sums of '{}'", g.value(n.inputs[4]).name),
            }))
        }
        _ => Ok(None),
    }
}
