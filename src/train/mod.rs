//! Training: optimizers (and, as they land, schedules, the Learner, metrics and callbacks).

pub mod optim;

pub use optim::Optimizer;
