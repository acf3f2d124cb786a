//! The GPU: adapter choice, device limits and features, the pipeline cache, dispatch recording
//! and readback. This is the only layer (with `kernels/` and `exec/`) that talks to wgpu.

mod dispatch;
mod gpu;
mod pipeline;
mod policy;
mod readback;
mod serial;
mod texture;
mod timer;
mod tune;

pub use dispatch::{encode_dispatches, grid_1d, Dispatch, Resource, TextureFill, MAX_WORKGROUPS_PER_DIM};
pub use gpu::{Gpu, GpuBuilder, GpuInfo, MemoryCounts};
pub use pipeline::{lock, Binding, Pipeline, Shader};
pub use policy::{KernelFamily, KernelPolicy};
#[cfg(not(target_arch = "wasm32"))]
pub use readback::map_read_after;
pub use readback::{map_read, read_buffer};
pub use serial::{Held, SerialGuard};
pub(crate) use texture::TEXEL_BYTES;
pub use texture::{OperandTexture, OPERAND_FORMAT};
#[cfg(not(target_arch = "wasm32"))]
pub use timer::{time_dispatches, time_gpu};
pub use timer::{Clock, Timing};
pub use tune::{TuneCost, Tuner};
