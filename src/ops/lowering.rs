//! The lowering context: what every family's `lower` reads while a plan is compiled (the GPU,
//! the graph, the buffer of each value, the optimizer's hyperparameters) and the hooks that
//! see the nodes go by. The executor builds one per plan (`ops::lowering_context`) and hands it
//! to each node's family in execution order.

use crate::device::{Dispatch, Gpu};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::conv::texture::KeptOperands;
use crate::shape::{DType, Shape};
use std::rc::Rc;

/// Something a family keeps while a plan's nodes are lowered, told about every node in the
/// order the plan runs them: `before` with the buffers the node writes, `after` with the
/// dispatches it lowered to. Prologue dispatches (values derived from the parameters, which run
/// apart from the plan's order) are not shown to `after`.
pub trait LowerHook {
    /// The node about to be lowered writes `outputs`.
    fn before(&self, outputs: &[&wgpu::Buffer]);
    /// The node's dispatches, as the plan runs them.
    fn after(&self, dispatches: &[Dispatch]);
}

/// One plan's lowering: shared, read-only, by every family's `lower` (the hooks keep their own
/// interior state).
pub struct LowerCtx<'a> {
    pub gpu: &'a Gpu,
    pub graph: &'a Graph,
    /// The buffer of each value (views share their base's; None for values nothing reads).
    buffers: &'a [Option<wgpu::Buffer>],
    /// The optimizer's hyperparameters, one block per parameter group (training plans).
    pub hyper: Option<&'a wgpu::Buffer>,
    /// The cpu family's packings kept from a conv's forward to its weight gradient, installed
    /// with its hook by `ops::conv::install`; the conv lowering reads it.
    pub kept: Option<Rc<KeptOperands>>,
    hooks: Vec<Rc<dyn LowerHook>>,
}

impl<'a> LowerCtx<'a> {
    /// A context without hooks; `ops::lowering_context` installs the families' hooks.
    pub fn new(
        gpu: &'a Gpu,
        graph: &'a Graph,
        buffers: &'a [Option<wgpu::Buffer>],
        hyper: Option<&'a wgpu::Buffer>,
    ) -> LowerCtx<'a> {
        LowerCtx {
            gpu,
            graph,
            buffers,
            hyper,
            kept: None,
            hooks: Vec::new(),
        }
    }

    /// Run `hook` around every node lowered from here on.
    pub fn add_hook(&mut self, hook: Rc<dyn LowerHook>) {
        self.hooks.push(hook);
    }

    /// The buffer of value `v`.
    pub fn buffer(&self, v: ValueId) -> wgpu::Buffer {
        self.buffers[v.0]
            .clone()
            .expect("every value read by a node has a buffer")
    }

    /// The buffer of `n`'s `k`-th input.
    pub fn input(&self, n: &Node, k: usize) -> wgpu::Buffer {
        self.buffer(n.inputs[k])
    }

    /// The buffer of `n`'s `k`-th output.
    pub fn output(&self, n: &Node, k: usize) -> wgpu::Buffer {
        self.buffer(n.outputs[k])
    }

    pub fn in_shape(&self, n: &Node, k: usize) -> &'a Shape {
        self.graph.shape(n.inputs[k])
    }

    pub fn out_shape(&self, n: &Node, k: usize) -> &'a Shape {
        self.graph.shape(n.outputs[k])
    }

    /// How `n`'s activations are stored: its first output's dtype (f32, or f16 after
    /// `passes::precision`).
    pub fn storage(&self, n: &Node) -> DType {
        n.outputs.first().map_or(DType::F32, |&v| self.graph.value(v).dtype)
    }

    /// Whether `n`'s inputs all hold values f16 represents exactly (see `half_exact`): the
    /// operands of mixed precision's conv backward passes, which their kernels may then stage
    /// as f16 (`DType::F16`); else `DType::F32`.
    pub fn operands(&self, n: &Node) -> DType {
        match n.inputs.iter().all(|&v| half_exact(self.graph, v)) {
            true => DType::F16,
            false => DType::F32,
        }
    }

    /// Tell the hooks that `n` is about to be lowered.
    pub fn before(&self, n: &Node) {
        if self.hooks.is_empty() {
            return;
        }
        let outputs: Vec<&wgpu::Buffer> = n.outputs.iter().filter_map(|o| self.buffers[o.0].as_ref()).collect();
        for h in &self.hooks {
            h.before(&outputs);
        }
    }

    /// Tell the hooks what the node just lowered dispatches, in the plan's order.
    pub fn after(&self, dispatches: &[Dispatch]) {
        for h in &self.hooks {
            h.after(dispatches);
        }
    }
}

/// Whether value `v` of `g` holds values f16 represents exactly: stored as f16, an f16 rounding
/// (`Op::RoundHalf`: mixed precision's weight copies and the gradients of its f16 activations),
/// or an f32 cast or view of such a value.
pub fn half_exact(g: &Graph, v: ValueId) -> bool {
    let value = g.value(v);
    if value.dtype == DType::F16 {
        return true;
    }
    let Some(p) = value.producer else {
        return false;
    };
    let n = g.node(p);
    match n.op {
        Op::RoundHalf => true,
        Op::Cast | Op::Reshape => n.inputs.first().is_some_and(|&u| half_exact(g, u)),
        _ => false,
    }
}
