//! The graph IR: values with shapes and kinds, nodes holding an `Op`, kept in a valid execution
//! order (a node only reads values defined before it). Builders in `builder.rs` infer shapes.

mod builder;
mod op;

pub use op::{Act, Epilogue, Op};

use crate::error::{Error, Result};
use crate::shape::{DType, Shape};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// What a value is, which decides where its buffer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Written by the host before each run (images, labels).
    Input,
    /// A learned tensor, resident on the GPU; `trainable: false` is frozen (no grad, no update).
    Param { trainable: bool },
    /// Resident non-learned state: batch-norm running statistics, optimizer moments.
    State,
    /// Produced by a node; its buffer comes from the memory planner.
    Temp,
    /// Computed from resident values by the plan's prologue (folded weights), kept in a buffer
    /// of the plan's own, and recomputed only when the parameters change.
    Derived,
}

impl ValueKind {
    /// Lives across runs in a buffer of its own (named in the parameter store).
    pub fn is_resident(self) -> bool {
        matches!(self, ValueKind::Param { .. } | ValueKind::State)
    }
}

#[derive(Clone, Debug)]
pub struct Value {
    pub name: String,
    pub shape: Shape,
    pub dtype: DType,
    pub kind: ValueKind,
    pub producer: Option<NodeId>,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.0]
    }
    pub fn shape(&self, v: ValueId) -> &Shape {
        &self.values[v.0].shape
    }
    pub fn node(&self, n: NodeId) -> &Node {
        &self.nodes[n.0]
    }

    /// The value with this name, if any (names of inputs and resident values are unique).
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.values.iter().position(|v| v.name == name).map(ValueId)
    }

    pub(crate) fn add_value(
        &mut self,
        name: impl Into<String>,
        shape: Shape,
        dtype: DType,
        kind: ValueKind,
    ) -> ValueId {
        self.values.push(Value {
            name: name.into(),
            shape,
            dtype,
            kind,
            producer: None,
        });
        ValueId(self.values.len() - 1)
    }

    /// Append a node whose outputs have the given shapes; returns the output ids.
    pub(crate) fn add_node(&mut self, op: Op, inputs: Vec<ValueId>, outs: Vec<(Shape, DType)>) -> Vec<ValueId> {
        let id = NodeId(self.nodes.len());
        let base = self.values.len();
        let outputs: Vec<ValueId> = outs
            .into_iter()
            .enumerate()
            .map(|(i, (shape, dtype))| {
                let v = self.add_value(format!("{}{}.{i}", op.name(), id.0), shape, dtype, ValueKind::Temp);
                self.values[v.0].producer = Some(id);
                v
            })
            .collect();
        debug_assert_eq!(outputs.first().map_or(base, |v| v.0), base);
        self.nodes.push(Node {
            op,
            inputs,
            outputs: outputs.clone(),
        });
        outputs
    }

    /// Append a node with one f32 output of `shape`; returns it.
    pub(crate) fn add_f32(&mut self, op: Op, inputs: Vec<ValueId>, shape: Shape) -> ValueId {
        self.add_node(op, inputs, vec![(shape, DType::F32)])[0]
    }

    /// Check the invariants every pass must keep: inputs defined before use, each value
    /// produced at most once and by the node that lists it, resident values never produced.
    pub fn verify(&self) -> Result<()> {
        let mut defined: Vec<bool> = self.values.iter().map(|v| v.producer.is_none()).collect();
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                if v.0 >= self.values.len() || !defined[v.0] {
                    return Err(self.invalid(i, format!("reads value {} before it is defined", v.0)));
                }
            }
            for &v in &n.outputs {
                let val = &self.values[v.0];
                if val.producer != Some(NodeId(i))
                    || defined[v.0]
                    || val.kind.is_resident()
                    || val.kind == ValueKind::Input
                {
                    return Err(self.invalid(i, format!("bad output value {} ({})", v.0, val.name)));
                }
                defined[v.0] = true;
            }
        }
        Ok(())
    }

    fn invalid(&self, node: usize, why: String) -> Error {
        Error::Shape {
            op: format!("graph node {node} ({})", self.nodes[node].op.name()),
            expected: "a valid graph".into(),
            got: why,
        }
    }

    /// A readable listing, one node a line (CONVOY_DEBUG=3).
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let ins: Vec<String> = n
                .inputs
                .iter()
                .map(|v| format!("{}{}", self.values[v.0].name, self.shape(*v)))
                .collect();
            let outs: Vec<String> = n
                .outputs
                .iter()
                .map(|v| format!("%{}{}", v.0, self.shape(*v)))
                .collect();
            let _ = writeln!(s, "{i:4} {:?} ({}) -> {}", n.op, ins.join(", "), outs.join(", "));
        }
        s
    }

    /// The value whose buffer `v` uses: itself, or the base of a chain of reshapes.
    pub fn view_base(&self, mut v: ValueId) -> ValueId {
        while let Some(p) = self.value(v).producer {
            let n = self.node(p);
            if n.op != Op::Reshape {
                break;
            }
            v = n.inputs[0];
        }
        v
    }

    /// The parameters the graph's optimizer updates write (in place: their first input).
    pub fn updated_params(&self) -> std::collections::HashSet<ValueId> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::SgdStep { .. } | Op::AdamWStep { .. }))
            .map(|n| n.inputs[0])
            .collect()
    }

    /// For each value, the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut c = vec![Vec::new(); self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                c[v.0].push(NodeId(i));
            }
        }
        c
    }
}
