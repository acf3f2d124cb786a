//! Every WGSL kernel convoy has, with the layout of its bind group. One source of truth for the
//! native and web builds; `tests/kernels/shaders.rs` validates each with naga.

use crate::device::Binding::{Read, ReadWrite, Texture, Uniform};
use crate::device::{Gpu, Shader};
use crate::error::{Error, Result};
use crate::shape::DType;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// `NAME = "file" [bindings];`, or `NAME = "file" with prelude "a" "b" [bindings];` for a kernel
/// whose source starts with shared prelude files, in that order (WGSL has no include);
/// `NAME = trusted "file" ...` for a kernel audited as bounded by construction
/// (`Shader::trusted`: say why beside it).
macro_rules! shaders {
    (@trusted trusted) => { true };
    (@trusted) => { false };
    ($($id:ident = $($trusted:ident)? $file:literal $(with prelude $($prelude:literal)+)? [$($b:expr),*];)*) => {
        $(pub static $id: Shader = Shader {
            name: $file,
            source: concat!(
                $($(include_str!(concat!("../../shaders/", $prelude, ".wgsl")),)+)?
                include_str!(concat!("../../shaders/", $file, ".wgsl"))
            ),
            bindings: &[$($b),*],
            trusted: shaders!(@trusted $($trusted)?),
        };)*
        /// All kernels, for validation and warm-up.
        pub static ALL: &[&Shader] = &[$(&$id),*];
        /// The prelude files the kernels start with (one entry per kernel and prelude).
        pub static PRELUDES: &[&str] = &[$($($($prelude,)+)?)*];
    };
}

