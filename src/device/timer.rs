//! Timing GPU work: wall and CPU time around synchronised runs (the benches), and the GPU's own
//! clock through timestamp queries where the adapter has them (the kernel tuner: submit and
//! sync overhead, a millisecond or more on some drivers, would otherwise swamp a small kernel).

#[cfg(not(target_arch = "wasm32"))]
use super::Dispatch;
use super::Gpu;
#[cfg(not(target_arch = "wasm32"))]
use crate::error::Result;

/// Median and spread of repeated GPU runs, each synchronised.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    pub iters: usize,
    /// Median CPU time of this process per run (all threads, from /proc/self/stat; NaN where
    /// that is unavailable). On a CPU driver such as lavapipe this is the work the driver did,
    /// which a virtual machine's stolen time and other load do not inflate as they do wall time.
    pub median_cpu_ms: f64,
    /// Wall time of the very first run, warm-up or timed: on a fresh plan this holds what a
    /// driver does lazily at a pipeline's first dispatch (lavapipe builds each kernel's machine
    /// code there), the start-up cost a one-shot run pays.
    pub first_ms: f64,
}

/// CPU time of this process so far (user + system, all threads), in ms, from /proc/self/stat
/// (clock ticks of 10 ms: Linux's USER_HZ is 100 on every architecture it exposes).
#[cfg(not(target_arch = "wasm32"))]
fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name: state is field 3, utime 14, stime 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

/// Time `run` (which submits GPU work) `iters` times after `warmup` runs, waiting for the GPU
/// after each, and report the median.
#[cfg(not(target_arch = "wasm32"))]
pub fn time_gpu(gpu: &Gpu, warmup: usize, iters: usize, mut run: impl FnMut() -> Result<()>) -> Result<Timing> {
    let mut first_ms = None;
    let mut timed_run = || -> Result<f64> {
        let t = std::time::Instant::now();
        run()?;
        gpu.sync()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        first_ms.get_or_insert(ms);
        Ok(ms)
    };
    for _ in 0..warmup {
        timed_run()?;
    }
    let mut ms = Vec::with_capacity(iters);
    let mut cpu = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let c = process_cpu_ms();
        ms.push(timed_run()?);
        cpu.push(match (c, process_cpu_ms()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        });
    }
    ms.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Ok(Timing {
        median_ms: ms[ms.len() / 2],
        min_ms: ms[0],
        iters: ms.len(),
        median_cpu_ms: cpu[cpu.len() / 2],
        first_ms: first_ms.unwrap_or(f64::NAN),
    })
}

/// What measures a kernel's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The GPU's own clock: timestamps written at the start and end of the compute pass.
    Timestamps,
    /// Wall time around submit and sync.
    Wall,
}

impl Clock {
    /// The clock for timing kernels on `gpu`: timestamps on a GPU that has them (submit and sync
    /// cost more than a small kernel there); wall time on a CPU driver, which runs a submission
    /// synchronously on the host and whose timestamps measured up to 30% off its wall time and
    /// sometimes 0 (lavapipe, Mesa 22.3), and wherever timestamp queries are missing.
    pub fn for_timing(gpu: &Gpu) -> Clock {
        if !gpu.policy().cpu_driver && gpu.info().has_timestamps() {
            Clock::Timestamps
        } else {
            Clock::Wall
        }
    }
}

/// The time of one run of `ds` in milliseconds, the best of `iters` runs, by `clock` (on the
/// GPU's clock the runs of one submission, `time_repeats`; the first run counts: it also warms
/// caches and lazily compiled state, so a single run is an upper bound). `Clock::Timestamps` on an adapter without timestamp queries is refused, naming the
/// feature (`Clock::for_timing` picks the clock an adapter has).
#[cfg(not(target_arch = "wasm32"))]
pub fn time_dispatches(gpu: &Gpu, ds: &[Dispatch], iters: usize, clock: Clock) -> Result<f64> {
    let no_timestamps = || crate::error::Error::Feature {
        what: "timing kernels on the GPU's clock".into(),
        feature: "timestamp-query".into(),
        adapter: gpu.info().name.clone(),
    };
    if clock == Clock::Timestamps && !gpu.info().has_timestamps() {
        return Err(no_timestamps());
    }
    if clock == Clock::Wall {
        return Ok(time_gpu(gpu, 0, iters, || {
            gpu.run(ds);
            Ok(())
        })?
        .min_ms);
    }
    // the runs back to back in one submission, timestamps around each (`time_repeats`)
    time_repeats(gpu, ds, 0, iters)?.gpu_min_ms.ok_or_else(no_timestamps)
}

