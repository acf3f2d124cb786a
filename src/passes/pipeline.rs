//! The pass lists, written once: what runs between a model's forward graph and the plan, in
//! order, for a training step and for inference. The graph is verified after each pass.
//!
//! - training: `fuse` (`Mode::Train`), `autodiff::backward`, `optimizer::append_updates`;
//!   in mixed precision `precision::mixed_forward` before autodiff and `precision::mixed_casts`
//!   after the updates;
//! - inference: `fuse` (`Mode::Infer`), `precision::half_activations` (f16 storage).
//!
//! The plan then verifies once more and plans memory (`passes::memory`, in `Plan::compile`).

use super::autodiff::{self, Grads};
use super::fuse;
use super::optimizer::{self, Optimizer};
use super::precision::{self, Precision};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};

/// The optimizer and its parameter groups (as `torch.optim`'s param_groups): parameter `name`
/// is in group `group_of(name)`, an index into `lr_mults`, the learning-rate multiplier of each
/// group (discriminative learning rates).
pub struct ParamGroups<'a> {
    pub optimizer: Optimizer,
    pub group_of: &'a dyn Fn(&str) -> usize,
    pub lr_mults: Vec<f32>,
}

fn first_group(_: &str) -> usize {
    0
}

impl ParamGroups<'static> {
    /// Every parameter in one group, at the optimizer's learning rate.
    pub fn single(optimizer: Optimizer) -> ParamGroups<'static> {
        ParamGroups {
            optimizer,
            group_of: &first_group,
            lr_mults: vec![1.0],
        }
    }
}

impl ParamGroups<'_> {
    /// Every parameter with a gradient has a group with a multiplier.
    fn check(&self, g: &Graph, grads: &Grads) -> Result<()> {
        let bad = grads
            .keys()
            .map(|p| (self.group_of)(&g.value(*p).name))
            .find(|&k| k >= self.lr_mults.len());
        match bad {
            Some(k) => Err(Error::arg(
                "TrainStep",
                "parameter groups",
                format!("group {k} has no learning-rate multiplier"),
            )),
            None => Ok(()),
        }
    }
}

/// The passes of a training step on `graph`, the forward graph in training mode ending in
/// `loss`: fusion (when `fusion`), the backward graph, the optimizer's updates, in `precision`
/// (mixed: see `passes::precision`). Returns the graph and the values to read back in it: the
/// loss first, then the other `readable` ones.
pub fn training(
    graph: Graph,
    loss: ValueId,
    readable: &[ValueId],
    fusion: bool,
    groups: &ParamGroups,
    precision: Precision,
) -> Result<(Graph, Vec<ValueId>)> {
    let mut keep = vec![loss];
    keep.extend(readable);
    let (mut graph, map) = fused(graph, fuse::Mode::Train, &keep, fusion)?;
    let at = |v: ValueId| map[v.0].expect("kept values survive fusion");
    let loss = at(loss);
    let mixed = precision == Precision::Mixed;
    if mixed {
        graph = precision::mixed_forward(&graph);
        graph.verify()?;
    }
    let forward = graph.nodes.len();
    let scaler = mixed.then(|| precision::loss_scaler(&mut graph));
    let grads = autodiff::backward_scaled(&mut graph, loss, scaler)?;
    graph.verify()?;
    groups.check(&graph, &grads)?;
    optimizer::append_updates(&mut graph, &grads, groups.optimizer.rule(), groups.group_of, scaler)?;
    graph.verify()?;
    let mut read = vec![loss];
    read.extend(readable.iter().map(|&v| at(v)).filter(|&v| v != loss));
    if mixed {
        let (cast, read) = precision::mixed_casts(&graph, forward, &read);
        cast.verify()?;
        return Ok((cast, read));
    }
    Ok((graph, read))
}

/// The passes of an inference plan on `graph`: fusion (when `fusion`), then f16 activation
/// storage (when `f16`; the caller checks the adapter has it). Returns the graph and, for each
/// of `outputs`, the value to read in it.
pub fn inference(graph: Graph, outputs: &[ValueId], fusion: bool, f16: bool) -> Result<(Graph, Vec<ValueId>)> {
    let (graph, map) = fused(graph, fuse::Mode::Infer, outputs, fusion)?;
    let outputs: Vec<ValueId> = outputs
        .iter()
        .map(|v| map[v.0].expect("kept values survive fusion"))
        .collect();
    if !f16 {
        return Ok((graph, outputs));
    }
    let (graph, outputs) = precision::half_activations(&graph, &outputs);
    graph.verify()?;
    Ok((graph, outputs))
}

/// `g` fused for `mode` (or as it is, when `fusion` is off), and for every old value its value
/// in the new graph.
fn fused(g: Graph, mode: fuse::Mode, keep: &[ValueId], fusion: bool) -> Result<(Graph, Vec<Option<ValueId>>)> {
    if !fusion {
        let n = g.values.len();
        return Ok((g, (0..n).map(|i| Some(ValueId(i))).collect()));
    }
    let (fused, map) = fuse::fuse(&g, mode, keep);
    if crate::device::debug_level() >= 1 {
        eprintln!(
            "convoy: fusion ({mode:?}): {} nodes -> {}",
            g.nodes.len(),
            fused.nodes.len()
        );
    }
    fused.verify()?;
    Ok((fused, map))
}
