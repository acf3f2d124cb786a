//! `Plan`: a graph compiled once for its shapes. Buffers, pipelines and bind groups are made at
//! compile time; a run writes the inputs, records every dispatch into one compute pass, copies
//! the values asked for into a staging buffer in the same encoder, and submits once.

use super::compile::{all_reduce_points, allocate, bn_counters, lower_nodes, plan_stats, readback, PlanStats};
use super::host_sync::PlanDist;
use crate::device::{debug_level, Dispatch, Gpu, Since};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId, ValueKind};
use crate::passes::memory::{self, MemoryPlan};
use crate::store::ParamStore;
use crate::tensor::{DType, Tensor};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Runs of each dispatch in `Plan::profile`, of which the best counts: one run per dispatch
/// left profiles of the same binary ~25% apart, the best of 7 within a few per cent
/// (BENCHMARKS.md, "Packing once for the forward and the weight gradient").
#[cfg(not(target_arch = "wasm32"))]
const PROFILE_RUNS: usize = 7;

/// One kernel's share of a run in `Plan::profile`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelProfile {
    pub kernel: &'static str,
    /// Its dispatches' times, each timed alone, summed.
    pub ms: f64,
    pub dispatches: usize,
    /// The bytes its dispatches move at the least (`Dispatch::bytes`: 0 for the compute-bound
    /// kernels, which do not state it).
    pub bytes: u64,
}

impl KernelProfile {
    /// Its bandwidth in GB/s, where it states its bytes.
    pub fn gb_per_s(&self) -> Option<f64> {
        (self.bytes > 0 && self.ms > 0.0).then(|| self.bytes as f64 / (self.ms * 1e-3) / 1e9)
    }
}

pub struct Plan {
    gpu: Gpu,
    pub graph: Graph,
    pub memory: MemoryPlan,
    pub stats: PlanStats,
    dispatches: Vec<Dispatch>,
    /// Dispatches that derive values from the parameters (folded batch norms), run before the
    /// first run and again only when the store's version has moved.
    prologue: Vec<Dispatch>,
    /// The prologue reads no parameter this plan's own optimizer updates (a frozen backbone's
    /// packed weights in a fine-tuning plan), so its own steps leave the prologue current.
    prologue_outlives_steps: bool,
    /// Runs that ran the prologue.
    prologue_runs: AtomicU64,
    store_version: Arc<AtomicU64>,
    seen_version: AtomicU64,
    /// Buffer of every value (views share their base's buffer).
    buffers: Vec<Option<wgpu::Buffer>>,
    inputs: BTreeMap<String, ValueId>,
    /// Values copied out after each run: (value, offset in staging, bytes).
    readable: Vec<(ValueId, u64, u64)>,
    staging: Option<wgpu::Buffer>,
    pub(crate) hyper: Option<wgpu::Buffer>,
    /// `num_batches_tracked` of each training-mode batch norm, advanced once per run.
    bn_counters: Vec<String>,
    counters: crate::store::Counters,
    /// Where values cross ranks (data-parallel training), when compiled with `DistOptions`.
    dist: Option<PlanDist>,
    /// Host nanoseconds the last `submit` took to encode the run and hand it to the queue.
    host_ns: AtomicU64,
}

impl Drop for Plan {
    fn drop(&mut self) {
        // on wgpu's GL backend freeing buffers enters the driver's context: the device's next
        // holder frees them (`device::serial`); the dispatches see to their own bind groups
        if self.gpu.is_serialised() {
            let mut buffers: Vec<wgpu::Buffer> = self.buffers.iter().flatten().cloned().collect();
            buffers.extend(self.staging.iter().chain(&self.hyper).cloned());
            if let Some(d) = &self.dist {
                buffers.push(d.samples.clone());
                for p in &d.points {
                    buffers.extend(p.parts.iter().map(|(b, _)| b.clone()));
                    buffers.push(p.staging.clone());
                }
            }
            self.gpu.bury(buffers);
        }
    }
}

impl Plan {
    /// Compile `graph`. Resident values come from `store` (optimizer state is created there,
    /// zero-filled, when missing); `readable` values can be read back after each run;
    /// `hyper_groups` sizes the optimizer hyperparameter buffer (0 for inference).
    pub fn compile(
        gpu: &Gpu,
        graph: Graph,
        store: &mut ParamStore,
        readable: &[ValueId],
        hyper_groups: usize,
    ) -> Result<Plan> {
        Self::compile_dist(gpu, graph, store, readable, hyper_groups, None)
    }

