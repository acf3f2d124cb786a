//! `Op`: every operation a graph can hold, forward, backward and optimizer, with its attributes.
//! An enum, so a new op does not compile until every pass (autodiff, lowering) handles it. The
//! attribute types live in `shape`, below graph, ops and kernels, which all read them.

pub use crate::shape::{Act, Epilogue};
use crate::shape::{Conv2dArgs, DropoutArgs, Pad2dArgs, Pool2dArgs, UpsampleArgs};

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // ---- forward ----
    /// [x (N,Cin,H,W), w (Cout,Cin/g,KH,KW), bias (Cout) if `bias`, residual (like y) if
    /// `epi.residual`] -> [y (N,Cout,OH,OW), block statistics of y if `stats`]. A non-empty
    /// epilogue and `stats` come only from fusion; the statistics ((blocks, Cout, 2), see
    /// `kernels::conv::STATS_BLOCK`) feed the training batch norm of y.
    Conv2d {
        args: Conv2dArgs,
        bias: bool,
        epi: Epilogue,
        stats: bool,
    },
    /// Training: [x, gamma, beta, running_mean, running_var, residual if `epi.residual`, x's
    /// block statistics if `partials`] -> [y, batch mean, batch biased var, and the value before
    /// the activation where `epi.act` needs its input for its gradient]; updates the
    /// running statistics in place. With `partials` (from fusion) the batch statistics are
    /// merged from the conv's blocks instead of read from x.
    /// Eval: [x, gamma, beta, running_mean, running_var, residual if `epi.residual`] -> [y].
    /// y = act(normalised x + residual).
    BatchNorm {
        training: bool,
        momentum: f32,
        eps: f32,
        epi: Epilogue,
        partials: bool,
    },
    /// [x] -> [act(x)] (`ops::activation`, never `Act::None`)
    Activation(Act),
    /// [a, b] -> [a + b] (same shapes)
    Add,
    /// [x (N,C,H,W), s (N,C) or (N,C,1,1)] -> [x * s] (`ops::mul_channels`)
    MulChannels,
    /// [x, seed] -> [x * mask / (1 - p)] (`ops::dropout`); also its own backward, on dy
    Dropout(DropoutArgs),
    /// [x_1 (N,C_1,H,W), ...] -> [(N, sum C_i, H, W)] (`ops::channels`)
    Concat,
    /// [x (N,C,H,W)] -> [channels start.. of x (the output's channel count)]
    SliceChannels { start: usize },
    /// [x (N,C,H,W)] -> [x's channel shuffle in `groups` groups]
    ChannelShuffle { groups: usize },
    /// [x (N,K)] -> [softmax over K] (`ops::softmax`)
    Softmax,
    /// [x (N,C,H,W)] -> [(N,C,H*s,W*s)] (`ops::upsample`)
    Upsample(UpsampleArgs),
    /// [x (N,C,H,W)] -> [x padded in H and W] (`ops::pad`)
    Pad2d(Pad2dArgs),
    /// [x] -> [y]
    MaxPool2d(Pool2dArgs),
    /// [x] -> [y]
    AvgPool2d(Pool2dArgs),
    /// [x] -> [y (N,C,out)]
    AdaptiveAvgPool2d([usize; 2]),
    /// [x] -> [y]: same data, another shape (flatten). No kernel: y aliases x's buffer.
    Reshape,
    /// [x (N,in), w (out,in), bias (out)?] -> [y (N,out)]
    Linear,
    /// [x] -> [x converted to the output value's dtype]: f32 <-> f16 at the edges of a graph
    /// whose activations are stored as f16 (`passes::precision`).
    Cast,
    /// [x f32] -> [x rounded to the nearest f16 value, stored f32]: the f16 copy of a weight a
    /// mixed-precision conv or linear layer reads (`passes::precision::mixed_training`); its
    /// gradient passes straight through.
    RoundHalf,
    /// [logits (N,K), labels (N) i32] -> [mean loss (1)]
    CrossEntropy { smoothing: f32 },
    /// [logits, labels] -> [fraction right (1)]
    TopkAccuracy { k: usize },
    /// Diagnostics of one activation: [mean, std, fraction |x| <= near, histogram of `bins`
    /// bins over [0, hi)] (training-time statistics; no gradient flows through it).
    ActStats { bins: usize, hi: f32, near: f32 },

    // ---- backward ----
    /// [dy, w] -> [dx]
    Conv2dBwdData { args: Conv2dArgs },
    /// [dy, x] -> [dw]
    Conv2dBwdWeight { args: Conv2dArgs },
    /// [dy (N,C,...)] -> [(C)]: bias gradients
    ChannelSum,
    /// [dy, x, mean, var, gamma, y if `epi.act` is not None] -> [dx, dgamma, dbeta, dresidual if
    /// `epi.residual`]: the backward of a BatchNorm with that epilogue (dy is masked by y).
    BatchNormBwd { eps: f32, epi: Epilogue },
    /// Inference fusion: [w, bias if `bias`, gamma, beta, running_mean, running_var] ->
    /// [w * s, (bias - running_mean) * s + beta] with s = gamma / sqrt(running_var + eps).
    FoldBn { eps: f32, bias: bool },
    /// [dy, saved] -> [dx = dy * act'(x)]; saved is the forward's output where
    /// `Act::grad_from_output`, else its input
    ActivationBwd(Act),
    /// [dy, x] -> [ds (like s)]: the scale gradient of MulChannels
    MulChannelsBwdScale,
    /// [dy (N,c,H,W)] -> [(N,C,H,W), dy at channels start.., zeros elsewhere]: SliceChannels'
    /// backward
    PadChannels { start: usize },
    /// [y, dy] -> [dx]: Softmax's backward from its output
    SoftmaxBwd,
    /// [dy (N,C,H*s,W*s)] -> [dx (N,C,H,W)]
    UpsampleBwd(UpsampleArgs),
    /// [dy (N,C,H',W')] -> [dx (N,C,H,W)]: Pad2d's backward, the crop of dy
    Pad2dBwd(Pad2dArgs),
    /// [dy, x] -> [dx]
    MaxPool2dBwd(Pool2dArgs),
    /// [dy] -> [dx]
    AvgPool2dBwd(Pool2dArgs),
    /// [dy] -> [dx]
    AdaptiveAvgPool2dBwd,
    /// [a, b] -> [op(a) op(b)]: the linear backward products
    Gemm { trans_a: bool, trans_b: bool },
    /// [logits, labels, loss scaler if mixed precision] -> [dlogits]; the loss is the root
    /// (upstream gradient 1, or the loss scale: `kernels::loss_scale`)
    CrossEntropyBwd { smoothing: f32 },

    // ---- optimizer (in place, no outputs) ----
    /// [param, grad, momentum_buffer, loss scaler if mixed precision]; hyperparameters from
    /// group `group`. With the scaler the gradient is unscaled and the update skipped on a
    /// non-finite gradient (`kernels::loss_scale`).
    SgdStep { group: usize, nesterov: bool },
    /// [param, grad, exp_avg, exp_avg_sq, loss scaler if mixed precision]
    AdamWStep { group: usize },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Activation(a) => a.name(),
            Op::Add => "add",
            Op::MulChannels => "mul_channels",
            Op::Dropout(_) => "dropout",
            Op::Concat => "concat",
            Op::SliceChannels { .. } => "slice_channels",
            Op::ChannelShuffle { .. } => "channel_shuffle",
            Op::PadChannels { .. } => "pad_channels",
            Op::Softmax => "softmax",
            Op::SoftmaxBwd => "softmax_bwd",
            Op::Upsample(_) => "upsample",
            Op::UpsampleBwd(_) => "upsample_bwd",
            Op::Pad2d(_) => "pad2d",
            Op::Pad2dBwd(_) => "pad2d_bwd",
            Op::MulChannelsBwdScale => "mul_channels_bwd_scale",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::AdaptiveAvgPool2d(_) => "adaptive_avg_pool2d",
            Op::Reshape => "reshape",
            Op::Linear => "linear",
            Op::Cast => "cast",
            Op::RoundHalf => "round_half",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::TopkAccuracy { .. } => "topk_accuracy",
            Op::ActStats { .. } => "act_stats",
            Op::Conv2dBwdData { .. } => "conv2d_bwd_data",
            Op::Conv2dBwdWeight { .. } => "conv2d_bwd_weight",
            Op::ChannelSum => "channel_sum",
            Op::BatchNormBwd { .. } => "batch_norm_bwd",
            Op::FoldBn { .. } => "fold_bn",
            Op::ActivationBwd(_) => "activation_bwd",
            Op::MaxPool2dBwd(_) => "max_pool2d_bwd",
            Op::AvgPool2dBwd(_) => "avg_pool2d_bwd",
            Op::AdaptiveAvgPool2dBwd => "adaptive_avg_pool2d_bwd",
            Op::Gemm { .. } => "gemm",
            Op::CrossEntropyBwd { .. } => "cross_entropy_bwd",
            Op::SgdStep { .. } => "sgd_step",
            Op::AdamWStep { .. } => "adamw_step",
        }
    }

    /// Ops that change resident state (running statistics, parameters): never removed as dead.
    pub fn has_side_effects(&self) -> bool {
        matches!(
            self,
            Op::BatchNorm { training: true, .. } | Op::SgdStep { .. } | Op::AdamWStep { .. }
        )
    }
}
