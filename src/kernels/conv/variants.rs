//! The conv variant table: which kernel runs each pass of a conv (forward, input gradient,
//! weight gradient) on a device, why, and the tiles the tuner may pick among. One pure function
//! per pass of (device, geometry, storage type, statistics wanted); the launchers
//! (`forward`, `backward_data`, `backward_weight`) run what it chose, and `convoy info --model`
//! prints it. A new kernel variant is a new arm here, a launcher for it, and a row in the tests
//! below, not a new branch inside a launcher.

use std::fmt;

use super::constants::{tap_window, taps_outer, STATS_BLOCK, WG};
use super::cooperative::splice_large_tiles;
pub use super::device::ConvDevice;
use super::mm::{mm_phases_fit, mm_split_tile, mm_tiles, mm_weight_tiles, offer_mm_tiles, GPU_UNITS};
use super::phases::{stride_phases, transposed_geometry, transposes_to_forward, Phase};
use super::texture;
use super::tile::{ConvTile, TileKind};
use crate::device::KernelFamily;
use crate::error::Result;
use crate::kernels::shaders::{f16_variant, CONV2D_FWD, CONV2D_FWD_BLOCK, CONV2D_FWD_MM, CONV2D_FWD_TEX};
use crate::shape::{Conv2dGeom, DType};

/// A pass's kernel and why the table chose it.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice<K> {
    pub kernel: K,
    pub why: String,
}

impl<K> Choice<K> {
    fn new(kernel: K, why: impl Into<String>) -> Choice<K> {
        Choice {
            kernel,
            why: why.into(),
        }
    }
}

/// The tiled kernels: an implicit GEMM whose tile the tuner picks among `candidates` (the
/// first is the default), keyed in its cache by `tuner` and the shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tiled {
    pub tuner: String,
    pub candidates: Vec<ConvTile>,
}

/// The forward's kernels.
#[derive(Clone, Debug, PartialEq)]
pub enum Forward {
    /// conv2d_fwd_depthwise_vec4: one statistics block of one channel per workgroup, 4 outputs
    /// of a row per invocation from whole vec4s of the input rows, with or without the batch
    /// statistics.
    DepthwiseVec4,
    /// conv2d_fwd_depthwise: one 16 x 16 output tile of one channel per workgroup, its input
    /// window staged in workgroup memory.
    Depthwise,
    /// gemm_rows: a 1x1 conv as a GEMM per image, (Cout, Cin) x (Cin, H*W).
    PointwiseGemm,
    /// conv2d_fwd_tex (texture tiles), conv2d_fwd_block (the block tile first, then register
    /// tiles) or conv2d_fwd (register tiles), conv2d_fwd_mm's large tiles among the candidates
    /// of the block tile for wide groups (first where their grid fills the GPU), their
    /// cooperative-matrix variant before them on f16 activations where the device has
    /// cooperative matrices (`cooperative`).
    Tiled { kernel: &'static str, tiles: Tiled },
}

/// The input gradient's kernels.
#[derive(Clone, Debug, PartialEq)]
pub enum InputGradient {
    /// The forward of dy with transposed weights, one stride phase at a time: the texture
    /// forward on the cpu family (each phase stored in place), the block forward on the gpu
    /// family (each phase scattered into dx).
    ForwardPhases { texture: bool, phases: Vec<Phase> },
    /// gemm_rows: dX_n (Cin, H*W) = W^T (Cin, Cout) x dY_n (Cout, H*W).
    PointwiseGemm,
    /// conv2d_fwd_depthwise_vec4 on dy with each channel's kernel flipped (stride 1).
    DepthwiseVec4,
    /// conv2d_bwd_data_depthwise_vec4: the transposed conv direct, 4 values of a dx row per
    /// invocation (strides across that divide 4).
    DepthwiseTransposedVec4,
    /// The staged depthwise forward of dy with each channel's kernel flipped.
    Depthwise,
    /// conv2d_bwd_data_narrow: a direct transposed conv, cells of stride x stride pixels.
    Narrow,
    /// conv2d_bwd_data's register tiles per stride phase, or (the block tile first) the block
    /// forward of dy with transposed weights.
    Tiled(Tiled),
}

/// The weight gradient's kernels.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightGradient {
    /// conv2d_bwd_weight_depthwise_vec4: split-K over chunks of one channel's output positions,
    /// 4 outputs of a dy row per invocation and unit.
    DepthwiseVec4,
    /// conv2d_bwd_weight_narrow: lanes over the pixels, for a few weight columns per group.
    Narrow,
    /// dw^T as the weight gradient of the conv from dy to x (`swapped`), then transposed.
    Swapped(Conv2dGeom),
    /// conv2d_bwd_weight_tex: x and dy through textures, `columns` texel columns per lane.
    Texture { columns: usize, tiles: Tiled },
    /// conv2d_bwd_weight (register tiles) or conv2d_bwd_weight_block (the block tile first),
    /// split-K over the output pixels.
    Tiled(Tiled),
}

