//! conv2d kernels, one file per pass. Forward: an implicit GEMM with a register tile of up to 8
//! output channels x 4 pixels per invocation, the gpu family's 64 x 64 block tile staged through
//! workgroup memory (on f16 activations, on cooperative matrices where the GPU has them), or the
//! CPU family's texture tile; with few channels per group, 4 pixels of
//! one row sharing their window's row segments. Input gradient: the same over the flipped
//! kernel, one dispatch per stride phase, or, for groups with few output channels (depthwise), a
//! direct kernel over cells of stride x stride pixels. Weight gradient: a split-K GEMM over the
//! output pixels, with lanes over the weight columns, in block tiles, or over the pixels for
//! narrow groups.

mod backward_data;
mod backward_weight;
mod buffers;
mod constants;
mod cooperative;
mod forward;
mod split_k;
pub mod texture;
mod tile;
mod tune;

pub use backward_data::{
    backward_data, backward_data_block, backward_data_depthwise, backward_data_narrow, backward_data_texture,
    backward_data_tiled, transposes_to_forward,
};
pub use backward_weight::{backward_weight, backward_weight_block, backward_weight_narrow, backward_weight_tiled};
pub use buffers::{ForwardBuffers, Placement};
pub use constants::{FWD_PIXELS, STATS_BLOCK};
pub use cooperative::{cooperative_takes, forward_cooperative};
pub use forward::{depthwise_staged_fits, forward, forward_block, forward_depthwise, forward_tiled, is_pointwise_gemm};
pub use tile::{ConvTile, TileKind};
