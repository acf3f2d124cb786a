//! Every forward kernel against its float64 CPU reference on random shapes and data, and every
//! WGSL file through naga. One binary: the GPU is opened once.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod channels;
mod conv;
mod coop;
mod depthwise;
mod dropout;
mod elementwise;
mod half;
mod linear;
mod loss;
mod mul_channels;
mod norm;
mod optim;
mod pad;
mod pool;
mod shaders;
mod softmax;
mod stats;
mod sweep;
mod tensor;
mod upsample;
