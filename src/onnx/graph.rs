//! An ONNX model's graph, checked and put in execution order: its initializers decoded, its one
//! image input and its output found, its nodes sorted so that each comes after the nodes it
//! reads (exporters and graph editors write them in any order). Nothing here knows convoy's
//! ops; `import` maps them.

use super::proto::{AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use super::tensor::{dims_of, to_host, ExternalData};
use crate::error::{Error, Result};
use crate::io::safetensors::HostTensor;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The default operator set's versions the importer reads (torch.onnx.export writes 9 to 18).
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=21;

/// One node, with its name for errors.
#[derive(Clone, Debug)]
pub struct OnnxNode {
    /// The node's name, or `<op_type> -> <first output>` when the file gives none.
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Input value names; "" is an optional input left out.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: Vec<AttributeProto>,
}

/// A graph ready to import.
#[derive(Clone, Debug)]
pub struct OnnxGraph {
    /// The version of the default operator set the model was written for.
    pub opset: i64,
    pub producer: String,
    /// The image input: its name and declared dims (None where the file names a dimension,
    /// e.g. `batch_size`, or gives none).
    pub input: (String, Vec<Option<usize>>),
    /// The output convoy computes (the first graph output), with its declared dims.
    pub output: (String, Vec<Option<usize>>),
    /// In execution order.
    pub nodes: Vec<OnnxNode>,
    pub initializers: BTreeMap<String, Arc<HostTensor>>,
}

impl OnnxNode {
    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map_or(default, |a| a.f)
    }

    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.attr(name)
            .map_or(default.to_string(), |a| String::from_utf8_lossy(&a.s).into_owned())
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorProto> {
        self.attr(name).and_then(|a| a.t.as_ref())
    }

    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Input `i`, when present and not left out ("").
    pub fn input(&self, i: usize) -> Option<&str> {
        self.inputs.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }
}

/// Declared dims of a graph input or output.
fn declared_dims(v: &ValueInfoProto) -> Vec<Option<usize>> {
    let Some(shape) = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
    else {
        return Vec::new();
    };
    shape
        .dim
        .iter()
        .map(|d| d.dim_value.and_then(|v| usize::try_from(v).ok()).filter(|&v| v > 0))
        .collect()
}

impl OnnxGraph {
    /// Decode and check a model's bytes; `source` names the file in errors.
    pub fn parse(bytes: &[u8], source: &str, external: &dyn ExternalData) -> Result<OnnxGraph> {
        let err = |why: String| Error::format(source, why);
        let model = ModelProto::decode(bytes).map_err(|e| err(format!("not an ONNX model (protobuf: {e})")))?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| err("the model imports no version of the default ONNX operator set".into()))?;
        if !OPSETS.contains(&opset) {
            return Err(err(format!(
                "opset {opset}: convoy reads opsets {} to {}",
                OPSETS.start(),
                OPSETS.end()
            )));
        }
        let graph = model.graph.ok_or_else(|| err("the model has no graph".into()))?;

        let mut initializers = BTreeMap::new();
        for t in &graph.initializer {
            if t.name.is_empty() {
                return Err(err("an initializer has no name".into()));
            }
            let what = format!("{source}: initializer '{}'", t.name);
            let host = to_host(t, &what, external)?;
            if initializers.insert(t.name.clone(), Arc::new(host)).is_some() {
                return Err(err(format!("initializer '{}' is defined twice", t.name)));
            }
        }

        // the image input: the graph input that is not an initializer (IR < 4 lists those too)
        let inputs: Vec<&ValueInfoProto> = graph
            .input
            .iter()
            .filter(|v| !initializers.contains_key(&v.name))
            .collect();
        let [input] = inputs.as_slice() else {
            let names: Vec<&str> = inputs.iter().map(|v| v.name.as_str()).collect();
            return Err(err(format!(
                "convoy runs models with one input (the images); this one has {}: {names:?}",
                names.len()
            )));
        };
        let output = graph
            .output
            .first()
            .ok_or_else(|| err("the graph has no output".into()))?;

