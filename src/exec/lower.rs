//! Lowering: the kernel launches of one graph node, given the buffers of its values.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Epilogue, Graph, Node, Op};

use crate::kernels::{self, linear::GemmGeom};
use crate::ops::{Conv2dGeom, Pool2dGeom};
use crate::tensor::DType;

/// (N, C, rest) of a shape with at least two dims.
fn ncs(dims: &[usize]) -> [usize; 3] {
    [
        dims[0],
        dims.get(1).copied().unwrap_or(1),
        dims.iter().skip(2).product(),
    ]
}

pub fn lower(
    gpu: &Gpu,
    g: &Graph,
    n: &Node,
    buf: &dyn Fn(usize) -> wgpu::Buffer,
    hyper: Option<&wgpu::Buffer>,
) -> Result<Vec<Dispatch>> {
    let i = |k: usize| buf(n.inputs[k].0);
    let o = |k: usize| buf(n.outputs[k].0);
    let ishape = |k: usize| g.shape(n.inputs[k]);
    let oshape = |k: usize| g.shape(n.outputs[k]);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = n.outputs.first().map_or(DType::F32, |&v| g.value(v).dtype);
    let d = match &n.op {
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
                },
            )?
        }
        Op::BatchNorm {
            training,
            momentum,
            eps,
            epi,
            ..
        } => {
            let dims = ncs(ishape(0).dims());
            let (gamma, beta, rm, rv) = (i(1), i(2), i(3), i(4));
            let r = epi.residual.then(|| i(5));
            if *training {
                Vec::from(batch_norm_train(gpu, g, n, buf, *momentum, *eps, *epi, true)?)
            } else {
                vec![kernels::norm::apply(
                    gpu,
                    dims,
                    *eps,
                    *epi,
                    storage,
                    &i(0),
                    &rm,
                    &rv,
                    &gamma,
                    &beta,
                    r.as_ref(),
                    &o(0),
                )?]
            }
        }
        Op::Activation(_) | Op::ActivationBwd(_) => crate::ops::activation::lower(gpu, g, n, buf)?,
        Op::MulChannels | Op::MulChannelsBwdScale => crate::ops::mul_channels::lower(gpu, g, n, buf)?,
        Op::Dropout(_) => crate::ops::dropout::lower(gpu, g, n, buf)?,
        Op::Softmax | Op::SoftmaxBwd => crate::ops::softmax::lower(gpu, g, n, buf)?,
        Op::Upsample(_) | Op::UpsampleBwd(_) => crate::ops::upsample::lower(gpu, g, n, buf)?,
        Op::Concat | Op::SliceChannels { .. } | Op::PadChannels { .. } | Op::ChannelShuffle { .. } => {
            crate::ops::channels::lower(gpu, g, n, buf)?
        }
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
        Op::MaxPool2d(a) => {
            let geom = Pool2dGeom::new("max_pool2d", ishape(0), *a)?;
            vec![kernels::pool::max_forward(gpu, &geom, storage, &i(0), &o(0))?]
        }
        Op::AvgPool2d(a) => {
            let geom = Pool2dGeom::new("avg_pool2d", ishape(0), *a)?;
            vec![kernels::pool::avg_forward(gpu, &geom, storage, &i(0), &o(0))?]
        }
        Op::AdaptiveAvgPool2d(out) => {
            let geom = Pool2dGeom::adaptive(ishape(0), *out)?;
            vec![kernels::pool::adaptive_avg_forward(gpu, &geom, storage, &i(0), &o(0))?]
        }
        Op::Reshape => vec![],
        Op::Linear => {
            let [m, k] = ishape(0).matrix("linear", "input")?;
            let [nn, _] = ishape(1).matrix("linear", "weight")?;
            let geom = GemmGeom {
                m,
                n: nn,
                k,
                trans_a: false,
                trans_b: true,
            };
            let bias = (n.inputs.len() > 2).then(|| i(2));
            kernels::linear::gemm(gpu, &geom, storage, &i(0), &i(1), bias.as_ref(), &o(0))?
        }
        Op::CrossEntropy { smoothing } => {
            let nk = ishape(0).matrix("cross_entropy", "logits")?;
            vec![kernels::loss::cross_entropy(gpu, nk, *smoothing, &i(0), &i(1), &o(0))?]
        }
        Op::TopkAccuracy { k } => {
            let nk = ishape(0).matrix("topk_accuracy", "logits")?;
            vec![kernels::loss::topk_accuracy(gpu, nk, *k, &i(0), &i(1), &o(0))?]
        }
        Op::ActStats { bins, hi, near } => {
            kernels::stats::act_stats(gpu, ishape(0).numel(), (*bins, *hi, *near), &i(0), &o(0))?
        }
        Op::Conv2dBwdData { args } => {
            let geom = Conv2dGeom::new(oshape(0), ishape(1), *args)?;
            kernels::conv::backward_data(gpu, &geom, &i(0), &i(1), &o(0))?
        }
        Op::Conv2dBwdWeight { args } => {
            let geom = Conv2dGeom::new(ishape(1), oshape(0), *args)?;
            kernels::conv::backward_weight(gpu, &geom, &i(0), &i(1), &o(0))?
        }
        Op::ChannelSum => vec![kernels::norm::channel_sum(gpu, ncs(ishape(0).dims()), &i(0), &o(0))?],
        Op::BatchNormBwd { eps, epi } => {
            let d = batch_norm_backward(gpu, g, n, buf, *eps, *epi)?;
            d.reduce.into_iter().chain([d.data]).collect()
        }
        Op::FoldBn { eps, bias } => {
            let k = usize::from(*bias);
            let wshape = ishape(0).dims();
            let b = bias.then(|| i(1));
            let (gamma, beta, rm, rv) = (i(1 + k), i(2 + k), i(3 + k), i(4 + k));
            let folded = kernels::norm::FoldBuffers {
                w: &i(0),
                b: b.as_ref(),
                gamma: &gamma,
                beta: &beta,
                rm: &rm,
                rv: &rv,
                w_out: &o(0),
                b_out: &o(1),
            };
            vec![kernels::norm::fold(
                gpu,
                [wshape[0], wshape[1..].iter().product()],
                *eps,
                &folded,
            )?]
        }
        Op::MaxPool2dBwd(a) => {
            let geom = Pool2dGeom::new("max_pool2d", ishape(1), *a)?;
            kernels::pool::max_backward(gpu, &geom, &i(0), &i(1), &o(0))?
        }
        Op::AvgPool2dBwd(a) => {
            let geom = Pool2dGeom::new("avg_pool2d", oshape(0), *a)?;
            vec![kernels::pool::avg_backward(gpu, &geom, &i(0), &o(0))?]
        }
        Op::AdaptiveAvgPool2dBwd => {
            let dy = ishape(0).dims();
            let geom = Pool2dGeom::adaptive(oshape(0), [dy[2], dy[3]])?;
            vec![kernels::pool::adaptive_avg_backward(gpu, &geom, &i(0), &o(0))?]
        }
        Op::Gemm { trans_a, trans_b } => {
            let [ar, ac] = ishape(0).matrix("gemm", "a")?;
            let [br, bc] = ishape(1).matrix("gemm", "b")?;
            let (m, k) = if *trans_a { (ac, ar) } else { (ar, ac) };
            let nn = if *trans_b { br } else { bc };
            let geom = GemmGeom {
                m,
                n: nn,
                k,
                trans_a: *trans_a,
                trans_b: *trans_b,
            };
            kernels::linear::gemm(gpu, &geom, DType::F32, &i(0), &i(1), None, &o(0))?
        }
        Op::CrossEntropyBwd { smoothing } => {
            let nk = ishape(0).matrix("cross_entropy", "logits")?;
            vec![kernels::loss::cross_entropy_backward(
                gpu,
                nk,
                *smoothing,
                &i(0),
                &i(1),
                &o(0),
            )?]
        }
        Op::SgdStep { group, nesterov } => {
            let hyper = hyper.ok_or_else(|| Error::arg("sgd_step", "hyperparameters", "plan has none"))?;
            vec![kernels::optim::sgd(
                gpu,
                ishape(0).numel(),
                *group,
                *nesterov,
                hyper,
                &i(1),
                &i(0),
                &i(2),
            )?]
        }
        Op::AdamWStep { group } => {
            let hyper = hyper.ok_or_else(|| Error::arg("adamw_step", "hyperparameters", "plan has none"))?;
            vec![kernels::optim::adamw(
                gpu,
                ishape(0).numel(),
                *group,
                hyper,
                &i(1),
                &i(0),
                &i(2),
                &i(3),
            )?]
        }
    };
    Ok(d)
}

