//! Optimizer update kernels: every parameter of a step in a few dispatches (a multi-tensor
//! apply, as PyTorch's `foreach` and fused optimizers do). Hyperparameters live in a GPU buffer
//! of `HYPER_STRIDE` floats per parameter group that the host rewrites before each step: a
//! schedule never rebuilds a plan.
//!
//! WGSL cannot index bindings by a variable, so a dispatch takes up to `tensors_per_dispatch`
//! tensors, each bound in its own slot, and its kernel (generated for that many slots) switches
//! on the slot once per workgroup: a table gives each workgroup its slot and the start of its
//! chunk (`CHUNK` elements), and each slot its element count and parameter group. PyTorch's
//! multi_tensor_apply bounds its tensors per launch the same way (by kernel-argument space).

use super::{groups_for, u32_of};
use crate::device::{grid_1d, Binding, Dispatch, Gpu, Shader};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use wgpu::util::DeviceExt;

/// Values (f32 or vec4) one workgroup updates: a chunk of one tensor. Its lanes are the
/// policy's `run_lanes` (256 on a GPU, one SIMD vector on a CPU driver), each updating
/// `CHUNK / lanes` values a workgroup apart so that a workgroup's loads are contiguous.
const CHUNK: usize = 1024;
/// The most tensors one dispatch binds (a GPU's binding limits allow thousands; the kernel's
/// switch grows with the slots, and 128 takes ResNet-50's 161 tensors in two dispatches).
const MAX_SLOTS: usize = 128;

/// Floats per parameter group in the hyperparameter buffer:
/// lr, momentum, weight_decay, beta1, beta2, eps, bias_correction1, bias_correction2.
pub const HYPER_STRIDE: usize = 8;

/// Which update rule a multi-tensor dispatch applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateKind {
    /// PyTorch's SGD (dampening 0): one state tensor, the momentum buffer.
    Sgd { nesterov: bool },
    /// PyTorch's AdamW: two state tensors, the first and second moments.
    AdamW,
}

impl UpdateKind {
    /// The state tensors a parameter of this rule has.
    pub fn states(self) -> usize {
        match self {
            UpdateKind::Sgd { .. } => 1,
            UpdateKind::AdamW => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            UpdateKind::Sgd { .. } => "sgd",
            UpdateKind::AdamW => "adamw",
        }
    }
}

/// One parameter of a multi-tensor update: its element count and group, its gradient (read),
/// and the parameter and its state tensors (updated in place), each `numel` long.
pub struct UpdateTensor<'a> {
    pub numel: usize,
    pub group: usize,
    pub grad: &'a wgpu::Buffer,
    pub param: &'a wgpu::Buffer,
    pub state: Vec<&'a wgpu::Buffer>,
}

/// The most tensors one dispatch of `kind` takes on `gpu`: two storage bindings for the
/// hyperparameters and the table, then the gradient, the parameter and its states per tensor,
/// within the device's storage buffers per stage and bindings per group (8 and 1000 at
/// WebGPU's least: 2 SGD tensors, 1 AdamW tensor).
pub fn tensors_per_dispatch(gpu: &Gpu, kind: UpdateKind) -> usize {
    // one binding more for the loss scaler of a mixed-precision step, kept out for both
    let bindings = storage_bindings(gpu).saturating_sub(3);
    (bindings / (2 + kind.states())).clamp(1, MAX_SLOTS)
}

/// The storage buffers one dispatch can bind on `gpu`.
pub(super) fn storage_bindings(gpu: &Gpu) -> usize {
    let l = gpu.limits();
    l.max_storage_buffers_per_shader_stage
        .min(l.max_bindings_per_bind_group) as usize
}