        let nodes: Vec<OnnxNode> = graph.node.iter().enumerate().map(|(i, n)| node_of(i, n)).collect();
        let nodes = sort(nodes, &input.name, &initializers, source)?;
        let produced: std::collections::HashSet<&str> = nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(String::as_str))
            .collect();
        if !produced.contains(output.name.as_str()) {
            return Err(err(format!(
                "the graph output '{}' is produced by no node",
                output.name
            )));
        }
        // shapes of Constant nodes' values are checked like initializers' when imported
        for n in &nodes {
            if let Some(t) = n.tensor("value") {
                dims_of(t, &format!("{source}: node '{}'", n.name))?;
            }
        }
        Ok(OnnxGraph {
            opset,
            producer: format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string(),
            input: (input.name.clone(), declared_dims(input)),
            output: (output.name.clone(), declared_dims(output)),
            nodes,
            initializers,
        })
    }
}

fn node_of(i: usize, n: &NodeProto) -> OnnxNode {
    let name = if !n.name.is_empty() {
        n.name.clone()
    } else if let Some(o) = n.output.first() {
        format!("{} -> {o}", n.op_type)
    } else {
        format!("{} #{i}", n.op_type)
    };
    OnnxNode {
        name,
        op_type: n.op_type.clone(),
        domain: n.domain.clone(),
        inputs: n.input.clone(),
        outputs: n.output.clone(),
        attributes: n.attribute.clone(),
    }
}

/// Kahn's algorithm: each node after the producers of its inputs, in file order where free.
/// Refuses a value produced twice, an input nothing produces, and a cycle, naming the node.
fn sort(
    nodes: Vec<OnnxNode>,
    input: &str,
    initializers: &BTreeMap<String, Arc<HostTensor>>,
    source: &str,
) -> Result<Vec<OnnxNode>> {
    let err = |why: String| Error::format(source, why);
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.outputs.iter().filter(|o| !o.is_empty()) {
            if let Some(first) = producer.insert(o, i) {
                return Err(err(format!(
                    "nodes '{}' and '{}' both write '{o}'",
                    nodes[first].name, n.name
                )));
            }
            if o == input || initializers.contains_key(o) {
                return Err(err(format!(
                    "node '{}' writes '{o}', which is already defined (an input or initializer)",
                    n.name
                )));
            }
        }
    }
    let mut waiting = vec![0usize; nodes.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for v in n.inputs.iter().filter(|v| !v.is_empty()) {
            match producer.get(v.as_str()) {
                Some(&p) => {
                    waiting[i] += 1;
                    readers[p].push(i);
                }
                None if v == input || initializers.contains_key(v) => {}
                None => {
                    return Err(err(format!(
                        "node '{}' reads '{v}', which no node, initializer or input defines",
                        n.name
                    )))
                }
            }
        }
    }
    // a min-heap on the file position keeps the file's order among ready nodes
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..nodes.len())
        .filter(|&i| waiting[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(std::cmp::Reverse(r));
            }
        }
    }
    if order.len() < nodes.len() {
        // walk back from a node that never ran through producers that never ran: the walk
        // must come round, and the node it comes back to is on a cycle
        let mut at = (0..nodes.len()).find(|&i| waiting[i] > 0).expect("a node left");
        let mut seen = vec![false; nodes.len()];
        while !seen[at] {
            seen[at] = true;
            at = nodes[at]
                .inputs
                .iter()
                .filter_map(|v| producer.get(v.as_str()).copied())
                .find(|&p| waiting[p] > 0)
                .expect("a node that never ran waits on a producer that never ran");
        }
        return Err(err(format!(
            "the graph has a cycle through node '{}' ({} of {} nodes cannot run)",
            nodes[at].name,
            nodes.len() - order.len(),
            nodes.len()
        )));
    }
    let mut slots: Vec<Option<OnnxNode>> = nodes.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each node once"))
        .collect())
}
