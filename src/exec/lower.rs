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
        Op::Add | Op::Reshape | Op::Cast => ops::elementwise::lower(ctx, n)?,
        Op::MulChannels | Op::MulChannelsBwdScale => ops::mul_channels::lower(ctx, n)?,
        Op::Dropout(_) => ops::dropout::lower(ctx, n)?,
        Op::Softmax | Op::SoftmaxBwd => ops::softmax::lower(ctx, n)?,
        Op::Upsample(_) | Op::UpsampleBwd(_) => ops::upsample::lower(ctx, n)?,
        Op::Pad2d(_) | Op::Pad2dBwd(_) => ops::pad::lower(ctx, n)?,
        Op::Concat | Op::SliceChannels { .. } | Op::PadChannels { .. } | Op::ChannelShuffle { .. } => {
            ops::channels::lower(ctx, n)?
        }
        Op::SgdStep { .. } | Op::AdamWStep { .. } => vec![optimizer_step(ctx, n)?],
    })
}

/// An optimizer update: [param, grad, state..] with the hyperparameters of its group.
fn optimizer_step(ctx: &LowerCtx, n: &Node) -> Result<Dispatch> {
    let i = |k: usize| ctx.input(n, k);
    let numel = ctx.in_shape(n, 0).numel();
    let hyper = |what| {
        ctx.hyper
            .ok_or_else(|| Error::arg(what, "hyperparameters", "plan has none"))
    };
    match n.op {
        Op::SgdStep { group, nesterov } => {
            let (param, grad, momentum) = (i(0), i(1), i(2));
            let bufs = kernels::optim::SgdBuffers {
                hyper: hyper("sgd_step")?,
                grad: &grad,
                param: &param,
                momentum: &momentum,
            };
            kernels::optim::sgd(ctx.gpu, numel, group, nesterov, &bufs)
        }
        Op::AdamWStep { group } => {
            let (param, grad, m, v) = (i(0), i(1), i(2), i(3));
            let bufs = kernels::optim::AdamWBuffers {
                hyper: hyper("adamw_step")?,
                grad: &grad,
                param: &param,
                m: &m,
                v: &v,
            };
            kernels::optim::adamw(ctx.gpu, numel, group, &bufs)
        }
        ref other => unreachable!("optimizer_step called on {}", other.name()),
    }
}
