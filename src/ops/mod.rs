//! Ops: for each family its arguments and shape rule, and the functional API over tensors
//! (close to `torch.nn.functional`). Each function checks its inputs, launches its kernels and
//! returns new tensors; it submits work without waiting for it.

pub mod activation;
pub mod channels;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod linear;
pub mod loss;
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
pub use mul_channels::mul_channels;
pub use norm::{batch_norm, BatchNormArgs, BatchNormState};
pub use pool::{adaptive_avg_pool2d, avg_pool2d, max_pool2d, Pool2dArgs, Pool2dGeom};
