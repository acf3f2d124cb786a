//! The phases of compiling a plan (`Plan::compile_dist`), each on its own: give every value a
//! buffer (`allocate`), lower the nodes in order through the lowering context (`lower_nodes`),
//! place the data-parallel all-reduces (`all_reduce_points`), lay out the readback
//! (`readback`), and count what the plan holds (`plan_stats`).

use super::host_sync::{gradient_buckets, PlanDist, Reduce};
use super::lower::{lower, optimizer_steps, update_kind};
use crate::device::{debug_level, Dispatch, Gpu};
use crate::error::Result;
use crate::graph::{Graph, ValueId, ValueKind};
use crate::ops::LowerCtx;
use crate::passes::memory::{self, MemoryPlan};
use crate::store::ParamStore;
use crate::tensor::{DType, Tensor};
use std::collections::BTreeMap;

/// What a compiled plan holds, for tests, `CONVOY_DEBUG` and the benchmarks.
#[derive(Clone, Debug, Default)]
pub struct PlanStats {
    pub nodes: usize,
    pub dispatches: usize,
    /// Of `dispatches`, those that pack a conv input into an operand texture (the CPU
    /// family's texture kernels: one before each such conv pass).
    pub packs: usize,
    /// Of `dispatches`, the second passes of conv forwards split over K (the gpu family's
    /// small grids: one conv2d_split_k_epilogue after each such forward).
    pub split_passes: usize,
    /// Buffers for temporaries after memory planning, and their bytes.
    pub temp_buffers: usize,
    pub temp_bytes: u64,
    /// Bytes the temporaries would take with one buffer each (no reuse).
    pub temp_bytes_unplanned: u64,
    /// The most bytes of temporaries alive at once (at any node): what a perfect planner would
    /// need, the floor under `temp_bytes`.
    pub live_peak_bytes: u64,
    /// Dispatches of the prologue, which derives values from the parameters before the first
    /// run and again only after they change (folding batch norms, packing constant weights).
    pub prologue: usize,
    /// Bytes of values derived from the parameters and kept by the plan (folded weights, and
    /// on the cpu family the constant weights packed into textures).
    pub derived_bytes: u64,
    pub pipelines: usize,
}

/// Every value's buffer, as `allocate` gives them.
pub(super) struct Buffers {
    /// By value: resident values the store's, inputs and derived values their own, temporaries
    /// their memory slot's (views their base's); None for values nothing reads.
    pub(super) values: Vec<Option<wgpu::Buffer>>,
    pub(super) inputs: BTreeMap<String, ValueId>,
    /// Buffers made for the temporaries' slots.
    slots: usize,
    /// Bytes the temporaries would take with one buffer each.
    unplanned: u64,
}

const VALUE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// One buffer per slot of the memory plan.
fn temp_slots(gpu: &Gpu, device: &wgpu::Device, graph: &Graph, memory: &MemoryPlan) -> Result<Vec<wgpu::Buffer>> {
    memory
        .slot_bytes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            // name the largest value of the slot: that is the tensor that does not fit
            let what = (0..graph.values.len())
                .filter(|&v| memory.slot_of[v] == Some(i))
                .max_by_key(|&v| graph.values[v].shape.numel())
                .map_or_else(
                    || format!("temporary buffer {i}"),
                    |v| format!("value '{}' of shape {}", graph.values[v].name, graph.values[v].shape),
                );
            gpu.check_binding(&what, size)?;
            Ok(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("convoy temp"),
                size,
                usage: VALUE_USAGE,
                mapped_at_creation: false,
            }))
        })
        .collect()
}

