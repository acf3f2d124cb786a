//! Half precision.
//!
//! - `half_activations`, f16 activation storage for inference: every activation a kernel can
//!   keep in half precision is stored as f16 (half the bytes moved and held), while weights,
//!   biases and batch-norm statistics stay f32 and every kernel accumulates in f32. Casts are
//!   inserted where f32 values meet f16 kernels (the image input) and where f16 values meet
//!   kernels that only take f32 (the loss, statistics) or leave the graph (outputs are f32).
//! - `mixed_forward` and `mixed_casts`, mixed-precision training (`Precision::Mixed`), around
//!   autodiff: the forward's activations are stored as f16 wherever their kernels have f16
//!   variants (the values a step keeps for its backward: half the memory), convs and linear
//!   layers read f16 copies of their weights (`Op::RoundHalf`, once per step), the loss and
//!   the statistics stay f32, and autodiff rounds the gradient of every f16 value to f16
//!   (`autodiff::backward_scaled`) as autocast holds it, with the loss scaled against
//!   underflow (`kernels::loss_scale`). The batch-norm backward reads the forward's f16
//!   values as they are (`saved_inputs`); the other backward kernels run on f32 copies, made
//!   where the backward first reads them.

use crate::graph::{Graph, Node, NodeId, Op, ValueId};
use crate::kernels::loss_scale::STATE_LEN;
use crate::tensor::DType;
use std::collections::HashMap;

/// The numeric precision a plan computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// Mixed precision, as PyTorch's autocast: f16 activations and f16 copies of the weights
    /// for convs and linear layers (f32 accumulation), statistics, the loss and softmax in f32;
    /// in training f32 master weights and optimizer state and dynamic loss scaling
    /// (`kernels::loss_scale`). Needs the adapter's shader-f16.
    Mixed,
}

impl Precision {
    /// The name the CLI takes and prints.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Mixed => "mixed",
        }
    }

    /// From the CLI's name (`f32`, `mixed`).
    pub fn parse(s: &str) -> Option<Precision> {
        match s {
            "f32" => Some(Precision::F32),
            "mixed" => Some(Precision::Mixed),
            _ => None,
        }
    }
}

/// The name of the loss scaler's state in the parameter store and checkpoints.
pub const LOSS_SCALER: &str = "grad_scaler";

/// The loss scaler's state value in `g` (resident, checkpointed; `kernels::loss_scale`).
pub fn loss_scaler(g: &mut Graph) -> ValueId {
    g.state(LOSS_SCALER, [STATE_LEN])
}

/// For an op whose kernels have an f16 variant, the input positions that are activations (the
/// rest are weights and statistics, kept f32); None for ops that run in f32 only.
fn activation_inputs(op: &Op) -> Option<Vec<usize>> {
    match op {
        // the block statistics a training conv writes stay f32 (they are not activations)
        Op::Conv2d { bias, epi, .. } => {
            let mut v = vec![0];
            if epi.residual {
                v.push(2 + usize::from(*bias));
            }
            Some(v)
        }
        // the statistics (outputs 1 and 2) stay f32
        Op::BatchNorm { epi, .. } => Some(if epi.residual { vec![0, 5] } else { vec![0] }),
        Op::Activation(_) | Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::AdaptiveAvgPool2d(_) | Op::Linear => {
            Some(vec![0])
        }
        Op::Add => Some(vec![0, 1]),
        _ => None,
    }
}

/// The outputs of a node with f16 kernels that hold activations: the first, and a training
/// batch norm's value before its activation (output 3, where the backward needs it).
fn half_outputs(n: &Node) -> impl Iterator<Item = ValueId> + '_ {
    let pre = matches!(n.op, Op::BatchNorm { training: true, .. }).then(|| n.outputs.get(3));
    n.outputs.first().into_iter().chain(pre.flatten()).copied()
}

/// For a backward op whose kernels read the forward's values in f16 (`kernels::shaders::
/// variant` on their saved-activation storage), those inputs' positions: all of them f16 or
/// all f32, the rest of the inputs f32.
fn saved_inputs(n: &Node) -> Option<Vec<usize>> {
    match n.op {
        // [dy, x, mean, var, gamma, y]
        Op::BatchNormBwd { .. } => Some(if n.inputs.len() > 5 { vec![1, 5] } else { vec![1] }),
        _ => None,
    }
}

