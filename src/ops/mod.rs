//! Ops: for each family its arguments and shape rule, and the functional API over tensors
//! (close to `torch.nn.functional`). Each function checks its inputs, launches its kernels and
//! returns new tensors; it submits work without waiting for it. Each family also lowers its
//! graph nodes to dispatches (`<family>::lower`), reading the plan's `LowerCtx` (`lowering`).

pub mod activation;
pub mod channels;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod linear;
pub mod loss;
pub mod lowering;
pub mod mul_channels;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod softmax;
pub mod upsample;

pub use activation::{activation, relu, Act};
pub use conv::{conv2d, Conv2dArgs, Conv2dGeom};
pub use elementwise::{add, flatten};
pub use linear::linear;
pub use loss::{cross_entropy, topk_accuracy};
pub use lowering::{LowerCtx, LowerHook};
pub use mul_channels::mul_channels;
pub use norm::{batch_norm, BatchNormArgs, BatchNormState};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, max_pool2d, Pool2dArgs, Pool2dGeom};

/// The lowering context of one plan, with the hooks of the families that keep state from node to
/// node installed (the cpu conv family's kept packings, `conv::install`).
pub(crate) fn lowering_context<'a>(
    gpu: &'a crate::device::Gpu,
    graph: &'a crate::graph::Graph,
    buffers: &'a [Option<wgpu::Buffer>],
    hyper: Option<&'a wgpu::Buffer>,
) -> crate::error::Result<LowerCtx<'a>> {
    let mut ctx = LowerCtx::new(gpu, graph, buffers, hyper);
    self::conv::install(&mut ctx)?;
    Ok(ctx)
}
