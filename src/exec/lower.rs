//! Lowering: the kernel launches of one graph node. Each op family lowers its own nodes
//! (`ops::<family>::lower`, reading the plan's `ops::LowerCtx`); this is the table that sends a
//! node to its family, plus the optimizer updates. Synchronised batch norm, lowered around a host
//! point, is the norm family's too (`ops::norm::lower_synced`); the plan decides when.

use crate::device::Dispatch;
use crate::error::{Error, Result};
use crate::graph::{Node, Op};
use crate::kernels;
use crate::ops::{self, LowerCtx};

pub fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    Ok(match &n.op {
        Op::Conv2d { .. } | Op::Conv2dBwdData { .. } | Op::Conv2dBwdWeight { .. } | Op::ChannelSum => {
            ops::conv::lower(ctx, n)?
        }
        Op::BatchNorm { .. } | Op::BatchNormBwd { .. } | Op::FoldBn { .. } => ops::norm::lower(ctx, n)?,
        Op::Activation(_) | Op::ActivationBwd(_) => ops::activation::lower(ctx, n)?,
        Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::AdaptiveAvgPool2d(_)
        | Op::MaxPool2dBwd(_)
        | Op::AvgPool2dBwd(_)
        | Op::AdaptiveAvgPool2dBwd => ops::pool::lower(ctx, n)?,
        Op::Linear | Op::Gemm { .. } => ops::linear::lower(ctx, n)?,
        Op::CrossEntropy { .. } | Op::CrossEntropyBwd { .. } | Op::TopkAccuracy { .. } | Op::ActStats { .. } => {
            ops::loss::lower(ctx, n)?
        }
        Op::Add | Op::Reshape | Op::Cast | Op::RoundHalf => ops::elementwise::lower(ctx, n)?,
        Op::MulChannels | Op::MulChannelsBwdScale => ops::mul_channels::lower(ctx, n)?,
        Op::Dropout(_) => ops::dropout::lower(ctx, n)?,
        Op::Softmax | Op::SoftmaxBwd => ops::softmax::lower(ctx, n)?,
        Op::Upsample(_) | Op::UpsampleBwd(_) => ops::upsample::lower(ctx, n)?,
        Op::Pad2d(_) | Op::Pad2dBwd(_) => ops::pad::lower(ctx, n)?,
        Op::Concat | Op::SliceChannels { .. } | Op::PadChannels { .. } | Op::ChannelShuffle { .. } => {
            ops::channels::lower(ctx, n)?
        }
        Op::SgdStep { .. } | Op::AdamWStep { .. } => optimizer_steps(ctx, &[n])?,
    })
}

/// The updates of `nodes`, optimizer nodes of one rule ([param, grad, state..] with the
/// hyperparameters of their groups): a few multi-tensor dispatches for all of them
/// (`kernels::optim::update`).
pub fn optimizer_steps(ctx: &LowerCtx, nodes: &[&Node]) -> Result<Vec<Dispatch>> {
    let Some(first) = nodes.first() else {
        return Ok(vec![]);
    };
    let kind = update_kind(&first.op).expect("optimizer_steps takes optimizer nodes");
    let hyper = ctx
        .hyper
        .ok_or_else(|| Error::arg(first.op.name(), "hyperparameters", "plan has none"))?;
    let buffers: Vec<Vec<wgpu::Buffer>> = nodes
        .iter()
        .map(|n| (0..n.inputs.len()).map(|k| ctx.input(n, k)).collect())
        .collect();
    // a mixed-precision step's loss scaler: every update's last input after its states
    let scaled = first.inputs.len() > 2 + kind.states();
    let scaler = scaled.then(|| ctx.input(first, first.inputs.len() - 1));
    let tensors: Vec<kernels::optim::UpdateTensor> = nodes
        .iter()
        .zip(&buffers)
        .map(|(n, b)| {
            let group = match n.op {
                Op::SgdStep { group, .. } | Op::AdamWStep { group } => group,
                ref other => unreachable!("optimizer_steps given {}", other.name()),
            };
            kernels::optim::UpdateTensor {
                numel: ctx.in_shape(n, 0).numel(),
                group,
                param: &b[0],
                grad: &b[1],
                state: b[2..2 + kind.states()].iter().collect(),
            }
        })
        .collect();
    let Some(scaler) = scaler else {
        return kernels::optim::update(ctx.gpu, kind, hyper, None, &tensors);
    };
    // all of a step's gradients checked before any update reads the flag, the scale moved after
    let grads: Vec<(usize, &wgpu::Buffer)> = tensors.iter().map(|t| (t.numel, t.grad)).collect();
    let mut out = kernels::loss_scale::check_finite(ctx.gpu, &scaler, &grads)?;
    out.extend(kernels::optim::update(ctx.gpu, kind, hyper, Some(&scaler), &tensors)?);
    out.push(kernels::loss_scale::update_scale(ctx.gpu, &scaler)?);
    Ok(out)
}

/// The update rule of an optimizer node, None for other nodes: consecutive nodes of one rule
/// lower together (`optimizer_steps`).
pub fn update_kind(op: &Op) -> Option<kernels::optim::UpdateKind> {
    match *op {
        Op::SgdStep { nesterov, .. } => Some(kernels::optim::UpdateKind::Sgd { nesterov }),
        Op::AdamWStep { .. } => Some(kernels::optim::UpdateKind::AdamW),
        _ => None,
    }
}
