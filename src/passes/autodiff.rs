//! Reverse-mode autodiff as a graph pass: walks the forward nodes backwards and appends the
//! backward nodes that one rule per op (the table in `rule`) derives. Where a value fans out
//! (the skip connection of a residual block) its gradients are summed with an `Add` node.

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId, ValueKind};
use crate::shape::Shape;
use crate::tensor::DType;
use std::collections::BTreeMap;

/// Gradients of the loss with respect to each trainable parameter, by parameter value.
pub type Grads = BTreeMap<ValueId, ValueId>;

/// Append the backward graph of `loss` (the output of a cross_entropy node) to `g`.
pub fn backward(g: &mut Graph, loss: ValueId) -> Result<Grads> {
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
        let dxs = rule(g, &node, dy, &want)?;
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

fn temp(g: &mut Graph, op: Op, inputs: Vec<ValueId>, shapes: Vec<Shape>) -> Vec<ValueId> {
    g.add_node(op, inputs, shapes.into_iter().map(|s| (s, DType::F32)).collect())
}

fn one(g: &mut Graph, op: Op, inputs: Vec<ValueId>, shape: Shape) -> Option<ValueId> {
    Some(temp(g, op, inputs, vec![shape])[0])
}

/// The backward rule of each op: gradients of its inputs from the gradient `dy` of its first
/// output (`None` only for the loss itself). Entries are `None` where no gradient is wanted.
fn rule(g: &mut Graph, n: &Node, dy: Option<ValueId>, want: &[bool]) -> Result<Vec<Option<ValueId>>> {
    let unsupported = |why: &str| Error::arg("autodiff", n.op.name(), why.to_string());
    let s = |g: &Graph, i: usize| g.shape(n.inputs[i]).clone();
    let x = n.inputs[0];
    if dy.is_none() && !matches!(n.op, Op::CrossEntropy { .. }) {
        return Err(unsupported("has no upstream gradient"));
    }
    let d = || dy.expect("checked above");
    Ok(match &n.op {
        Op::Conv2d { args, bias, epi, .. } => {
            if !epi.is_none() {
                return Err(unsupported("a conv with a fused epilogue is inference-only"));
            }
            let dx = want[0]
                .then(|| one(g, Op::Conv2dBwdData { args: *args }, vec![d(), n.inputs[1]], s(g, 0)))
                .flatten();
            let dw = want[1]
                .then(|| one(g, Op::Conv2dBwdWeight { args: *args }, vec![d(), x], s(g, 1)))
                .flatten();
            let db = (*bias && want[2])
                .then(|| one(g, Op::ChannelSum, vec![d()], s(g, 2)))
                .flatten();
            vec![dx, dw, db]
        }
        Op::BatchNorm {
            training: true,
            eps,
            epi,
            partials,
            ..
        } => {
            // y = act(bn(x) + r): one fused backward masks dy by y and also yields dr
            let (mean, var, gamma) = (n.outputs[1], n.outputs[2], n.inputs[1]);
            let c = s(g, 1);
            let mut inputs = vec![d(), x, mean, var, gamma];
            if epi.act != crate::graph::Act::None {
                inputs.push(n.outputs[0]);
            }
            let mut shapes = vec![s(g, 0), c.clone(), c];
            if epi.residual {
                shapes.push(s(g, 0));
            }
            let outs = temp(g, Op::BatchNormBwd { eps: *eps, epi: *epi }, inputs, shapes);
            let mut grads = vec![Some(outs[0]), Some(outs[1]), Some(outs[2]), None, None];
            if epi.residual {
                grads.push(Some(outs[3]));
            }
            if *partials {
                // the statistics are x's: dx above is already the full gradient through them
                grads.push(None);
            }
            grads
        }
        Op::BatchNorm { training: false, .. } => {
            return Err(unsupported(
                "backward through eval-mode batch_norm is not supported; train in training mode",
            ))
        }
        Op::Activation(act) => vec![Some(crate::ops::activation::backward(g, n, *act, d()))],
        Op::Add => vec![Some(d()), Some(d())],
        Op::MulChannels => crate::ops::mul_channels::backward(g, n, d(), want),
        Op::Concat | Op::SliceChannels { .. } | Op::ChannelShuffle { .. } => {
            crate::ops::channels::backward(g, n, d(), want)?
        }
        Op::Softmax => vec![Some(crate::ops::softmax::backward(g, n, d()))],
        Op::Upsample(args) => vec![Some(crate::ops::upsample::backward(g, n, *args, d()))],
        Op::Dropout(args) => vec![Some(crate::ops::dropout::backward(g, n, *args, d())), None],
        Op::MaxPool2d(a) => vec![one(g, Op::MaxPool2dBwd(*a), vec![d(), x], s(g, 0))],
        Op::AvgPool2d(a) => vec![one(g, Op::AvgPool2dBwd(*a), vec![d()], s(g, 0))],
        Op::AdaptiveAvgPool2d(_) => vec![one(g, Op::AdaptiveAvgPool2dBwd, vec![d()], s(g, 0))],
        Op::Reshape => vec![Some(g.reshape(d(), s(g, 0)))],
        Op::Linear => {
            // y (N,out) = x (N,in) W^T: dx = dy W, dW = dy^T x, db = column sums of dy
            let gemm = |trans_a| Op::Gemm {
                trans_a,
                trans_b: false,
            };
            let dx = want[0]
                .then(|| one(g, gemm(false), vec![d(), n.inputs[1]], s(g, 0)))
                .flatten();
            let dw = want[1].then(|| one(g, gemm(true), vec![d(), x], s(g, 1))).flatten();
            let db = (want.len() > 2 && want[2])
                .then(|| one(g, Op::ChannelSum, vec![d()], s(g, 2)))
                .flatten();
            vec![dx, dw, db]
        }
        Op::CrossEntropy { smoothing } => {
            if dy.is_some() {
                return Err(unsupported("the loss must be the root of the backward graph"));
            }
            vec![
                one(
                    g,
                    Op::CrossEntropyBwd { smoothing: *smoothing },
                    vec![x, n.inputs[1]],
                    s(g, 0),
                ),
                None,
            ]
        }
        Op::TopkAccuracy { .. } => vec![None, None],
        Op::ActStats { .. } => vec![None],
        Op::Cast => {
            return Err(unsupported(
                "f16 activation storage is for inference; training runs in f32",
            ))
        }
        _ => return Err(unsupported("is a backward or optimizer op; it has no gradient")),
    })
}