/// The forward of `g` storing `storage` activations, with the batch statistics of a fused
/// training batch norm where `stats`.
pub fn forward(dev: ConvDevice<'_>, g: &Conv2dGeom, storage: DType, stats: bool) -> Result<Choice<Forward>> {
    let p = dev.policy;
    let rows = g.cout / g.args.groups;
    if depthwise_vec4_fits(g) {
        return Ok(Choice::new(
            Forward::DepthwiseVec4,
            "depthwise, its rows in whole vec4s (W and OW multiples of 4)",
        ));
    }
    if dev.gpu_family() && !stats && depthwise_staged_fits(g) {
        return Ok(Choice::new(
            Forward::Depthwise,
            "gpu family, depthwise, its tile window fits workgroup memory",
        ));
    }
    let texture = texture::uses_texture(dev, g);
    let block = ConvTile::block_first(dev, rows);
    if !texture && !block && !stats && is_pointwise_gemm(g) {
        return Ok(Choice::new(
            Forward::PointwiseGemm,
            format!(
                "1x1 stride 1, {} pixels a multiple of 4 filling gemm_rows' workgroups",
                g.h * g.w
            ),
        ));
    }
    let pixels = g.n * g.oh * g.ow;
    let (shader, tiles, mut why) = if texture {
        (
            &CONV2D_FWD_TEX,
            ConvTile::texture_candidates(dev, rows, pixels),
            "cpu family: operands through textures".to_string(),
        )
    } else if block {
        (
            &CONV2D_FWD_BLOCK,
            ConvTile::forward_candidates(dev, rows, pixels),
            format!(
                "gpu family, {rows} channels per group (>= {})",
                super::tile::BLOCK_MIN_ROWS
            ),
        )
    } else {
        let why = match p.family {
            KernelFamily::Gpu => match stats && depthwise_staged_fits(g) {
                true => "gpu family: the staged depthwise kernel writes no statistics".to_string(),
                false => format!(
                    "gpu family, {rows} channels per group (< {})",
                    super::tile::BLOCK_MIN_ROWS
                ),
            },
            KernelFamily::Cpu => format!("cpu family without textures: {}", texture_refusal(dev, g)),
        };
        (&CONV2D_FWD, ConvTile::forward_candidates(dev, rows, pixels), why)
    };
    // a tile that writes statistics covers a full statistics block per workgroup
    let with_stats = |t: ConvTile| match stats && !t.writes_stats_blocks(pixels) {
        true => ConvTile {
            wg: STATS_BLOCK / t.pixels(),
            ..t
        },
        false => t,
    };
    let mut candidates = Vec::new();
    for t in tiles.into_iter().map(with_stats) {
        if !candidates.contains(&t) {
            candidates.push(t);
        }
    }
    // the large tiles beside the block tile (on cooperative matrices first, for f16
    // activations): first where their grid fills the GPU
    let mm = block && !texture && offer_mm_tiles(dev, g, storage, &mut candidates, &mut why);
    let mut tuner = match storage {
        DType::F16 => f16_variant(shader)?.name.to_string(),
        _ => shader.name.to_string(),
    };
    if mm {
        tuner += " or conv2d_fwd_mm";
    }
    if candidates.iter().any(|t| t.kind == TileKind::CoopMm) {
        tuner += " or conv2d_fwd_mm_coop";
    }
    if stats {
        tuner += " with statistics";
    }
    let kernel = match candidates[0].is_large() {
        true => CONV2D_FWD_MM.name,
        false => shader.name,
    };
    let tiles = Tiled { tuner, candidates };
    Ok(Choice::new(Forward::Tiled { kernel, tiles }, why))
}

