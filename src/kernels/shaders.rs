//! Every WGSL kernel convoy has, with the layout of its bind group. One source of truth for the
//! native and web builds; `tests/kernels/shaders.rs` validates each with naga.

use crate::device::{Binding::*, Shader};

macro_rules! shaders {
    ($($id:ident = $file:literal [$($b:expr),*];)*) => {
        $(pub static $id: Shader = Shader {
            name: $file,
            source: include_str!(concat!("../../shaders/", $file, ".wgsl")),
            bindings: &[$($b),*],
        };)*
        /// All kernels, for validation and warm-up.
        pub static ALL: &[&Shader] = &[$(&$id),*];
    };
}

shaders! {
    CONV2D_FWD = "conv2d_fwd" [Uniform, Read, Read, Read, Read, ReadWrite];
    CONV2D_BWD_DATA = "conv2d_bwd_data" [Uniform, Read, Read, ReadWrite];
    CONV2D_BWD_WEIGHT = "conv2d_bwd_weight" [Uniform, Read, Read, ReadWrite];
    CONV2D_BWD_WEIGHT_DIRECT = "conv2d_bwd_weight_direct" [Uniform, Read, Read, ReadWrite];
    SPLIT_K_REDUCE = "split_k_reduce" [Uniform, Read, ReadWrite];
    CHANNEL_SUM = "channel_sum" [Uniform, Read, ReadWrite];
    BATCH_NORM_STATS = "batch_norm_stats" [Uniform, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite];
    BATCH_NORM_RUNNING = "batch_norm_running" [Uniform, Read, Read, Read, ReadWrite, ReadWrite];
    BATCH_NORM_APPLY = "batch_norm_apply" [Uniform, Read, Read, Read, Read, Read, Read, ReadWrite];
    BATCH_NORM_BWD_REDUCE = "batch_norm_bwd_reduce" [Uniform, Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
    BATCH_NORM_BWD_DATA = "batch_norm_bwd_data" [Uniform, Read, Read, Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
    FOLD_BN = "fold_bn" [Uniform, Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
    RELU = "relu" [Uniform, Read, ReadWrite];
    RELU_BWD = "relu_bwd" [Uniform, Read, Read, ReadWrite];
    ADD = "add" [Uniform, Read, Read, ReadWrite];
    MAX_POOL2D_FWD = "max_pool2d_fwd" [Uniform, Read, ReadWrite];
    MAX_POOL2D_BWD = "max_pool2d_bwd" [Uniform, Read, Read, ReadWrite];
    AVG_POOL2D_FWD = "avg_pool2d_fwd" [Uniform, Read, ReadWrite];
    AVG_POOL2D_BWD = "avg_pool2d_bwd" [Uniform, Read, ReadWrite];
    ADAPTIVE_AVG_POOL2D_FWD = "adaptive_avg_pool2d_fwd" [Uniform, Read, ReadWrite];
    ADAPTIVE_AVG_POOL2D_BWD = "adaptive_avg_pool2d_bwd" [Uniform, Read, ReadWrite];
    GEMM = "gemm" [Uniform, Read, Read, Read, ReadWrite];
    GEMM_ROWS = "gemm_rows" [Uniform, Read, Read, Read, Read, ReadWrite];
    CROSS_ENTROPY_FWD = "cross_entropy_fwd" [Uniform, Read, Read, ReadWrite];
    CROSS_ENTROPY_BWD = "cross_entropy_bwd" [Uniform, Read, Read, ReadWrite];
    TOPK_ACCURACY = "topk_accuracy" [Uniform, Read, Read, ReadWrite];
    ACT_STATS_PARTIAL = "act_stats_partial" [Uniform, Read, ReadWrite];
    ACT_STATS_FINISH = "act_stats_finish" [Uniform, Read, ReadWrite];
    SGD_STEP = "sgd_step" [Uniform, Read, Read, ReadWrite, ReadWrite];
    ADAMW_STEP = "adamw_step" [Uniform, Read, Read, ReadWrite, ReadWrite, ReadWrite];
}
