//! Softmax cross-entropy (with label smoothing) and top-k accuracy.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels;
use crate::ops::lowering::LowerCtx;
use crate::shape::Shape;
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

impl Graph {
    fn check_logits(&self, op: &str, logits: ValueId, labels: ValueId) -> Result<()> {
        let [n, _] = self.shape(logits).matrix(op, "logits (N, classes)")?;
        if self.value(labels).dtype != DType::I32 || self.shape(labels).dims() != [n] {
            return Err(Error::shape(
                op,
                format!("i32 labels of shape [{n}]"),
                self.shape(labels),
            ));
        }
        Ok(())
    }

    pub fn cross_entropy(&mut self, logits: ValueId, labels: ValueId, smoothing: f32) -> Result<ValueId> {
        self.check_logits("cross_entropy", logits, labels)?;
        if !(0.0..=1.0).contains(&smoothing) {
            return Err(Error::arg(
                "cross_entropy",
                "label_smoothing",
                format!("{smoothing} is not in [0, 1]"),
            ));
        }
        Ok(self.add_f32(Op::CrossEntropy { smoothing }, vec![logits, labels], Shape::new(&[1])))
    }

    pub fn topk_accuracy(&mut self, logits: ValueId, labels: ValueId, k: usize) -> Result<ValueId> {
        self.check_logits("topk_accuracy", logits, labels)?;
        if k == 0 {
            return Err(Error::arg("topk_accuracy", "k", "must be at least 1"));
        }
        Ok(self.add_f32(Op::TopkAccuracy { k }, vec![logits, labels], Shape::new(&[1])))
    }

    /// Activation statistics of `x` (any shape): [mean, std, fraction with |x| <= near,
    /// histogram of `bins` equal bins over [0, hi)], 3 + bins values.
    pub fn act_stats(&mut self, x: ValueId, bins: usize, hi: f32, near: f32) -> Result<ValueId> {
        crate::kernels::stats::check_config(bins, hi, near)?;
        Ok(self.add_f32(Op::ActStats { bins, hi, near }, vec![x], Shape::new(&[3 + bins])))
    }
}

/// The loss is the root of the backward graph: its gradient w.r.t. the logits (labels get none).
/// With `scaler` (mixed precision), the gradient is scaled by the loss scale it holds.
pub(crate) fn backward(
    g: &mut Graph,
    n: &Node,
    dy: Option<ValueId>,
    scaler: Option<ValueId>,
) -> Result<Vec<Option<ValueId>>> {
    let Op::CrossEntropy { smoothing } = n.op else {
        unreachable!("loss::backward called on {}", n.op.name())
    };
    if dy.is_some() {
        return Err(Error::arg(
            "autodiff",
            n.op.name(),
            "the loss must be the root of the backward graph",
        ));
    }
    let shape = g.shape(n.inputs[0]).clone();
    let mut inputs = vec![n.inputs[0], n.inputs[1]];
    inputs.extend(scaler);
    let d = g.add_f32(Op::CrossEntropyBwd { smoothing }, inputs, shape);
    Ok(vec![Some(d), None])
}

/// The launches of a loss node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let gpu = ctx.gpu;
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let ishape = |k: usize| ctx.in_shape(n, k);
    Ok(match &n.op {
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
        Op::CrossEntropyBwd { smoothing } => {
            let nk = ishape(0).matrix("cross_entropy", "logits")?;
            vec![kernels::loss::cross_entropy_backward(
                gpu,
                nk,
                *smoothing,
                &i(0),
                &i(1),
                &o(0),
                (n.inputs.len() > 2).then(|| i(2)).as_ref(),
            )?]
        }
        other => unreachable!("loss::lower called on {}", other.name()),
    })
}