/// Whether the forward of `g` (storing `storage`, with statistics where `stats`) on `dev` packs
/// its weights into a texture: the cpu family's texture forward, every tile of which packs them
/// (`texture::KeptOperands` keeps constant weights packed, and folds a batch norm into them).
pub fn forward_packs_weights(dev: ConvDevice<'_>, g: &Conv2dGeom, storage: DType, stats: bool) -> Result<bool> {
    Ok(
        matches!(forward(dev, g, storage, stats)?.kernel, Forward::Tiled { kernel, .. } if kernel == CONV2D_FWD_TEX.name),
    )
}

/// Why the texture kernels do not take `g` on the cpu family.
fn texture_refusal(dev: ConvDevice<'_>, g: &Conv2dGeom) -> String {
    let cin_g = g.cin / g.args.groups;
    if !dev.policy.texture_operands {
        "texture operands off".into()
    } else if g.args.groups > 1 && cin_g < 3 {
        format!("{cin_g} input channels per group (< 3)")
    } else {
        format!("an operand exceeds the texture side of {}", dev.policy.max_texture_side)
    }
}

/// The input gradient of `g` (dx from dy and w, f32; `operands` F16 where they hold f16 values,
/// as mixed precision's do: the cooperative-matrix tiles may then stage them as f16).
pub fn input_gradient(dev: ConvDevice<'_>, g: &Conv2dGeom, operands: DType) -> Choice<InputGradient> {
    let a = &g.args;
    let (cin_g, cout_g) = (g.cin / a.groups, g.cout / a.groups);
    if transposes_to_forward(g) && depthwise_vec4_fits(&transposed_geometry(g)) {
        return Choice::new(
            InputGradient::DepthwiseVec4,
            "stride-1 depthwise: the vec4 depthwise forward of dy, kernel flipped",
        );
    }
    if depthwise_transposed_vec4_fits(g) {
        return Choice::new(
            InputGradient::DepthwiseTransposedVec4,
            format!(
                "depthwise, stride {:?}: the transposed conv in vec4s of dx rows",
                a.stride
            ),
        );
    }
    // the gpu family's large tiles: every stride phase in one dispatch (conv2d_bwd_data_mm),
    // first where their grid fills the GPU
    let (mm, mm_first) = match mm_phases_fit(g) {
        true => mm_tiles(dev, &transposed_geometry(g)),
        false => (Vec::new(), false),
    };
    let offer_mm = |candidates: &mut Vec<ConvTile>, why: &mut String, tuner: &mut String| {
        if mm.is_empty() {
            return;
        }
        *tuner += " or conv2d_bwd_data_mm";
        if splice_large_tiles(dev, candidates, usize::from(!mm_first), &mm, operands) {
            *tuner += " or conv2d_bwd_data_mm_coop";
        }
        match mm_first {
            true => {
                *why = format!("gpu family, {cin_g} input channels per group: large tiles, every stride phase in one dispatch, filling {GPU_UNITS} compute units twice")
            }
            false => *why += "; large tiles for the tuner",
        }
    };
    if let Some((phases, mut why)) = forward_phases(dev, g) {
        let texture = dev.policy.texture_operands;
        if texture || mm.is_empty() {
            return Choice::new(InputGradient::ForwardPhases { texture, phases }, why);
        }
        // strided on the gpu family: the block forward per phase (the block tile) beside them
        let (mut candidates, mut tuner) = (vec![ConvTile::BLOCK], "conv2d_fwd_block per phase".to_string());
        offer_mm(&mut candidates, &mut why, &mut tuner);
        return Choice::new(InputGradient::Tiled(Tiled { tuner, candidates }), why);
    }
    let block = ConvTile::block_first(dev, cin_g) && transposes_to_forward(g);
    if is_pointwise_gemm(g) && !block {
        return Choice::new(InputGradient::PointwiseGemm, "1x1 stride 1: W^T x dy per image");
    }
    if dev.gpu_family() && transposes_to_forward(g) && depthwise_staged_fits(&transposed_geometry(g)) {
        return Choice::new(
            InputGradient::Depthwise,
            "gpu family, stride-1 depthwise: the staged depthwise forward, kernel flipped",
        );
    }
    if !taps_outer(cout_g) {
        return Choice::new(
            InputGradient::Narrow,
            format!("{cout_g} output channels per group: a direct kernel over stride cells"),
        );
    }
    // the largest stride phase's input pixels
    let [sh, sw] = a.stride;
    let pixels = g.n * g.h.div_ceil(sh) * g.w.div_ceil(sw);
    let mut candidates = ConvTile::candidates(dev, cin_g, pixels);
    let mut tuner = "conv2d_bwd_data".to_string();
    let why = if block {
        candidates.insert(0, ConvTile::BLOCK);
        let mut why = format!("gpu family, stride 1, {cin_g} input channels per group: the block forward of dy");
        offer_mm(&mut candidates, &mut why, &mut tuner);
        // where conv2d_bwd_data_mm's grid falls short: the large-tile forward of dy split over K
        let split = mm.first().and_then(|&t| mm_split_tile(&transposed_geometry(g), t));
        if let Some(t) = split {
            candidates.insert(0, t);
            tuner += " or the split conv2d_fwd_mm of dy";
            why = format!(
                "gpu family, stride 1, {cin_g} input channels per group: the large-tile forward of dy split over K ({}) filling {GPU_UNITS} compute units twice",
                t.slices()
            );
        }
        why
    } else {
        "register tiles per stride phase".to_string()
    };
    Choice::new(InputGradient::Tiled(Tiled { tuner, candidates }), why)
}