    /// As `compile`, for one rank of a data-parallel job when `dist` is set: the gradients the
    /// optimizer reads are averaged across ranks in buckets, and with `sync_bn` the batch norms
    /// use statistics of the global batch (see `crate::dist`).
    ///
    /// In phases (`exec/compile.rs`): plan memory and give every value its buffer (`allocate`),
    /// lower the nodes in order through one `ops::LowerCtx` (`lower_nodes`), place the gradient
    /// all-reduces (`all_reduce_points`), lay out the readback (`readback`), count what the plan
    /// holds (`plan_stats`).
    pub fn compile_dist(
        gpu: &Gpu,
        graph: Graph,
        store: &mut ParamStore,
        readable: &[ValueId],
        hyper_groups: usize,
        dist: Option<&crate::dist::DistOptions>,
    ) -> Result<Plan> {
        if cfg!(target_arch = "wasm32") && dist.is_some() {
            return Err(Error::arg(
                "Plan",
                "dist",
                "data-parallel training runs in native builds (MPI); a web page trains in one process",
            ));
        }
        // the phases' times and what building pipelines took, for CONVOY_DEBUG
        let (started, built) = (Since::now(), gpu.build_time());
        graph.verify()?;
        let memory = memory::plan(&graph, readable);
        let planned = started.secs();
        // held for the whole compile (the GL backend's serial lock; a no-op elsewhere)
        let device = gpu.device();
        let buffers = allocate(gpu, &device, &graph, &memory, store)?;
        let allocated = started.secs();
        let hyper = (hyper_groups > 0).then(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("convoy hyperparameters"),
                size: (hyper_groups * crate::kernels::optim::HYPER_STRIDE * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        let mut dist = dist.map(|o| PlanDist::new(&device, o.clone()));
        let lowered = {
            let ctx = crate::ops::lowering_context(gpu, &graph, &buffers.values, hyper.as_ref())?;
            let lowered = lower_nodes(&ctx, &device, dist.as_mut())?;
            if let Some(d) = dist.as_mut() {
                all_reduce_points(&ctx, &device, d, &lowered.node_end);
            }
            lowered
        };
        // the pipelines still building on workers: their errors here, and the first run waits
        // for none
        gpu.finish_pipelines()?;
        let lowered_at = started.secs();
        let (readable, staging) = readback(&device, &graph, readable);
        let stats = plan_stats(gpu, &graph, &memory, &buffers, &lowered);
        if debug_level() >= 1 {
            eprintln!("convoy: compiled plan: {stats:?}");
            let b = gpu.build_time() - built;
            let ms = |s: f64| s * 1e3;
            eprintln!(
                "convoy: plan compile {:.0} ms: memory plan {:.0} ms, buffers and resident values {:.0} ms, lowering {:.0} ms ({} new shader modules {:.0} ms; {} new pipelines, {:.0} ms of build time across workers), readback {:.0} ms",
                ms(started.secs()),
                ms(planned),
                ms(allocated - planned),
                ms(lowered_at - allocated),
                b.modules,
                ms(b.module_secs),
                b.pipelines,
                ms(b.pipeline_secs),
                ms(started.secs() - lowered_at)
            );
        }
        if debug_level() >= 3 {
            eprintln!("{}", graph.dump());
        }
        drop(device);
        Ok(Plan {
            gpu: gpu.clone(),
            bn_counters: bn_counters(&graph),
            graph,
            memory,
            stats,
            dispatches: lowered.dispatches,
            prologue: lowered.prologue,
            prologue_outlives_steps: lowered.prologue_outlives_steps,
            prologue_runs: AtomicU64::new(0),
            store_version: store.version(),
            seen_version: AtomicU64::new(u64::MAX),
            buffers: buffers.values,
            inputs: buffers.inputs,
            readable,
            staging,
            hyper,
            counters: store.counters().clone(),
            dist,
            host_ns: AtomicU64::new(0),
        })
    }

    fn advance_counters(&self) {
        if self.bn_counters.is_empty() {
            return;
        }
        let mut c = crate::device::lock(&self.counters);
        for name in &self.bn_counters {
            *c.entry(name.clone()).or_insert(0) += 1;
        }
    }

    fn input(&self, name: &str, dtype: DType, len: usize) -> Result<&wgpu::Buffer> {
        let v = *self
            .inputs
            .get(name)
            .ok_or_else(|| Error::arg("plan", name, "no input of this name"))?;
        let val = self.graph.value(v);
        if val.dtype != dtype || val.shape.numel() != len {
            return Err(Error::shape(
                format!("input '{name}'"),
                format!(
                    "{:?} data of shape {} ({} values)",
                    val.dtype,
                    val.shape,
                    val.shape.numel()
                ),
                format!("{dtype:?} data with {len} values"),
            ));
        }
        Ok(self.buffers[v.0].as_ref().expect("inputs have buffers"))
    }

    /// The buffer of the resident value (parameter or state) `name`, where the graph has one.
    fn resident(&self, name: &str) -> Option<(&wgpu::Buffer, u64)> {
        let i = self
            .graph
            .values
            .iter()
            .position(|v| v.name == name && matches!(v.kind, ValueKind::Param { .. } | ValueKind::State))?;
        let v = &self.graph.values[i];
        let bytes = (v.shape.numel() * v.dtype.size()) as u64;
        self.buffers[i].as_ref().map(|b| (b, bytes))
    }

    /// Whether the graph has the resident value (parameter or state) `name`.
    pub fn has_resident(&self, name: &str) -> bool {
        self.resident(name).is_some()
    }

    /// The f32 values of the resident value `name` after the runs submitted so far (waits for
    /// the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_resident(&self, name: &str) -> Result<Vec<f32>> {
        let (b, bytes) = self
            .resident(name)
            .ok_or_else(|| Error::arg("plan", name, "no resident value of that name"))?;
        let raw = pollster::block_on(crate::device::read_buffer(&self.gpu, b, bytes))?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }

    /// Whether the graph has an input `name`.
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.contains_key(name)
    }

