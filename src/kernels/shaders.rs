//! Every WGSL kernel convoy has, with the layout of its bind group. One source of truth for the
//! native and web builds; `tests/shaders.rs` validates each with naga.

use crate::device::{Binding::*, Shader};

macro_rules! shader {
    ($id:ident, $file:literal, [$($b:expr),*]) => {
        pub static $id: Shader = Shader {
            name: $file,
            source: include_str!(concat!("../../shaders/", $file, ".wgsl")),
            bindings: &[$($b),*],
        };
    };
}

shader!(
    CONV2D_FWD,
    "conv2d_fwd",
    [Uniform, Read, Read, Read, ReadWrite]
);
shader!(
    BATCH_NORM_STATS,
    "batch_norm_stats",
    [Uniform, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite]
);
shader!(
    BATCH_NORM_APPLY,
    "batch_norm_apply",
    [Uniform, Read, Read, Read, Read, Read, ReadWrite]
);
shader!(RELU, "relu", [Uniform, Read, ReadWrite]);
shader!(ADD, "add", [Uniform, Read, Read, ReadWrite]);
shader!(MAX_POOL2D_FWD, "max_pool2d_fwd", [Uniform, Read, ReadWrite]);
shader!(AVG_POOL2D_FWD, "avg_pool2d_fwd", [Uniform, Read, ReadWrite]);
shader!(
    ADAPTIVE_AVG_POOL2D_FWD,
    "adaptive_avg_pool2d_fwd",
    [Uniform, Read, ReadWrite]
);
shader!(GEMM, "gemm", [Uniform, Read, Read, Read, ReadWrite]);
shader!(
    CROSS_ENTROPY_FWD,
    "cross_entropy_fwd",
    [Uniform, Read, Read, ReadWrite]
);
shader!(
    TOPK_ACCURACY,
    "topk_accuracy",
    [Uniform, Read, Read, ReadWrite]
);

/// All kernels, for validation and warm-up.
pub static ALL: &[&Shader] = &[
    &CONV2D_FWD,
    &BATCH_NORM_STATS,
    &BATCH_NORM_APPLY,
    &RELU,
    &ADD,
    &MAX_POOL2D_FWD,
    &AVG_POOL2D_FWD,
    &ADAPTIVE_AVG_POOL2D_FWD,
    &GEMM,
    &CROSS_ENTROPY_FWD,
    &TOPK_ACCURACY,
];
