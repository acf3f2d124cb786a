//! The conv kernels of the CPU-driver family (`KernelPolicy::texture_operands`): the input is
//! first packed into an rgba32float operand texture (conv2d_pack_input: 4 channels of a group
//! per texel, the zero padding included), which the forward and the weight gradient read with
//! `textureLoad` (the weight gradient reads dy from a second texture, packed alike; the input
//! gradient is this forward of dy, see `backward_data_texture`). On a CPU driver a texel fetch is one vectorised gather where a storage-buffer
//! load with a per-lane address is a loop over the lanes. The packing pass moves the input once;
//! the conv reads it KH*KW*Cout/OCB times.

mod forward;
mod layout;
mod packing;
mod weight_gradient;

pub use forward::forward;
pub(super) use layout::swapped;
pub use layout::{
    swapped_pointwise, uses_texture, weight_gradient_columns, weight_gradient_lanes, weight_gradient_uses_texture,
    PackedInput,
};
pub use packing::{pack_for_phases, FoldedWeights, KeptOperands, SharedPacking, TransposedWeights};
pub use weight_gradient::backward_weight;