    /// Write float data into the input `name` for the next run.
    pub fn write_input(&self, name: &str, data: &[f32]) -> Result<()> {
        let b = self.input(name, DType::F32, data.len())?;
        self.gpu.queue().write_buffer(b, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Write i32 labels into the input `name` for the next run.
    pub fn write_labels(&self, name: &str, data: &[i32]) -> Result<()> {
        let b = self.input(name, DType::I32, data.len())?;
        self.gpu.queue().write_buffer(b, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Fill the input `name` from a tensor already on the GPU (no host round trip).
    pub fn copy_input(&self, name: &str, t: &Tensor) -> Result<()> {
        let b = self.input(name, t.dtype(), t.numel())?;
        let mut e = self.gpu.device().create_command_encoder(&Default::default());
        e.copy_buffer_to_buffer(t.buffer(), 0, b, 0, t.byte_len());
        self.gpu.queue().submit([e.finish()]);
        Ok(())
    }

    /// Whether this run must first re-derive values from the parameters (their version moved).
    fn prologue_stale(&self) -> bool {
        let now = self.store_version.load(Ordering::Relaxed);
        let stale = !self.prologue.is_empty() && self.seen_version.swap(now, Ordering::Relaxed) != now;
        if stale {
            self.prologue_runs.fetch_add(1, Ordering::Relaxed);
        }
        stale
    }

    /// How many runs so far ran the prologue (derived values from the parameters: folded
    /// batch norms, constant weights packed): the first, and each after the parameters the
    /// prologue reads may have changed.
    pub fn prologue_runs(&self) -> u64 {
        self.prologue_runs.load(Ordering::Relaxed)
    }

    /// Record dispatches `range` (after the prologue when `prologue`): compute passes, split only
    /// where a dispatch's output is copied into an operand texture.
    fn encode_pass(&self, encoder: &mut wgpu::CommandEncoder, range: std::ops::Range<usize>, prologue: bool) {
        let ds: Vec<&Dispatch> = self
            .prologue
            .iter()
            .filter(|_| prologue)
            .chain(&self.dispatches[range])
            .collect();
        crate::device::encode_dispatches(encoder, "convoy step", None, &ds);
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        let desc = wgpu::CommandEncoderDescriptor {
            label: Some("convoy step"),
        };
        self.gpu.device().create_command_encoder(&desc)
    }

    /// Record the copies of the readable values into the staging buffer.
    fn encode_copy_out(&self, encoder: &mut wgpu::CommandEncoder) {
        if let Some(staging) = &self.staging {
            for &(v, off, bytes) in &self.readable {
                let src = self.buffers[v.0].as_ref().expect("readable values have buffers");
                encoder.copy_buffer_to_buffer(src, 0, staging, off, bytes.div_ceil(4) * 4);
            }
        }
    }

    /// The last segment of a run: dispatches [from..], then (a training plan changes the
    /// parameters) the store's version moves on, and the readable values are copied out.
    fn encode_last(&self, from: usize, prologue: bool, copy_out: bool) -> wgpu::CommandBuffer {
        let mut encoder = self.encoder();
        self.encode_pass(&mut encoder, from..self.dispatches.len(), prologue);
        if self.hyper.is_some() {
            let was = self.store_version.fetch_add(1, Ordering::Relaxed);
            // this step's updates leave the prologue's results current, unless something else
            // changed the parameters since this run began
            if self.prologue_outlives_steps {
                let _ = self
                    .seen_version
                    .compare_exchange(was, was + 1, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        if copy_out {
            self.encode_copy_out(&mut encoder);
        }
        encoder.finish()
    }

    /// One data-parallel run: segments between the host points, each point reduced across the
    /// ranks (gradient buckets while the later segments run), then the rest (the optimizer).
    #[cfg(not(target_arch = "wasm32"))]
    fn run_dist(&self, d: &PlanDist, copy_out: bool) -> Result<()> {
        d.check_same_points()?;
        let queue = self.gpu.queue();
        let t = std::time::Instant::now();
        let mut prologue = self.prologue_stale();
        let mut from = 0;
        let mut pending = Vec::new();
        // seconds waiting for GPU results, in all-reduces
        let (mut wait, mut mpi) = (0.0, 0.0);
        let mut account = |(w, m): (f64, f64)| {
            wait += w;
            mpi += m;
        };
        for p in &d.points {
            let mut e = self.encoder();
            self.encode_pass(&mut e, from..p.at, std::mem::take(&mut prologue));
            d.encode_copy(p, &mut e);
            let index = queue.submit([e.finish()]);
            from = p.at;
            if p.blocking {
                for (q, i) in pending.drain(..) {
                    account(d.reduce(&self.gpu, q, i)?);
                }
                account(d.reduce(&self.gpu, p, index)?);
            } else {
                pending.push((p, index));
            }
        }
        for (q, i) in pending {
            account(d.reduce(&self.gpu, q, i)?);
        }
        queue.submit([self.encode_last(from, prologue, copy_out)]);
        if debug_level() >= 2 {
            let bytes: u64 = d.points.iter().flat_map(|p| &p.parts).map(|p| p.1).sum();
            eprintln!(
                "convoy: data-parallel step: {} host points, {:.2} MB each way; host side {:.1} ms: waiting for GPU results {:.1} ms, all-reduce {:.1} ms",
                d.points.len(),
                bytes as f64 / 1e6,
                t.elapsed().as_secs_f64() * 1e3,
                wait * 1e3,
                mpi * 1e3
            );
        }
        Ok(())
    }

    /// Submit one run (data-parallel plans reduce across ranks on the way).
    fn submit(&self, copy_out: bool) -> Result<()> {
        let started = Since::now();
        self.advance_counters();
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(d) = &self.dist {
            return self.run_dist(d, copy_out);
        }
        // a plan with a prologue re-derives from the parameters when they changed since its last run
        let stale = self.prologue_stale();
        let commands = self.encode_last(0, stale, copy_out);
        let recorded = started.secs();
        self.gpu.queue().submit([commands]);
        // wgpu's GL backend on a CPU driver (llvmpipe) runs the whole step inside the submit
        // call, so there the host's own cost is the recording; elsewhere (lavapipe's Vulkan
        // included) the submit returns once the work is queued
        let info = self.gpu.info();
        let runs_in_submit = info.backend == wgpu::Backend::Gl && info.device_type == wgpu::DeviceType::Cpu;
        let host = if runs_in_submit { recorded } else { started.secs() };
        self.host_ns.store((host * 1e9) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Host milliseconds the last run took to record its dispatches and submit them (the CPU
    /// cost of a step apart from the kernels; 0 in a browser, which has no clock here). On GL
    /// over a CPU driver the submit runs the step itself, so there this is the recording alone.
    pub fn host_ms(&self) -> f64 {
        self.host_ns.load(Ordering::Relaxed) as f64 * 1e-6
    }

    /// This rank's part of the next step of a data-parallel plan: its `weight` in the average
    /// (its samples / the global batch's) and the global batch size. No effect without dist.
    pub fn set_dist_batch(&self, weight: f32, global: usize) {
        if let Some(d) = &self.dist {
            d.set_batch(&self.gpu.queue(), weight, global);
        }
    }

    /// The kernels one run dispatches, in order (the prologue's first), by shader name.
    pub fn kernel_names(&self) -> Vec<&'static str> {
        self.prologue
            .iter()
            .chain(&self.dispatches)
            .map(|d| d.pipeline.shader.name)
            .collect()
    }

    /// Time every dispatch of one run on its own (the best of `PROFILE_RUNS` runs of it, back
    /// to back in one submission: by the GPU's clock on a GPU with timestamps, else the wall
    /// time per run), summed per kernel (shader name and grid size aside), slowest first. For
    /// finding where a run's time goes; the dispatches of a run overlap and share caches, so
    /// compare profiles with profiles.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn profile(&self) -> Result<Vec<KernelProfile>> {
        let mut by: std::collections::BTreeMap<&'static str, KernelProfile> = Default::default();
        self.gpu.sync()?;
        // on the GPU's clock where the adapter's timestamps are trusted (`Clock::for_timing`):
        // the runs of one dispatch in one submission, so no submit or sync is counted
        let clock = crate::device::Clock::for_timing(&self.gpu);
        for d in self.prologue.iter().chain(&self.dispatches) {
            let t = crate::device::time_repeats(&self.gpu, std::slice::from_ref(d), 1, PROFILE_RUNS)?;
            let best = match clock {
                crate::device::Clock::Timestamps => t.gpu_min_ms.unwrap_or(t.wall_ms),
                crate::device::Clock::Wall => t.wall_ms,
            };
            let name = d.pipeline.shader.name;
            let e = by.entry(name).or_insert(KernelProfile {
                kernel: name,
                ..Default::default()
            });
            e.ms += best;
            e.dispatches += 1;
            e.bytes += d.bytes;
        }
        let mut out: Vec<_> = by.into_values().collect();
        out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        Ok(out)
    }

    /// Run once without reading anything back (one submit; a data-parallel plan waits for its
    /// reductions).
    pub fn run(&self) -> Result<()> {
        self.submit(false)
    }

    /// Run once and read every readable value back (one submit, then one wait).
    pub async fn run_and_read_async(&self) -> Result<Vec<Vec<f32>>> {
        self.submit(true)?;
        let Some(staging) = &self.staging else {
            return Ok(vec![]);
        };
        let bytes = crate::device::map_read(&self.gpu, staging).await?;
        Ok(self
            .readable
            .iter()
            .map(|&(v, off, len)| {
                let b = &bytes[off as usize..(off + len) as usize];
                match self.graph.value(v).dtype {
                    DType::I32 => bytemuck::pod_collect_to_vec::<u8, i32>(b)
                        .into_iter()
                        .map(|i| i as f32)
                        .collect(),
                    DType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(b)
                        .into_iter()
                        .map(f32::from)
                        .collect(),
                    DType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(b),
                }
            })
            .collect())
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_and_read(&self) -> Result<Vec<Vec<f32>>> {
        pollster::block_on(self.run_and_read_async())
    }

    /// The current contents of any value with a buffer (a temporary may since have been reused:
    /// read only values the plan keeps, or after a run for values still live at its end).
    pub fn tensor(&self, v: ValueId) -> Option<Tensor> {
        let b = self.buffers.get(v.0)?.clone()?;
        let val = self.graph.value(v);
        Some(Tensor::from_buffer(&self.gpu, b, val.shape.clone(), val.dtype))
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
}