/// Repeated runs of one list of dispatches timed as `time_repeats` times them.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy, Debug)]
pub struct RepeatTiming {
    /// The median and the fastest run by the GPU's clock (timestamps written before and after
    /// each run); None where the adapter has no timestamp queries.
    pub gpu_ms: Option<f64>,
    pub gpu_min_ms: Option<f64>,
    /// Wall time of the whole submission (encode, submit, run, sync) per run.
    pub wall_ms: f64,
    /// CPU time of this process over the submission per run (NaN where unknown).
    pub cpu_ms: f64,
    pub iters: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl RepeatTiming {
    /// The time per run by `clock`: the GPU's median where it has timestamps, else the wall's.
    pub fn ms(&self, clock: Clock) -> f64 {
        match (clock, self.gpu_ms) {
            (Clock::Timestamps, Some(ms)) => ms,
            _ => self.wall_ms,
        }
    }
}

/// The most runs one `time_repeats` submission holds (two queries each; wgpu allows 4,096
/// queries per set).
#[cfg(not(target_arch = "wasm32"))]
pub const MAX_TIMED_REPEATS: usize = 2048;

/// `ds` run `iters` times back to back in one submission, after `warmup` runs in another: each
/// run's time on the GPU's clock from timestamps written around it (where the adapter has
/// timestamp queries), and the wall and CPU time of the submission per run. One submission
/// keeps the host's submit and sync out of the GPU times, so one call ranks kernels within a few
/// percent on a GPU; the wall time beside it says what a caller that syncs each run would see.
#[cfg(not(target_arch = "wasm32"))]
pub fn time_repeats(gpu: &Gpu, ds: &[Dispatch], warmup: usize, iters: usize) -> Result<RepeatTiming> {
    let iters = iters.clamp(1, MAX_TIMED_REPEATS);
    let refs: Vec<&Dispatch> = ds.iter().collect();
    let device = gpu.device();
    if warmup > 0 {
        let mut encoder = device.create_command_encoder(&Default::default());
        for _ in 0..warmup {
            super::dispatch::encode_dispatches(&mut encoder, "convoy warm-up", None, &refs);
        }
        gpu.queue().submit([encoder.finish()]);
        gpu.sync()?;
    }
    let stamped = gpu.info().has_timestamps();
    let queries = stamped.then(|| {
        device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("convoy repeats"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * iters as u32,
        })
    });
    let bytes = 16 * iters as u64;
    let buffer = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("convoy repeats"),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let resolved = buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
    let staging = buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let cpu = process_cpu_ms();
    let started = std::time::Instant::now();
    let mut encoder = device.create_command_encoder(&Default::default());
    for i in 0..iters {
        let writes = queries.as_ref().map(|q| (q, 2 * i as u32));
        super::dispatch::encode_dispatches(&mut encoder, "convoy repeats", writes, &refs);
    }
    if let Some(q) = &queries {
        encoder.resolve_query_set(q, 0..2 * iters as u32, &resolved, 0);
        encoder.copy_buffer_to_buffer(&resolved, 0, &staging, 0, bytes);
    }
    let index = gpu.queue().submit([encoder.finish()]);
    gpu.sync()?;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3 / iters as f64;
    let cpu_ms = match (cpu, process_cpu_ms()) {
        (Some(a), Some(b)) => (b - a) / iters as f64,
        _ => f64::NAN,
    };
    let (mut gpu_ms, mut gpu_min_ms) = (None, None);
    if stamped {
        let period_ns = f64::from(gpu.queue().get_timestamp_period());
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&super::map_read_after(gpu, &staging, index)?);
        let mut runs: Vec<f64> = ticks
            .chunks_exact(2)
            .map(|t| t[1].wrapping_sub(t[0]) as f64 * period_ns / 1e6)
            .collect();
        runs.sort_by(f64::total_cmp);
        gpu_ms = Some(runs[runs.len() / 2]);
        gpu_min_ms = Some(runs[0]);
    }
    Ok(RepeatTiming {
        gpu_ms,
        gpu_min_ms,
        wall_ms,
        cpu_ms,
        iters,
    })
}
