//! convoy: a CNN runtime on portable GPU compute. Hand-written WGSL kernels run through wgpu on
//! Vulkan, Metal, DX12 and WebGPU.
//!
//! ```no_run
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
pub mod tensor;
pub mod train;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use device::{Gpu, GpuBuilder, GpuInfo, KernelFamily, KernelPolicy};
pub use error::{Error, Result};
pub use exec::{CompileOptions, Inference, ParamStore, Plan, TrainStep};
pub use graph::Graph;
pub use shape::Shape;
pub use tensor::{DType, Tensor};