/// `g` with f16 activations. `outputs` are the values the caller reads; returns the new graph
/// and, for each of them, the f32 value to read instead. Every other value keeps its id.
pub fn half_activations(g: &Graph, outputs: &[ValueId]) -> (Graph, Vec<ValueId>) {
    let mut h = rebuilt(g);
    let mut casts: HashMap<(ValueId, DType), ValueId> = HashMap::new();
    for n in &g.nodes {
        let mut node = n.clone();
        set_storage(&mut h, n);
        match activation_inputs(&n.op) {
            Some(acts) => {
                for k in acts {
                    node.inputs[k] = convert(&mut h, &mut casts, n.inputs[k], DType::F16);
                }
            }
            None if n.op == Op::Reshape => {}
            None => {
                for v in &mut node.inputs {
                    *v = convert(&mut h, &mut casts, *v, DType::F32);
                }
            }
        }
        place(&mut h, node);
    }
    let outputs = outputs
        .iter()
        .map(|&v| convert(&mut h, &mut casts, v, DType::F32))
        .collect();
    (h, outputs)
}

/// An empty copy of `g` to rebuild node by node (`place`): its values, no nodes yet.
fn rebuilt(g: &Graph) -> Graph {
    Graph {
        values: g.values.clone(),
        nodes: Vec::with_capacity(g.nodes.len()),
    }
}

/// Append `node` to `h`, its outputs produced there.
fn place(h: &mut Graph, node: Node) {
    for &o in &node.outputs {
        h.values[o.0].producer = Some(NodeId(h.nodes.len()));
    }
    h.nodes.push(node);
}

/// In `h`, the storage of `n`'s outputs: f16 for the activation outputs of an op with f16
/// kernels (`half_outputs`), a view's its input's; the rest as they are.
fn set_storage(h: &mut Graph, n: &Node) {
    if activation_inputs(&n.op).is_some() {
        for o in half_outputs(n) {
            h.values[o.0].dtype = DType::F16;
        }
    } else if n.op == Op::Reshape {
        h.values[n.outputs[0].0].dtype = h.value(n.inputs[0]).dtype;
    }
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

/// The forward graph `g` (fused, in training mode) for a mixed-precision step: the activation
/// outputs of every op with f16 kernels (`half_outputs`) stored as f16, and the weight of every
/// conv and linear layer read through its f16 rounding (one per parameter). No casts yet:
/// `mixed_casts` places them after autodiff, which sees the f16 values and rounds their
/// gradients.
pub fn mixed_forward(g: &Graph) -> Graph {
    let mut h = rebuilt(g);
    let mut rounded: HashMap<ValueId, ValueId> = HashMap::new();
    for n in &g.nodes {
        let mut node = n.clone();
        if matches!(n.op, Op::Conv2d { .. } | Op::Linear) {
            let w = n.inputs[1];
            node.inputs[1] = *rounded.entry(w).or_insert_with(|| h.round_half(w));
        }
        set_storage(&mut h, n);
        place(&mut h, node);
    }
    h
}

/// The casts of a mixed-precision training graph (`mixed_forward`, then autodiff and the
/// optimizer): an op whose first output is f16 reads its activation inputs as f16, a backward
/// op its saved values where all of them are f16 (`saved_inputs`), and every other input is
/// read as f32. A cast serves the readers of one phase: the forward's (nodes below `forward`)
/// or the backward's and optimizer's, so that no f32 copy of a forward activation lives from the
/// forward to the backward (which would undo the memory saved); the backward rounds the weights
/// it reads again for the same reason. Returns the graph and, for each of `readable`, its f32
/// value to read.
pub fn mixed_casts(g: &Graph, forward: usize, readable: &[ValueId]) -> (Graph, Vec<ValueId>) {
    let mut h = rebuilt(g);
    let mut phases: [HashMap<(ValueId, DType), ValueId>; 2] = Default::default();
    // the backward's own f16 roundings of the weights (param -> rounding), so that the forward's
    // die with their conv instead of living to the backward
    let mut rounded: HashMap<ValueId, ValueId> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let casts = &mut phases[usize::from(i >= forward)];
        let mut node = n.clone();
        if i >= forward {
            for v in &mut node.inputs {
                let Some(p) = g.value(*v).producer.filter(|p| p.0 < forward) else {
                    continue;
                };
                if g.node(p).op == Op::RoundHalf {
                    let w = g.node(p).inputs[0];
                    *v = *rounded.entry(w).or_insert_with(|| h.round_half(w));
                }
            }
        }
        // a view reads its input as it is stored
        if n.op != Op::Reshape {
            let half = n.outputs.first().is_some_and(|&o| g.value(o).dtype == DType::F16);
            let saved = saved_inputs(n).filter(|s| s.iter().all(|&k| g.value(n.inputs[k]).dtype == DType::F16));
            let f16 = activation_inputs(&n.op).filter(|_| half).or(saved).unwrap_or_default();
            for (k, v) in node.inputs.iter_mut().enumerate() {
                let to = if f16.contains(&k) { DType::F16 } else { DType::F32 };
                *v = convert(&mut h, casts, *v, to);
            }
        }
        place(&mut h, node);
    }
    let readable = readable
        .iter()
        .map(|&v| convert(&mut h, &mut phases[1], v, DType::F32))
        .collect();
    (h, readable)
}
