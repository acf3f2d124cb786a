//! Ops: for each family its arguments and shape rule, and the functional API over tensors
//! (close to `torch.nn.functional`). Each function checks its inputs, launches its kernels and
//! returns new tensors; it submits work without waiting for it. Each family also lowers its
//! graph nodes to dispatches (`<family>::lower`), reading the plan's `LowerCtx` (`lowering`).

pub(crate) mod activation;
pub(crate) mod channels;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod elementwise;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod lowering;
pub(crate) mod mul_channels;
pub(crate) mod norm;
pub(crate) mod pad;
pub(crate) mod pool;
pub(crate) mod softmax;
pub(crate) mod upsample;

pub use activation::{activation, relu, Act};
pub use conv::{conv2d, Conv2dArgs, Conv2dGeom};
pub use dropout::DropoutArgs;
pub use elementwise::{add, flatten};
pub use linear::linear;
pub use loss::{cross_entropy, topk_accuracy};
pub(crate) use lowering::LowerCtx;
pub use mul_channels::mul_channels;
pub use norm::{batch_norm, BatchNormArgs, BatchNormState};
pub use pad::{pad2d, Pad2dArgs};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, max_pool2d, Pool2dArgs, Pool2dGeom};
pub use softmax::softmax;
pub use upsample::{upsample, UpsampleArgs};

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
