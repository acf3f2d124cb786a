//! A float64 CPU interpreter for forward graphs, built from the references: the independent
//! model that finite-difference gradient checks differentiate.

use super::reference as r;
use convoy::graph::{Graph, Op, ValueId};
use std::collections::HashMap;

/// Values of every forward value, given data for inputs, parameters and state by name.
pub fn eval(g: &Graph, feeds: &HashMap<String, Vec<f64>>, labels: &[i32]) -> Vec<Option<Vec<f64>>> {
    let mut vals: Vec<Option<Vec<f64>>> = g.values.iter().map(|v| feeds.get(&v.name).cloned()).collect();
    for n in &g.nodes {
        let x = |k: usize| vals[n.inputs[k].0].clone().expect("input evaluated");
        let sh = |k: usize| -> [usize; 4] {
            let d = g.shape(n.inputs[k]).dims();
            [d[0], d[1], d[2], d[3]]
        };
        let out: Vec<Vec<f64>> = match &n.op {
            Op::Conv2d { args, .. } => {
                let b = (n.inputs.len() > 2).then(|| x(2));
                let (y, _) = r::conv2d(
                    &x(0),
                    sh(0),
                    &x(1),
                    sh(1),
                    b.as_deref(),
                    args.stride,
                    args.padding,
                    args.dilation,
                    args.groups,
                );
                vec![y]
            }
            Op::BatchNorm { training, eps, .. } => {
                let s = sh(0);
                if *training {
                    let (m, v) = r::channel_stats(&x(0), s);
                    let y = r::batch_norm_apply(&x(0), s, &m, &v, &x(1), &x(2), *eps as f64);
                    vec![y, m, v]
                } else {
                    vec![r::batch_norm_apply(&x(0), s, &x(3), &x(4), &x(1), &x(2), *eps as f64)]
                }
            }
            Op::Activation(act) => vec![x(0).iter().map(|&v| r::activation(*act, v)).collect()],
            Op::Add => vec![x(0).iter().zip(x(1)).map(|(a, b)| a + b).collect()],
            Op::Dropout(args) => {
                let s = x(1);
                let sample = g.shape(n.inputs[0]).numel() / g.shape(n.inputs[0]).dims()[0];
                let scale = 1.0 / (1.0 - args.p as f64);
                let keep = |i| convoy::internals::ops::dropout::keeps(*args, [s[0] as u32, s[1] as u32], i, sample);
                vec![x(0)
                    .iter()
                    .enumerate()
                    .map(|(i, v)| if keep(i) { v * scale } else { 0.0 })
                    .collect()]
            }
            Op::Concat => {
                // per image, each input's channels in turn
                let mut y = Vec::new();
                let batch = g.shape(n.inputs[0]).dims()[0];
                for b in 0..batch {
                    for k in 0..n.inputs.len() {
                        let v = x(k);
                        let per = v.len() / batch;
                        y.extend_from_slice(&v[b * per..(b + 1) * per]);
                    }
                }
                vec![y]
            }
            Op::SliceChannels { start } => {
                let [b, c, h, w] = sh(0);
                let len = g.shape(n.outputs[0]).dims()[1];
                let v = x(0);
                let mut y = Vec::new();
                for i in 0..b {
                    y.extend_from_slice(&v[(i * c + start) * h * w..(i * c + start + len) * h * w]);
                }
                vec![y]
            }
            Op::ChannelShuffle { groups } => {
                let [b, c, h, w] = sh(0);
                let v = x(0);
                let mut y = vec![0.0; v.len()];
                for i in 0..b {
                    for j in 0..c {
                        // x viewed as (groups, c / groups), transposed
                        let from = (j % groups) * (c / groups) + j / groups;
                        for s in 0..h * w {
                            y[(i * c + j) * h * w + s] = v[(i * c + from) * h * w + s];
                        }
                    }
                }
                vec![y]
            }
            Op::Upsample(a) => vec![r::upsample(&x(0), sh(0), a.scale, a.bilinear)],
            Op::Pad2d(a) => vec![r::pad2d(&x(0), sh(0), a.pads, a.value as f64)],
            Op::Softmax => vec![r::softmax(&x(0), g.shape(n.inputs[0]).dims()[1])],
            Op::MulChannels => {
                let hw: usize = g.shape(n.inputs[0]).dims()[2..].iter().product();
                let s = x(1);
                vec![x(0).iter().enumerate().map(|(i, v)| v * s[i / hw]).collect()]
            }
            Op::MaxPool2d(a) => vec![r::max_pool2d(
                &x(0),
                sh(0),
                a.kernel,
                a.stride,
                a.padding,
                a.dilation,
                a.ceil_mode,
            )],
            Op::AvgPool2d(a) => vec![r::avg_pool2d(
                &x(0),
                sh(0),
                a.kernel,
                a.stride,
                a.padding,
                a.count_include_pad,
                a.ceil_mode,
            )],
            Op::AdaptiveAvgPool2d(o) => vec![r::adaptive_avg_pool2d(&x(0), sh(0), o[0], o[1])],
            Op::Reshape => vec![x(0)],
            Op::Linear => {
                let d = g.shape(n.inputs[0]).dims();
                let fout = g.shape(n.inputs[1]).dims()[0];
                let b = (n.inputs.len() > 2).then(|| x(2));
                vec![r::linear(&x(0), d[0], d[1], &x(1), fout, b.as_deref())]
            }
            Op::CrossEntropy { smoothing } => {
                let d = g.shape(n.inputs[0]).dims();
                vec![vec![r::cross_entropy(&x(0), d[0], d[1], labels, *smoothing as f64)]]
            }
            Op::TopkAccuracy { k } => {
                let d = g.shape(n.inputs[0]).dims();
                vec![vec![r::topk_accuracy(&x(0), d[0], d[1], labels, *k)]]
            }
            other => panic!("cpu_graph evaluates forward graphs only, not {}", other.name()),
        };
        for (o, v) in n.outputs.iter().zip(out) {
            vals[o.0] = Some(v);
        }
    }
    vals
}

/// The scalar value of `v` after evaluation.
pub fn scalar(vals: &[Option<Vec<f64>>], v: ValueId) -> f64 {
    vals[v.0].as_ref().expect("evaluated")[0]
}
