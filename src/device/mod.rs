//! The GPU: adapter choice, device limits and features, the pipeline cache, dispatch recording
//! and readback. This is the only layer (with `kernels/` and `exec/`) that talks to wgpu.

mod cooperative;
mod disk_cache;
mod dispatch;
mod env;
mod gpu;
mod info;
mod pipeline;
mod policy;
mod readback;
mod scratch;
mod serial;
mod texture;
mod timer;
mod tune;

pub use disk_cache::PipelineCacheFile;
pub use dispatch::{encode_dispatches, grid_1d, Dispatch, Resource, TextureFill, MAX_WORKGROUPS_PER_DIM};
pub use gpu::{Gpu, GpuBuilder, MemoryCounts};
pub use info::GpuInfo;
pub use pipeline::{Binding, BuildTime, Pipeline, Shader, Since};
pub use policy::{KernelFamily, KernelPolicy, Overrides};
#[cfg(not(target_arch = "wasm32"))]
pub use readback::map_read_after;
pub use readback::{map_read, read_buffer};
pub use scratch::Scratch;
pub use serial::{Held, SerialGuard};
pub(crate) use texture::TEXEL_BYTES;
pub use texture::{OperandTexture, OPERAND_FORMAT};
#[cfg(not(target_arch = "wasm32"))]
pub use timer::{time_dispatches, time_gpu, time_repeats, RepeatTiming, MAX_TIMED_REPEATS};
pub use timer::{Clock, Timing};
pub use tune::{TuneCost, Tuner};

/// CONVOY_DEBUG: 1 logs plans and the tuner's timings, 3 also dumps graphs. Read here, at the
/// bottom, because the kernels' tuner logs as well as the executor.
pub fn debug_level() -> u32 {
    std::env::var("CONVOY_DEBUG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A poisoned lock only means another thread panicked mid-insert; the map is still usable. Here
/// rather than in pipeline.rs because the serialiser, the tuner and readback lock too.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