/// The update of every tensor in `tensors` by `kind` with the hyperparameters in `hyper`
/// (`HYPER_STRIDE` floats per group): one dispatch per `tensors_per_dispatch` tensors. Tensors
/// whose sizes are multiples of 4 go through vec4 loads, the others in dispatches of their own.
///
/// With `scaler`, the loss scaler of a mixed-precision step (`kernels::loss_scale`): the
/// gradients are unscaled (times 1 / scale), nothing is updated where the step found a
/// non-finite gradient, and AdamW's bias corrections count the updates applied (kept in the
/// scaler), not the host's steps, as PyTorch's skipped `optimizer.step()` does.
pub fn update(
    gpu: &Gpu,
    kind: UpdateKind,
    hyper: &wgpu::Buffer,
    scaler: Option<&wgpu::Buffer>,
    tensors: &[UpdateTensor<'_>],
) -> Result<Vec<Dispatch>> {
    update_by(gpu, kind, hyper, scaler, tensors, tensors_per_dispatch(gpu, kind))
}

/// `update` with at most `per` tensors a dispatch (at least 1; the device's limit still caps
/// it): what tests use to take a few tensors through several slots and dispatches.
pub fn update_by(
    gpu: &Gpu,
    kind: UpdateKind,
    hyper: &wgpu::Buffer,
    scaler: Option<&wgpu::Buffer>,
    tensors: &[UpdateTensor<'_>],
    per: usize,
) -> Result<Vec<Dispatch>> {
    if let Some(t) = tensors.iter().find(|t| t.state.len() != kind.states()) {
        return Err(Error::arg(
            kind.name(),
            "state",
            format!(
                "{} state tensors for a parameter, the rule keeps {}",
                t.state.len(),
                kind.states()
            ),
        ));
    }
    let per = per.clamp(1, tensors_per_dispatch(gpu, kind));
    let mut out = Vec::new();
    for pack in [4, 1] {
        let of: Vec<&UpdateTensor> = tensors
            .iter()
            .filter(|t| (t.numel.is_multiple_of(4)) == (pack == 4))
            .collect();
        for batch in of.chunks(per) {
            out.push(update_dispatch(gpu, kind, pack, hyper, scaler, batch)?);
        }
    }
    Ok(out)
}

/// The chunk table of a multi-tensor dispatch over tensors of (values, group): the chunk
/// count, (values, group) per slot, then (slot, first value) per chunk of `CHUNK` values; and
/// the chunk count.
pub(super) fn chunk_table(gpu: &Gpu, what: &str, tensors: &[(usize, usize)]) -> Result<(wgpu::Buffer, usize)> {
    let mut table = vec![0u32; 1 + 2 * tensors.len()];
    for (slot, &(values, group)) in tensors.iter().enumerate() {
        table[1 + 2 * slot] = u32_of(&format!("{what}: values of a tensor"), values)?;
        table[2 + 2 * slot] = u32_of(&format!("{what}: parameter group"), group)?;
        for start in (0..values).step_by(CHUNK) {
            table.extend([slot as u32, start as u32]);
        }
    }
    let chunks = (table.len() - 1 - 2 * tensors.len()) / 2;
    table[0] = u32_of(&format!("{what}: chunks"), chunks)?;
    let table = gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("convoy multi-tensor table"),
        contents: bytemuck::cast_slice(&table),
        usage: wgpu::BufferUsages::STORAGE,
    });
    Ok((table, chunks))
}

