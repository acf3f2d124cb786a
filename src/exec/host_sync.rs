//! Host synchronisation points of a data-parallel training plan: where the plan's dispatches
//! stop for values to cross ranks (see `crate::dist`). A plan without `DistOptions` has none.
//!
//! A step with points runs as segments: each segment's dispatches and the copy of the point's
//! values into its own staging buffer go in one submit. A gradient bucket does not block: the
//! next segments (the rest of the backward) are submitted at once and the host reduces the
//! bucket while the GPU computes them. A batch-norm point blocks: the next dispatch needs its
//! result. Reduced values go back with `queue.write_buffer`, which lands before the next submit
//! and so before the optimizer reads them.
//!
//! Native only: the reductions block on MPI; the web build compiles no points (`Plan` refuses
//! `DistOptions` there).
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

#[cfg(not(target_arch = "wasm32"))]
use crate::dist::weighted_sum;
use crate::dist::DistOptions;
#[cfg(not(target_arch = "wasm32"))]
use crate::error::Result;
use crate::graph::{Graph, Op, ValueId};
use std::sync::atomic::{AtomicU32, Ordering};

/// How a point's values combine across ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    /// sum over ranks of weight * value (gradients, batch-norm gradient sums)
    Weighted,
    /// [mean, biased var] per channel: averaged as mean and E[x^2], var = E[x^2] - mean^2
    MeanVar,
}

pub(crate) struct HostPoint {
    /// Runs after the plan's dispatches [..at].
    pub at: usize,
    /// (buffer, bytes from its start)
    pub parts: Vec<(wgpu::Buffer, u64)>,
    pub reduce: Reduce,
    pub blocking: bool,
    pub staging: wgpu::Buffer,
    pub what: String,
}

/// What a distributed plan adds to a plan.
pub(crate) struct PlanDist {
    pub opts: DistOptions,
    pub points: Vec<HostPoint>,
    /// [samples in the global batch] as f32, read by the synchronised running statistics.
    pub samples: wgpu::Buffer,
    /// This rank's weight in the current step (f32 bits).
    weight: AtomicU32,
}

impl PlanDist {
    pub fn new(device: &wgpu::Device, opts: DistOptions) -> PlanDist {
        let samples = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("convoy global batch size"),
            size: 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let w = 1.0 / opts.collective.size().max(1) as f32;
        PlanDist {
            opts,
            points: Vec::new(),
            samples,
            weight: AtomicU32::new(w.to_bits()),
        }
    }

    pub fn weight(&self) -> f32 {
        f32::from_bits(self.weight.load(Ordering::Relaxed))
    }

    pub fn set_batch(&self, queue: &wgpu::Queue, weight: f32, global: usize) {
        self.weight.store(weight.to_bits(), Ordering::Relaxed);
        queue.write_buffer(&self.samples, 0, bytemuck::bytes_of(&(global as f32)));
    }

    /// Add a point (kept sorted by `at`; points at the same place keep their order).
    pub fn add(
        &mut self,
        device: &wgpu::Device,
        at: usize,
        parts: Vec<(wgpu::Buffer, u64)>,
        reduce: Reduce,
        blocking: bool,
        what: String,
    ) {
        let bytes: u64 = parts.iter().map(|p| p.1.div_ceil(4) * 4).sum();
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("convoy all-reduce staging"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let pos = self.points.partition_point(|p| p.at <= at);
        self.points.insert(
            pos,
            HostPoint {
                at,
                parts,
                reduce,
                blocking,
                staging,
                what,
            },
        );
    }

    /// Copy the point's values into its staging buffer (recorded after its segment).
    pub fn encode_copy(&self, p: &HostPoint, e: &mut wgpu::CommandEncoder) {
        let mut off = 0;
        for (b, bytes) in &p.parts {
            let n = bytes.div_ceil(4) * 4;
            e.copy_buffer_to_buffer(b, 0, &p.staging, off, n);
            off += n;
        }
    }

    /// Every rank must reduce the same values in the same order, or MPI waits forever or adds
    /// unrelated numbers. One small all-reduce per step compares the points' count and bytes
    /// (every rank runs each step once, whatever plan it compiled for its share of the batch).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn check_same_points(&self) -> Result<()> {
        let c = &*self.opts.collective;
        let mine = [
            self.points.len() as f64,
            self.points
                .iter()
                .flat_map(|p| &p.parts)
                .map(|p| p.1 as f64)
                .sum::<f64>(),
        ];
        let mut all = mine;
        c.all_reduce_sum_f64(&mut all)?;
        let world = c.size() as f64;
        if all == [mine[0] * world, mine[1] * world] {
            return Ok(());
        }
        Err(crate::Error::arg(
            "data-parallel step",
            format!("rank {}", c.rank()),
            format!(
                "{} all-reduce points over {} bytes here, {} over {} on all ranks together: the ranks compiled different graphs",
                mine[0], mine[1], all[0], all[1]
            ),
        ))
    }

