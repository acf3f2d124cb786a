//! Patterns found before the walk: the multi-node spellings exporters use for one convoy op
//! (SiLU, hard-swish and GELU as Mul chains, a linear layer's bias as an Add after it), so the
//! walk imports each as one node and skips the rest.

use super::Importer;
use crate::graph::Act;
use crate::io::safetensors::{HostData, HostTensor};
use crate::onnx::graph::{OnnxGraph, OnnxNode};
use crate::onnx::tensor::{to_host, NoExternalData};
use std::collections::HashMap;

/// Which node writes each value and which nodes read it, for the pattern searches.
struct Links<'g> {
    producer: HashMap<&'g str, usize>,
    readers: HashMap<&'g str, Vec<usize>>,
}

impl<'g> Links<'g> {
    fn new(g: &'g OnnxGraph) -> Self {
        let mut links = Links {
            producer: HashMap::new(),
            readers: HashMap::new(),
        };
        for (i, n) in g.nodes.iter().enumerate() {
            for o in &n.outputs {
                links.producer.insert(o.as_str(), i);
            }
            for v in &n.inputs {
                let r = links.readers.entry(v.as_str()).or_default();
                // a node reading one value twice (Mul(x, x)) is one reader
                if r.last() != Some(&i) {
                    r.push(i);
                }
            }
        }
        links
    }

    /// The nodes that read `v`, in order.
    fn readers(&self, v: &str) -> &[usize] {
        self.readers.get(v).map_or(&[], Vec::as_slice)
    }
}

pub(super) fn is_hard_sigmoid_of_hardswish(n: &OnnxNode) -> bool {
    (n.float("alpha", 0.2) - 1.0 / 6.0).abs() < 1e-6 && (n.float("beta", 0.5) - 0.5).abs() < 1e-6
}

impl Importer<'_> {
    /// Exporters write SiLU as x * Sigmoid(x) and (before opset 14) hard-swish as
    /// x * HardSigmoid(x): those pairs become one activation (fusable into the conv before it).
    pub(super) fn find_fused_activations(&mut self) {
        let links = Links::new(self.g);
        let producer = &links.producer;
        for (i, n) in self.g.nodes.iter().enumerate() {
            if n.op_type != "Mul" || n.inputs.len() != 2 {
                continue;
            }
            for (x, s) in [(0, 1), (1, 0)] {
                let Some(&j) = producer.get(n.inputs[s].as_str()) else {
                    continue;
                };
                let p = &self.g.nodes[j];
                if p.input(0) != Some(n.inputs[x].as_str()) {
                    continue;
                }
                let act = match p.op_type.as_str() {
                    "Sigmoid" => Act::Silu,
                    "HardSigmoid" if is_hard_sigmoid_of_hardswish(p) => Act::HardSwish,
                    _ => continue,
                };
                self.fused.insert(i, (act, n.inputs[x].clone()));
                break;
            }
        }
        self.find_gelu(&links);
        self.find_bias_adds(&links);
        for (j, p) in self.g.nodes.iter().enumerate() {
            let Some(out) = p.outputs.first() else { continue };
            if !matches!(p.op_type.as_str(), "Sigmoid" | "HardSigmoid") || *out == self.g.output.0 {
                continue;
            }
            let readers = links.readers(out);
            if !readers.is_empty() && readers.iter().all(|i| self.fused.contains_key(i)) {
                self.absorbed.insert(j);
            }
        }
    }

    /// GELU as exporters write it before opset 20: Div(x, sqrt 2), Erf, Add 1, Mul by x, Mul
    /// by 0.5 (operands of Add and Mul either way round). The last Mul becomes the activation
    /// (fusable into the conv before it); the four nodes before it are absorbed when nothing
    /// else reads them.
    fn find_gelu(&mut self, links: &Links) {
        let g = self.g;
        let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() <= 1e-6 * want.abs());
        // the node j's other operand when one of its two inputs is `v`
        let other = |j: usize, v: &str| -> Option<String> {
            let n = &g.nodes[j];
            match n.inputs.as_slice() {
                [a, b] if a == v => Some(b.clone()),
                [a, b] if b == v => Some(a.clone()),
                _ => None,
            }
        };
        let only_reader = |v: &str, op: &str| -> Option<usize> {
            match *links.readers(v) {
                [j] if g.nodes[j].op_type == op && *v != g.output.0 => Some(j),
                _ => None,
            }
        };
        for (e, erf) in g.nodes.iter().enumerate() {
            let (Some(d_out), Some(e_out)) = (erf.input(0), erf.outputs.first()) else {
                continue;
            };
            if erf.op_type != "Erf" {
                continue;
            }
            let Some(&d) = links.producer.get(d_out) else { continue };
            let div = &g.nodes[d];
            if div.op_type != "Div"
                || div.inputs.len() != 2
                || !near(self.scalar(&div.inputs[1]), std::f64::consts::SQRT_2)
            {
                continue;
            }
            let x = div.inputs[0].clone();
            let chain = (|| {
                let a = only_reader(e_out, "Add")?;
                if !near(self.scalar(&other(a, e_out)?), 1.0) {
                    return None;
                }
                let a_out = g.nodes[a].outputs.first()?;
                let m1 = only_reader(a_out, "Mul")?;
                if other(m1, a_out)? != x {
                    return None;
                }
                let m1_out = g.nodes[m1].outputs.first()?;
                let m2 = only_reader(m1_out, "Mul")?;
                near(self.scalar(&other(m2, m1_out)?), 0.5).then_some((a, m1, m2))
            })();
            let Some((a, m1, m2)) = chain else { continue };
            let div_only = links.readers(d_out) == [e];
            self.fused.insert(m2, (Act::Gelu, x));
            self.absorbed.extend([e, a, m1]);
            if div_only {
                self.absorbed.insert(d);
            }
        }
    }

    /// A linear layer written as MatMul (or Gemm without C) and then Add of a constant vector:
    /// the Add becomes the layer's bias (an Add of a constant to a tensor is otherwise refused).
    fn find_bias_adds(&mut self, links: &Links) {
        let g = self.g;
        for (i, n) in g.nodes.iter().enumerate() {
            let linear = n.op_type == "MatMul" || (n.op_type == "Gemm" && n.input(2).is_none());
            let Some(out) = n.outputs.first().filter(|o| linear && **o != g.output.0) else {
                continue;
            };
            let [a] = *links.readers(out) else { continue };
            let add = &g.nodes[a];
            let bias = match add.inputs.as_slice() {
                [x, b] | [b, x] if x == out && b != out => b,
                _ => continue,
            };
            let vector = g
                .initializers
                .get(bias)
                .is_some_and(|t| matches!(t.data, HostData::F32(_)) && t.shape.iter().rev().skip(1).all(|&d| d == 1));
            if add.op_type == "Add" && vector {
                self.bias_adds.insert(i, a);
                self.absorbed.insert(a);
            }
        }
    }

    /// The value of a one-element constant: an initializer or a Constant node's.
    fn scalar(&self, name: &str) -> Option<f64> {
        let t = match self.g.initializers.get(name) {
            Some(t) => HostTensor::clone(t),
            None => {
                let n = self
                    .g
                    .nodes
                    .iter()
                    .find(|n| n.op_type == "Constant" && n.outputs.first().map(String::as_str) == Some(name))?;
                to_host(n.tensor("value")?, name, &NoExternalData).ok()?
            }
        };
        match t.data {
            HostData::F32(v) if v.len() == 1 => Some(v[0] as f64),
            HostData::I64(v) if v.len() == 1 => Some(v[0] as f64),
            _ => None,
        }
    }
}