shaders! {
    // trusted: weight rows oc0 + min(o, noc - 1) < Cout (grid z: groups x channel blocks of
    // OCB <= 8, `check`), taps below KY1 <= KH and KX1 <= KW; x indices selected to 0 where
    // outside (spare lanes then read image 0's planes; an empty batch returns first), seg's
    // min(., 3); y stored only where ok (OW % 4 == 0 for ROW_SEGMENT); the statistics' slots
    // below OCB x WG <= 512 (`writes_stats_blocks`: WG <= 64), blocks below ceil(pixels / 256)
    CONV2D_FWD = trusted "conv2d_fwd" with prelude "conv2d_geometry" "activation" "conv2d_epilogue" "conv2d_stats" [Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite];
    // trusted: stage reads at most TK x AV + 15 + 7 x AV = 270 < 272 (wa) and TK x BV + 15 +
    // 7 x BV = 255 < 256 (xb), stores at most 270 and 255, the statistics' slots below 256;
    // component indices % 4; every global index is selected to 0 where its value is outside
    // (the vec4 stores only where all 4 pixels are valid and OH*OW % 4 == 0: VEC4)
    CONV2D_FWD_BLOCK = trusted "conv2d_fwd_block" with prelude "conv2d_geometry" "activation" "conv2d_epilogue" [Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read];
    // trusted: stage indices are constants or lane positions below their dimensions (a_grp + 1
    // <= 3 only where BM = 128 gives A_GROUPS = 4; a_quad ^ ke < 8; b_c16 + 1 <= 7; the
    // statistics' slots from lid < 256 and from lid < nrows <= BM); weights, pixels and
    // outputs are selected or guarded where outside their tensors (the vec4 stores only where
    // all 4 pixels are inside, aligned: VEC4 needs OH*OW % 4 == 0; FULL_TILES drops the
    // loaders' row, K and pixel checks only where the launcher found all three whole tiles,
    // UNPADDED the image-bounds check only where every tap of every output lies inside;
    // SPLIT_K's slice below the slices of the grid's z, its K rows below its chunks' or selected
    // like any past K, its stores at a valid pixel's offset in its slice of the slices' buffer)
    CONV2D_FWD_MM = trusted "conv2d_fwd_mm" with prelude "conv2d_geometry" "activation" "conv2d_epilogue" "conv2d_mm_acc" "conv2d_mm_load" "conv2d_mm_core" [Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, ReadWrite, ReadWrite];
    // trusted: every position read or stored below N x OH x OW (a lane's past the block's last
    // clamped to it) in a plane of channel c < Cout (the grid's spare workgroups return), each
    // slice k below the slices the buffer holds; the statistics' slots below WG = 64, blocks
    // below ceil(N x OH x OW / 256)
    CONV2D_SPLIT_K_EPILOGUE = trusted "conv2d_split_k_epilogue" with prelude "activation" "conv2d_epilogue" "conv2d_stats" [Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read];
    // trusted: the window index is below rows x cols = HALO (the launcher sets it so), the tap
    // index below KH x KW <= TAPS_MAX (`depthwise_staged_fits`); every loop counts up to a bound
    CONV2D_FWD_DEPTHWISE = trusted "conv2d_fwd_depthwise" with prelude "conv2d_geometry" "activation" "conv2d_epilogue" [Uniform, Read, Read, Read, Read, ReadWrite];
    // trusted: x's row is a plane's (image below N: positions below N x OH x OW; channel below
    // C) clamped row, its vec4 column clamped to [0, W/4); the taps below C x KH x KW; y4/res4
    // at a unit's first output / 4, a multiple of 4 inside its plane; the lane's window index
    // below 4 KH <= 28 and its taps below KH x KW <= 49 (`depthwise_vec4_fits`); the statistics
    // lane below WG <= 64 (the launcher) and block below ceil(N x OH x OW / 256)
    CONV2D_FWD_DEPTHWISE_VEC4 = trusted "conv2d_fwd_depthwise_vec4" with prelude "conv2d_geometry" "activation" "conv2d_epilogue" "conv2d_stats" "conv2d_depthwise_rows" [Uniform, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read];
    // trusted: dy at a unit below the chunk's end (<= N x OH x OW), x as the forward's
    // (clamped row and column), the tap sums below KH x KW <= 49, red below WG x KH x KW = RED,
    // dw's slice below the chunks (the partial buffer holds them all) times C x KH x KW
    CONV2D_BWD_WEIGHT_DEPTHWISE_VEC4 = trusted "conv2d_bwd_weight_depthwise_vec4" with prelude "conv2d_geometry" "conv2d_depthwise_rows" [Uniform, Read, Read, ReadWrite];
    // trusted: dy's row clamped into dy (image below N, channel below C), its column clamped into
    // the row; the taps below C x KH x KW; dx at a unit's first value / 4 inside its plane; the
    // windows below 2 KH <= 14 vec4s and E <= 8 values, the taps in registers below KH x KW <=
    // 49 (`depthwise_transposed_vec4_fits`)
    CONV2D_BWD_DATA_DEPTHWISE_VEC4 = trusted "conv2d_bwd_data_depthwise_vec4" with prelude "conv2d_geometry" [Uniform, Read, Read, ReadWrite];
    // trusted: coarse blocks below ceil(total / (fine x factor)) = ceil(pixels / 256), the
    // statistics' (fine 64 or 128 divides 256); a fine block is read only where its first
    // pixel is below total, so below ceil(total / fine), the scratch's blocks
    CONV2D_STATS_CONDENSE = trusted "conv2d_stats_condense" [Uniform, Read, ReadWrite];
    // trusted: i < total = Cin x Cout/g x TH x TW (wt's size), so the channel below Cin; the
    // taps K0 + (T - 1 - t) x STEP <= K - 1 (`phase_axis`: K0 < STEP, T = ceil((K - K0) / STEP);
    // all taps: K0 = 0, STEP = 1, T = K), so w's index is below Cout x Cin/g x KH x KW
    CONV2D_TRANSPOSE_WEIGHTS = trusted "conv2d_transpose_weights" with prelude "weight_transpose" [Uniform, Read, ReadWrite];
    // trusted: i < planes x ROWS x COLS (the phase's size); first + S x (count - 1) < H (W)
    // per axis (`phase_axis`: count = ceil((size - first) / S); the zero pass is all of dx)
    CONV2D_SCATTER_PHASE = trusted "conv2d_scatter_phase" [Uniform, Read, ReadWrite];
    CONV2D_PACK_INPUT = "conv2d_pack_input" with prelude "weight_transpose" [Uniform, Read, ReadWrite, Read, Read];
    CONV2D_FWD_TEX = "conv2d_fwd_tex" with prelude "conv2d_geometry" "activation" "conv2d_epilogue" "conv2d_stats" "operand_share" [Uniform, Texture, Texture, Read, Read, ReadWrite, ReadWrite];
    CONV2D_BWD_WEIGHT_TEX = "conv2d_bwd_weight_tex" with prelude "conv2d_geometry" "conv2d_bwd_weight_store" "operand_share" [Uniform, Texture, Texture, ReadWrite];
    // trusted: the core's stage indices as conv2d_fwd_mm's; the phase index below the phases
    // the launcher writes (at most 16: `MM_PHASES_MAX`); w, dy selected to 0 where outside,
    // dx stored only at positions inside the phase's map and the block's rows
    CONV2D_BWD_DATA_MM = trusted "conv2d_bwd_data_mm" with prelude "conv2d_geometry" "conv2d_mm_acc" "conv2d_mm_load" "conv2d_mm_core" [Uniform, Read, Read, ReadWrite];
    // trusted: a phase's pixels iy = y_start + SH x t < H (ph = ceil((H - y_start) / SH); no
    // pixels returns), dy selected to 0 where outside (then image 0's planes), weight rows
    // ic0 + min(o, nic - 1) < Cin/g (grid z: groups x blocks of ICB <= 8) and oc < Cout/g, taps
    // below KY1 <= KH, KX1 <= KW; dx stored only where ok
    CONV2D_BWD_DATA = trusted "conv2d_bwd_data" with prelude "conv2d_geometry" [Uniform, Read, Read, ReadWrite];
    // trusted: stage indices at most (TP + 7) x SV + 7 + 8 = 270 < 272 and reads at most
    // TP x SV + 15 + 7 x SV = 270, component indices % 4; every global index is selected to 0
    // where its value is not inside its tensor
    CONV2D_BWD_WEIGHT_BLOCK = trusted "conv2d_bwd_weight_block" with prelude "conv2d_geometry" [Uniform, Read, Read, ReadWrite];
    // trusted: stage indices are lane positions below their dimensions (the loader's cb / 4
    // <= 3 and cb / 8 <= 1 only where BM gives A_GROUPS = 4 or 2; quads ^ (pixel % 8) < 8; the
    // compute role's a_grp + 1 <= 3 only where BM = 128); dy and x are selected to 0 where
    // outside, the partial sums guarded by the block's rows and K
    CONV2D_BWD_WEIGHT_MM = trusted "conv2d_bwd_weight_mm" with prelude "conv2d_geometry" "conv2d_mm_acc" "conv2d_bwd_weight_mm_core" [Uniform, Read, Read, ReadWrite];
    // trusted: x and dy selected to 0 or clamped inside (the pixel's (n, oy, ox) carried with
    // q < q1 <= N x OH x OW; channels min(ic, Cin/g - 1), rows min(o, noc - 1)); acc's loops
    // to OCB <= 8 (`check_backward`) and KC = 4; part stored at live columns (ky < KY1, kx <
    // KX1, ic < Cin/g) and rows below noc, in the chunk's slice (grid y: chunks)
    CONV2D_BWD_WEIGHT = trusted "conv2d_bwd_weight" with prelude "conv2d_geometry" "conv2d_bwd_weight_store" [Uniform, Read, Read, ReadWrite];
    // trusted: acc's index rx x CELLS + j < SW x CELLS <= 32 (the launcher's CELLS), seg's
    // below seg_len <= 32 (SEGMENT only then) or min'd to 31; dy selected to 0 where outside,
    // w's rows below Cout, dx stored only inside
    CONV2D_BWD_DATA_NARROW = trusted "conv2d_bwd_data_narrow" with prelude "conv2d_geometry" [Uniform, Read, Read, ReadWrite];
    // trusted: CIN_G x KH x KW <= 32 columns (`NARROW_COLUMNS`, refused above), so acc's and
    // red's (32 x WG) indices fit; dy and x selected to 0 where outside ((n, oy, ox) carried
    // with q, valid below q1); part at (chunk, oc, lid < columns)
    CONV2D_BWD_WEIGHT_NARROW = trusted "conv2d_bwd_weight_narrow" with prelude "conv2d_geometry" [Uniform, Read, Read, ReadWrite];
    // trusted: i < len and chunks c < chunks: part holds chunks x len, y len
    SPLIT_K_REDUCE = trusted "split_k_reduce" [Uniform, Read, ReadWrite];
    CHANNEL_SUM = "channel_sum" with prelude "workgroup_sum" [Uniform, Read, ReadWrite];
    BATCH_NORM_STATS = "batch_norm_stats" with prelude "workgroup_sum" [Uniform, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite];
    BATCH_NORM_MERGE = "batch_norm_merge" [Uniform, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite];
    BATCH_NORM_RUNNING = "batch_norm_running" [Uniform, Read, Read, Read, ReadWrite, ReadWrite];
    BATCH_NORM_APPLY = "batch_norm_apply" with prelude "activation" "elementwise_lanes" "channel_lanes" [Uniform, Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
    BATCH_NORM_BWD_REDUCE = "batch_norm_bwd_reduce" with prelude "activation" "elementwise_lanes" "channel_lanes" "workgroup_sum" [Uniform, Read, Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite];
    BATCH_NORM_BWD_FINISH = "batch_norm_bwd_finish" [Uniform, Read, ReadWrite, ReadWrite];
    BATCH_NORM_BWD_DATA = "batch_norm_bwd_data" with prelude "activation" "elementwise_lanes" "channel_lanes" [Uniform, Read, Read, Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
    FOLD_BN = "fold_bn" with prelude "elementwise_lanes" [Uniform, Read, Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
    ACTIVATION_FWD = "activation_fwd" with prelude "activation" [Uniform, Read, ReadWrite];
    ACTIVATION_BWD = "activation_bwd" with prelude "activation" [Uniform, Read, Read, ReadWrite];
    ADD = "add" with prelude "elementwise_lanes" [Uniform, Read, Read, ReadWrite];
    MUL_CHANNELS = "mul_channels" [Uniform, Read, Read, ReadWrite];
    DROPOUT = "dropout" [Uniform, Read, Read, ReadWrite];
    COPY_CHANNELS = "copy_channels" [Uniform, Read, ReadWrite];
    COPY_VEC4 = "copy_vec4" [Uniform, Read, ReadWrite];
    CHANNEL_SHUFFLE = "channel_shuffle" [Uniform, Read, ReadWrite];
    SOFTMAX = "softmax" with prelude "workgroup_sum" [Uniform, Read, Read, ReadWrite];
    UPSAMPLE = "upsample" [Uniform, Read, ReadWrite];
    PAD2D = "pad2d" [Uniform, Read, ReadWrite];
    ROW_DOT = "row_dot" with prelude "workgroup_sum" [Uniform, Read, Read, ReadWrite];
    MAX_POOL2D_FWD = "max_pool2d_fwd" [Uniform, Read, ReadWrite];
    MAX_POOL2D_ARGMAX = "max_pool2d_argmax" [Uniform, Read, ReadWrite];
    MAX_POOL2D_BWD = "max_pool2d_bwd" [Uniform, Read, Read, ReadWrite];
    AVG_POOL2D_FWD = "avg_pool2d_fwd" [Uniform, Read, ReadWrite];
    AVG_POOL2D_BWD = "avg_pool2d_bwd" [Uniform, Read, ReadWrite];
    ADAPTIVE_AVG_POOL2D_FWD = "adaptive_avg_pool2d_fwd" [Uniform, Read, ReadWrite];
    ADAPTIVE_AVG_POOL2D_BWD = "adaptive_avg_pool2d_bwd" [Uniform, Read, ReadWrite];
    GEMM = "gemm" [Uniform, Read, Read, Read, ReadWrite];
    GEMM_TEX = "gemm_tex" with prelude "operand_share" [Uniform, Texture, Texture, ReadWrite];
    // trusted: z < batch and rows row0 + min(r, nrows - 1) < M from the grid (M, N/4 >= 1
    // checked), B's column clamped to N/4 - 1, C (and bias, residual) only where inside
    GEMM_ROWS = trusted "gemm_rows" with prelude "activation" [Uniform, Read, Read, Read, Read, ReadWrite];
    CROSS_ENTROPY_FWD = "cross_entropy_fwd" with prelude "workgroup_sum" [Uniform, Read, Read, ReadWrite];
    CROSS_ENTROPY_BWD = "cross_entropy_bwd" [Uniform, Read, Read, ReadWrite, Read];
    TOPK_ACCURACY = "topk_accuracy" with prelude "workgroup_sum" [Uniform, Read, Read, ReadWrite];
    ACT_STATS_PARTIAL = "act_stats_partial" with prelude "workgroup_sum" [Uniform, Read, ReadWrite];
    ACT_STATS_FINISH = "act_stats_finish" [Uniform, Read, ReadWrite];
    CAST = "cast" [Uniform, Read, ReadWrite];
    ROUND_HALF = "round_half" [Uniform, Read, ReadWrite];
}

/// The large-tile kernels with cooperative-matrix variants (`cooperative_variant`): kernels no
/// test machine runs on matrix units, validated by naga and compiled to SPIR-V in the tests.
pub static COOPERATIVE: &[&Shader] = &[&CONV2D_FWD_MM, &CONV2D_BWD_DATA_MM, &CONV2D_BWD_WEIGHT_MM];

/// The f32 compute forms of the large-tile kernels, as they include them, and their
/// cooperative-matrix forms (which follow conv2d_coop_tile and the fragments).
const COOPERATIVE_FORMS: &[(&str, &str)] = &[
    (
        include_str!("../../shaders/conv2d_mm_core.wgsl"),
        include_str!("../../shaders/conv2d_mm_coop.wgsl"),
    ),
    (
        include_str!("../../shaders/conv2d_bwd_weight_mm_core.wgsl"),
        include_str!("../../shaders/conv2d_bwd_weight_mm_coop.wgsl"),
    ),
];

/// Whether `shader` has a cooperative-matrix variant (see `cooperative_variant`).
pub fn has_cooperative_variant(shader: &Shader) -> bool {
    COOPERATIVE_FORMS.iter().any(|(plain, _)| shader.source.contains(plain))
}

/// Whether `shader` is a cooperative-matrix variant already (one of `cooperative_variant`'s, or
/// a test's copy of one).
pub fn is_cooperative(shader: &Shader) -> bool {
    shader.source.contains("var<private> coop_sub")
}

/// The cooperative-matrix variant of a large-tile kernel (`COOPERATIVE`): its f32 compute form
/// replaced by the fragments (coop_fragments, on the device's matrix units; or, `emulated`,
/// coop_fragments_emulated), the tile (conv2d_coop_tile) and the cooperative form, the
/// activations it stores in f16, the directives first. Its operands are staged as f16: a caller
/// runs it on values f16 represents (mixed precision's), or accepts their rounding. Trusted as
/// the kernel is: its global reads and writes are the f32 form's, and its workgroup indices are
/// bounded by construction (lanes below 256, BM 128 or 64, chunks of BK = 16, stage s <= 1):
/// A's at most s * BM * LDA + (BM - 1) * LDA + 15 < 2 * BM * LDA (rows below BM: a lane's
/// wrow + 32j, lch + 7, a fragment's 16 from (sub / 4) * BM / 2 + 16 (BM / 32 - 1); K columns
/// below 16: wk + 8, pixel r, a fragment's 16), B's s * BK * LDB + 15 * LDB + 127 < 4,352
/// (columns below 128: xcol, lcb * 8 + 7, a fragment's 16 from (sub % 4) * 32 + 16); the result
/// areas' sub * AREA + 15 * LDC + 15 < 2,560; the statistics' (255 * 2 + 1) * 4 + 3 < 2,560.
/// Built once per kernel and form and kept for the life of the process.
pub fn cooperative_variant(shader: &'static Shader, emulated: bool) -> Result<&'static Shader> {
    let Some((plain, coop)) = COOPERATIVE_FORMS
        .iter()
        .find(|(plain, _)| shader.source.contains(plain))
    else {
        return Err(Error::arg(
            shader.name,
            "kernel",
            "this kernel has no cooperative-matrix variant",
        ));
    };
    static NATIVE: Variants = OnceLock::new();
    static EMULATED: Variants = OnceLock::new();
    let (variants, suffix, directives, fragments) = match emulated {
        false => (
            &NATIVE,
            "coop",
            "enable f16;\nenable wgpu_cooperative_matrix;\n",
            include_str!("../../shaders/coop_fragments.wgsl"),
        ),
        true => (
            &EMULATED,
            "coop_emulated",
            "enable f16;\n",
            include_str!("../../shaders/coop_fragments_emulated.wgsl"),
        ),
    };
    let mut map = crate::device::lock(variants.get_or_init(Default::default));
    Ok(map.entry(shader.name).or_insert_with(|| {
        let tile = include_str!("../../shaders/conv2d_coop_tile.wgsl");
        let form = format!("{fragments}{tile}{coop}");
        let source = shader
            .source
            .replacen(plain, &form, 1)
            .replacen(STORAGE_ALIAS, "alias T = f16;", 1);
        Box::leak(Box::new(Shader {
            name: Box::leak(format!("{}_{suffix}", shader.name).into_boxed_str()),
            source: Box::leak(format!("{directives}{source}").into_boxed_str()),
            bindings: shader.bindings,
            trusted: shader.trusted,
        }))
    }))
}

/// The line by which a kernel declares its activation storage type; kernels that have it can
/// run on f16 activations.
const STORAGE_ALIAS: &str = "alias T = f32;";

/// Whether `shader` can store its activations in f16 (see `variant`).
pub fn has_f16_variant(shader: &Shader) -> bool {
    shader.source.contains(STORAGE_ALIAS)
}

/// `shader` with its activations stored as `storage`: the shader itself for f32; for f16 the
/// same source compiled with `enable f16;` and `alias T = f16;` (loads widen to f32, arithmetic
/// and accumulation stay f32, stores round to f16). Needs the adapter's shader-f16. Built once
/// per shader and kept for the life of the process, so pipelines cache it like any kernel.
pub fn variant(gpu: &Gpu, shader: &'static Shader, storage: DType) -> Result<&'static Shader> {
    match storage {
        DType::F32 => Ok(shader),
        DType::F16 => {
            gpu.require_f16(&format!("kernel {} on f16 activations", shader.name))?;
            f16_variant(shader)
        }
        DType::I32 => Err(Error::arg(
            shader.name,
            "storage",
            "kernels store activations as f32 or f16, not i32",
        )),
    }
}

/// The f16 variant of `shader` (no adapter check: naga validation in the tests uses it too).
pub fn f16_variant(shader: &'static Shader) -> Result<&'static Shader> {
    if !has_f16_variant(shader) {
        return Err(Error::arg(shader.name, "storage", "this kernel has no f16 variant"));
    }
    static VARIANTS: Variants = OnceLock::new();
    Ok(cached_variant(&VARIANTS, shader, "f16", |source| {
        format!("enable f16;\n{}", source.replacen(STORAGE_ALIAS, "alias T = f16;", 1))
    }))
}

/// The variants of one kind built so far, by the name of the shader they vary.
type Variants = OnceLock<Mutex<HashMap<&'static str, &'static Shader>>>;

/// `shader`'s variant `suffix` (named `{name}_{suffix}`), its source `source` of the shader's:
/// built once per shader and kept for the life of the process, so pipelines cache it like any
/// kernel.
fn cached_variant(
    variants: &'static Variants,
    shader: &'static Shader,
    suffix: &str,
    source: impl FnOnce(&str) -> String,
) -> &'static Shader {
    let mut map = crate::device::lock(variants.get_or_init(Default::default));
    map.entry(shader.name).or_insert_with(|| {
        Box::leak(Box::new(Shader {
            name: Box::leak(format!("{}_{suffix}", shader.name).into_boxed_str()),
            source: Box::leak(source(shader.source).into_boxed_str()),
            bindings: shader.bindings,
            trusted: shader.trusted,
        }))
    })
}

/// `source` with each prelude of `forms` (as kernels include it) in its other form.
fn in_forms(source: &str, forms: &[(&str, &str)]) -> String {
    forms
        .iter()
        .fold(source.to_string(), |s, (plain, other)| s.replacen(plain, other, 1))
}

/// Preludes with a subgroup form, as kernels include them and in that form: the workgroup
/// reductions (a tree through workgroup memory) and the texels every lane fetches alike (each
/// lane fetching them itself).
const SUBGROUP_FORMS: &[(&str, &str)] = &[
    (
        include_str!("../../shaders/workgroup_sum.wgsl"),
        include_str!("../../shaders/workgroup_sum_subgroup.wgsl"),
    ),
    (
        include_str!("../../shaders/operand_share.wgsl"),
        include_str!("../../shaders/operand_share_subgroup.wgsl"),
    ),
];

/// Prelude files that only variants use, in place of a kernel's own prelude.
pub static VARIANT_PRELUDES: &[&str] = &[
    "coop_fragments",
    "coop_fragments_emulated",
    "conv2d_coop_tile",
    "conv2d_mm_coop",
    "conv2d_bwd_weight_mm_coop",
    "workgroup_sum_subgroup",
    "operand_share_subgroup",
    "elementwise_lanes_vec4",
    "channel_lanes_vec4",
];

/// The lanes preludes of the elementwise kernels (and of the per-channel ones among them) and
/// their vec4 forms, and the line by which such a kernel declares its stored values, in both
/// forms.
const VEC4_FORMS: &[(&str, &str)] = &[
    (
        include_str!("../../shaders/elementwise_lanes.wgsl"),
        include_str!("../../shaders/elementwise_lanes_vec4.wgsl"),
    ),
    (
        include_str!("../../shaders/channel_lanes.wgsl"),
        include_str!("../../shaders/channel_lanes_vec4.wgsl"),
    ),
    ("alias TV = T;", "alias TV = vec4<T>;"),
];

/// `shader` as its lanes take `total` elements with no channel structure: in vec4s where the
/// total is a multiple of 4 (the variant), else one a lane; with the elements per lane.
pub fn lanes_for(shader: &'static Shader, total: usize) -> Result<(&'static Shader, usize)> {
    match total.is_multiple_of(4) {
        true => Ok((vec4_variant(shader)?, 4)),
        false => Ok((shader, 1)),
    }
}

/// Whether `shader` takes its elements through the elementwise_lanes prelude (see
/// `vec4_variant`).
pub fn has_vec4_variant(shader: &Shader) -> bool {
    shader.source.contains(VEC4_FORMS[0].0)
}

/// `shader` with each lane taking 4 consecutive elements through vec4 loads and stores (the
/// elementwise_lanes prelude in its vec4 form): for a total that is a multiple of 4, and for
/// the per-channel kernels (channel_lanes) 4 elements that share a channel or reach into the
/// next one where the kernel handles that (its STRADDLE constant; `kernels::norm` chooses).
/// Built once per shader and kept for the life of the process, like the f16
/// variants (which apply on top: `variant(gpu, vec4_variant(s)?, storage)`).
pub fn vec4_variant(shader: &'static Shader) -> Result<&'static Shader> {
    if !has_vec4_variant(shader) {
        return Err(Error::arg(shader.name, "lanes", "this kernel has no vec4 variant"));
    }
    static VARIANTS: Variants = OnceLock::new();
    Ok(cached_variant(&VARIANTS, shader, "vec4", |source| {
        in_forms(source, VEC4_FORMS)
    }))
}

/// Whether `shader` includes a prelude with a subgroup form (see `subgroup_variant`).
pub fn has_subgroup_variant(shader: &Shader) -> bool {
    SUBGROUP_FORMS.iter().any(|(plain, _)| shader.source.contains(plain))
}

/// `shader` with its workgroup reductions as the device's policy says: through subgroup
/// operations (`KernelPolicy::subgroup_reductions`: the adapter has subgroups) where the
/// kernel reduces through the workgroup_sum prelude, else the shader itself (the tree).
pub fn reduction_variant(gpu: &Gpu, shader: &'static Shader) -> &'static Shader {
    match gpu.policy().subgroup_reductions && has_subgroup_variant(shader) {
        true => subgroup_variant(shader).unwrap_or(shader),
        false => shader,
    }
}

/// `shader` with the texels its lanes fetch alike shared across subgroups where the device's
/// policy says so (`KernelPolicy::subgroup_operands`) and `wg`, its workgroup size, is whole
/// subgroups; else each lane fetching them itself.
pub fn operand_variant(gpu: &Gpu, shader: &'static Shader, wg: usize) -> &'static Shader {
    let whole = wg.is_multiple_of(gpu.info().simd_width.max(1) as usize);
    match gpu.policy().subgroup_operands && whole && has_subgroup_variant(shader) {
        true => subgroup_variant(shader).unwrap_or(shader),
        false => shader,
    }
}

/// The subgroup variant of `shader`: each prelude with a subgroup form in that form (no adapter
/// check: naga validation in the tests uses it too). Built once per shader and kept for the
/// life of the process, like the f16 variants.
pub fn subgroup_variant(shader: &'static Shader) -> Result<&'static Shader> {
    if !has_subgroup_variant(shader) {
        return Err(Error::arg(
            shader.name,
            "subgroups",
            "this kernel has no subgroup variant",
        ));
    }
    // no `enable subgroups;`: naga (wgpu 30) rejects the directive and takes the subgroup
    // builtins when the device has SUBGROUP; a browser's compiler wants it (and the policy keeps
    // the browser off subgroups)
    static VARIANTS: Variants = OnceLock::new();
    Ok(cached_variant(&VARIANTS, shader, "subgroups", |source| {
        in_forms(source, SUBGROUP_FORMS)
    }))
}