/// A training batch norm's launches: batch statistics (also updating the running statistics
/// when `update_running`), then the normalisation with its epilogue.
#[allow(clippy::too_many_arguments)]
fn batch_norm_train(
    gpu: &Gpu,
    g: &Graph,
    n: &Node,
    buf: &dyn Fn(usize) -> wgpu::Buffer,
    momentum: f32,
    eps: f32,
    epi: Epilogue,
    update_running: bool,
) -> Result<[Dispatch; 2]> {
    let i = |k: usize| buf(n.inputs[k].0);
    let dims = ncs(g.shape(n.inputs[0]).dims());
    let (mean, var) = (buf(n.outputs[1].0), buf(n.outputs[2].0));
    let r = epi.residual.then(|| i(5));
    let stats = if matches!(n.op, Op::BatchNorm { partials: true, .. }) {
        let partials = i(n.inputs.len() - 1);
        kernels::norm::merge_stats(
            gpu,
            dims,
            momentum,
            update_running,
            &partials,
            &mean,
            &var,
            &i(3),
            &i(4),
        )?
    } else {
        kernels::norm::stats(gpu, dims, momentum, update_running, &i(0), &mean, &var, &i(3), &i(4))?
    };
    let apply = kernels::norm::apply(
        gpu,
        dims,
        eps,
        epi,
        DType::F32,
        &i(0),
        &mean,
        &var,
        &i(1),
        &i(2),
        r.as_ref(),
        &buf(n.outputs[0].0),
    )?;
    Ok([stats, apply])
}

