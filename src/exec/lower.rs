//! Lowering: the kernel launches of one graph node. Each op family lowers its own nodes
//! (`ops::<family>::lower`); this is the table that sends a node to its family, plus the
//! optimizer updates and the host-synchronised batch norm of data-parallel training.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op};
use crate::kernels;
use crate::kernels::conv::texture::KeptOperands;
use crate::ops;
use crate::shape::batch_channels_spatial;

pub fn lower(
    gpu: &Gpu,
    g: &Graph,
    n: &Node,
    buf: &dyn Fn(usize) -> wgpu::Buffer,
    hyper: Option<&wgpu::Buffer>,
    kept: &KeptOperands,
) -> Result<Vec<Dispatch>> {
    let i = |k: usize| buf(n.inputs[k].0);
    let ishape = |k: usize| g.shape(n.inputs[k]);
    Ok(match &n.op {
        Op::Conv2d { .. } | Op::Conv2dBwdData { .. } | Op::Conv2dBwdWeight { .. } | Op::ChannelSum => {
            ops::conv::lower(gpu, g, n, buf, Some(kept))?
        }
        Op::BatchNorm { .. } | Op::BatchNormBwd { .. } | Op::FoldBn { .. } => ops::norm::lower(gpu, g, n, buf)?,
        Op::Activation(_) | Op::ActivationBwd(_) => ops::activation::lower(gpu, g, n, buf)?,
        Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::AdaptiveAvgPool2d(_)
        | Op::MaxPool2dBwd(_)
        | Op::AvgPool2dBwd(_)
        | Op::AdaptiveAvgPool2dBwd => ops::pool::lower(gpu, g, n, buf)?,
        Op::Linear | Op::Gemm { .. } => ops::linear::lower(gpu, g, n, buf)?,
        Op::CrossEntropy { .. } | Op::CrossEntropyBwd { .. } | Op::TopkAccuracy { .. } | Op::ActStats { .. } => {
            ops::loss::lower(gpu, g, n, buf)?
        }
        Op::Add | Op::Reshape | Op::Cast => ops::elementwise::lower(gpu, g, n, buf)?,
        Op::MulChannels | Op::MulChannelsBwdScale => ops::mul_channels::lower(gpu, g, n, buf)?,
        Op::Dropout(_) => ops::dropout::lower(gpu, g, n, buf)?,
        Op::Softmax | Op::SoftmaxBwd => ops::softmax::lower(gpu, g, n, buf)?,
        Op::Upsample(_) | Op::UpsampleBwd(_) => ops::upsample::lower(gpu, g, n, buf)?,
        Op::Pad2d(_) | Op::Pad2dBwd(_) => ops::pad::lower(gpu, g, n, buf)?,
        Op::Concat | Op::SliceChannels { .. } | Op::PadChannels { .. } | Op::ChannelShuffle { .. } => {
            ops::channels::lower(gpu, g, n, buf)?
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
    })
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
    let dims = batch_channels_spatial(g.shape(n.inputs[0]).dims());
    let [_, c, hw] = dims;
    match &n.op {
        Op::BatchNorm {
            training: true,
            momentum,
            eps,
            epi,
            ..
        } => {
            let [stats, apply] = crate::ops::norm::train_dispatches(gpu, g, n, buf, *momentum, *eps, *epi, false)?;
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
            let d = crate::ops::norm::backward_dispatches(gpu, g, n, buf, *eps, *epi)?;
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
