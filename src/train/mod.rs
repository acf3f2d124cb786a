//! Training: optimizers, schedules, the Learner, epoch metrics and checkpoints.

pub mod checkpoint;
// the Learner drives training with blocking reads; the web build drives `TrainStep` through
// its async methods from the page's event loop
#[cfg(not(target_arch = "wasm32"))]
pub mod learner;
pub mod metrics;
pub mod schedule;

pub use crate::passes::optimizer::{is_optimizer_state, Optimizer};
/// The loss scaler's state in checkpoints (mixed precision; `kernels::loss_scale`).
pub use crate::passes::precision::LOSS_SCALER;
#[cfg(not(target_arch = "wasm32"))]
pub use checkpoint::{load_checkpoint, save_checkpoint};
pub use checkpoint::{parse_checkpoint, CheckpointInfo};
#[cfg(not(target_arch = "wasm32"))]
pub use learner::Learner;
pub use metrics::EpochStats;
pub use schedule::OneCycle;
