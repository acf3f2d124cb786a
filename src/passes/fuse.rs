//! Fusion as a graph rewrite, driven by a small rule table (the chains below). Each chain starts
//! at an anchor op and absorbs consumers one at a time while the value between them has that
//! single consumer (and is not read back):
//!
//! | mode  | chain                                       | becomes                              |
//! |-------|---------------------------------------------|--------------------------------------|
//! | infer | conv -> [batch_norm eval] -> [add r] -> [activation] | fold_bn (prologue) + conv with bias, residual and activation epilogue |
//! | train | batch_norm train -> [add r -> activation] or [activation] | batch_norm with residual and activation epilogue (saving the value before an activation whose gradient needs it); its backward multiplies dy by the activation's derivative and yields dr |
//! | train | conv -> batch_norm train                    | conv that also writes block statistics of its output; the batch norm merges them instead of reading its input for them |
//!
//! The fused node takes the place of the chain's last node, where every input it reads
//! (including a residual computed after the conv) is already defined. The statistics rewrite
//! keeps both nodes: the conv gains an output, the batch norm an input.

use crate::graph::{Act, Epilogue, Graph, Op, ValueId, ValueKind};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Infer,
}

/// Whether fusion runs: on, unless CONVOY_FUSION=0.
pub fn enabled_by_env() -> bool {
    std::env::var("CONVOY_FUSION").map_or(true, |v| v != "0")
}

struct Chain {
    nodes: Vec<usize>,
    bn: Option<usize>,
    residual: Option<ValueId>,
    act: Act,
}