    /// Read the point's values once `index` has completed, reduce them across ranks and write
    /// them back. Returns (seconds waiting for the GPU and the copy out, seconds in the
    /// all-reduce), for CONVOY_DEBUG=2.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn reduce(&self, gpu: &crate::device::Gpu, p: &HostPoint, index: wgpu::SubmissionIndex) -> Result<(f64, f64)> {
        let t0 = std::time::Instant::now();
        let bytes = crate::device::map_read_after(gpu, &p.staging, index)?;
        let t1 = std::time::Instant::now();
        let mut v: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        let c = &*self.opts.collective;
        let w = self.weight();
        match p.reduce {
            Reduce::Weighted => weighted_sum(c, &mut v, w)?,
            Reduce::MeanVar => {
                // E[x^2] - mean^2 cancels when a channel's mean is large against its spread:
                // combine in double precision
                let ch = (p.parts[0].1 / 4) as usize;
                let mut m2: Vec<f64> = Vec::with_capacity(2 * ch);
                m2.extend(v[..ch].iter().map(|&m| f64::from(m)));
                m2.extend(
                    v[ch..2 * ch]
                        .iter()
                        .zip(&v[..ch])
                        .map(|(&s, &m)| f64::from(s) + f64::from(m) * f64::from(m)),
                );
                let w = f64::from(w);
                for x in m2.iter_mut() {
                    *x = if w == 0.0 { 0.0 } else { *x * w };
                }
                c.all_reduce_sum_f64(&mut m2)?;
                for i in 0..ch {
                    v[i] = m2[i] as f32;
                    v[ch + i] = (m2[ch + i] - m2[i] * m2[i]).max(0.0) as f32;
                }
            }
        }
        let t2 = std::time::Instant::now();
        let mut off = 0usize;
        for (b, bytes) in &p.parts {
            let n = (*bytes / 4) as usize;
            gpu.queue().write_buffer(b, 0, bytemuck::cast_slice(&v[off..off + n]));
            off += bytes.div_ceil(4) as usize;
        }
        Ok(((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64()))
    }
}

/// The gradient buckets of a training graph: the gradients the optimizer nodes read, in the
/// order the backward produces them, grouped into buckets of at least `bucket_bytes` (the last
/// may be smaller). Each bucket is (the node after which its last gradient exists, gradients).
/// With `sync_bn`, the gamma and beta gradients of each batch norm were already averaged at its
/// backward's host point and are left out.
pub(crate) fn gradient_buckets(g: &Graph, bucket_bytes: u64, sync_bn: bool) -> Vec<(usize, Vec<ValueId>)> {
    let producer = |v: ValueId| {
        let base = crate::passes::memory::base_of(g, v);
        g.nodes
            .iter()
            .rposition(|n| n.outputs.contains(&v) || n.outputs.contains(&base))
    };
    let mut grads: Vec<(usize, ValueId)> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::SgdStep { .. } | Op::AdamWStep { .. }))
        .filter_map(|n| producer(n.inputs[1]).map(|p| (p, n.inputs[1])))
        .filter(|&(p, v)| {
            let node = &g.nodes[p];
            !(sync_bn && matches!(node.op, Op::BatchNormBwd { .. }) && node.outputs[1..3].contains(&v))
        })
        .collect();
    grads.sort_by_key(|&(p, v)| (p, v.0));
    let mut buckets = Vec::new();
    let (mut cur, mut bytes) = (Vec::new(), 0u64);
    for (p, v) in grads {
        cur.push(v);
        bytes += (g.shape(v).numel() * 4) as u64;
        if bytes >= bucket_bytes {
            buckets.push((p, std::mem::take(&mut cur)));
            bytes = 0;
        }
    }
    if let Some(&last) = cur.last() {
        let p = producer(last).expect("found above");
        buckets.push((p, cur));
    }
    buckets
}
