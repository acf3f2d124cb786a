//! ONNX nodes to convoy's graph: one arm per ONNX op in `Importer::node`, each calling the
//! builders of `ops/` (which infer and check shapes), so an imported model goes through the same
//! autodiff, fusion and memory planner as a zoo model. Initializers become parameters (and
//! batch-norm statistics become buffers) under their ONNX names, with the file's values as their
//! initial values. The integer shape arithmetic exporters emit around a reshape (Shape, Gather,
//! Unsqueeze, Concat, Constant, Cast, Slice, ...) is evaluated here, on the host.

use super::graph::{OnnxGraph, OnnxNode};
use super::tensor::{to_host, NoExternalData};
use crate::error::{Error, Result};
use crate::graph::{Act, ValueId};
use crate::io::safetensors::{HostData, HostTensor};
use crate::nn::{Init, Net};
use crate::ops::pad::Pad2dArgs;
use crate::ops::upsample::UpsampleArgs;
use crate::ops::{Conv2dArgs, Pool2dArgs};
use crate::shape::Shape;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The ONNX ops the importer maps (default domain).
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    // only inside GELU's x * 0.5 * (1 + erf(x / sqrt 2))
    "Erf",
    "Mul",
    "Add",
    "Sub",
    "Div",
    "Concat",
    "Split",
    "Slice",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Gemm",
    "MatMul",
    "Flatten",
    "Reshape",
    "Transpose",
    "Dropout",
    "Resize",
    "Pad",
    "Upsample",
    "Softmax",
    "Identity",
    "Constant",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Cast",
    "ConstantOfShape",
];

/// The largest padding, stride, dilation, window, group count or split size the importer
/// takes: far beyond any real model, and small enough that no shape arithmetic on it overflows.
const LARGEST_ATTRIBUTE: i64 = 1 << 20;

/// What an ONNX value is during the import.
#[derive(Clone, Debug)]
enum Val {
    /// A tensor of convoy's graph.
    Tensor(ValueId),
    /// A value known at import time: an initializer, a Constant, shape arithmetic.
    Const(Arc<HostTensor>),
    /// A 4-D tensor `base` seen as 5-D (N, g, C/g, H, W): the reshapes around ShuffleNet's
    /// transpose (`base` holds the 5-D tensor's data in order).
    Grouped { base: ValueId, dims: [usize; 5] },
    /// `x` padded with zeros by (top, left, bottom, right), not computed: a Pad node read only
    /// by convs and average pools, which take its padding over (exporters write a zero Pad
    /// before every average pool that counts its padding).
    Padded { x: ValueId, pads: [usize; 4] },
}

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

/// The classifier replaced for transfer learning: the last Gemm gets `classes` outputs and a
/// fresh initialisation.
#[derive(Clone, Debug)]
pub(super) struct NewHead {
    pub node: usize,
    pub classes: usize,
    /// The new weight's and bias's names.
    pub names: Vec<String>,
}

pub(super) struct Importer<'a> {
    net: &'a mut Net,
    g: &'a OnnxGraph,
    source: &'a str,
    head: Option<&'a NewHead>,
    vals: HashMap<String, Val>,
    /// Initializers already declared as parameters or buffers.
    declared: HashMap<String, ValueId>,
    /// Mul nodes that end x * sigmoid(x), x * hardsigmoid(x) or (x * (erf(x / sqrt 2) + 1)) *
    /// 0.5 (SiLU, hard-swish, GELU), with the name of x.
    fused: HashMap<usize, (Act, String)>,
    /// Sigmoid / HardSigmoid nodes read only by such a Mul.
    absorbed: HashSet<usize>,
    /// Outputs of a Transpose of a 2-D initializer, with that initializer's name: a MatMul
    /// reading one is a linear layer whose weight is the initializer itself, in (out, in).
    transposes: HashMap<String, String>,
    /// MatMul (or Gemm without C) nodes whose output only an Add of a constant bias reads,
    /// with that Add: one linear layer with a bias (`find_bias_adds`).
    bias_adds: HashMap<usize, usize>,
}

fn is_hard_sigmoid_of_hardswish(n: &OnnxNode) -> bool {
    (n.float("alpha", 0.2) - 1.0 / 6.0).abs() < 1e-6 && (n.float("beta", 0.5) - 0.5).abs() < 1e-6
}

impl<'a> Importer<'a> {
    pub fn new(net: &'a mut Net, g: &'a OnnxGraph, source: &'a str, head: Option<&'a NewHead>) -> Self {
        let mut imp = Importer {
            net,
            g,
            source,
            head,
            vals: HashMap::new(),
            declared: HashMap::new(),
            fused: HashMap::new(),
            absorbed: HashSet::new(),
            transposes: HashMap::new(),
            bias_adds: HashMap::new(),
        };
        imp.find_fused_activations();
        imp
    }

