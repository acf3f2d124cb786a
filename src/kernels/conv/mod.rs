//! conv2d kernels. Which kernel runs each pass of a conv on a device is one table,
//! `variants` (a pure function per pass of the policy, the geometry, the storage type and the
//! statistics wanted, unit-tested on described adapters); the launchers, one file per pass,
//! run what it chose. Forward: an implicit GEMM with a register tile of up to 8 output channels
//! x 4 pixels per invocation, the gpu family's 64 x 64 block tile staged through workgroup
//! memory (on f16 activations) or its large 128 x 128 tile (`mm`, where the grid fills the GPU;
//! on cooperative matrices for mixed precision where the GPU has them: `cooperative`), the cpu
//! family's
//! texture tile, a GEMM per image for wide 1x1 maps, or the staged depthwise kernel. Input
//! gradient: the forward of dy with transposed weights per stride phase (`phases`), the
//! register kernel over the flipped kernel, or for groups with few output channels a direct
//! kernel over cells of stride x stride pixels. Weight gradient: a split-K GEMM over the output
//! pixels, with lanes over the weight columns, in block tiles, through textures, or over the
//! pixels for narrow groups.

mod backward_data;
mod backward_weight;
mod buffers;
mod constants;
mod cooperative;
mod device;
mod forward;
mod mm;
mod phases;
mod split_k;
pub mod texture;
mod tile;
mod tune;
pub mod variants;

pub use backward_data::{
    backward_data, backward_data_block, backward_data_depthwise, backward_data_depthwise_transposed,
    backward_data_depthwise_vec4, backward_data_narrow, backward_data_texture, backward_data_tiled,
};
pub use backward_weight::{
    backward_weight, backward_weight_block, backward_weight_depthwise_vec4, backward_weight_depthwise_vec4_with,
    backward_weight_narrow, backward_weight_tiled,
};
pub use buffers::{ForwardBuffers, Placement, WeightGradientBuffers};
pub use constants::{FWD_PIXELS, STATS_BLOCK};
pub use forward::{forward, forward_block, forward_depthwise, forward_depthwise_vec4, forward_tiled};
pub use mm::{backward_data_mm, backward_weight_mm, forward_mm, forward_mm_split};
pub use phases::{transposes_to_forward, Phase, PhaseAxis};
pub use tile::{ConvTile, TileKind};
pub use tune::{key as tuner_key, recorded_tile};
pub use variants::{
    depthwise_staged_fits, depthwise_transposed_vec4_fits, depthwise_vec4_fits, forward_packs_weights,
    is_pointwise_gemm, ConvDevice,
};
