//! Graph passes: fusion, f16 activation storage, autodiff, the optimizer update, and memory planning. Each is a small walker
//! over the graph. `pipeline` holds the pass lists of training and inference, written once, and
//! verifies the graph after each pass.

pub mod autodiff;
pub mod fuse;
pub mod memory;
pub mod optimizer;
pub mod pipeline;
pub mod precision;
