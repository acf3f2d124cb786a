//! Training: optimizers (and, as they land, schedules, the Learner, metrics and callbacks).

pub mod checkpoint;
pub mod learner;
pub mod optim;
pub mod schedule;

pub use checkpoint::{load_checkpoint, save_checkpoint, CheckpointInfo};
pub use learner::{EpochStats, Learner};
pub use optim::Optimizer;
pub use schedule::OneCycle;
