//! f16 activation storage for inference: every activation a kernel can keep in half precision
//! is stored as f16 (half the bytes moved and held), while weights, biases and batch-norm
//! statistics stay f32 and every kernel accumulates in f32. Casts are inserted where f32 values
//! meet f16 kernels (the image input) and where f16 values meet kernels that only take f32 (the
//! loss, statistics, training ops) or leave the graph (outputs are always f32).
//!
//! Runs after fusion, on a forward graph; a training graph is refused by autodiff (`Op::Cast`
//! has no gradient), since training keeps f32.

use crate::graph::{Graph, NodeId, Op, ValueId};
use crate::tensor::DType;
use std::collections::HashMap;

/// For an op whose kernels have an f16 variant, the input positions that are activations (the
/// rest are weights and statistics, kept f32); None for ops that run in f32 only.
fn activation_inputs(op: &Op) -> Option<Vec<usize>> {
    match op {
        // training fusion's block statistics are f32 (training keeps f32 anyway)
        Op::Conv2d { stats: true, .. } => None,
        Op::Conv2d { bias, epi, .. } => {
            let mut v = vec![0];
            if epi.residual {
                v.push(2 + usize::from(*bias));
            }
            Some(v)
        }
        Op::BatchNorm {
            training: false, epi, ..
        } => Some(if epi.residual { vec![0, 5] } else { vec![0] }),
        Op::Activation(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::AdaptiveAvgPool2d(_) | Op::Linear => {
            Some(vec![0])
        }
        Op::Add => Some(vec![0, 1]),
        _ => None,
    }
}

/// `g` with f16 activations. `outputs` are the values the caller reads; returns the new graph
/// and, for each of them, the f32 value to read instead. Every other value keeps its id.
pub fn half_activations(g: &Graph, outputs: &[ValueId]) -> (Graph, Vec<ValueId>) {
    let mut h = Graph {
        values: g.values.clone(),
        nodes: Vec::with_capacity(g.nodes.len()),
    };
    let mut casts: HashMap<(ValueId, DType), ValueId> = HashMap::new();
    for n in &g.nodes {
        let mut node = n.clone();
        match activation_inputs(&n.op) {
            Some(acts) => {
                for k in acts {
                    node.inputs[k] = convert(&mut h, &mut casts, n.inputs[k], DType::F16);
                }
                h.values[n.outputs[0].0].dtype = DType::F16;
            }
            // a view has its input's storage
            None if n.op == Op::Reshape => h.values[n.outputs[0].0].dtype = h.value(n.inputs[0]).dtype,
            None => {
                for v in &mut node.inputs {
                    *v = convert(&mut h, &mut casts, *v, DType::F32);
                }
            }
        }
        for &o in &node.outputs {
            h.values[o.0].producer = Some(NodeId(h.nodes.len()));
        }
        h.nodes.push(node);
    }
    let outputs = outputs
        .iter()
        .map(|&v| convert(&mut h, &mut casts, v, DType::F32))
        .collect();
    (h, outputs)
}

/// `v` as `to`: itself, or the output of a cast (one per value and type, placed before its
/// first reader).
fn convert(h: &mut Graph, casts: &mut HashMap<(ValueId, DType), ValueId>, v: ValueId, to: DType) -> ValueId {
    let from = h.value(v).dtype;
    if from == to || !matches!(from, DType::F32 | DType::F16) {
        return v;
    }
    *casts.entry((v, to)).or_insert_with(|| {
        let shape = h.shape(v).clone();
        h.add_node(Op::Cast, vec![v], vec![(shape, to)])[0]
    })
}