/// A batch norm backward's launches: the per-channel sums into dgamma and dbeta, then dx (with
/// the epilogue's activation mask and residual gradient).
fn batch_norm_backward(
    gpu: &Gpu,
    g: &Graph,
    n: &Node,
    buf: &dyn Fn(usize) -> wgpu::Buffer,
    eps: f32,
    epi: Epilogue,
) -> Result<kernels::norm::BnBackwardDispatches> {
    let i = |k: usize| buf(n.inputs[k].0);
    let o = |k: usize| buf(n.outputs[k].0);
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
    };
    kernels::norm::backward(gpu, ncs(g.shape(n.inputs[0]).dims()), eps, epi, &bufs)
}

/// A node lowered around a host synchronisation point: `before` runs, then the host replaces
/// `sync` (per-channel values, each `channels` long) by their average over the ranks, then
/// `after` runs. Only synchronised batch norm is lowered this way.
pub struct SplitLowering {
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

/// Synchronised batch norm (training): batch statistics over every rank's batch. Forward: local
/// statistics, [host: average], running statistics over the global batch (`samples` holds its
/// size), normalise. Backward: local per-channel sums of dy and dy * x_hat, [host: weighted
/// sum], dx. None for every other node.
pub fn lower_sync_bn(
    gpu: &Gpu,
    g: &Graph,
    n: &Node,
    buf: &dyn Fn(usize) -> wgpu::Buffer,
    samples: &wgpu::Buffer,
) -> Result<Option<SplitLowering>> {
    let i = |k: usize| buf(n.inputs[k].0);
    let o = |k: usize| buf(n.outputs[k].0);
    let dims = ncs(g.shape(n.inputs[0]).dims());
    let [_, c, hw] = dims;
    match &n.op {
        Op::BatchNorm {
            training: true,
            momentum,
            eps,
            epi,
            ..
        } => {
            let [stats, apply] = batch_norm_train(gpu, g, n, buf, *momentum, *eps, *epi, false)?;
            let (mean, var, rm, rv) = (o(1), o(2), i(3), i(4));
            let running = kernels::norm::running_update(gpu, [c, hw], *momentum, samples, &mean, &var, &rm, &rv)?;
            Ok(Some(SplitLowering {
                before: vec![stats],
                sync: vec![mean, var],
                channels: c,
                mean_var: true,
                after: vec![running, apply],
                what: format!("batch norm statistics of '{}'", g.value(n.inputs[3]).name),
            }))
        }
        Op::BatchNormBwd { eps, epi } => {
            // the reduction writes the local sums into dgamma, dbeta; dx reads them back
            let d = batch_norm_backward(gpu, g, n, buf, *eps, *epi)?;
            Ok(Some(SplitLowering {
                before: d.reduce,
                sync: vec![o(1), o(2)],
                channels: c,
                mean_var: false,
                after: vec![d.data],
                what: format!("batch norm gradient sums of '{}'", g.value(n.inputs[4]).name),
            }))
        }
        _ => Ok(None),
    }
}
