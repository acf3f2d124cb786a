//! The GPU: adapter choice, device limits and features, the pipeline cache, dispatch recording
//! and readback. This is the only layer (with `kernels/` and `exec/`) that talks to wgpu.

mod dispatch;
mod gpu;
mod pipeline;
mod readback;
mod tune;

pub use dispatch::{grid_1d, Dispatch, MAX_WORKGROUPS_PER_DIM};
pub use gpu::{Gpu, GpuBuilder, GpuInfo};
pub use pipeline::{lock, Binding, Pipeline, Shader};
#[cfg(not(target_arch = "wasm32"))]
pub use readback::map_read_after;
pub use readback::{map_read, read_buffer};
pub use tune::Tuner;