/// Fuse `g` for `mode`. Values in `keep` (read back by the caller) are never absorbed. Returns
/// the new graph and, for every old value, its value in the new graph (None if fused away).
pub fn fuse(g: &Graph, mode: Mode, keep: &[ValueId]) -> (Graph, Vec<Option<ValueId>>) {
    let consumers = g.consumers();
    let mut chain_end: HashMap<usize, Chain> = HashMap::new();
    let mut absorbed = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        if absorbed[i] {
            continue;
        }
        let anchor = match (&n.op, mode) {
            (Op::Conv2d { epi, .. }, Mode::Infer) => epi.is_none(),
            (
                Op::BatchNorm {
                    training: true, epi, ..
                },
                Mode::Train,
            ) => epi.is_none(),
            _ => false,
        };
        if !anchor {
            continue;
        }
        // the one consumer of v, if v has one, is not read back and is not in another chain
        let single = |v: ValueId| -> Option<usize> {
            let j = consumers[v.0].first()?.0;
            (consumers[v.0].len() == 1 && !keep.contains(&v) && !absorbed[j]).then_some(j)
        };
        let mut c = Chain {
            nodes: vec![i],
            bn: None,
            residual: None,
            act: Act::None,
        };
        let mut v = n.outputs[0];
        if mode == Mode::Infer {
            if let Some(j) = single(v).filter(|&j| {
                matches!(g.nodes[j].op, Op::BatchNorm { training: false, epi, .. } if epi.is_none())
                    && g.nodes[j].inputs[0] == v
            }) {
                c.nodes.push(j);
                c.bn = Some(j);
                v = g.nodes[j].outputs[0];
            }
        }
        if let Some(j) = single(v).filter(|&j| g.nodes[j].op == Op::Add) {
            let ins = &g.nodes[j].inputs;
            let other = if ins[0] == v { ins[1] } else { ins[0] };
            if other != v {
                c.nodes.push(j);
                c.residual = Some(other);
                v = g.nodes[j].outputs[0];
            }
        }
        // any activation; in training one whose gradient needs its input makes the fused
        // batch norm also save the value before it (a fourth output) for the backward
        if let Some(j) = single(v) {
            if let Op::Activation(act) = g.nodes[j].op {
                c.act = act;
                c.nodes.push(j);
            }
        }
        // in training a residual is worth fusing only with an activation whose gradient
        // follows from its output: the add's own backward is free (its gradient is dy itself),
        // while the fused backward writes dr as a tensor of its own, and an activation that
        // needs its input would keep that saved input alive beside dr (measured: a 7.6% higher
        // planned peak for SiLU in tests/fusion.rs's residual block)
        let act_takes_residual = c.act != Act::None && c.act.grad_from_output();
        if mode == Mode::Train && c.residual.is_some() && !act_takes_residual {
            c.nodes.truncate(1);
            c.residual = None;
            c.act = Act::None;
        }
        if c.nodes.len() > 1 {
            for &j in &c.nodes {
                absorbed[j] = true;
            }
            chain_end.insert(*c.nodes.last().expect("non-empty"), c);
        }
    }

    // training: a conv whose output only feeds a training batch norm's input writes the batch
    // norm's statistics (the node index of that batch norm, per conv node)
    let mut stats_for: HashMap<usize, usize> = HashMap::new();
    if mode == Mode::Train {
        for (i, n) in g.nodes.iter().enumerate() {
            let Op::Conv2d { epi, .. } = &n.op else { continue };
            let y = n.outputs[0];
            if !epi.is_none() || keep.contains(&y) || consumers[y.0].len() != 1 {
                continue;
            }
            let j = consumers[y.0][0].0;
            if matches!(g.nodes[j].op, Op::BatchNorm { training: true, .. }) && g.nodes[j].inputs[0] == y {
                stats_for.insert(i, j);
            }
        }
    }
    // the statistics value (in the new graph) each such batch norm reads
    let mut partials_of: HashMap<usize, ValueId> = HashMap::new();

    let mut out = Graph::new();
    let mut map: Vec<Option<ValueId>> = vec![None; g.values.len()];
    // leaf values (inputs, parameters, state) first, in their order
    for (i, v) in g.values.iter().enumerate() {
        if v.producer.is_none() {
            map[i] = Some(out.add_value(v.name.clone(), v.shape.clone(), v.dtype, v.kind));
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let m = |v: &ValueId| map[v.0].expect("inputs are defined before use");
        if let Some(c) = chain_end.get(&i) {
            let first = &g.nodes[c.nodes[0]];
            let last_out = g.nodes[i].outputs[0];
            let epi = Epilogue {
                residual: c.residual.is_some(),
                act: c.act,
            };
            let shape = g.shape(last_out).clone();
            let new_out = match &first.op {
                Op::Conv2d { args, bias, .. } => {
                    let mut inputs = vec![m(&first.inputs[0])];
                    let has_bias = match c.bn {
                        Some(b) => {
                            let bn = &g.nodes[b];
                            let Op::BatchNorm { eps, .. } = bn.op else {
                                unreachable!("chain holds a batch_norm")
                            };
                            let mut fin = vec![m(&first.inputs[1])];
                            if *bias {
                                fin.push(m(&first.inputs[2]));
                            }
                            fin.extend(bn.inputs[1..5].iter().map(m));
                            let ws = g.shape(first.inputs[1]).clone();
                            let cout = crate::shape::Shape::new(&[ws.dims()[0]]);
                            let dt = crate::tensor::DType::F32;
                            let folded = out.add_node(Op::FoldBn { eps, bias: *bias }, fin, vec![(ws, dt), (cout, dt)]);
                            for f in &folded {
                                out.values[f.0].kind = ValueKind::Derived;
                            }
                            inputs.extend(folded);
                            true
                        }
                        None => {
                            inputs.extend(first.inputs[1..].iter().map(m));
                            *bias
                        }
                    };
                    inputs.extend(c.residual.iter().map(m));
                    let op = Op::Conv2d {
                        args: *args,
                        bias: has_bias,
                        epi,
                        stats: false,
                    };
                    out.add_node(op, inputs, vec![(shape, crate::tensor::DType::F32)])[0]
                }
                Op::BatchNorm {
                    training,
                    momentum,
                    eps,
                    ..
                } => {
                    let mut inputs: Vec<ValueId> = first.inputs.iter().map(m).collect();
                    inputs.extend(c.residual.iter().map(m));
                    let partials = partials_of.get(&c.nodes[0]).copied();
                    inputs.extend(partials);
                    let mut shapes: Vec<_> = first
                        .outputs
                        .iter()
                        .map(|o| (g.shape(*o).clone(), crate::tensor::DType::F32))
                        .collect();
                    if *training && !epi.act.grad_from_output() {
                        shapes.push(shapes[0].clone());
                    }
                    let op = Op::BatchNorm {
                        training: *training,
                        momentum: *momentum,
                        eps: *eps,
                        epi,
                        partials: partials.is_some(),
                    };
                    let outs = out.add_node(op, inputs, shapes);
                    for (o, new) in first.outputs.iter().zip(&outs).skip(1) {
                        map[o.0] = Some(*new);
                    }
                    outs[0]
                }
                _ => unreachable!("chains start at conv or batch_norm"),
            };
            map[last_out.0] = Some(new_out);
            continue;
        }
        if absorbed[i] {
            continue;
        }
        let mut inputs: Vec<ValueId> = n.inputs.iter().map(m).collect();
        let mut outs: Vec<_> = n
            .outputs
            .iter()
            .map(|o| (g.shape(*o).clone(), g.value(*o).dtype))
            .collect();
        let mut op = n.op.clone();
        let stats_bn = stats_for.get(&i).copied();
        if let (Some(_), Op::Conv2d { stats, .. }) = (stats_bn, &mut op) {
            // a second output: the block statistics
            *stats = true;
            let y = g.shape(n.outputs[0]).dims();
            let blocks = (y[0] * y[2] * y[3]).div_ceil(crate::kernels::conv::STATS_BLOCK);
            outs.push((crate::shape::Shape::new(&[blocks, y[1], 2]), crate::tensor::DType::F32));
        }
        if let (Some(&p), Op::BatchNorm { partials, .. }) = (partials_of.get(&i), &mut op) {
            *partials = true;
            inputs.push(p);
        }
        let news = out.add_node(op, inputs, outs);
        if let Some(bn) = stats_bn {
            partials_of.insert(bn, news[1]);
        }
        for (o, new) in n.outputs.iter().zip(news) {
            map[o.0] = Some(new);
        }
    }
    (out, map)
}
