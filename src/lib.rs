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

// What a user builds with: models, training, data, files, ONNX, the functional ops, plots; and
// (hidden, not a user API) the benchmark harness of `convoy bench` and the criterion benches.
#[doc(hidden)]
pub mod bench;
pub mod data;
pub mod diag;
pub mod dist;
pub mod graph;
pub mod io;
pub mod nn;
pub mod onnx;
pub mod ops;
pub mod train;

// The runtime's own layers: users reach them through the re-exports below, convoy's own tests
// through `internals`.
mod device;
mod error;
mod exec;
mod kernels;
mod passes;
mod rng;
mod shape;
mod store;
mod tensor;
// the browser entry: wasm-bindgen exports its functions whatever their module's visibility
#[cfg(target_arch = "wasm32")]
mod web;

pub use device::{Gpu, GpuBuilder, GpuInfo, KernelFamily, KernelPolicy, MemoryCounts, PipelineCacheFile, Timing};
pub use error::{Error, Result};
pub use exec::{CompileOptions, Inference, KernelProfile, LossScalerState, ParamGroups, Plan, PlanStats, TrainStep};
pub use graph::Graph;
pub use kernels::loss_scale::LossScale;
pub use passes::precision::Precision;
pub use rng::Rng;
pub use shape::Shape;
pub use store::ParamStore;
pub use tensor::{DType, Tensor};

/// Not an API: the door of convoy's own integration tests (tests/) to the runtime's private
/// layers (kernel launchers, shader tables, compiler passes, device plumbing, each op family's
/// launchers). Hidden from the docs and free to change with any release; users, the examples,
/// the benches and the CLI build with the modules and re-exports above.
#[doc(hidden)]
pub mod internals {
    pub mod device {
        pub use crate::device::*;
    }
    pub mod exec {
        pub use crate::exec::*;
    }
    pub mod kernels {
        pub use crate::kernels::*;
    }
    pub mod passes {
        pub use crate::passes::*;
    }
    pub mod shape {
        pub use crate::shape::*;
    }
    pub mod store {
        pub use crate::store::*;
    }
    pub mod tensor {
        pub use crate::tensor::*;
    }
    /// Each op family's launchers and helpers (`ops::pad::launch`, `ops::dropout::keeps`, ...).
    pub mod ops {
        pub mod activation {
            pub use crate::ops::activation::*;
        }
        pub mod channels {
            pub use crate::ops::channels::*;
        }
        pub mod conv {
            pub use crate::ops::conv::*;
        }
        pub mod dropout {
            pub use crate::ops::dropout::*;
        }
        pub mod elementwise {
            pub use crate::ops::elementwise::*;
        }
        pub mod linear {
            pub use crate::ops::linear::*;
        }
        pub mod loss {
            pub use crate::ops::loss::*;
        }
        pub mod lowering {
            pub use crate::ops::lowering::*;
        }
        pub mod mul_channels {
            pub use crate::ops::mul_channels::*;
        }
        pub mod norm {
            pub use crate::ops::norm::*;
        }
        pub mod pad {
            pub use crate::ops::pad::*;
        }
        pub mod pool {
            pub use crate::ops::pool::*;
        }
        pub mod softmax {
            pub use crate::ops::softmax::*;
        }
        pub mod upsample {
            pub use crate::ops::upsample::*;
        }
    }
}

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