/// The stride phases of `g`'s input gradient that a forward kernel runs, and why; else None.
/// On the cpu family (texture operands) when every phase with taps fits the texture forward
/// (3+ output channels per group, dy within the texture limit, no negative padding). On the gpu
/// family for a strided conv whose groups have the block forward's 32+ rows (input channels
/// here): each phase is a stride-1 conv of dy that the block forward runs at its efficiency,
/// far above the register kernel it replaces (BENCHMARKS.md, "The first GPU runs"); stride 1
/// keeps `backward_data_block` among the tuner's candidates.
pub(super) fn forward_phases(dev: ConvDevice<'_>, g: &Conv2dGeom) -> Option<(Vec<Phase>, String)> {
    let a = &g.args;
    let texture = dev.policy.texture_operands;
    let block = !texture && dev.gpu_family() && a.stride != [1, 1] && ConvTile::block_first(dev, g.cin / a.groups);
    if !texture && !block {
        return None;
    }
    let phases = stride_phases(g)?;
    if texture
        && phases
            .iter()
            .any(|p| p.geom.is_some_and(|geom| !texture::uses_texture(dev, &geom)))
    {
        return None;
    }
    let n = phases.len();
    let why = match texture {
        true => format!("cpu family: the texture forward of dy, {n} stride phase(s)"),
        false => format!("gpu family, strided: the block forward of dy, {n} stride phases"),
    };
    Some((phases, why))
}

