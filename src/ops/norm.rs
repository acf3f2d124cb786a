//! batch_norm over (N, H, W) per channel, training and eval, as `torch.nn.functional.batch_norm`.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels;
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
    if args.training {
        // batch statistics are computed from f32 activations
        x.expect_dtype(OP, DType::F32)?;
    }
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
        let d = kernels::norm::stats(
            gpu,
            dims,
            args.momentum,
            true,
            x.buffer(),
            mean.buffer(),
            var.buffer(),
            state.running_mean.buffer(),
            state.running_var.buffer(),
        )?;
        dispatches.push(d);
        (mean, var)
    } else {
        (state.running_mean.clone(), state.running_var.clone())
    };
    let y = Tensor::empty_of(gpu, x.shape().clone(), storage)?;
    let d = kernels::norm::apply(
        gpu,
        dims,
        args.eps,
        Default::default(),
        storage,
        x.buffer(),
        mean.buffer(),
        var.buffer(),
        state.weight.buffer(),
        state.bias.buffer(),
        None,
        y.buffer(),
    )?;
    dispatches.push(d);
    // statistics and normalisation in one submit
    gpu.run(&dispatches);
    Ok((y, mean, var))
}