/// Give every value its buffer: parameters and state from `store` (optimizer state created
/// there, zero-filled, when missing), inputs and derived values their own, temporaries their
/// slot.
pub(super) fn allocate(
    gpu: &Gpu,
    device: &wgpu::Device,
    graph: &Graph,
    memory: &MemoryPlan,
    store: &mut ParamStore,
) -> Result<Buffers> {
    let slots = temp_slots(gpu, device, graph, memory)?;
    let mut values: Vec<Option<wgpu::Buffer>> = vec![None; graph.values.len()];
    let mut inputs = BTreeMap::new();
    let mut unplanned = 0u64;
    for (i, v) in graph.values.iter().enumerate() {
        let b = match v.kind {
            ValueKind::Param { .. } => Some(store.expect(&v.name, &v.shape)?.buffer().clone()),
            ValueKind::State => Some(store.get_or_zeros(gpu, &v.name, &v.shape)?.buffer().clone()),
            ValueKind::Input => {
                inputs.insert(v.name.clone(), ValueId(i));
                let t = match v.dtype {
                    DType::I32 => Tensor::from_i32(gpu, &vec![0; v.shape.numel()], v.shape.clone())?,
                    _ => Tensor::zeros(gpu, v.shape.clone())?,
                };
                Some(t.buffer().clone())
            }
            ValueKind::Derived => {
                let size = ((v.shape.numel() * v.dtype.size()) as u64).div_ceil(4).max(1) * 4;
                gpu.check_binding(&format!("value '{}' of shape {}", v.name, v.shape), size)?;
                Some(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("convoy derived"),
                    size,
                    usage: VALUE_USAGE,
                    mapped_at_creation: false,
                }))
            }
            ValueKind::Temp => {
                if memory.slot_of[i].is_some() && memory::base_of(graph, ValueId(i)).0 == i {
                    unplanned += (v.shape.numel() * v.dtype.size()) as u64;
                }
                memory.slot_of[i].map(|s| slots[s].clone())
            }
        };
        values[i] = b;
    }
    Ok(Buffers {
        values,
        inputs,
        slots: slots.len(),
        unplanned,
    })
}

/// The graph's nodes lowered in order.
pub(super) struct Lowered {
    pub(super) dispatches: Vec<Dispatch>,
    /// Dispatches of the nodes that derive values from the parameters.
    pub(super) prologue: Vec<Dispatch>,
    /// For each node, the number of dispatches up to its end: where its outputs exist.
    pub(super) node_end: Vec<usize>,
    /// Bytes of the textures holding the plan's constant weights packed (the cpu family).
    pub(super) packed_weight_bytes: u64,
    /// The prologue reads no parameter the plan's optimizer updates: the weights packed there
    /// are those no node writes, and no node deriving a value reads an updated one.
    pub(super) prologue_outlives_steps: bool,
}

/// Lower every node through its family (`lower`), the context's hooks around each. With
/// `dist` and sync-BN, training batch norms are split around a blocking host point.
pub(super) fn lower_nodes(ctx: &LowerCtx, device: &wgpu::Device, mut dist: Option<&mut PlanDist>) -> Result<Lowered> {
    let graph = ctx.graph;
    let mut out = Lowered {
        dispatches: Vec::new(),
        prologue: Vec::new(),
        node_end: Vec::with_capacity(graph.nodes.len()),
        packed_weight_bytes: 0,
        prologue_outlives_steps: true,
    };
    let updated = graph.updated_params();
    let mut at = 0;
    while at < graph.nodes.len() {
        let n = &graph.nodes[at];
        // a run of optimizer updates of one rule: all of them in a few dispatches
        if let Some(kind) = update_kind(&n.op) {
            let run: Vec<&crate::graph::Node> = graph.nodes[at..]
                .iter()
                .take_while(|m| update_kind(&m.op) == Some(kind))
                .collect();
            run.iter().for_each(|m| ctx.before(m));
            let d = optimizer_steps(ctx, &run)?;
            ctx.after(&d);
            out.dispatches.extend(d);
            out.node_end
                .extend(std::iter::repeat_n(out.dispatches.len(), run.len()));
            at += run.len();
            continue;
        }
        at += 1;
        ctx.before(n);
        let synced = match dist.as_deref_mut().filter(|d| d.opts.sync_bn) {
            Some(d) => crate::ops::norm::lower_synced(ctx, n, &d.samples)?.map(|split| (d, split)),
            None => None,
        };
        if let Some((d, split)) = synced {
            out.dispatches.extend(split.before);
            let bytes = split.channels as u64 * 4;
            let parts = split.sync.into_iter().map(|b| (b, bytes)).collect();
            let reduce = if split.mean_var {
                Reduce::MeanVar
            } else {
                Reduce::Weighted
            };
            d.add(device, out.dispatches.len(), parts, reduce, true, split.what);
            out.dispatches.extend(split.after);
        } else {
            let d = lower(ctx, n)?;
            if n.outputs.iter().any(|o| graph.value(*o).kind == ValueKind::Derived) {
                out.prologue_outlives_steps &= !n.inputs.iter().any(|v| updated.contains(v));
                out.prologue.extend(d)
            } else {
                ctx.after(&d);
                // what the node derives from the parameters alone (a conv's weights packed
                // into a texture of their own) runs in the prologue
                let (derived, run): (Vec<Dispatch>, Vec<Dispatch>) = d.into_iter().partition(|d| d.derived);
                out.prologue.extend(derived);
                out.dispatches.extend(run)
            }
        }
        out.node_end.push(out.dispatches.len());
    }
    out.packed_weight_bytes = ctx.kept.as_ref().map_or(0, |k| k.constant_bytes());
    Ok(out)
}

