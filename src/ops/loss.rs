//! Softmax cross-entropy (with label smoothing) and top-k accuracy.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels;
use crate::tensor::{DType, Tensor};

fn check(op: &str, logits: &Tensor, labels: &Tensor) -> Result<[usize; 2]> {
    logits.expect_dtype(op, DType::F32)?;
    labels.expect_dtype(op, DType::I32)?;
    let [n, k] = logits.shape().matrix(op, "logits (N, classes)")?;
    if labels.dims() != [n] {
        return Err(Error::shape(
            op,
            format!("labels of shape [{n}] (logits {})", logits.shape()),
            labels.shape(),
        ));
    }
    if n == 0 || k == 0 {
        return Err(Error::shape(op, "at least one row and one class", logits.shape()));
    }
    Ok([n, k])
}

/// `torch.nn.functional.cross_entropy(logits, labels, label_smoothing=smoothing)`, mean over
/// the batch, as a 1-element tensor (read it back only when needed). Labels are class indices.
pub fn cross_entropy(gpu: &Gpu, logits: &Tensor, labels: &Tensor, smoothing: f32) -> Result<Tensor> {
    let nk = check("cross_entropy", logits, labels)?;
    if !(0.0..=1.0).contains(&smoothing) {
        return Err(Error::arg(
            "cross_entropy",
            "label_smoothing",
            format!("{smoothing} is not in [0, 1]"),
        ));
    }
    let loss = Tensor::empty(gpu, [1])?;
    gpu.run(&[kernels::loss::cross_entropy(
        gpu,
        nk,
        smoothing,
        logits.buffer(),
        labels.buffer(),
        loss.buffer(),
    )?]);
    Ok(loss)
}

/// Fraction of rows whose label is among the k highest logits (k = 1: plain accuracy).
pub fn topk_accuracy(gpu: &Gpu, logits: &Tensor, labels: &Tensor, k: usize) -> Result<Tensor> {
    let nk = check("topk_accuracy", logits, labels)?;
    if k == 0 {
        return Err(Error::arg("topk_accuracy", "k", "must be at least 1"));
    }
    let acc = Tensor::empty(gpu, [1])?;
    gpu.run(&[kernels::loss::topk_accuracy(
        gpu,
        nk,
        k,
        logits.buffer(),
        labels.buffer(),
        acc.buffer(),
    )?]);
    Ok(acc)
}
