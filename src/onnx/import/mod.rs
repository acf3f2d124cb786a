//! ONNX nodes to convoy's graph: `Importer::node` sends each ONNX op to its family's file,
//! which calls the builders of `ops/` (which infer and check shapes), so an imported model goes
//! through the same autodiff, fusion and memory planner as a zoo model. Initializers become
//! parameters (and batch-norm statistics become buffers) under their ONNX names, with the file's
//! values as their initial values. The integer shape arithmetic exporters emit around a reshape
//! (Shape, Gather, Unsqueeze, Concat, Constant, Cast, Slice, ...) is evaluated here, on the host.
//!
//! This file walks the graph and holds what every family reads: the values by name, the
//! initializers declared once, the errors that name the node. `patterns` finds, before the walk,
//! the multi-node spellings of one op; `host` is the constant arithmetic, with no importer state.

mod activation;
mod channels;
mod constants;
mod conv;
mod elementwise;
mod host;
mod linear;
mod pad;
mod patterns;
mod pool;
mod resize;
mod shape;

use super::graph::{OnnxGraph, OnnxNode};
use crate::error::{Error, Result};
use crate::graph::{Act, ValueId};
use crate::io::safetensors::{HostData, HostTensor};
use crate::nn::{Init, Net};
use crate::shape::Shape;
use host::{as_f32, as_i64};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(super) use host::transpose;

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

    /// One node, by op family (each in its own file).
    fn node(&mut self, index: usize, n: &OnnxNode) -> Result<()> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return self.fail(n, format!("ops of domain '{}' are not supported", n.domain));
        }
        let out = match n.op_type.as_str() {
            "Identity" => self.val(n, 0)?.clone(),
            "Constant" => Val::Const(Arc::new(self.constant_node(n)?)),
            "Conv" => self.conv(n)?,
            "BatchNormalization" => self.batch_norm(n)?,
            "Relu" | "LeakyRelu" | "Sigmoid" | "HardSwish" | "HardSigmoid" | "Gelu" | "Clip" | "Erf" => {
                self.activation(n)?
            }
            // before the arithmetic arm: the Mul of x * sigmoid(x) and its kin
            "Mul" if self.fused.contains_key(&index) => self.fused(index, n)?,
            "Add" | "Sub" | "Mul" | "Div" => self.arithmetic(n)?,
            "Concat" => self.concat(n)?,
            // the one op with several outputs: it sets them itself
            "Split" => return self.split(n),
            "Slice" => self.slice(n)?,
            "MaxPool" | "AveragePool" => self.pool(n)?,
            "GlobalAveragePool" => self.global_average_pool(n)?,
            "ReduceMean" => self.reduce_mean(n)?,
            "Gemm" | "MatMul" => self.linear(index, n)?,
            "Flatten" => self.flatten(n)?,
            "Reshape" => self.reshape(n)?,
            "Transpose" => self.transpose(n)?,
            "Dropout" => self.dropout(n)?,
            "Resize" | "Upsample" => self.resize(n)?,
            "Pad" => self.pad(n)?,
            "Softmax" => self.softmax(n)?,
            "Shape" => self.shape_of(n)?,
            "Gather" => self.gather(n)?,
            "Unsqueeze" | "Squeeze" => self.squeeze(n)?,
            "Cast" => self.cast(n)?,
            "ConstantOfShape" => self.constant_of_shape(n)?,
            other => return self.fail(n, format!("convoy cannot run the ONNX op {other}")),
        };
        self.set(n, out);
        Ok(())
    }
}
