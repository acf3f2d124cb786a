//! Graph passes: fusion, f16 activation storage, autodiff, the optimizer update, and memory planning. Each is a small walker
//! over the graph; the graph is verified after each.

pub mod autodiff;
pub mod fuse;
pub mod memory;
pub mod optimizer;
pub mod precision;
