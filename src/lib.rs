//! convoy: a CNN runtime on portable GPU compute. Hand-written WGSL kernels run through wgpu on
//! Vulkan, Metal, DX12, OpenGL and WebGPU.
//!
//! ```
//! use convoy::{ops, Gpu, Tensor};
//! let gpu = Gpu::new()?;
//! let x = Tensor::from_slice(&gpu, &[1.0; 2 * 3 * 8 * 8], [2, 3, 8, 8])?;
//! let w = Tensor::from_slice(&gpu, &[0.1; 4 * 3 * 3 * 3], [4, 3, 3, 3])?;
//! let y = ops::conv2d(&gpu, &x, &w, None, ops::Conv2dArgs::default().padding(1))?;
//! assert_eq!(y.dims(), &[2, 4, 8, 8]);
//! # Ok::<(), convoy::Error>(())
//! ```

// Shared code holds GPU handles in Arc for native threads; in the browser wgpu's handles are not
// Send (one thread), which is fine there.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

pub mod bench;
pub mod data;
pub mod device;
pub mod diag;
pub mod dist;
pub mod error;
pub mod exec;
pub mod graph;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod passes;
pub mod rng;
pub mod shape;
pub mod store;
pub mod tensor;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use device::{Gpu, GpuBuilder, GpuInfo, KernelFamily, KernelPolicy};
pub use error::{Error, Result};
pub use exec::{CompileOptions, Inference, Plan, TrainStep};
pub use graph::Graph;
pub use shape::Shape;
pub use store::ParamStore;
pub use tensor::{DType, Tensor};

// The Rust snippets of the README and of docs/ compile and run as doctests (`cargo test`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(doctest)]
pub mod docs_doctests {
    #[doc = include_str!("../docs/cli.md")]
    pub struct Cli;
    #[doc = include_str!("../docs/onnx.md")]
    pub struct Onnx;
    #[doc = include_str!("../docs/kernels.md")]
    pub struct Kernels;
    #[doc = include_str!("../docs/browser.md")]
    pub struct Browser;
    #[doc = include_str!("../docs/mpi.md")]
    pub struct Mpi;
    #[doc = include_str!("../docs/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../docs/layout.md")]
    pub struct Layout;
    #[doc = include_str!("../docs/architecture.md")]
    pub struct Architecture;
}