/// Where the gradients the optimizer reads are averaged across ranks: one non-blocking point
/// per bucket, after the node that completes it.
pub(super) fn all_reduce_points(ctx: &LowerCtx, device: &wgpu::Device, d: &mut PlanDist, node_end: &[usize]) {
    let graph = ctx.graph;
    for (k, (node, grads)) in gradient_buckets(graph, d.opts.bucket_bytes, d.opts.sync_bn)
        .into_iter()
        .enumerate()
    {
        let parts: Vec<(wgpu::Buffer, u64)> = grads
            .iter()
            .map(|&v| (ctx.buffer(v), (graph.shape(v).numel() * 4) as u64))
            .collect();
        let bytes: u64 = parts.iter().map(|p| p.1).sum();
        let what = format!("gradient bucket {k} ({} tensors, {bytes} bytes)", parts.len());
        d.add(device, node_end[node], parts, Reduce::Weighted, false, what);
    }
    if debug_level() >= 1 {
        for p in &d.points {
            eprintln!("convoy: all-reduce after dispatch {}: {}", p.at, p.what);
        }
    }
}

/// The readable values' places in one staging buffer: (value, offset, bytes), and the buffer.
pub(super) fn readback(
    device: &wgpu::Device,
    graph: &Graph,
    readable: &[ValueId],
) -> (Vec<(ValueId, u64, u64)>, Option<wgpu::Buffer>) {
    let mut offset = 0;
    let mut read = Vec::new();
    for &v in readable {
        let bytes = (graph.shape(v).numel() * graph.value(v).dtype.size()) as u64;
        read.push((v, offset, bytes));
        offset += bytes.div_ceil(4) * 4;
    }
    let staging = (offset > 0).then(|| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("convoy readback"),
            size: offset,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    });
    (read, staging)
}

/// `num_batches_tracked` of each training-mode batch norm.
pub(super) fn bn_counters(graph: &Graph) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, crate::graph::Op::BatchNorm { training: true, .. }))
        .map(|n| {
            let rm = &graph.value(n.inputs[3]).name;
            format!(
                "{}num_batches_tracked",
                rm.strip_suffix("running_mean").unwrap_or(&format!("{rm}."))
            )
        })
        .collect()
}

pub(super) fn plan_stats(
    gpu: &Gpu,
    graph: &Graph,
    memory: &MemoryPlan,
    buffers: &Buffers,
    lowered: &Lowered,
) -> PlanStats {
    let dispatches = &lowered.dispatches;
    PlanStats {
        nodes: graph.nodes.len(),
        dispatches: dispatches.len(),
        prologue: lowered.prologue.len(),
        packs: dispatches
            .iter()
            .filter(|d| {
                d.pipeline
                    .shader
                    .name
                    .starts_with(crate::kernels::shaders::CONV2D_PACK_INPUT.name)
            })
            .count(),
        split_passes: dispatches
            .iter()
            .filter(|d| {
                d.pipeline
                    .shader
                    .name
                    .starts_with(crate::kernels::shaders::CONV2D_SPLIT_K_EPILOGUE.name)
            })
            .count(),
        temp_buffers: buffers.slots,
        temp_bytes: memory.total_bytes(),
        temp_bytes_unplanned: buffers.unplanned,
        live_peak_bytes: memory.live_peak_bytes(graph),
        derived_bytes: graph
            .values
            .iter()
            .filter(|v| v.kind == ValueKind::Derived)
            .map(|v| (v.shape.numel() * v.dtype.size()) as u64)
            .sum::<u64>()
            + lowered.packed_weight_bytes,
        pipelines: gpu.pipeline_count(),
    }
}
