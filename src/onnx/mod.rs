//! ONNX import: the CNNs people export from PyTorch (`torch.onnx.export`, opset 7 to 21) as
//! convoy models. `OnnxModel` is a `nn::Model` like the zoo's, so an imported model runs, trains
//! (autodiff, fusion, the memory planner), fine-tunes with a new head and saves checkpoints
//! through the same code; its tensors keep their ONNX initializer names.
//!
//! - `proto`: the schema, decoded by `prost`.
//! - `tensor`: initializers to host tensors, sizes checked before allocation, external data.
//! - `graph`: the model checked and its nodes sorted into execution order.
//! - `import`: ONNX ops to convoy's graph builders, one file per op family or pattern.

mod graph;
mod import;
pub mod proto;
mod tensor;

pub use graph::{OnnxGraph, OnnxNode, OPSETS};
pub use import::SUPPORTED_OPS;
pub use tensor::{ExternalData, NoExternalData};

use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::io::safetensors::{HostData, HostTensor};
use crate::nn::{Model, Net};
use import::{Importer, NewHead};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// An imported model.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    graph: Arc<OnnxGraph>,
    source: String,
    head: Option<NewHead>,
    /// Output classes: the last dimension of the output for the declared input (or the new head's).
    classes: usize,
}

/// External data from files in the model's folder.
#[cfg(not(target_arch = "wasm32"))]
struct FolderData(std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl ExternalData for FolderData {
    fn read(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Vec<u8>> {
        crate::io::read_range_inside(&self.0, location, offset, length)
    }
}

impl OnnxModel {
    /// Read a `.onnx` file, with external data from its folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<OnnxModel> {
        let path = path.as_ref();
        let bytes = crate::io::read_file(path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        Self::from_bytes(&bytes, &path.display().to_string(), &FolderData(dir.to_path_buf()))
    }

    /// Parse a model from bytes; `source` names it in errors.
    pub fn from_bytes(bytes: &[u8], source: &str, external: &dyn ExternalData) -> Result<OnnxModel> {
        let graph = OnnxGraph::parse(bytes, source, external)?;
        let mut m = OnnxModel {
            graph: Arc::new(graph),
            source: source.to_string(),
            head: None,
            classes: 0,
        };
        m.classes = m.output_classes();
        Ok(m)
    }

    pub fn graph(&self) -> &OnnxGraph {
        &self.graph
    }

    /// The input shape the file declares, with `batch` (and 224 for any unnamed spatial size,
    /// 3 for unnamed channels) where it names none.
    pub fn input_shape(&self, batch: usize) -> [usize; 4] {
        let d = &self.graph.input.1;
        let get = |i: usize, default: usize| d.get(i).copied().flatten().unwrap_or(default);
        [batch, get(1, 3), get(2, 224), get(3, 224)]
    }

    /// The last dimension of the output: declared, else found by importing for the declared
    /// input; 0 when neither tells.
    fn output_classes(&self) -> usize {
        if let Some(Some(k)) = self.graph.output.1.last() {
            return *k;
        }
        let mut net = Net::new(false);
        let x = net.graph.input("x", self.input_shape(1));
        match Importer::new(&mut net, &self.graph, &self.source, None).run(x) {
            Ok(y) => net.graph.shape(y).dims().last().copied().unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Replace the classifier (the last Gemm or MatMul) by a freshly initialised one with
    /// `classes` outputs, for transfer learning. It keeps the old tensor names where they share
    /// a prefix no other tensor has (`fc.`), which is how the Learner tells the head from the
    /// body; otherwise it is named `head.weight` / `head.bias`.
    pub fn with_new_head(mut self, classes: usize) -> Result<OnnxModel> {
        let node = self
            .classifier()
            .ok_or_else(|| Error::format(&self.source, "the model has no Gemm or MatMul classifier to replace"))?;
        if classes == 0 {
            return Err(Error::arg("onnx", "num_classes", "must be at least 1"));
        }
        let old = self.head_tensors();
        let names = if self.own_prefix(&old).is_some() {
            old
        } else {
            let bias = old.len() > 1;
            ["head.weight", "head.bias"][..1 + usize::from(bias)]
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        self.head = Some(NewHead { node, classes, names });
        self.classes = classes;
        Ok(self)
    }

    /// The classifier: the last Gemm or MatMul, by node index.
    fn classifier(&self) -> Option<usize> {
        self.graph
            .nodes
            .iter()
            .rposition(|n| n.op_type == "Gemm" || n.op_type == "MatMul")
    }

    /// Names of the classifier's tensors (weight, and bias if any): the new head's, or the
    /// initializers the last Gemm / MatMul reads.
    fn head_tensors(&self) -> Vec<String> {
        if let Some(h) = &self.head {
            return h.names.clone();
        }
        let Some(n) = self.classifier().map(|i| &self.graph.nodes[i]) else {
            return Vec::new();
        };
        n.inputs.iter().skip(1).filter(|s| !s.is_empty()).cloned().collect()
    }

    /// The longest prefix `names` share, when it is not empty and no other initializer has it.
    fn own_prefix(&self, names: &[String]) -> Option<String> {
        let mut prefix = names.first()?.clone();
        for n in &names[1..] {
            while !n.starts_with(&prefix) {
                prefix.pop();
            }
        }
        let others = self.graph.initializers.keys().filter(|k| !names.contains(k));
        (!prefix.is_empty() && !others.into_iter().any(|k| k.starts_with(&prefix))).then_some(prefix)
    }

    /// Initializers that convoy stores transposed: the (in, out) weights of MatMul and of Gemm
    /// without transB, which convoy's linear layer holds as (out, in).
    pub fn transposed_weights(&self) -> Vec<String> {
        self.graph
            .nodes
            .iter()
            .filter(|n| n.op_type == "MatMul" || (n.op_type == "Gemm" && n.int("transB", 0) == 0))
            .filter_map(|n| n.inputs.get(1).cloned())
            .filter(|w| self.graph.initializers.contains_key(w))
            .collect()
    }

    /// Tensors in the ONNX file's layout, from convoy's: the transposed weights turned back, so
    /// a trained model saves under its initializer names with the shapes the file declares.
    pub fn to_onnx_layout(&self, tensors: &mut BTreeMap<String, HostTensor>) {
        self.transpose_weights(tensors)
    }

    /// The inverse of `to_onnx_layout`: a checkpoint saved in the file's layout, in convoy's.
    pub fn to_convoy_layout(&self, tensors: &mut BTreeMap<String, HostTensor>) {
        self.transpose_weights(tensors)
    }

    fn transpose_weights(&self, tensors: &mut BTreeMap<String, HostTensor>) {
        for name in self.transposed_weights() {
            if let Some(HostTensor {
                shape,
                data: HostData::F32(d),
            }) = tensors.get_mut(&name)
            {
                if let [rows, cols] = shape[..] {
                    *d = import::transpose(d, rows, cols);
                    *shape = vec![cols, rows];
                }
            }
        }
    }

    /// A report for `convoy onnx-info`: the model, its ops (those convoy cannot run named),
    /// and the import for an input of `shape`: its output, or the first node that fails; with
    /// `nodes`, every node in execution order with its outputs' shapes. The flag: whether it
    /// imports.
    pub fn describe(&self, shape: [usize; 4], nodes: bool) -> (String, bool) {
        let g = &self.graph;
        let mut s = String::new();
        let producer = if g.producer.is_empty() { "?" } else { &g.producer };
        let _ = writeln!(s, "{}: opset {}, produced by {producer}", self.source, g.opset);
        let dims = |d: &[Option<usize>]| {
            d.iter()
                .map(|v| v.map_or("?".into(), |v| v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(s, "input  {} [{}]", g.input.0, dims(&g.input.1));
        let _ = writeln!(s, "output {} [{}]", g.output.0, dims(&g.output.1));
        let params: usize = g.initializers.values().map(|t| t.shape.iter().product::<usize>()).sum();
        let _ = writeln!(
            s,
            "{} nodes, {} initializers ({params} values)",
            g.nodes.len(),
            g.initializers.len()
        );
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &g.nodes {
            *counts.entry(n.op_type.as_str()).or_default() += 1;
        }
        let unsupported: Vec<&str> = counts
            .keys()
            .copied()
            .filter(|op| !SUPPORTED_OPS.contains(op))
            .collect();
        let _ = writeln!(s, "ops:");
        for (op, c) in &counts {
            let mark = if SUPPORTED_OPS.contains(op) {
                ""
            } else {
                "  <- convoy cannot run this op"
            };
            let _ = writeln!(s, "  {op:<20} {c:>4}{mark}");
        }
        let mut net = Net::new(false);
        let x = net.graph.input("x", shape);
        let (result, described) = Importer::new(&mut net, g, &self.source, None).run_described(x);
        if nodes {
            let _ = writeln!(s, "nodes (outputs' shapes for input {shape:?}):");
            for n in &g.nodes {
                let outs: Vec<String> = n
                    .outputs
                    .iter()
                    .map(|o| format!("{o} {}", described.get(o).map_or("-", String::as_str)))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {:<18} {} ({}) -> {}",
                    n.op_type,
                    n.name,
                    n.inputs.join(", "),
                    outs.join(", ")
                );
            }
        }
        let runs = result.is_ok();
        match result {
            Ok(y) => {
                let _ = writeln!(
                    s,
                    "imported for input {shape:?}: output {}, {} convoy nodes",
                    net.graph.shape(y),
                    net.graph.nodes.len()
                );
            }
            Err(e) => {
                let _ = writeln!(s, "convoy cannot import it for input {shape:?}: {e}");
            }
        }
        if !unsupported.is_empty() {
            let _ = writeln!(s, "unsupported ops: {}", unsupported.join(", "));
        }
        (s, runs)
    }
}

impl Model for OnnxModel {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        Importer::new(net, &self.graph, &self.source, self.head.as_ref()).run(x)
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    /// The classifier's tensors' own prefix (`fc.` for a torchvision export, `head.` for a
    /// new head whose old names share none); the weight's name where there is none.
    fn head_prefix(&self) -> String {
        let names = self.head_tensors();
        self.own_prefix(&names)
            .or_else(|| names.first().cloned())
            .unwrap_or_default()
    }
}

impl Net {
    /// The graph of an ONNX model for images of `shape` (N, C, H, W), its initializers declared
    /// as the net's parameters (their values the initial ones: `Net::init_params` fills a
    /// store with them); returns the net with the input value `x` and the model's output.
    /// `OnnxModel` is the same model as an `nn::Model` (the `Learner`'s and the CLI's).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_onnx(path: impl AsRef<std::path::Path>, shape: [usize; 4], training: bool) -> Result<(Net, ValueId)> {
        let model = OnnxModel::load(path)?;
        let mut net = Net::new(training);
        let x = net.graph.input("x", shape);
        let y = model.forward(&mut net, x)?;
        Ok((net, y))
    }
}