/// The weight gradient of `g` (dw from dy and x, f32; `operands` F16 where they hold f16 values,
/// as mixed precision's do: the cooperative-matrix tiles may then stage them as f16).
pub fn weight_gradient(dev: ConvDevice<'_>, g: &Conv2dGeom, operands: DType) -> Choice<WeightGradient> {
    if depthwise_vec4_fits(g) {
        return Choice::new(
            WeightGradient::DepthwiseVec4,
            "depthwise, its rows in whole vec4s: split-K over each channel's positions",
        );
    }
    let cols = (g.cin / g.args.groups) * g.kh * g.kw;
    let texture = texture::weight_gradient_uses_texture(dev, g);
    // the texture kernel first: resnet_mini's 16- and 32-column projections (4 and 8 texel
    // columns) ran ~4x faster through textures than through the narrow kernel
    if cols <= NARROW_COLUMNS && !texture {
        return Choice::new(
            WeightGradient::Narrow,
            format!("{cols} weight columns per group (<= {NARROW_COLUMNS})"),
        );
    }
    if let Some(s) = texture::swapped(dev, g) {
        return Choice::new(
            WeightGradient::Swapped(s),
            "1x1 with few input channels: the gradient of the conv from dy to x, transposed",
        );
    }
    // workgroups no wider than the (live) columns they cover, and of 32 rather than 64 lanes
    // where that leaves fewer lanes idle (ResNet's 64-channel 3x3: 144 lanes in 160, not 192)
    let columns = texture::weight_gradient_columns(g);
    let lanes = match texture {
        true => texture::weight_gradient_lanes(g, columns),
        false => weight_gradient_lanes(g),
    };
    let idle = |wg: usize| lanes.div_ceil(wg) * wg - lanes;
    let wg = if texture && lanes <= TEXTURE_ONE_WORKGROUP {
        lanes.next_multiple_of(dev.simd_width().clamp(4, 64))
    } else if lanes <= WG / 2 {
        lanes.next_power_of_two().max(16)
    } else if idle(WG / 2) < idle(WG) {
        WG / 2
    } else {
        WG
    };
    let rows = g.cout / g.args.groups;
    let mut candidates = ConvTile::candidates_after(ConvTile::register(rows, wg), rows);
    let block = ConvTile::block_first(dev, rows);
    if block {
        candidates.insert(0, ConvTile::BLOCK);
    }
    if texture {
        let tiles = Tiled {
            tuner: "conv2d_bwd_weight_tex".into(),
            candidates,
        };
        return Choice::new(
            WeightGradient::Texture { columns, tiles },
            format!("cpu family: x and dy through textures, {columns} texel column(s) per lane"),
        );
    }
    let mut why = match block {
        true => format!("gpu family, {rows} output channels per group: block tiles, split-K"),
        false => "register tiles, split-K over the output pixels".to_string(),
    };
    let mut tuner = "conv2d_bwd_weight".to_string();
    // the large tiles beside the block tile: first where their split grid fills the GPU
    let (mm, first) = match block {
        true => mm_weight_tiles(dev, g),
        false => (Vec::new(), false),
    };
    if !mm.is_empty() {
        tuner += " or conv2d_bwd_weight_mm";
        if splice_large_tiles(dev, &mut candidates, usize::from(!first), &mm, operands) {
            tuner += " or conv2d_bwd_weight_mm_coop";
        }
        match first {
            true => {
                why = format!(
                    "gpu family, {rows} output channels per group: large tiles, split-K filling {GPU_UNITS} compute units twice"
                )
            }
            false => why += "; large tiles for the tuner",
        }
    }
    let tiles = Tiled { tuner, candidates };
    Choice::new(WeightGradient::Tiled(tiles), why)
}

// ---- what each kernel takes: the conditions of the table's rows ----

/// A 1x1 conv that runs as a GEMM per image (gemm_rows): one group, stride 1, no padding, H*W a
/// multiple of 4 and large enough to fill its workgroups (7/8 of the lanes busy). gemm_rows
/// tiles each image's pixels alone, so a small map (the 2x2 of a ResNet's last stages on a
/// 28x28 input: one busy lane of 64) goes to the implicit-GEMM kernel, which tiles the pixels
/// of the whole batch.
pub fn is_pointwise_gemm(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    let plane = g.h * g.w;
    let lanes = (plane / 4).div_ceil(crate::kernels::gemm::ROWS_WG) * crate::kernels::gemm::ROWS_WG;
    g.kh == 1
        && g.kw == 1
        && a.groups == 1
        && a.stride == [1, 1]
        && a.padding == [0, 0]
        && plane.is_multiple_of(4)
        && plane / 4 * 8 >= lanes * 7
}

/// The output tile side of conv2d_fwd_depthwise (its TILE; TILE x TILE invocations).
pub(super) const DEPTHWISE_TILE: usize = 16;
/// Input values one tile of conv2d_fwd_depthwise may stage (its HALO at most) and taps (TAPS_MAX).
pub(super) const DEPTHWISE_HALO_MAX: usize = 4096;
const DEPTHWISE_TAPS_MAX: usize = 64;

