//! Reverse-mode autodiff as a graph pass: walks the forward nodes backwards and appends the
//! backward nodes that each op's rule derives (the rules live with their families in `ops/`;
//! `rule` is the table). Where a value fans out
//! (the skip connection of a residual block) its gradients are summed with an `Add` node.

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId, ValueKind};
use crate::ops;
use crate::shape::DType;
use std::collections::BTreeMap;

/// Gradients of the loss with respect to each trainable parameter, by parameter value.
pub type Grads = BTreeMap<ValueId, ValueId>;

/// Append the backward graph of `loss` (the output of a cross_entropy node) to `g`.
pub fn backward(g: &mut Graph, loss: ValueId) -> Result<Grads> {
    backward_scaled(g, loss, None)
}

/// `backward` for mixed precision: the loss's gradient is scaled by the loss scale `scaler`
/// holds (`kernels::loss_scale`), where given; and the gradient of every value stored as f16
/// is rounded to f16 before it flows on, as autocast holds it in f16 (the backward kernels
/// themselves run in f32).
pub fn backward_scaled(g: &mut Graph, loss: ValueId, scaler: Option<ValueId>) -> Result<Grads> {
    let root = g.value(loss).producer.map(|n| g.node(n).op.clone());
    if !matches!(root, Some(Op::CrossEntropy { .. })) {
        return Err(Error::arg("autodiff", "loss", "must be the output of cross_entropy"));
    }
    let needs = needs_grad(g);
    let forward_nodes = g.nodes.len();
    // grad[v]: the gradient of the loss w.r.t. value v, once something has produced it
    let mut grad: Vec<Option<ValueId>> = vec![None; g.values.len()];
    for i in (0..forward_nodes).rev() {
        let node = g.nodes[i].clone();
        let is_root = node.outputs.first() == Some(&loss);
        let dy = match node.outputs.first().and_then(|o| grad[o.0]) {
            Some(d) => Some(d),
            None if is_root => None,
            None => continue,
        };
        let want: Vec<bool> = node.inputs.iter().map(|v| needs[v.0]).collect();
        if !want.iter().any(|&w| w) {
            continue;
        }
        let dy = match dy {
            Some(d) if g.value(node.outputs[0]).dtype == DType::F16 => Some(g.round_half(d)),
            d => d,
        };
        let dxs = rule(g, &node, dy, &want, scaler)?;
        for ((&v, dx), &w) in node.inputs.iter().zip(dxs).zip(&want) {
            if let (Some(dx), true) = (dx, w) {
                grad[v.0] = Some(match grad[v.0] {
                    None => dx,
                    Some(prev) => g.add(prev, dx)?,
                });
            }
        }
    }
    let mut grads = Grads::new();
    for (i, v) in g.values.iter().enumerate() {
        if v.kind == (ValueKind::Param { trainable: true }) {
            if let Some(d) = grad.get(i).copied().flatten() {
                grads.insert(ValueId(i), d);
            }
        }
    }
    g.verify()?;
    Ok(grads)
}

/// A value needs a gradient when a trainable parameter flows into it.
fn needs_grad(g: &Graph) -> Vec<bool> {
    let mut needs: Vec<bool> = g
        .values
        .iter()
        .map(|v| v.kind == ValueKind::Param { trainable: true })
        .collect();
    for n in &g.nodes {
        let any = n.inputs.iter().any(|v| needs[v.0]) && !matches!(n.op, Op::TopkAccuracy { .. } | Op::ActStats { .. });
        for &o in &n.outputs {
            needs[o.0] = any;
        }
    }
    needs
}

/// The backward rule of each op, from its family in `ops/`: gradients of its inputs from the
/// gradient `dy` of its first output (`None` only for the loss itself). Entries are `None`
/// where no gradient is wanted.
fn rule(
    g: &mut Graph,
    n: &Node,
    dy: Option<ValueId>,
    want: &[bool],
    scaler: Option<ValueId>,
) -> Result<Vec<Option<ValueId>>> {
    let unsupported = |why: &str| Error::arg("autodiff", n.op.name(), why.to_string());
    if let Op::CrossEntropy { .. } = n.op {
        return ops::loss::backward(g, n, dy, scaler);
    }
    let Some(dy) = dy else {
        return Err(unsupported("has no upstream gradient"));
    };
    Ok(match &n.op {
        Op::Conv2d { .. } => ops::conv::backward(g, n, dy, want)?,
        Op::BatchNorm { .. } => ops::norm::backward(g, n, dy)?,
        Op::Activation(act) => vec![Some(ops::activation::backward(g, n, *act, dy))],
        Op::Add | Op::Reshape | Op::RoundHalf => ops::elementwise::backward(g, n, dy),
        Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::AdaptiveAvgPool2d(_) => vec![Some(ops::pool::backward(g, n, dy))],
        Op::Linear => ops::linear::backward(g, n, dy, want),
        Op::MulChannels => ops::mul_channels::backward(g, n, dy, want),
        Op::Concat | Op::SliceChannels { .. } | Op::ChannelShuffle { .. } => ops::channels::backward(g, n, dy, want)?,
        Op::Softmax => vec![Some(ops::softmax::backward(g, n, dy))],
        Op::Upsample(args) => vec![Some(ops::upsample::backward(g, n, *args, dy))],
        Op::Pad2d(args) => vec![Some(ops::pad::backward(g, n, *args, dy))],
        Op::Dropout(args) => vec![Some(ops::dropout::backward(g, n, *args, dy)), None],
        // diagnostics: no gradient flows through them
        Op::TopkAccuracy { .. } | Op::ActStats { .. } => vec![None; n.inputs.len()],
        // mixed precision's casts come after autodiff (`passes::precision::mixed_training`)
        Op::Cast => {
            return Err(unsupported(
                "f16 storage in training is mixed precision's (CompileOptions::precision), which places its own casts",
            ))
        }
        _ => return Err(unsupported("is a backward or optimizer op; it has no gradient")),
    })
}
