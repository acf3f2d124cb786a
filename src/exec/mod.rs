//! The executor: compiles a graph into a `Plan` (buffers planned, pipelines and bind groups
//! made once) and runs it with one submit. `TrainStep` wraps a plan of forward, backward and
//! optimizer update; `Inference` one of the forward alone. Their graphs go through the pass
//! lists of `passes::pipeline`; the plan lowers each node through its family with one
//! `ops::LowerCtx` (`lower.rs`), in named phases (`plan.rs`).

mod compile;
mod host_sync;
mod lower;
mod plan;
mod session;

pub use crate::passes::pipeline::ParamGroups;
pub use crate::store::ParamStore;
pub use compile::PlanStats;
pub use plan::{KernelProfile, Plan};
pub use session::{CompileOptions, Inference, LossScalerState, TrainStep};