/// Whether the staged depthwise kernel takes `g`: one input and one output channel per group,
/// and a tile's input window (its reach plus the kernel's halo) and taps that fit its
/// workgroup memory.
pub fn depthwise_staged_fits(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    a.groups == g.cin
        && g.cin == g.cout
        && depthwise_window(g) <= DEPTHWISE_HALO_MAX
        && g.kh * g.kw <= DEPTHWISE_TAPS_MAX
}

/// Whether conv2d_fwd_depthwise_vec4 takes `g`: one input and one output channel per group,
/// input and output rows of whole vec4s (W and OW multiples of 4), and the input columns under
/// 4 outputs within 4 vec4s (from where the first sits in its vec4), and at most 7 tap rows and
/// 49 taps (its window of the last unit's segments, its weights in registers).
pub fn depthwise_vec4_fits(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    let off = (4 - a.padding[1] % 4) % 4;
    let columns = off + 3 * a.stride[1] + (g.kw - 1) * a.dilation[1] + 1;
    a.groups == g.cin
        && g.cin == g.cout
        && g.w.is_multiple_of(4)
        && g.ow.is_multiple_of(4)
        && columns <= 16
        && g.kh <= 7
        && g.kh * g.kw <= 49
}

/// The lanes of the vec4 depthwise kernels' workgroups on `dev`: a GPU's 64, a unit of 4
/// outputs each (a statistics block's 64 units); a CPU driver's one SIMD vector, each lane
/// walking a run of units.
pub(super) fn depthwise_vec4_lanes(dev: ConvDevice<'_>) -> u32 {
    dev.policy.run_lanes.min((STATS_BLOCK / 4) as u32)
}

/// Whether conv2d_bwd_data_depthwise_vec4 takes the input gradient of `g`: one input and one
/// output channel per group, dx rows of whole vec4s (W a multiple of 4), a stride across that
/// divides 4 (so each of a unit's 4 outputs takes the same taps in every unit), the dy values a
/// unit reads per row within 8, and at most 7 tap rows and 49 taps.
pub fn depthwise_transposed_vec4_fits(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    let (sw, pw, dw) = (a.stride[1] as i64, a.padding[1] as i64, a.dilation[1] as i64);
    // the dy columns relative to the unit's first, as the kernel's EMIN and EMAX
    let emin = -(((g.kw as i64 - 1) * dw - pw + sw - 1) / sw);
    let emax = (3 + pw) / sw;
    a.groups == g.cin
        && g.cin == g.cout
        && g.w.is_multiple_of(4)
        && 4 % a.stride[1] == 0
        && emax - emin < 8
        && g.kh <= 7
        && g.kh * g.kw <= 49
}

/// Input values of one tile's window in conv2d_fwd_depthwise: its reach plus the kernel's halo.
pub(super) fn depthwise_window(g: &Conv2dGeom) -> usize {
    let (a, t) = (&g.args, DEPTHWISE_TILE);
    let rows = (t - 1) * a.stride[0] + (g.kh - 1) * a.dilation[0] + 1;
    let cols = (t - 1) * a.stride[1] + (g.kw - 1) * a.dilation[1] + 1;
    rows * cols
}

/// Invocations of conv2d_bwd_weight per block of output channels: one per live tap and run of
/// `BWD_WEIGHT_COLUMNS` input channels of a group (its columns).
pub(super) fn weight_gradient_lanes(g: &Conv2dGeom) -> usize {
    let [(y0, y1), (x0, x1)] = tap_window(g);
    (g.cin / g.args.groups).div_ceil(BWD_WEIGHT_COLUMNS) * (y1 - y0) * (x1 - x0)
}

/// Weight columns per group (Cin/g * KH * KW) up to which the weight gradient runs
/// conv2d_bwd_weight_narrow (its MAX_COLS): conv2d_bwd_weight spreads the columns over the
/// lanes, 4 per invocation, so a depthwise 3x3 (9 columns) would leave almost every lane idle.
pub(super) const NARROW_COLUMNS: usize = 32;
/// Weight columns per invocation of conv2d_bwd_weight (its KC).
pub(super) const BWD_WEIGHT_COLUMNS: usize = 4;
/// Column lanes up to which conv2d_bwd_weight_tex runs them all in one workgroup of whole
/// SIMD groups (8 lanes on lavapipe): a CPU driver runs a workgroup as a loop over its SIMD
/// groups, so a power of two only idles lanes (resnet_mini's 16-channel 3x3: 18 lanes in 32;
/// r18_l1: 72 in 96). Wider, the 32- or 64-lane blocks win: fewer column blocks split the
/// pixels into more chunks (BENCHMARKS.md, "Measurements moved out of doc comments").
const TEXTURE_ONE_WORKGROUP: usize = 96;