    /// Exporters write SiLU as x * Sigmoid(x) and (before opset 14) hard-swish as
    /// x * HardSigmoid(x): those pairs become one activation (fusable into the conv before it).
    fn find_fused_activations(&mut self) {
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

    /// Import every node with `x` as the image input; returns the graph output.
    pub fn run(mut self, x: ValueId) -> Result<ValueId> {
        self.walk(x)
    }

    /// `run`, and what each ONNX value became, as text for a report: a tensor's shape, or a
    /// constant's shape, by value name (as far as the import got).
    pub fn run_described(mut self, x: ValueId) -> (Result<ValueId>, HashMap<String, String>) {
        let result = self.walk(x);
        let graph = &self.net.graph;
        let described = self
            .vals
            .iter()
            .filter(|(name, _)| !self.g.initializers.contains_key(*name))
            .map(|(name, v)| {
                let text = match v {
                    Val::Tensor(t) => graph.shape(*t).to_string(),
                    Val::Const(c) => format!("constant {:?}", c.shape),
                    Val::Grouped { dims, .. } => format!("{dims:?} (channel groups)"),
                    Val::Padded { x, pads } => format!("{} padded by {pads:?}", graph.shape(*x)),
                };
                (name.clone(), text)
            })
            .collect();
        (result, described)
    }

    fn walk(&mut self, x: ValueId) -> Result<ValueId> {
        self.check_input(x)?;
        for (name, t) in &self.g.initializers {
            self.vals.insert(name.clone(), Val::Const(t.clone()));
        }
        self.vals.insert(self.g.input.0.clone(), Val::Tensor(x));
        for (i, n) in self.g.nodes.iter().enumerate() {
            if self.absorbed.contains(&i) {
                continue;
            }
            self.node(i, n).map_err(|e| self.wrap(n, e))?;
        }
        match self.vals.get(&self.g.output.0) {
            Some(Val::Tensor(v)) => Ok(*v),
            _ => Err(Error::format(
                self.source,
                format!("the graph output '{}' is not a tensor convoy computes", self.g.output.0),
            )),
        }
    }

    /// The images must have the channels (and, where the file fixes them, the sizes) the
    /// model declares.
    fn check_input(&self, x: ValueId) -> Result<()> {
        let got = self.net.graph.shape(x).dims().to_vec();
        let want = &self.g.input.1;
        let fits = want.is_empty()
            || (want.len() == got.len() && want.iter().zip(&got).skip(1).all(|(w, g)| w.is_none_or(|w| w == *g)));
        if fits {
            return Ok(());
        }
        let want: Vec<String> = want
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        Err(Error::format(
            self.source,
            format!(
                "input '{}' is declared [{}]; got images of shape {got:?}",
                self.g.input.0,
                want.join(", ")
            ),
        ))
    }

    fn wrap(&self, n: &OnnxNode, e: Error) -> Error {
        match e {
            // already names the node or tensor
            Error::Format { .. } => e,
            other => Error::format(self.source, format!("node '{}' ({}): {other}", n.name, n.op_type)),
        }
    }

    fn fail<T>(&self, n: &OnnxNode, why: impl Into<String>) -> Result<T> {
        Err(Error::format(
            self.source,
            format!("node '{}' ({}): {}", n.name, n.op_type, why.into()),
        ))
    }

    fn val(&self, n: &OnnxNode, i: usize) -> Result<&Val> {
        let Some(name) = n.input(i) else {
            return self.fail(n, format!("input {i} is missing"));
        };
        if let Some(v) = self.vals.get(name) {
            return Ok(v);
        }
        self.fail(n, format!("input '{name}' is not defined"))
    }

    /// Input `i` as a tensor of the graph (an initializer there is a constant input convoy
    /// does not compute with).
    fn tensor(&self, n: &OnnxNode, i: usize) -> Result<ValueId> {
        match self.val(n, i)? {
            Val::Tensor(v) => Ok(*v),
            Val::Const(_) => self.fail(
                n,
                format!(
                    "input '{}' is a constant; convoy takes constants only as weights",
                    n.inputs[i]
                ),
            ),
            Val::Grouped { .. } => self.fail(n, "5-D tensors are supported only inside a channel shuffle"),
            Val::Padded { .. } => self.fail(n, format!("input '{}' is a pad taken over by its conv", n.inputs[i])),
        }
    }

    /// Input 0 of a conv or pool with the padding of a Pad before it taken over: (x, extra
    /// (top, left, bottom, right) padding).
    fn padded_input(&self, n: &OnnxNode) -> Result<(ValueId, [usize; 4])> {
        match self.val(n, 0)? {
            Val::Padded { x, pads } => Ok((*x, *pads)),
            _ => Ok((self.tensor(n, 0)?, [0; 4])),
        }
    }

    /// Input `i` as a constant, when it is one.
    fn constant(&self, n: &OnnxNode, i: usize) -> Option<&HostTensor> {
        n.input(i).and_then(|name| self.constant_named(name))
    }

    /// The value called `name`, when it is a constant.
    fn constant_named(&self, name: &str) -> Option<&HostTensor> {
        match self.vals.get(name) {
            Some(Val::Const(t)) => Some(t.as_ref()),
            _ => None,
        }
    }

    /// Optional input `i`, which must be a constant when present.
    fn constant_input(&self, n: &OnnxNode, i: usize) -> Result<Option<&HostTensor>> {
        let Some(name) = n.input(i) else { return Ok(None) };
        match self.constant_named(name) {
            Some(t) => Ok(Some(t)),
            None => self.fail(n, format!("input '{name}' must be a constant")),
        }
    }

    fn ints_input(&self, n: &OnnxNode, i: usize) -> Result<Option<Vec<i64>>> {
        Ok(self.constant_input(n, i)?.map(as_i64))
    }

    fn floats_input(&self, n: &OnnxNode, i: usize) -> Result<Option<Vec<f32>>> {
        Ok(self.constant_input(n, i)?.map(as_f32))
    }

    fn dims(&self, v: ValueId) -> Vec<usize> {
        self.net.graph.shape(v).dims().to_vec()
    }

    fn set(&mut self, n: &OnnxNode, v: Val) {
        if let Some(o) = n.outputs.first() {
            self.vals.insert(o.clone(), v);
        }
    }

    /// A constant input as a parameter (`buffer`: as non-learned state) named after it, with
    /// its values as the initial value; each name is declared once.
    fn weight(&mut self, n: &OnnxNode, i: usize, buffer: bool) -> Result<(ValueId, Vec<usize>)> {
        let Some(name) = n.input(i).map(str::to_string) else {
            return self.fail(n, format!("input {i} (a weight) is missing"));
        };
        self.weight_named(n, &name, buffer)
    }

    /// The constant `name` as a parameter (or buffer) of its own name, declared once.
    fn weight_named(&mut self, n: &OnnxNode, name: &str, buffer: bool) -> Result<(ValueId, Vec<usize>)> {
        if let Some(&v) = self.declared.get(name) {
            return Ok((v, self.dims(v)));
        }
        let Some(t) = self.constant_named(name).cloned() else {
            return self.fail(n, format!("weight '{name}' must be an initializer or a constant"));
        };
        let HostData::F32(data) = t.data else {
            return self.fail(n, format!("weight '{name}' is an integer tensor"));
        };
        let v = self.declare(name, t.shape.clone(), Init::Data(Arc::new(data)), buffer);
        Ok((v, t.shape))
    }

    fn declare(&mut self, name: &str, shape: Vec<usize>, init: Init, buffer: bool) -> ValueId {
        let shape = Shape::new(&shape);
        let v = if buffer {
            self.net.named_buffer(name, shape, init)
        } else {
            self.net.named_param(name, shape, init)
        };
        self.declared.insert(name.to_string(), v);
        v
    }

    /// An activation, named for the activation statistics after its node.
    fn act(&mut self, n: &OnnxNode, x: ValueId, act: Act) -> Result<Val> {
        let name = n.name.replace('/', ".");
        let name = name.trim_matches('.');
        let y = self.net.scope(name, |net| net.activation(x, act))?;
        Ok(Val::Tensor(y))
    }

    fn node(&mut self, index: usize, n: &OnnxNode) -> Result<()> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return self.fail(n, format!("ops of domain '{}' are not supported", n.domain));
        }
        let out = match n.op_type.as_str() {
            "Identity" => self.val(n, 0)?.clone(),
            "Constant" => Val::Const(Arc::new(self.constant_node(n)?)),
            "Conv" => self.conv(n)?,
            "BatchNormalization" => self.batch_norm(n)?,
            "Relu" => self.act(n, self.tensor(n, 0)?, Act::Relu)?,
            "LeakyRelu" => self.act(n, self.tensor(n, 0)?, Act::LeakyRelu(n.float("alpha", 0.01)))?,
            "Sigmoid" => self.act(n, self.tensor(n, 0)?, Act::Sigmoid)?,
            "HardSwish" => self.act(n, self.tensor(n, 0)?, Act::HardSwish)?,
            "HardSigmoid" if is_hard_sigmoid_of_hardswish(n) => self.act(n, self.tensor(n, 0)?, Act::HardSigmoid)?,
            "HardSigmoid" => {
                return self.fail(
                    n,
                    format!(
                        "alpha {} and beta {}: convoy's hard sigmoid is PyTorch's (1/6, 0.5)",
                        n.float("alpha", 0.2),
                        n.float("beta", 0.5)
                    ),
                )
            }
            "Gelu" => {
                let act = match n.string("approximate", "none").as_str() {
                    "none" => Act::Gelu,
                    "tanh" => Act::GeluTanh,
                    other => return self.fail(n, format!("approximate '{other}'")),
                };
                self.act(n, self.tensor(n, 0)?, act)?
            }
            "Clip" => self.clip(n)?,
            "Mul" if self.fused.contains_key(&index) => {
                let (act, x) = self.fused[&index].clone();
                let Some(Val::Tensor(x)) = self.vals.get(&x).cloned() else {
                    return self.fail(
                        n,
                        format!("'{x}', the input of a fused {}, is not a tensor", act.name()),
                    );
                };
                self.act(n, x, act)?
            }
            "Erf" => return self.fail(n, "Erf outside GELU's x * 0.5 * (1 + erf(x / sqrt 2))"),
            "Add" | "Sub" | "Mul" | "Div" => self.arithmetic(n)?,
            "Concat" => self.concat(n)?,
            "Split" => return self.split(n),
            "Slice" => self.slice(n)?,
            "MaxPool" | "AveragePool" => self.pool(n)?,
            "GlobalAveragePool" => Val::Tensor(self.net.graph.adaptive_avg_pool2d(self.tensor(n, 0)?, [1, 1])?),
            "ReduceMean" => self.reduce_mean(n)?,
            "Gemm" | "MatMul" => self.linear(index, n)?,
            "Flatten" => self.flatten(n)?,
            "Reshape" => self.reshape(n)?,
            "Transpose" => self.transpose(n)?,
            "Dropout" => {
                let x = self.tensor(n, 0)?;
                let p = match self.floats_input(n, 1)? {
                    Some(v) => v.first().copied().unwrap_or(0.5),
                    None => n.float("ratio", 0.5),
                };
                Val::Tensor(self.net.dropout(x, p)?)
            }
            "Resize" | "Upsample" => self.resize(n)?,
            "Pad" => self.pad(n)?,
            "Softmax" => {
                let x = self.tensor(n, 0)?;
                let rank = self.dims(x).len() as i64;
                let default = if self.g.opset >= 13 { -1 } else { 1 };
                let axis = n.int("axis", default);
                if rank != 2 || !(axis == 1 || axis == -1) {
                    return self.fail(
                        n,
                        format!("softmax over axis {axis} of a rank-{rank} tensor (convoy: axis 1 of (N, K))"),
                    );
                }
                Val::Tensor(self.net.graph.softmax(x)?)
            }
            "Shape" => {
                let dims: Vec<i64> = match self.val(n, 0)? {
                    Val::Tensor(v) => self.dims(*v).iter().map(|&d| d as i64).collect(),
                    Val::Grouped { dims, .. } => dims.iter().map(|&d| d as i64).collect(),
                    Val::Const(t) => t.shape.iter().map(|&d| d as i64).collect(),
                    Val::Padded { x, pads } => {
                        let (d, [h, w]) = (self.dims(*x), self.padded_hw(*x, *pads));
                        [d[0], d[1], h, w].iter().map(|&v| v as i64).collect()
                    }
                };
                let r = dims.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (clamp(n.int("start", 0)), clamp(n.int("end", r)));
                let d = dims[s..e.max(s)].to_vec();
                Val::Const(Arc::new(ints(vec![d.len()], d)))
            }
            "Gather" => self.gather(n)?,
            "Unsqueeze" | "Squeeze" => self.squeeze(n)?,
            "Cast" => self.cast(n)?,
            "ConstantOfShape" => {
                let Some(dims) = self.ints_input(n, 0)? else {
                    return self.fail(n, "no shape");
                };
                let shape: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
                let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                // a constant of the file's own making: no bigger than a shape exporters write
                let Some(numel) = numel.filter(|&k| k <= 1 << 16) else {
                    return self.fail(n, format!("a constant of shape {shape:?}"));
                };
                let value = match n.tensor("value") {
                    Some(t) => to_host(t, &format!("{}: node '{}'", self.source, n.name), &NoExternalData)?,
                    None => floats(vec![1], vec![0.0]),
                };
                Val::Const(Arc::new(match value.data {
                    HostData::I64(v) => ints(shape, vec![v.first().copied().unwrap_or(0); numel]),
                    HostData::F32(v) => floats(shape, vec![v.first().copied().unwrap_or(0.0); numel]),
                }))
            }
            other => return self.fail(n, format!("convoy cannot run the ONNX op {other}")),
        };
        self.set(n, out);
        Ok(())
    }

    fn constant_node(&self, n: &OnnxNode) -> Result<HostTensor> {
        if let Some(t) = n.tensor("value") {
            return to_host(t, &format!("{}: node '{}'", self.source, n.name), &NoExternalData);
        }
        if n.has("value_float") {
            return Ok(floats(vec![], vec![n.float("value_float", 0.0)]));
        }
        if n.has("value_int") {
            return Ok(ints(vec![], vec![n.int("value_int", 0)]));
        }
        if let Some(v) = n.ints("value_ints") {
            return Ok(ints(vec![v.len()], v.to_vec()));
        }
        match n.attributes.iter().find(|a| a.name == "value_floats") {
            Some(a) => Ok(floats(vec![a.floats.len()], a.floats.clone())),
            None => self.fail(n, "a Constant without a tensor, float or int value"),
        }
    }

    /// (begin, end) padding per spatial axis from `pads` / `auto_pad`, for a window `k` with
    /// `stride` and `dilation` over an input of `size`.
    /// A window op's own padding, (begin, end) per spatial axis, from `pads` / `auto_pad`, for a
    /// window `k` with `stride` and `dilation` over an input of `size`.
    fn pads(
        &self,
        n: &OnnxNode,
        size: [usize; 2],
        k: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<[(usize, usize); 2]> {
        let auto = n.string("auto_pad", "NOTSET");
        Ok(match auto.as_str() {
            "NOTSET" => {
                let p = n.ints("pads").unwrap_or(&[0, 0, 0, 0]);
                if p.len() != 4 || p.iter().any(|&v| !(0..=LARGEST_ATTRIBUTE).contains(&v)) {
                    return self.fail(
                        n,
                        format!("pads {p:?}: expected four numbers in 0..={LARGEST_ATTRIBUTE}"),
                    );
                }
                [(p[0] as usize, p[2] as usize), (p[1] as usize, p[3] as usize)]
            }
            "VALID" => [(0, 0), (0, 0)],
            "SAME_UPPER" | "SAME_LOWER" => {
                let total = |a: usize| {
                    let out = size[a].div_ceil(stride[a]);
                    ((out.max(1) - 1) * stride[a] + (k[a] - 1) * dilation[a] + 1).saturating_sub(size[a])
                };
                let split = |t: usize| {
                    if auto == "SAME_UPPER" {
                        (t / 2, t - t / 2)
                    } else {
                        (t - t / 2, t / 2)
                    }
                };
                [split(total(0)), split(total(1))]
            }
            other => return self.fail(n, format!("auto_pad '{other}'")),
        })
    }

    /// Padding (begin, end) per axis as convoy's symmetric padding plus what is left over on one
    /// side, as (top, left, bottom, right) for an explicit pad before the op.
    fn split_pads(pairs: [(usize, usize); 2]) -> ([usize; 2], [usize; 4]) {
        let sym = [pairs[0].0.min(pairs[0].1), pairs[1].0.min(pairs[1].1)];
        let rest = [
            pairs[0].0 - sym[0],
            pairs[1].0 - sym[1],
            pairs[0].1 - sym[0],
            pairs[1].1 - sym[1],
        ];
        (sym, rest)
    }

    /// (begin, end) padding per axis plus a Pad's (top, left, bottom, right) before the op.
    fn add_pads(own: [(usize, usize); 2], extra: [usize; 4]) -> [(usize, usize); 2] {
        [
            (own[0].0 + extra[0], own[0].1 + extra[2]),
            (own[1].0 + extra[1], own[1].1 + extra[3]),
        ]
    }

    /// x padded by `rest` with `value` (nothing when `rest` is zero).
    fn pad_rest(&mut self, x: ValueId, rest: [usize; 4], value: f32) -> Result<ValueId> {
        self.net.graph.pad2d(x, Pad2dArgs { pads: rest, value })
    }

    /// (H, W) of x after a pad by `extra`.
    fn padded_hw(&self, x: ValueId, extra: [usize; 4]) -> [usize; 2] {
        let d = self.dims(x);
        let (h, w) = (d.get(2).copied().unwrap_or(0), d.get(3).copied().unwrap_or(0));
        [h + extra[0] + extra[2], w + extra[1] + extra[3]]
    }

    fn pair(&self, n: &OnnxNode, name: &str, default: usize) -> Result<[usize; 2]> {
        match n.ints(name) {
            None => Ok([default; 2]),
            Some(&[a, b]) if (1..=LARGEST_ATTRIBUTE).contains(&a) && (1..=LARGEST_ATTRIBUTE).contains(&b) => {
                Ok([a as usize, b as usize])
            }
            Some(v) => self.fail(
                n,
                format!("{name} {v:?}: expected two numbers in 1..={LARGEST_ATTRIBUTE} (2-D)"),
            ),
        }
    }

    fn conv(&mut self, n: &OnnxNode) -> Result<Val> {
        let (x, extra) = self.padded_input(n)?;
        let (w, wd) = self.weight(n, 1, false)?;
        if wd.len() != 4 {
            return self.fail(n, format!("weight of shape {wd:?}: convoy runs 2-D convolutions"));
        }
        let k = [wd[2], wd[3]];
        if n.ints("kernel_shape")
            .is_some_and(|ks| ks != [k[0] as i64, k[1] as i64])
        {
            return self.fail(
                n,
                format!(
                    "kernel_shape {:?} does not match the weight {wd:?}",
                    n.ints("kernel_shape")
                ),
            );
        }
        let b = match n.input(2) {
            Some(_) => Some(self.weight(n, 2, false)?.0),
            None => None,
        };
        let stride = self.pair(n, "strides", 1)?;
        let dilation = self.pair(n, "dilations", 1)?;
        let groups = n.int("group", 1);
        if !(1..=LARGEST_ATTRIBUTE).contains(&groups) {
            return self.fail(n, format!("group {groups}"));
        }
        let own = self.pads(n, self.padded_hw(x, extra), k, stride, dilation)?;
        // a Pad before the conv (zeros) adds to the conv's own padding; what is not the same
        // on both sides is padded explicitly
        let (padding, rest) = Self::split_pads(Self::add_pads(own, extra));
        let x = self.pad_rest(x, rest, 0.0)?;
        let args = Conv2dArgs {
            stride,
            padding,
            dilation,
            groups: groups as usize,
        };
        Ok(Val::Tensor(self.net.graph.conv2d(x, w, b, args)?))
    }

    fn batch_norm(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let (gamma, _) = self.weight(n, 1, false)?;
        let (beta, _) = self.weight(n, 2, false)?;
        let (mean, _) = self.weight(n, 3, true)?;
        let (var, _) = self.weight(n, 4, true)?;
        // ONNX: running = running * momentum + batch * (1 - momentum); PyTorch's momentum is
        // 1 - that. The file holds ONNX's as a float32 (0.9 for PyTorch's 0.1), whose
        // complement is 0.1 only to float32 precision: rounded to 6 decimals it is the value
        // the model was built with again (0.1, 0.01, 0.001), so a fine-tuned import's running
        // statistics move as the original model's do
        let momentum = ((1.0 - n.float("momentum", 0.9) as f64) * 1e6).round() / 1e6;
        let momentum = momentum as f32;
        let eps = n.float("epsilon", 1e-5);
        let training = self.net.training;
        let y = self
            .net
            .graph
            .batch_norm(x, [gamma, beta, mean, var], training, momentum, eps)?;
        Ok(Val::Tensor(y))
    }

    fn clip(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let bound = |i: usize, attr: &str| -> Result<Option<f32>> {
            if self.g.opset < 11 {
                return Ok(n.has(attr).then(|| n.float(attr, 0.0)));
            }
            Ok(self.floats_input(n, i)?.and_then(|v| v.first().copied()))
        };
        let (lo, hi) = (bound(1, "min")?, bound(2, "max")?);
        let act = match (lo, hi) {
            (Some(l), Some(h)) if l == 0.0 && h == 6.0 => Act::Relu6,
            (Some(0.0), None) => Act::Relu,
            (Some(l), Some(h)) if l == 0.0 && h == f32::INFINITY => Act::Relu,
            _ => {
                return self.fail(
                    n,
                    format!("clip to [{lo:?}, {hi:?}]: convoy clips to [0, 6] (ReLU6) or [0, inf) (ReLU)"),
                )
            }
        };
        self.act(n, x, act)
    }

    fn arithmetic(&mut self, n: &OnnxNode) -> Result<Val> {
        if let (Some(a), Some(b)) = (self.constant(n, 0), self.constant(n, 1)) {
            return match fold_arithmetic(&n.op_type, a, b) {
                Some(t) => Ok(Val::Const(Arc::new(t))),
                None => self.fail(
                    n,
                    format!("constant operands of shapes {:?} and {:?}", a.shape, b.shape),
                ),
            };
        }
        let (a, b) = (self.tensor(n, 0)?, self.tensor(n, 1)?);
        let (da, db) = (self.dims(a), self.dims(b));
        match n.op_type.as_str() {
            "Add" if da == db => Ok(Val::Tensor(self.net.graph.add(a, b)?)),
            "Mul" => {
                // squeeze-excite: (N, C, H, W) * (N, C, 1, 1), either way round
                let scale_of =
                    |x: &[usize], s: &[usize]| x.len() == 4 && s.len() == 4 && s[..2] == x[..2] && s[2..] == [1, 1];
                if scale_of(&da, &db) {
                    Ok(Val::Tensor(self.net.graph.mul_channels(a, b)?))
                } else if scale_of(&db, &da) {
                    Ok(Val::Tensor(self.net.graph.mul_channels(b, a)?))
                } else {
                    self.fail(n, format!("multiplying {da:?} by {db:?}: convoy multiplies (N, C, H, W) by (N, C, 1, 1), or x by sigmoid(x)"))
                }
            }
            op => self.fail(
                n,
                format!("{op} of tensors {da:?} and {db:?}: convoy adds tensors of one shape"),
            ),
        }
    }

    fn axis(&self, n: &OnnxNode, rank: usize, default: i64) -> Result<usize> {
        let a = n.int("axis", default);
        let r = rank as i64;
        if a < -r || a >= r.max(1) {
            return self.fail(n, format!("axis {a} of a rank-{rank} tensor"));
        }
        Ok(if a < 0 { a + r } else { a } as usize)
    }

    fn concat(&mut self, n: &OnnxNode) -> Result<Val> {
        let count = n.inputs.len();
        let consts: Vec<Option<&HostTensor>> = (0..count).map(|i| self.constant(n, i)).collect();
        if count > 0 && consts.iter().all(Option::is_some) {
            let parts: Vec<&HostTensor> = consts.into_iter().flatten().collect();
            if parts.iter().any(|t| t.shape.len() != 1) {
                return self.fail(n, "concatenating constants of rank other than 1");
            }
            let len = parts.iter().map(|t| t.shape[0]).sum();
            return Ok(Val::Const(Arc::new(match parts[0].data {
                HostData::I64(_) => ints(vec![len], parts.iter().flat_map(|t| as_i64(t)).collect()),
                HostData::F32(_) => floats(vec![len], parts.iter().flat_map(|t| as_f32(t)).collect()),
            })));
        }
        let xs: Vec<ValueId> = (0..count).map(|i| self.tensor(n, i)).collect::<Result<_>>()?;
        let rank = xs.first().map_or(0, |&x| self.dims(x).len());
        let axis = self.axis(n, rank, 1)?;
        if rank != 4 || axis != 1 {
            return self.fail(
                n,
                format!("concat along axis {axis} of rank-{rank} tensors (convoy: channels of (N, C, H, W))"),
            );
        }
        Ok(Val::Tensor(self.net.graph.concat(&xs)?))
    }

    fn split(&mut self, n: &OnnxNode) -> Result<()> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        let axis = self.axis(n, d.len(), 0)?;
        if d.len() != 4 || axis != 1 {
            return self.fail(
                n,
                format!("split along axis {axis} of {d:?} (convoy: channels of (N, C, H, W))"),
            );
        }
        let parts = n.outputs.len();
        let sizes: Vec<usize> = match self.ints_input(n, 1)?.or_else(|| n.ints("split").map(<[i64]>::to_vec)) {
            Some(s) => s.iter().map(|&v| v.clamp(0, LARGEST_ATTRIBUTE) as usize).collect(),
            None if parts > 0 => {
                let size = d[1].div_ceil(parts);
                (0..parts).map(|i| size.min(d[1].saturating_sub(i * size))).collect()
            }
            None => return self.fail(n, "a split with no outputs"),
        };
        if sizes.len() != parts || sizes.iter().sum::<usize>() != d[1] {
            return self.fail(
                n,
                format!("split sizes {sizes:?} into {parts} outputs of {} channels", d[1]),
            );
        }
        let mut start = 0;
        for (o, &len) in n.outputs.iter().zip(&sizes) {
            let y = self.net.graph.slice_channels(x, start, len)?;
            self.vals.insert(o.clone(), Val::Tensor(y));
            start += len;
        }
        Ok(())
    }

    fn slice(&mut self, n: &OnnxNode) -> Result<Val> {
        let (starts, ends, axes, steps) = if self.g.opset < 10 {
            let v = |k: &str| n.ints(k).map(<[i64]>::to_vec);
            (v("starts"), v("ends"), v("axes"), None)
        } else {
            (
                self.ints_input(n, 1)?,
                self.ints_input(n, 2)?,
                self.ints_input(n, 3)?,
                self.ints_input(n, 4)?,
            )
        };
        let (Some(starts), Some(ends)) = (starts, ends) else {
            return self.fail(n, "a slice without starts and ends");
        };
        let shape = match self.val(n, 0)? {
            Val::Tensor(v) => self.dims(*v),
            Val::Const(t) => t.shape.clone(),
            Val::Grouped { .. } | Val::Padded { .. } => return self.fail(n, "slicing a 5-D or padded tensor"),
        };
        let rank = shape.len() as i64;
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if axes.len() != starts.len() || ends.len() != starts.len() || steps.len() != starts.len() {
            return self.fail(n, "starts, ends, axes and steps of different lengths");
        }
        // per axis of the input: (start, step, count) with ONNX's clamping
        let mut ranges: Vec<(i64, i64, usize)> = shape.iter().map(|&d| (0, 1, d)).collect();
        for i in 0..starts.len() {
            let (axis, step) = (axes[i], steps[i]);
            if axis < -rank || axis >= rank || step == 0 {
                return self.fail(n, format!("axis {axis} with step {step} of a rank-{rank} tensor"));
            }
            let axis = if axis < 0 { axis + rank } else { axis } as usize;
            let dim = shape[axis] as i64;
            let at = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
            let (s, e) = if step > 0 {
                (at(starts[i]).clamp(0, dim), at(ends[i]).clamp(0, dim))
            } else {
                (at(starts[i]).clamp(0, dim - 1), at(ends[i]).clamp(-1, dim - 1))
            };
            let span = if step > 0 { e - s } else { s - e }.max(0) as u64;
            let count = span.div_ceil(step.unsigned_abs());
            ranges[axis] = (s, step, count as usize);
        }
        if let Some(t) = self.constant(n, 0) {
            return Ok(Val::Const(Arc::new(slice_const(t, &ranges))));
        }
        let x = self.tensor(n, 0)?;
        let cut: Vec<usize> = (0..shape.len()).filter(|&a| ranges[a] != (0, 1, shape[a])).collect();
        match cut[..] {
            [] => Ok(Val::Tensor(x)),
            [1] if shape.len() == 4 && ranges[1].1 == 1 => {
                let (s, _, count) = ranges[1];
                Ok(Val::Tensor(self.net.graph.slice_channels(x, s as usize, count)?))
            }
            _ => self.fail(
                n,
                format!("slicing axes {cut:?} of {shape:?} (convoy: channels of (N, C, H, W), step 1)"),
            ),
        }
    }

    fn pool(&mut self, n: &OnnxNode) -> Result<Val> {
        let (x, extra) = if n.op_type == "AveragePool" {
            self.padded_input(n)?
        } else {
            (self.tensor(n, 0)?, [0; 4])
        };
        let kernel = match n.ints("kernel_shape") {
            Some(&[a, b]) if (1..=LARGEST_ATTRIBUTE).contains(&a) && (1..=LARGEST_ATTRIBUTE).contains(&b) => {
                [a as usize, b as usize]
            }
            k => return self.fail(n, format!("kernel_shape {k:?}: expected a 2-D window")),
        };
        let stride = self.pair(n, "strides", 1)?;
        let dilation = self.pair(n, "dilations", 1)?;
        let own = self.pads(n, self.padded_hw(x, extra), kernel, stride, dilation)?;
        let max = n.op_type == "MaxPool";
        let count_pad = n.int("count_include_pad", 0) != 0;
        let (_, own_rest) = Self::split_pads(own);
        // an average that leaves its padding out cannot take padding it sees as values: the
        // zeros of a Pad before it, or an explicit pad of its uneven sides
        if !max && !count_pad && own != [(0, 0); 2] && (extra != [0; 4] || own_rest != [0; 4]) {
            return self.fail(
                n,
                format!("padding {own:?} (uneven, or after a Pad) of an average pool that leaves its padding out"),
            );
        }
        let (padding, rest) = Self::split_pads(if max { own } else { Self::add_pads(own, extra) });
        // max pooling pads with the lowest float, which no window of real values ends on
        let x = self.pad_rest(x, rest, if max { f32::MIN } else { 0.0 })?;
        let args = Pool2dArgs {
            kernel,
            stride,
            padding,
            dilation,
            // the zeros of a Pad before the pool, or of its uneven sides, are values it averages
            count_include_pad: count_pad || extra != [0; 4] || rest != [0; 4],
            ceil_mode: n.int("ceil_mode", 0) != 0,
        };
        if n.op_type == "MaxPool" {
            if n.outputs.len() > 1 && !n.outputs[1].is_empty() {
                return self.fail(n, "max pooling's indices output");
            }
            Ok(Val::Tensor(self.net.graph.max_pool2d(x, args)?))
        } else {
            Ok(Val::Tensor(self.net.graph.avg_pool2d(x, args)?))
        }
    }

    fn reduce_mean(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        let axes = match n.ints("axes") {
            Some(a) => Some(a.to_vec()),
            None => self.ints_input(n, 1)?,
        };
        let mut axes: Vec<i64> = axes
            .unwrap_or_default()
            .iter()
            .map(|&a| if a < 0 { a + d.len() as i64 } else { a })
            .collect();
        axes.sort();
        if d.len() != 4 || axes != [2, 3] {
            return self.fail(
                n,
                format!("mean over axes {axes:?} of {d:?} (convoy: the spatial axes of (N, C, H, W))"),
            );
        }
        let y = self.net.graph.adaptive_avg_pool2d(x, [1, 1])?;
        if n.int("keepdims", 1) != 0 {
            return Ok(Val::Tensor(y));
        }
        Ok(Val::Tensor(self.net.graph.flatten(y)?))
    }

    /// Gemm (transA 0, alpha and beta 1) and MatMul with a constant right-hand side: a linear
    /// layer. A weight stored (in, out) is transposed into convoy's (out, in) at import.
    fn linear(&mut self, index: usize, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        if d.len() != 2 {
            return self.fail(
                n,
                format!("input of shape {d:?}: convoy's linear layer takes (N, features)"),
            );
        }
        let gemm = n.op_type == "Gemm";
        if gemm && (n.int("transA", 0) != 0 || n.float("alpha", 1.0) != 1.0 || n.float("beta", 1.0) != 1.0) {
            return self.fail(n, "transA, alpha or beta other than 0, 1, 1");
        }
        let Some(w_name) = n.input(1).map(str::to_string) else {
            return self.fail(n, "the weight (input 1) is missing");
        };
        // the bias: Gemm's C, or the constant of an Add after it (`find_bias_adds`)
        let bias_add = self.bias_adds.get(&index).map(|&a| &self.g.nodes[a]);
        let b_name = match bias_add {
            Some(add) => add.inputs.iter().find(|v| Some(*v) != n.outputs.first()).cloned(),
            None if gemm => n.input(2).map(str::to_string),
            None => None,
        };
        let y = self.linear_layer(index, n, x, &d, w_name, b_name)?;
        if let Some(out) = bias_add.and_then(|a| a.outputs.first()) {
            self.vals.insert(out.clone(), y.clone());
        }
        Ok(y)
    }

    /// `linear`'s layer: weight `w_name`, bias `b_name`, for input x of dims `d`.
    fn linear_layer(
        &mut self,
        index: usize,
        n: &OnnxNode,
        x: ValueId,
        d: &[usize],
        w_name: String,
        b_name: Option<String>,
    ) -> Result<Val> {
        let gemm = n.op_type == "Gemm";
        let trans_b = gemm && n.int("transB", 0) != 0;
        if let Some(head) = self.head.filter(|h| h.node == index) {
            // a new classifier with nn.Linear's initialisation, under the old names
            let bound = 1.0 / (d[1] as f32).sqrt();
            let w = self.declare(&head.names[0], vec![head.classes, d[1]], Init::Uniform(bound), false);
            let b = head
                .names
                .get(1)
                .map(|b| self.declare(b, vec![head.classes], Init::Uniform(bound), false));
            return Ok(Val::Tensor(self.net.graph.linear(x, w, b)?));
        }
        // a weight past one storage binding (VGG's classifier): row chunks, through Net
        if trans_b && !self.declared.contains_key(&w_name) {
            if let Some(HostTensor {
                shape,
                data: HostData::F32(wd),
            }) = self.constant(n, 1).cloned()
            {
                if let (&[rows, cols], Some(_)) = (&shape[..], crate::io::chunks::row_chunks(&shape)) {
                    let bias = match &b_name {
                        Some(name) => match self.constant_named(name) {
                            Some(HostTensor {
                                data: HostData::F32(bd),
                                ..
                            }) => Some((name.as_str(), Init::Data(Arc::new(bd.clone())))),
                            _ => return self.fail(n, format!("bias '{name}' must be a float initializer")),
                        },
                        None => None,
                    };
                    let y = self
                        .net
                        .linear_named(x, &w_name, bias, [rows, cols], Init::Data(Arc::new(wd)))?;
                    return Ok(Val::Tensor(y));
                }
            }
        }
        let w = if trans_b {
            self.weight(n, 1, false)?.0
        } else if let Some(source) = self.transposes.get(&w_name).cloned() {
            // MatMul(x, Transpose(W)): W is already (out, in)
            self.weight_named(n, &source, false)?.0
        } else if let Some(&v) = self.declared.get(&w_name) {
            v
        } else {
            let Some(HostTensor {
                shape,
                data: HostData::F32(data),
            }) = self.constant(n, 1).cloned()
            else {
                return self.fail(n, format!("weight '{w_name}' must be a float initializer"));
            };
            let [rows, cols] = shape[..] else {
                return self.fail(n, format!("weight '{w_name}' of shape {shape:?}: expected 2-D"));
            };
            let t = transpose(&data, rows, cols);
            self.declare(&w_name, vec![cols, rows], Init::Data(Arc::new(t)), false)
        };
        let b = match &b_name {
            Some(name) => {
                if let Some(&v) = self.declared.get(name) {
                    Some(v)
                } else {
                    let Some(HostTensor {
                        data: HostData::F32(data),
                        shape,
                    }) = self.constant_named(name).cloned()
                    else {
                        return self.fail(n, format!("bias '{name}' must be a float initializer"));
                    };
                    let len = data.len();
                    if shape.iter().rev().skip(1).any(|&s| s != 1) {
                        return self.fail(n, format!("bias '{name}' of shape {shape:?}: expected (out)"));
                    }
                    Some(self.declare(name, vec![len], Init::Data(Arc::new(data)), false))
                }
            }
            None => None,
        };
        Ok(Val::Tensor(self.net.graph.linear(x, w, b)?))
    }

    fn flatten(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        let axis = n.int("axis", 1);
        let r = d.len() as i64;
        if axis < -r || axis > r {
            return self.fail(n, format!("axis {axis} of a rank-{r} tensor"));
        }
        let axis = if axis < 0 { axis + r } else { axis } as usize;
        let shape = Shape::new(&[d[..axis].iter().product(), d[axis..].iter().product()]);
        Ok(Val::Tensor(self.net.graph.reshape(x, shape)))
    }

    fn reshape(&mut self, n: &OnnxNode) -> Result<Val> {
        let Some(target) = self.ints_input(n, 1)? else {
            return self.fail(n, "a reshape without a shape");
        };
        let (input_dims, grouped) = match self.val(n, 0)? {
            Val::Tensor(v) => (self.dims(*v), None),
            Val::Grouped { base, dims } => (dims.to_vec(), Some(*base)),
            Val::Padded { .. } => return self.fail(n, "reshaping a padded tensor"),
            Val::Const(t) => {
                let mut t = HostTensor::clone(t);
                t.shape = self.resolve_shape(n, &t.shape, &target)?;
                return Ok(Val::Const(Arc::new(t)));
            }
        };
        let shape = self.resolve_shape(n, &input_dims, &target)?;
        let x = match grouped {
            Some(base) => {
                // back to 4-D after a channel shuffle's transpose
                if shape.len() != 4 {
                    return self.fail(n, format!("reshaping a 5-D view to {shape:?}"));
                }
                base
            }
            None => self.tensor(n, 0)?,
        };
        if shape.len() == 5 && input_dims.len() == 4 {
            let (d, s) = (&input_dims, &shape);
            if s[0] == d[0] && s[1] * s[2] == d[1] && s[3..] == d[2..] {
                return Ok(Val::Grouped {
                    base: x,
                    dims: [s[0], s[1], s[2], s[3], s[4]],
                });
            }
        }
        if shape.len() > 4 {
            return self.fail(
                n,
                format!("reshaping {input_dims:?} to {shape:?}: convoy's tensors have at most 4 dimensions"),
            );
        }
        if shape == self.dims(x) {
            return Ok(Val::Tensor(x));
        }
        Ok(Val::Tensor(self.net.graph.reshape(x, Shape::new(&shape))))
    }

    /// ONNX's reshape target: 0 copies the input's dimension (unless allowzero), -1 is inferred.
    fn resolve_shape(&self, n: &OnnxNode, input: &[usize], target: &[i64]) -> Result<Vec<usize>> {
        let numel: usize = input.iter().product();
        let allow_zero = n.int("allowzero", 0) != 0;
        let mut out = Vec::with_capacity(target.len());
        let mut infer = None;
        for (i, &t) in target.iter().enumerate() {
            match t {
                -1 if infer.is_none() => {
                    infer = Some(i);
                    out.push(1);
                }
                0 if !allow_zero => match input.get(i) {
                    Some(&d) => out.push(d),
                    None => return self.fail(n, format!("target {target:?} copies dimension {i} of {input:?}")),
                },
                t if t >= 0 => out.push(t as usize),
                _ => return self.fail(n, format!("target shape {target:?}")),
            }
        }
        let known: usize = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(0);
        if let Some(i) = infer {
            if known == 0 || !numel.is_multiple_of(known) {
                return self.fail(n, format!("cannot reshape {input:?} to {target:?}"));
            }
            out[i] = numel / known;
        } else if known != numel {
            return self.fail(n, format!("cannot reshape {input:?} ({numel} values) to {target:?}"));
        }
        Ok(out)
    }

    fn transpose(&mut self, n: &OnnxNode) -> Result<Val> {
        if let Some(t) = self.constant(n, 0) {
            let rank = t.shape.len();
            let perm: Vec<usize> = match n.ints("perm") {
                Some(p) => p.iter().map(|&a| a.max(0) as usize).collect(),
                None => (0..rank).rev().collect(),
            };
            if rank != 2 || perm != [1, 0] {
                return self.fail(
                    n,
                    format!("transposing a rank-{rank} constant by {perm:?} (convoy: 2-D)"),
                );
            }
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let out = HostTensor {
                shape: vec![cols, rows],
                data: match &t.data {
                    HostData::F32(v) => HostData::F32(transpose(v, rows, cols)),
                    HostData::I64(v) => HostData::I64((0..v.len()).map(|i| v[(i % rows) * cols + i / rows]).collect()),
                },
            };
            if let (Some(out), true) = (n.outputs.first(), self.g.initializers.contains_key(&n.inputs[0])) {
                self.transposes.insert(out.clone(), n.inputs[0].clone());
            }
            return Ok(Val::Const(Arc::new(out)));
        }
        match (self.val(n, 0)?.clone(), n.ints("perm")) {
            (Val::Grouped { base, dims }, Some(&[0, 2, 1, 3, 4])) => {
                let y = self.net.graph.channel_shuffle(base, dims[1])?;
                Ok(Val::Grouped {
                    base: y,
                    dims: [dims[0], dims[2], dims[1], dims[3], dims[4]],
                })
            }
            (_, perm) => self.fail(
                n,
                format!("transpose {perm:?}: convoy transposes only the channel groups of a channel shuffle"),
            ),
        }
    }

    fn resize(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        if d.len() != 4 {
            return self.fail(n, format!("resizing {d:?}: convoy resizes (N, C, H, W)"));
        }
        let (scales, sizes) = if n.op_type == "Upsample" {
            let s = match n.attributes.iter().find(|a| a.name == "scales") {
                Some(a) => Some(a.floats.clone()),
                None => self.floats_input(n, 1)?,
            };
            (s, None)
        } else if self.g.opset < 11 {
            (self.floats_input(n, 1)?, None)
        } else {
            (
                self.floats_input(n, 2)?.filter(|s| !s.is_empty()),
                self.ints_input(n, 3)?,
            )
        };
        let scale = match (scales, sizes) {
            (Some(s), _) if s.len() == 4 => s,
            (_, Some(z)) if z.len() == 4 => z.iter().zip(&d).map(|(&z, &d)| z as f32 / d as f32).collect(),
            _ => return self.fail(n, "neither scales nor sizes for the four dimensions"),
        };
        let s = scale[2];
        if scale[0] != 1.0 || scale[1] != 1.0 || scale[3] != s || s.fract() != 0.0 || s < 1.0 {
            return self.fail(
                n,
                format!("scales {scale:?}: convoy upsamples H and W by one integer factor"),
            );
        }
        let mode = n.string("mode", "nearest");
        let transform = n.string("coordinate_transformation_mode", "half_pixel");
        let bilinear = match mode.as_str() {
            "nearest" if n.op_type == "Upsample" || transform == "asymmetric" => {
                let rounding = n.string("nearest_mode", "round_prefer_floor");
                if n.op_type == "Resize" && rounding != "floor" {
                    return self.fail(n, format!("nearest_mode '{rounding}' (convoy: floor, PyTorch's)"));
                }
                false
            }
            "linear" | "bilinear" if matches!(transform.as_str(), "half_pixel" | "pytorch_half_pixel") || n.op_type == "Upsample" => {
                if n.op_type == "Upsample" {
                    return self.fail(n, "opset-9 bilinear Upsample (asymmetric coordinates)");
                }
                true
            }
            _ => {
                return self.fail(
                    n,
                    format!("mode '{mode}' with coordinate_transformation_mode '{transform}' (convoy: PyTorch's nearest, or bilinear without align_corners)"),
                )
            }
        };
        let args = UpsampleArgs {
            scale: s as usize,
            bilinear,
        };
        Ok(Val::Tensor(self.net.graph.upsample(x, args)?))
    }

    /// Zero padding of H and W: nothing when it pads nothing, else taken over by the conv or
    /// average pool that reads it.
    fn pad(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let rank = self.dims(x).len();
        let pads = match self.ints_input(n, 1)? {
            Some(p) if self.g.opset >= 11 => p,
            _ => n.ints("pads").map(<[i64]>::to_vec).unwrap_or_default(),
        };
        let value = if self.g.opset >= 11 {
            self.floats_input(n, 2)?.and_then(|v| v.first().copied()).unwrap_or(0.0)
        } else {
            n.float("value", 0.0)
        };
        let mode = n.string("mode", "constant");
        if n.input(3).is_some() {
            return self.fail(n, "padding chosen axes (the axes input)");
        }
        let plausible = pads.iter().all(|&p| (0..=LARGEST_ATTRIBUTE).contains(&p));
        if rank != 4 || pads.len() != 8 || !plausible || pads[0] + pads[1] + pads[4] + pads[5] != 0 {
            return self.fail(
                n,
                format!("pads {pads:?} of a rank-{rank} tensor (convoy pads H and W of (N, C, H, W))"),
            );
        }
        let p = [pads[2] as usize, pads[3] as usize, pads[6] as usize, pads[7] as usize];
        if p == [0; 4] {
            return Ok(Val::Tensor(x));
        }
        if mode != "constant" {
            return self.fail(n, format!("{mode} padding (convoy pads with a constant)"));
        }
        let readers: Vec<&OnnxNode> = match n.outputs.first() {
            Some(o) => self.g.nodes.iter().filter(|r| r.inputs.first() == Some(o)).collect(),
            None => Vec::new(),
        };
        let absorbed = value == 0.0
            && !readers.is_empty()
            && readers
                .iter()
                .all(|r| r.op_type == "Conv" || r.op_type == "AveragePool")
            && Some(&self.g.output.0) != n.outputs.first();
        if absorbed {
            return Ok(Val::Padded { x, pads: p });
        }
        Ok(Val::Tensor(self.net.graph.pad2d(x, Pad2dArgs { pads: p, value })?))
    }

    fn gather(&mut self, n: &OnnxNode) -> Result<Val> {
        let (Some(data), Some(idx)) = (self.constant(n, 0), self.constant(n, 1)) else {
            return self.fail(n, "convoy gathers only from constants (shape arithmetic)");
        };
        if data.shape.len() != 1 || n.int("axis", 0) != 0 || idx.shape.len() > 1 {
            return self.fail(n, "convoy gathers along the one axis of a 1-D constant");
        }
        let len = data.shape[0] as i64;
        let mut picks = Vec::new();
        for &i in &as_i64(idx) {
            let j = if i < 0 { i + len } else { i };
            if !(0..len).contains(&j) {
                return self.fail(n, format!("index {i} of a {len}-element constant"));
            }
            picks.push(j as usize);
        }
        let shape = idx.shape.clone();
        Ok(Val::Const(Arc::new(match &data.data {
            HostData::I64(v) => ints(shape, picks.iter().map(|&j| v[j]).collect()),
            HostData::F32(v) => floats(shape, picks.iter().map(|&j| v[j]).collect()),
        })))
    }

    fn squeeze(&mut self, n: &OnnxNode) -> Result<Val> {
        let Some(t) = self.constant(n, 0).cloned() else {
            return self.fail(
                n,
                format!("convoy {}s only constants (shape arithmetic)", n.op_type.to_lowercase()),
            );
        };
        let axes = match n.ints("axes") {
            Some(a) => Some(a.to_vec()),
            None => self.ints_input(n, 1)?,
        };
        let mut shape = t.shape.clone();
        if n.op_type == "Unsqueeze" {
            let Some(axes) = axes else {
                return self.fail(n, "unsqueeze without axes");
            };
            let rank = (shape.len() + axes.len()) as i64;
            let mut axes: Vec<usize> = axes
                .iter()
                .map(|&a| if a < 0 { a + rank } else { a }.clamp(0, rank) as usize)
                .collect();
            axes.sort();
            for a in axes {
                shape.insert(a.min(shape.len()), 1);
            }
        } else {
            let rank = shape.len() as i64;
            let drop: Vec<usize> = match axes {
                Some(a) => a.iter().map(|&a| if a < 0 { a + rank } else { a } as usize).collect(),
                None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
            };
            if drop.iter().any(|&a| shape.get(a) != Some(&1)) {
                return self.fail(n, format!("squeezing axes {drop:?} of {shape:?}"));
            }
            shape = shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, &d)| d)
                .collect();
        }
        Ok(Val::Const(Arc::new(HostTensor {
            shape,
            data: t.data.clone(),
        })))
    }

    fn cast(&mut self, n: &OnnxNode) -> Result<Val> {
        let to = n.int("to", 1);
        let float = matches!(to, 1 | 10 | 11 | 16);
        match self.val(n, 0)?.clone() {
            Val::Const(t) => Ok(Val::Const(Arc::new(if float {
                floats(t.shape.clone(), as_f32(&t))
            } else {
                ints(t.shape.clone(), as_i64(&t))
            }))),
            Val::Tensor(v) if to == 1 => Ok(Val::Tensor(v)),
            _ => self.fail(
                n,
                format!("casting a tensor to ONNX type {to} (convoy computes in float)"),
            ),
        }
    }
}