/// A multi-tensor kernel's override constants (WG, PER_LANE).
pub(super) type ChunkConstants = [(&'static str, f64); 2];

/// The override constants of a multi-tensor kernel whose workgroups take a chunk each, and
/// its grid for `chunks` chunks.
pub(super) fn chunk_launch(gpu: &Gpu, what: &str, chunks: usize) -> Result<(ChunkConstants, [u32; 3])> {
    let lanes = gpu.policy().run_lanes as usize;
    let constants = [("WG", lanes as f64), ("PER_LANE", CHUNK.div_ceil(lanes) as f64)];
    Ok((constants, grid_1d(groups_for(what, chunks * CHUNK, CHUNK)?)))
}

/// The WGSL side of `chunk_table` for a kernel of `slots` tensors, which both multi-tensor
/// kernels (these updates, `kernels::loss_scale`'s finite check) start with: the lanes
/// (WG, PER_LANE), the table at binding 1 and where chunk `c` lies (its slot, first value and
/// end).
pub(super) fn chunk_wgsl(slots: usize) -> String {
    format!(
        "override WG: u32 = 256u;
override PER_LANE: u32 = {per_lane}u;
const SLOTS: u32 = {slots}u;
const CHUNK: u32 = {CHUNK}u;
@group(0) @binding(1) var<storage, read> table: array<u32>;
fn chunk_slot(c: u32) -> u32 {{
    return table[1u + 2u * SLOTS + 2u * c];
}}
fn chunk_start(c: u32) -> u32 {{
    return table[2u + 2u * SLOTS + 2u * c];
}}
// a chunk's end: WG x PER_LANE may pass CHUNK where WG does not divide it
fn chunk_end(c: u32) -> u32 {{
    return min(table[1u + 2u * chunk_slot(c)], chunk_start(c) + CHUNK);
}}
",
        per_lane = CHUNK / 256,
    )
}

/// One dispatch over `batch` (its tensors' sizes multiples of `pack`).
fn update_dispatch(
    gpu: &Gpu,
    kind: UpdateKind,
    pack: usize,
    hyper: &wgpu::Buffer,
    scaler: Option<&wgpu::Buffer>,
    batch: &[&UpdateTensor<'_>],
) -> Result<Dispatch> {
    let what = format!("{} update", kind.name());
    let sizes: Vec<(usize, usize)> = batch.iter().map(|t| (t.numel / pack, t.group)).collect();
    let (table, chunks) = chunk_table(gpu, &what, &sizes)?;
    let numel: usize = batch.iter().map(|t| t.numel).sum();
    let nesterov = matches!(kind, UpdateKind::Sgd { nesterov: true });
    let ([wg, per_lane], grid) = chunk_launch(gpu, &what, chunks)?;
    let pipeline = gpu.pipeline(
        update_shader(kind, batch.len(), pack, scaler.is_some()),
        &[wg, per_lane, ("NESTEROV", f64::from(u8::from(nesterov)))],
    )?;
    let mut buffers: Vec<&wgpu::Buffer> = vec![hyper, &table];
    buffers.extend(scaler);
    for t in batch {
        buffers.extend([t.grad, t.param]);
        buffers.extend(t.state.iter().copied());
    }
    // the gradient read; the parameter and each state read and written
    let moved = numel * 4 * (3 + 2 * kind.states());
    Ok(Dispatch::new(gpu, pipeline, &[], &buffers, grid)?.moving(moved))
}

/// The kernel of `kind` for `slots` tensors of `pack` floats a value (`scaled`: with the loss
/// scaler, see `update`), generated once and kept for the life of the process (a pipeline
/// caches it like any kernel).
pub fn update_shader(kind: UpdateKind, slots: usize, pack: usize, scaled: bool) -> &'static Shader {
    type Key = (&'static str, usize, usize, bool);
    static BUILT: OnceLock<Mutex<HashMap<Key, &'static Shader>>> = OnceLock::new();
    let mut built = crate::device::lock(BUILT.get_or_init(Default::default));
    built.entry((kind.name(), slots, pack, scaled)).or_insert_with(|| {
        let vec4 = if pack == 4 { "_vec4" } else { "" };
        let unscale = if scaled { "_unscale" } else { "" };
        let mut bindings = vec![Binding::Read, Binding::Read];
        if scaled {
            bindings.push(Binding::Read);
        }
        for _ in 0..slots {
            bindings.extend([Binding::Read, Binding::ReadWrite]);
            bindings.extend(std::iter::repeat_n(Binding::ReadWrite, kind.states()));
        }
        Box::leak(Box::new(Shader {
            name: Box::leak(format!("{}_update{slots}{vec4}{unscale}", kind.name()).into_boxed_str()),
            source: Box::leak(update_source(kind, slots, pack, scaled).into_boxed_str()),
            bindings: Box::leak(bindings.into_boxed_slice()),
            trusted: false,
        }))
    })
}

/// The WGSL of `update_shader`.
fn update_source(kind: UpdateKind, slots: usize, pack: usize, scaled: bool) -> String {
    let states: &[&str] = match kind {
        UpdateKind::Sgd { .. } => &["buf"],
        UpdateKind::AdamW => &["m", "v"],
    };
    let mut decl = String::new();
    let mut cases = String::new();
    for s in 0..slots {
        let b = 2 + usize::from(scaled) + s * (2 + states.len());
        decl += &format!("@group(0) @binding({b}) var<storage, read> grad{s}: array<FV>;\n");
        decl += &format!(
            "@group(0) @binding({}) var<storage, read_write> param{s}: array<FV>;\n",
            b + 1
        );
        for (k, st) in states.iter().enumerate() {
            decl += &format!(
                "@group(0) @binding({}) var<storage, read_write> {st}{s}: array<FV>;\n",
                b + 2 + k
            );
        }
        let (args, stores) = match kind {
            UpdateKind::Sgd { .. } => (
                format!("grad{s}[i] * inv_scale, param{s}[i], buf{s}[i]"),
                format!("param{s}[i] = r.param; buf{s}[i] = r.buf;"),
            ),
            UpdateKind::AdamW => (
                format!("grad{s}[i] * inv_scale, param{s}[i], m{s}[i], v{s}[i]"),
                format!("param{s}[i] = r.param; m{s}[i] = r.m; v{s}[i] = r.v;"),
            ),
        };
        cases += &format!(
            "        case {s}u: {{\n            for (var k = 0u; k < PER_LANE; k++) {{\n                let i = start + k * WG + lid;\n                if (i < end) {{\n                    let r = rule({args}, h);\n                    {stores}\n                }}\n            }}\n        }}\n"
        );
    }
    let fv = if pack == 4 { "vec4f" } else { "f32" };
    let (scaler_decl, scaling) = match scaled {
        true => (SCALER_DECL, SCALED),
        false => ("", UNSCALED),
    };
    let rule = match kind {
        UpdateKind::Sgd { .. } => SGD_RULE,
        UpdateKind::AdamW => ADAMW_RULE,
    };
    format!(
        "// {name} for {slots} tensors ({fv} values), generated by kernels::optim::update_source:\n\
         // one workgroup per chunk of {CHUNK} values of one tensor (WG x PER_LANE); the table\n\
         // gives each workgroup its slot and first value, and each slot its values and group.\n\
         alias FV = {fv};\n\
         override NESTEROV: bool = false;\n\
         {chunks}\
         @group(0) @binding(0) var<storage, read> hyper: array<f32>;\n\
         {scaler_decl}{decl}{HYPER}{rule}\n\
         @compute @workgroup_size(WG)\n\
         fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,\n\
         \x20       @builtin(local_invocation_index) lid: u32) {{\n\
         \x20   let c = wid.x + wid.y * nwg.x;\n\
         \x20   if (c >= table[0]) {{\n\
         \x20       return;\n\
         \x20   }}\n\
         \x20   // one value for the whole workgroup: its lanes take one case of the switch\n\
         \x20   let slot = chunk_slot(c);\n\
         \x20   let start = chunk_start(c);\n\
         \x20   let end = chunk_end(c);\n\
         \x20   let at = table[2u + 2u * slot] * 8u;\n\
         \x20   var h = Hyper(hyper[at], hyper[at + 1u], hyper[at + 2u], hyper[at + 3u], hyper[at + 4u],\n\
         \x20       hyper[at + 5u], hyper[at + 6u], hyper[at + 7u]);\n\
         {scaling}\
         \x20   switch slot {{\n\
         {cases}\
         \x20       default: {{}}\n\
         \x20   }}\n\
         }}\n",
        name = kind.name(),
        chunks = chunk_wgsl(slots),
    )
}

/// The loss scaler's binding in a scaled update (its layout: `kernels::loss_scale`).
const SCALER_DECL: &str = "@group(0) @binding(2) var<storage, read> scaler: array<f32>;\n";

/// The start of a scaled update's main, after the hyperparameters: no update at all where the
/// step found a non-finite gradient; the gradients unscaled; AdamW's bias corrections from the
/// updates applied so far (the scaler counts them: a skipped step does not advance PyTorch's
/// `step` either).
const SCALED: &str = "    if (scaler[2] != 0.0) {
        return;
    }
    let inv_scale = 1.0 / scaler[0];
    let t = scaler[3] + 1.0;
    h.bc1 = 1.0 - pow(h.b1, t);
    h.bc2 = 1.0 - pow(h.b2, t);
";

/// The same place in an unscaled update.
const UNSCALED: &str = "    let inv_scale = 1.0;
";

/// One group's block of the hyperparameter buffer (`HYPER_STRIDE` floats).
const HYPER: &str = "
struct Hyper { lr: f32, momentum: f32, wd: f32, b1: f32, b2: f32, eps: f32, bc1: f32, bc2: f32 }
";

/// The rules, on one value (f32 or vec4) at a time.
const SGD_RULE: &str = "
struct Sgd { param: FV, buf: FV }
// PyTorch's SGD, dampening 0: d = g + wd p; buf = momentum buf + d; d = nesterov ? d + momentum
// buf : buf; p -= lr d. (PyTorch starts buf at d on the first step: momentum * 0 + d.)
fn rule(g: FV, p: FV, buf: FV, h: Hyper) -> Sgd {
    var d = g + h.wd * p;
    var b = buf;
    if (h.momentum != 0.0) {
        b = h.momentum * buf + d;
        d = select(b, d + h.momentum * b, NESTEROV);
    }
    return Sgd(p - h.lr * d, b);
}
";

const ADAMW_RULE: &str = "
struct AdamW { param: FV, m: FV, v: FV }
// PyTorch's AdamW: p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr (m / bc1) / (sqrt(v / bc2) + eps), bc1 = 1 - b1^t and bc2 = 1 - b2^t from the host.
fn rule(g: FV, p: FV, m: FV, v: FV, h: Hyper) -> AdamW {
    let mi = h.b1 * m + (1.0 - h.b1) * g;
    let vi = h.b2 * v + (1.0 - h.b2) * g * g;
    let pi = p * (1.0 - h.lr * h.wd);
    return AdamW(pi - h.lr * (mi / h.bc1) / (sqrt(vi / h.bc2) + h.eps), mi, vi);
}
";