impl fmt::Display for Tiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.candidates.len();
        write!(f, "default {}", tile_name(&self.candidates[0]))?;
        if n > 1 {
            write!(f, ", {} more for the tuner", n - 1)?;
        }
        Ok(())
    }
}

/// A tile as `convoy info` prints it.
pub fn tile_name(t: &ConvTile) -> String {
    match t.kind {
        TileKind::Register => format!("{} rows x {} lanes", t.ocb, t.wg),
        TileKind::Block => "block 64x64".into(),
        TileKind::Texture { px } => format!("{} rows x {} lanes x {px} pixels", t.ocb, t.wg),
        TileKind::Mm => format!("mm {}x128", t.ocb),
        TileKind::CoopMm => format!("mm {}x128 on cooperative matrices", t.ocb),
        TileKind::MmSplit { slices } => format!("mm {}x128 split over K in {slices}", t.ocb),
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Forward::DepthwiseVec4 => write!(f, "conv2d_fwd_depthwise_vec4"),
            Forward::Depthwise => write!(f, "conv2d_fwd_depthwise"),
            Forward::PointwiseGemm => write!(f, "gemm_rows"),
            Forward::Tiled { tiles, .. } => write!(f, "{} ({tiles})", tiles.tuner),
        }
    }
}

impl fmt::Display for InputGradient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputGradient::ForwardPhases { texture, phases } => {
                let k = if *texture { "conv2d_fwd_tex" } else { "conv2d_fwd_block" };
                write!(f, "{k} per stride phase ({})", phases.len())
            }
            InputGradient::PointwiseGemm => write!(f, "gemm_rows (transposed weights)"),
            InputGradient::DepthwiseVec4 => write!(f, "conv2d_fwd_depthwise_vec4 (flipped kernel)"),
            InputGradient::DepthwiseTransposedVec4 => write!(f, "conv2d_bwd_data_depthwise_vec4"),
            InputGradient::Depthwise => write!(f, "conv2d_fwd_depthwise (flipped kernel)"),
            InputGradient::Narrow => write!(f, "conv2d_bwd_data_narrow"),
            InputGradient::Tiled(t) => match t.candidates[0].kind {
                TileKind::Block => write!(f, "conv2d_fwd_block of dy ({t}; tuner: {})", t.tuner),
                TileKind::Mm | TileKind::CoopMm => write!(
                    f,
                    "conv2d_bwd_data_mm, every stride phase in one dispatch ({t}; tuner: {})",
                    t.tuner
                ),
                TileKind::MmSplit { .. } => write!(f, "conv2d_fwd_mm of dy split over K ({t}; tuner: {})", t.tuner),
                _ => write!(f, "conv2d_bwd_data ({t})"),
            },
        }
    }
}

impl fmt::Display for WeightGradient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightGradient::DepthwiseVec4 => write!(f, "conv2d_bwd_weight_depthwise_vec4"),
            WeightGradient::Narrow => write!(f, "conv2d_bwd_weight_narrow"),
            WeightGradient::Swapped(s) => write!(
                f,
                "the weight gradient of the swapped conv ({} -> {} channels), transposed",
                s.cin, s.cout
            ),
            WeightGradient::Texture { tiles, .. } => write!(f, "conv2d_bwd_weight_tex ({tiles})"),
            WeightGradient::Tiled(t) => match t.candidates[0].kind {
                TileKind::Block => write!(f, "conv2d_bwd_weight_block or conv2d_bwd_weight ({t})"),
                TileKind::Mm | TileKind::CoopMm => write!(f, "conv2d_bwd_weight_mm or conv2d_bwd_weight ({t})"),
                _ => write!(f, "conv2d_bwd_weight ({t})"),
            },
        }
    }
}

#[cfg(test)]
mod tests;