fn ints(shape: Vec<usize>, v: Vec<i64>) -> HostTensor {
    HostTensor {
        shape,
        data: HostData::I64(v),
    }
}

fn floats(shape: Vec<usize>, v: Vec<f32>) -> HostTensor {
    HostTensor {
        shape,
        data: HostData::F32(v),
    }
}

fn as_i64(t: &HostTensor) -> Vec<i64> {
    match &t.data {
        HostData::I64(v) => v.clone(),
        HostData::F32(v) => v.iter().map(|&f| f as i64).collect(),
    }
}

fn as_f32(t: &HostTensor) -> Vec<f32> {
    match &t.data {
        HostData::I64(v) => v.iter().map(|&i| i as f32).collect(),
        HostData::F32(v) => v.clone(),
    }
}

/// Elementwise arithmetic of two constants of one shape (or one a scalar); None when the shapes
/// do not broadcast that simply or an integer division is by zero.
fn fold_arithmetic(op: &str, a: &HostTensor, b: &HostTensor) -> Option<HostTensor> {
    let (la, lb) = (a.shape.iter().product::<usize>(), b.shape.iter().product::<usize>());
    let shape = if a.shape == b.shape || lb == 1 {
        a.shape.clone()
    } else if la == 1 {
        b.shape.clone()
    } else {
        return None;
    };
    let len = la.max(lb);
    let at = |v: &[i64], i: usize| v[if v.len() == 1 { 0 } else { i }];
    let atf = |v: &[f32], i: usize| v[if v.len() == 1 { 0 } else { i }];
    match (&a.data, &b.data) {
        (HostData::I64(x), HostData::I64(y)) => {
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                let (p, q) = (at(x, i), at(y, i));
                out.push(match op {
                    "Add" => p.checked_add(q)?,
                    "Sub" => p.checked_sub(q)?,
                    "Mul" => p.checked_mul(q)?,
                    _ => p.checked_div(q)?,
                });
            }
            Some(ints(shape, out))
        }
        _ => {
            let (x, y) = (as_f32(a), as_f32(b));
            let out = (0..len)
                .map(|i| {
                    let (p, q) = (atf(&x, i), atf(&y, i));
                    match op {
                        "Add" => p + q,
                        "Sub" => p - q,
                        "Mul" => p * q,
                        _ => p / q,
                    }
                })
                .collect();
            Some(floats(shape, out))
        }
    }
}

/// The elements of `t` at the per-axis (start, step, count) `ranges`, in order.
fn slice_const(t: &HostTensor, ranges: &[(i64, i64, usize)]) -> HostTensor {
    let shape: Vec<usize> = ranges.iter().map(|r| r.2).collect();
    let numel: usize = shape.iter().product();
    let mut strides = vec![1usize; t.shape.len()];
    for a in (0..t.shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * t.shape[a + 1];
    }
    let source = |mut i: usize| -> usize {
        let mut at = 0;
        for a in (0..shape.len()).rev() {
            let k = (i % shape[a]) as i64;
            i /= shape[a];
            at += (ranges[a].0 + k * ranges[a].1) as usize * strides[a];
        }
        at
    };
    let data = match &t.data {
        HostData::I64(v) => HostData::I64((0..numel).map(|i| v[source(i)]).collect()),
        HostData::F32(v) => HostData::F32((0..numel).map(|i| v[source(i)]).collect()),
    };
    HostTensor { shape, data }
}

/// (rows, cols) row-major to (cols, rows).
pub(super) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = data[r * cols + c];
        }
    }
    t
}
