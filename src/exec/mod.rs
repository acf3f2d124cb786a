//! The executor: compiles a graph into a `Plan` (buffers planned, pipelines and bind groups
//! made once) and runs it with one submit. `TrainStep` wraps a plan of forward, backward and
//! optimizer update; `Inference` one of the forward alone.

mod host_sync;
mod lower;
mod plan;
mod session;

pub use crate::device::debug_level;
pub use crate::store::ParamStore;
pub use plan::{Plan, PlanStats};
pub use session::{CompileOptions, Inference, TrainStep};
