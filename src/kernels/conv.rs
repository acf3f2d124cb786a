//! conv2d kernels. Forward: an implicit GEMM with a register tile of up to 8 output channels x
//! 4 pixels per invocation (or a workgroup-memory tile, for the tuner); with few channels per
//! group, 4 pixels of one row sharing their window's row segments. Input gradient: the same
//! over the flipped kernel, one dispatch per stride phase, or, for groups with few output
//! channels (depthwise), a direct kernel over cells of stride x stride pixels. Weight gradient:
//! a split-K GEMM over the output pixels, with lanes over the weight columns, or over the pixels
//! for narrow groups.

use super::shaders::{
    variant, CONV2D_BWD_DATA, CONV2D_BWD_DATA_NARROW, CONV2D_BWD_WEIGHT, CONV2D_BWD_WEIGHT_BLOCK,
    CONV2D_BWD_WEIGHT_NARROW, CONV2D_FWD, CONV2D_FWD_BLOCK, CONV2D_STATS_CONDENSE, SPLIT_K_REDUCE,
};
use super::{groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu, KernelFamily, Resource};
use crate::error::{Error, Result};
use crate::graph::Epilogue;
use crate::ops::conv::Conv2dGeom;
use crate::tensor::DType;

const WG: usize = 64;

pub(super) fn geometry_constants(g: &Conv2dGeom) -> Vec<(&'static str, f64)> {
    let a = &g.args;
    vec![
        ("KH", g.kh as f64),
        ("KW", g.kw as f64),
        ("SH", a.stride as f64),
        ("SW", a.stride as f64),
        ("PH", a.padding as f64),
        ("PW", a.padding as f64),
        ("DH", a.dilation as f64),
        ("DW", a.dilation as f64),
    ]
}

/// The taps [lo, hi) of one axis that some output position reaches inside the input; the
/// taps outside read only padding for every output (a 3x3 conv with padding 1 on a 1x1 map
/// uses only its centre tap), so the kernels skip them (override constants KY0..KX1).
fn live_taps(k: usize, stride: usize, pad: usize, dil: usize, input: usize, output: usize) -> (usize, usize) {
    let live = |t: usize| (0..output).any(|o| (o * stride + t * dil).checked_sub(pad).is_some_and(|i| i < input));
    match ((0..k).find(|&t| live(t)), (0..k).rev().find(|&t| live(t))) {
        (Some(lo), Some(hi)) => (lo, hi + 1),
        _ => (0, 0),
    }
}

/// The live tap window of `g`: [KY0, KY1) and [KX0, KX1).
pub(super) fn tap_window(g: &Conv2dGeom) -> [(usize, usize); 2] {
    let a = &g.args;
    [
        live_taps(g.kh, a.stride, a.padding, a.dilation, g.h, g.oh),
        live_taps(g.kw, a.stride, a.padding, a.dilation, g.w, g.ow),
    ]
}

/// Invocations of conv2d_bwd_weight per block of output channels: one per live tap and run of
/// `BWD_WEIGHT_COLUMNS` input channels of a group (its columns).
fn weight_gradient_lanes(g: &Conv2dGeom) -> usize {
    let [(y0, y1), (x0, x1)] = tap_window(g);
    (g.cin / g.args.groups).div_ceil(BWD_WEIGHT_COLUMNS) * (y1 - y0) * (x1 - x0)
}

/// Output pixels per block of the statistics a conv writes for the training batch norm after it
/// (`forward`'s `stats`: (blocks, Cout, 2) of mean and sum of squared deviations, blocks =
/// ceil(N*OH*OW / STATS_BLOCK)); `kernels::norm::merge_stats` combines them.
pub const STATS_BLOCK: usize = 256;

/// Output pixels per invocation of conv2d_fwd and conv2d_bwd_data (their PX). Fixed: fewer per
/// invocation for small maps (fewer idle lanes) measured slower on lavapipe, 2x for r18_l4 at
/// batch 8 (each uniform weight load then feeds fewer multiply-adds).
pub const FWD_PIXELS: usize = 4;

/// The narrowest default workgroup: one 256-bit SIMD register of lanes on a CPU driver.
const MIN_WG: usize = 8;

/// Invocations per workgroup of a conv kernel tiling `pixels` pixels, `px` per invocation, on a
/// device that runs `simd` invocations side by side: for a small map the fewest (a power of
/// two, at least 8) that cover it, else the width from one SIMD group to `widest` that leaves the
/// fewest lanes idle (the wider on ties). Idle lanes run every loop masked, so the 18 output
/// pixels of a ResNet-50's last stage at batch 2 and 96x80 pay for 256 in a 64-lane workgroup
/// and for 32 in an 8-lane one, and ResNet-18's 392 last-stage pixels at batch 8 for 512 in
/// 64-lane workgroups and 416 in 8-lane ones on lavapipe (on a 32-wide GPU, for 512 either way).
fn pixel_workgroup(pixels: usize, px: usize, simd: usize, widest: usize) -> usize {
    let lanes = pixels.div_ceil(px);
    if lanes <= widest {
        return lanes.next_power_of_two().clamp(MIN_WG, widest);
    }
    let idle = |wg: usize| lanes.div_ceil(wg) * wg - lanes;
    let mut best = widest;
    let mut wg = widest / 2;
    while wg >= simd.clamp(MIN_WG, widest) {
        if idle(wg) < idle(best) {
            best = wg;
        }
        wg /= 2;
    }
    best
}

pub(super) fn tap_window_constants(g: &Conv2dGeom) -> [(&'static str, f64); 4] {
    let [(y0, y1), (x0, x1)] = tap_window(g);
    [
        ("KY0", y0 as f64),
        ("KY1", y1 as f64),
        ("KX0", x0 as f64),
        ("KX1", x1 as f64),
    ]
}

/// Tile configuration of the implicit-GEMM kernels. Register tiles (conv2d_fwd and the
/// backward kernels): output channels per invocation (rows, uniform over a workgroup, 1..=8)
/// and invocations per workgroup; each invocation also covers `FWD_PIXELS` output pixels.
/// Block tiles (the gpu family's forward, conv2d_fwd_block): 64 output channels x 64 pixels
/// per workgroup of 256, staged through workgroup memory (`ConvTile::BLOCK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTile {
    pub ocb: usize,
    pub wg: usize,
    pub kind: TileKind,
}

/// Which forward kernel a tile is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// conv2d_fwd and the backward kernels: operands from storage buffers, `FWD_PIXELS` pixels
    /// per invocation.
    Register,
    /// conv2d_fwd_block (the gpu family): 64 x 64 block tiles staged through workgroup memory.
    Block,
    /// conv2d_fwd_tex (the CPU family): the input through an operand texture, `px` (4 or 8)
    /// pixels per invocation.
    Texture { px: usize },
}

impl ConvTile {
    /// The block tile of conv2d_fwd_block.
    pub const BLOCK: ConvTile = ConvTile {
        ocb: BLOCK_CHANNELS,
        wg: 256,
        kind: TileKind::Block,
    };

    /// The default on `gpu` for a tile whose rows are channels of a group with `rows` channels
    /// and whose columns tile `pixels` pixels: as many rows as there are, up to 8 (a depthwise
    /// conv gets one row: a direct kernel with uniform weights), and the workgroup width that
    /// leaves the fewest lanes idle (`pixel_workgroup`).
    pub fn default_for(gpu: &Gpu, rows: usize, pixels: usize) -> ConvTile {
        ConvTile::register(
            rows,
            pixel_workgroup(pixels, FWD_PIXELS, gpu.info().simd_width as usize, WG),
        )
    }

    /// The register tile of `wg` invocations with as many rows as a group of `rows` channels
    /// has, up to 8.
    fn register(rows: usize, wg: usize) -> ConvTile {
        ConvTile {
            ocb: rows.clamp(1, 8),
            wg,
            kind: TileKind::Register,
        }
    }

    /// Every configuration the tuner may pick for `rows` channels per group over `pixels`
    /// pixels (the default first): 4 or 8 rows (fewer when the group has fewer) and 32, 64 or
    /// 128 invocations. Fewer rows than 4 only lose reuse, so they are not timed.
    pub fn candidates(gpu: &Gpu, rows: usize, pixels: usize) -> Vec<ConvTile> {
        ConvTile::candidates_after(ConvTile::default_for(gpu, rows, pixels), rows)
    }

    /// `default`, then the other register tiles of `candidates`.
    fn candidates_after(default: ConvTile, rows: usize) -> Vec<ConvTile> {
        let mut out = vec![default];
        for ocb in [rows.clamp(1, 4), rows.clamp(1, 8)] {
            for wg in [32, 64, 128] {
                let t = ConvTile {
                    ocb,
                    wg,
                    kind: TileKind::Register,
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// The forward's storage-buffer candidates on `gpu` (the default first): on the gpu family
    /// the block tile first for groups of at least `BLOCK_MIN_ROWS` channels (a narrower group
    /// leaves most of its 64 rows idle), then the register tiles; on the cpu family the
    /// register tiles, then the block tile for groups of 16 or more, for the tuner.
    pub fn forward_candidates(gpu: &Gpu, rows: usize, pixels: usize) -> Vec<ConvTile> {
        let register = ConvTile::candidates(gpu, rows, pixels);
        if ConvTile::block_first(gpu, rows) {
            return std::iter::once(ConvTile::BLOCK).chain(register).collect();
        }
        let mut out = register;
        if rows >= 16 {
            out.push(ConvTile::BLOCK);
        }
        out
    }

    /// Whether the block tile is the forward's default on `gpu` for groups of `rows` channels.
    pub fn block_first(gpu: &Gpu, rows: usize) -> bool {
        gpu.policy().family == KernelFamily::Gpu && rows >= BLOCK_MIN_ROWS
    }

    /// Whether the forward with this tile can write the block statistics of `pixels` output
    /// pixels: the block tile (its 64-pixel blocks condensed by a second dispatch), a register
    /// or texture tile whose workgroups cover `STATS_BLOCK` pixels each, or a narrower one whose
    /// single workgroup covers them all (then the only block).
    pub fn writes_stats_blocks(&self, pixels: usize) -> bool {
        let covers = self.wg * self.pixels();
        self.kind == TileKind::Block || covers == STATS_BLOCK || (covers < STATS_BLOCK && pixels <= covers)
    }

    /// Output pixels per invocation of a register or texture tile.
    fn pixels(&self) -> usize {
        match self.kind {
            TileKind::Texture { px } => px,
            _ => FWD_PIXELS,
        }
    }

    /// The texture tile of `rows` channels per group over `pixels` pixels: up to 8 rows, `px`
    /// pixels per invocation, and the workgroup width of `pixel_workgroup` (at most
    /// STATS_BLOCK / px, so that a full workgroup covers one statistics block).
    pub fn texture(rows: usize, pixels: usize, px: usize, simd: usize) -> ConvTile {
        ConvTile {
            ocb: rows.clamp(1, 8),
            wg: pixel_workgroup(pixels, px, simd, STATS_BLOCK / px),
            kind: TileKind::Texture { px },
        }
    }

    /// The texture tiles the tuner may pick (the default first): `TEXTURE_PIXELS` or the other
    /// of 4 and 8 pixels per invocation, up to 8 or up to 4 rows.
    pub fn texture_candidates(gpu: &Gpu, rows: usize, pixels: usize) -> Vec<ConvTile> {
        let simd = gpu.info().simd_width as usize;
        let mut out = Vec::new();
        for px in [TEXTURE_PIXELS, 12 - TEXTURE_PIXELS] {
            for ocb in [rows.clamp(1, 8), rows.clamp(1, 4)] {
                let t = ConvTile {
                    ocb,
                    ..ConvTile::texture(rows, pixels, px, simd)
                };
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// The tuner's record of the tile: [ocb, wg] for a register tile, [ocb, wg, 1] a block tile,
    /// [ocb, wg, 2, px] through a texture.
    fn record(&self) -> Vec<usize> {
        match self.kind {
            TileKind::Register => vec![self.ocb, self.wg],
            TileKind::Block => vec![self.ocb, self.wg, 1],
            TileKind::Texture { px } => vec![self.ocb, self.wg, 2, px],
        }
    }

    fn from_record(v: &[usize]) -> Option<ConvTile> {
        let (ocb, wg, kind) = match *v {
            [ocb, wg] => (ocb, wg, TileKind::Register),
            [ocb, wg, 1] => (ocb, wg, TileKind::Block),
            [ocb, wg, 2, px] => (ocb, wg, TileKind::Texture { px }),
            _ => return None,
        };
        Some(ConvTile { ocb, wg, kind })
    }

    /// A refusal of this tile, saying why.
    pub(super) fn refuse(&self, why: &str) -> Error {
        Error::Arg {
            op: "conv2d".into(),
            arg: "tile".into(),
            reason: format!("{self:?}: {why}"),
        }
    }

    pub(super) fn check(&self) -> Result<()> {
        match self.kind {
            TileKind::Block => {
                if *self != ConvTile::BLOCK {
                    return Err(self.refuse("the block tile is 64 channels x 64 pixels, 256 invocations"));
                }
                return Ok(());
            }
            TileKind::Texture { px } if px != 4 && px != 8 => {
                return Err(self.refuse("a texture tile takes 4 or 8 pixels per invocation"));
            }
            _ => {}
        }
        if !(1..=8).contains(&self.ocb) || !(1..=256).contains(&self.wg) {
            return Err(self.refuse("ocb must be 1..=8 and wg 1..=256"));
        }
        Ok(())
    }

    /// `check` for the backward kernels, which have register (or texture) tiles only.
    pub(super) fn check_backward(&self) -> Result<()> {
        if self.kind == TileKind::Block {
            return Err(self.refuse("the block tile is the forward's; the backward kernels take register tiles"));
        }
        self.check()
    }
}

/// y (N, Cout, OH, OW) = act(conv2d(x (N, Cin, H, W), w (Cout, Cin/g, KH, KW)) [+ bias (Cout)]
/// [+ residual (like y)]), the epilogue fused into the store. x, residual and y are stored as
/// `storage` (f32, or f16 with f32 accumulation); w and bias are f32. With `stats`, also the
/// block statistics of y for a training batch norm (see `STATS_BLOCK`).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    stats: Option<&wgpu::Buffer>,
) -> Result<Vec<Dispatch>> {
    let rows = g.cout / g.args.groups;
    let pixels = g.n * g.oh * g.ow;
    let with_stats = |t: ConvTile| {
        if stats.is_none() || t.writes_stats_blocks(pixels) {
            t
        } else {
            // a full statistics block per workgroup
            ConvTile {
                wg: STATS_BLOCK / t.pixels(),
                ..t
            }
        }
    };
    let stats_name = if stats.is_some() { " with statistics" } else { "" };
    let texture = super::conv_texture::uses_texture(gpu, g);
    let block = ConvTile::block_first(gpu, rows);
    if !texture && !block && stats.is_none() && is_pointwise_gemm(g) {
        // a 1x1 conv is a GEMM per image: (Cout, Cin) x (Cin, H*W)
        let rows = super::linear::RowsGeom {
            batch: g.n,
            m: g.cout,
            n: g.h * g.w,
            k: g.cin,
            trans_a: false,
        };
        return Ok(vec![super::linear::gemm_rows(
            gpu,
            &rows,
            epi.act.code(),
            storage,
            w,
            x,
            bias,
            residual,
            y,
        )?]);
    }
    // the cpu family's texture tiles; else the block and register tiles
    let (shader, tiles) = if texture {
        (
            &super::shaders::CONV2D_FWD_TEX,
            ConvTile::texture_candidates(gpu, rows, pixels),
        )
    } else if block {
        (&CONV2D_FWD_BLOCK, ConvTile::forward_candidates(gpu, rows, pixels))
    } else {
        (&CONV2D_FWD, ConvTile::forward_candidates(gpu, rows, pixels))
    };
    let mut candidates = Vec::new();
    for t in tiles.into_iter().map(with_stats) {
        if !candidates.contains(&t) {
            candidates.push(t);
        }
    }
    let name = variant(gpu, shader, storage)?.name;
    choose(gpu, &format!("{name}{stats_name}"), g, &candidates, |t| {
        forward_tiled(gpu, g, t, epi, storage, x, w, bias, residual, y, stats)
    })
}

/// Output pixels per invocation of the texture forward's default tile (4 or 8).
const TEXTURE_PIXELS: usize = 8;

/// A 1x1 conv that runs as a GEMM per image (gemm_rows): one group, stride 1, no padding, H*W a
/// multiple of 4 and large enough to fill its workgroups (7/8 of the lanes busy). gemm_rows
/// tiles each image's pixels alone, so a small map (the 2x2 of a ResNet's last stages on a
/// 28x28 input: one busy lane of 64) goes to the implicit-GEMM kernel, which tiles the pixels
/// of the whole batch.
pub fn is_pointwise_gemm(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    let plane = g.h * g.w;
    let lanes = (plane / 4).div_ceil(super::linear::ROWS_WG) * super::linear::ROWS_WG;
    g.kh == 1
        && g.kw == 1
        && a.groups == 1
        && a.stride == 1
        && a.padding == 0
        && plane.is_multiple_of(4)
        && plane / 4 * 8 >= lanes * 7
}

/// The tile for `kernel` on shape `g`: the first candidate (the deterministic default) unless
/// tuning is on; then the tuner's recorded choice, or, for a shape seen the first time, the
/// candidate that ran fastest here (each built, run once to warm up, then timed twice).
fn choose(
    gpu: &Gpu,
    kernel: &str,
    g: &Conv2dGeom,
    candidates: &[ConvTile],
    build: impl Fn(ConvTile) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    let Some(tuner) = gpu.tuner() else {
        return build(candidates[0]);
    };
    let a = &g.args;
    let key = format!(
        "{kernel} n{} c{} {}x{} -> {} k{}x{} s{} p{} d{} g{}",
        g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, a.stride, a.padding, a.dilation, a.groups
    );
    if let Some(t) = tuner.get(&key).as_deref().and_then(ConvTile::from_record) {
        if candidates.contains(&t) {
            return build(t);
        }
    }
    if cfg!(target_arch = "wasm32") {
        return build(candidates[0]);
    }
    let mut best: Option<(f64, ConvTile, Vec<Dispatch>)> = None;
    for &t in candidates {
        let ds = build(t)?;
        let ms = time_once(gpu, &ds)?;
        if crate::exec::debug_level() >= 1 {
            eprintln!("convoy: tuning {key}: {t:?} {ms:.2} ms");
        }
        if best.as_ref().is_none_or(|(b, _, _)| ms < *b) {
            best = Some((ms, t, ds));
        }
    }
    let (_, t, ds) = best.expect("at least one candidate");
    tuner.set(&key, t.record());
    Ok(ds)
}

/// Best of two timed runs after a warm-up, in milliseconds.
#[cfg(not(target_arch = "wasm32"))]
fn time_once(gpu: &Gpu, ds: &[Dispatch]) -> Result<f64> {
    let t = crate::bench::time_gpu(gpu, 1, 2, || {
        gpu.run(ds);
        Ok(())
    })?;
    Ok(t.min_ms)
}

#[cfg(target_arch = "wasm32")]
fn time_once(_: &Gpu, _: &[Dispatch]) -> Result<f64> {
    Ok(0.0)
}

/// `forward` with an explicit tile of any kind (for the tuner and its tests): the dispatches
/// to run in order.
#[allow(clippy::too_many_arguments)]
pub fn forward_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    epi: Epilogue,
    storage: DType,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    stats: Option<&wgpu::Buffer>,
) -> Result<Vec<Dispatch>> {
    tile.check()?;
    if tile.kind == TileKind::Block {
        return forward_block(gpu, &CONV2D_FWD_BLOCK, g, epi, storage, x, w, bias, residual, y, stats);
    }
    if stats.is_some() && !tile.writes_stats_blocks(g.n * g.oh * g.ow) {
        return Err(tile.refuse(&format!(
            "block statistics need {STATS_BLOCK} pixels per workgroup, or one workgroup for all"
        )));
    }
    if let TileKind::Texture { .. } = tile.kind {
        return super::conv_texture::forward(gpu, g, tile, epi, storage, x, w, bias, residual, y, stats);
    }
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, bias, residual));
    constants.push(("STATS", f64::from(u8::from(stats.is_some()))));
    constants.push(("WG", tile.wg as f64));
    constants.push(("OCB", tile.ocb as f64));
    constants.push(("TAPS_OUTER", f64::from(u8::from(taps_outer(g.cin / g.args.groups)))));
    constants.push(("ROW_SEGMENT", f64::from(u8::from(forward_row_segment(g)))));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(variant(gpu, &CONV2D_FWD, storage)?, &constants)?;
    let grid = forward_grid(g, tile.wg * FWD_PIXELS, tile.ocb)?;
    let d = gpu.dummy();
    Ok(vec![Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &[
            x,
            w,
            bias.unwrap_or(d),
            residual.unwrap_or(d),
            y,
            stats.unwrap_or(gpu.dummy_rw()),
        ],
        grid,
    )?])
}

/// The forward through `kernel` (conv2d_fwd_block; its tests pass copies with a barrier
/// removed): 64 x 64 block tiles staged in workgroup memory. With `stats`, the kernel writes the
/// statistics of its 64-pixel blocks to a scratch buffer and a second dispatch condenses each 4
/// of them into one `STATS_BLOCK` block.
#[allow(clippy::too_many_arguments)]
pub fn forward_block(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    epi: Epilogue,
    storage: DType,
    x: &wgpu::Buffer,
    w: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
    y: &wgpu::Buffer,
    stats: Option<&wgpu::Buffer>,
) -> Result<Vec<Dispatch>> {
    let pixels = g.n * g.oh * g.ow;
    let fine = match stats {
        Some(_) => {
            let bytes = pixels.div_ceil(BLOCK_PIXELS) * g.cout * 2 * 4;
            Some(gpu.scratch_buffer("conv2d statistics of 64-pixel blocks", bytes as u64)?)
        }
        None => None,
    };
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, bias, residual));
    constants.push(("STATS", f64::from(u8::from(stats.is_some()))));
    let pipeline = gpu.pipeline(variant(gpu, kernel, storage)?, &constants)?;
    let grid = forward_grid(g, BLOCK_PIXELS, BLOCK_CHANNELS)?;
    let d = gpu.dummy();
    let conv = Dispatch::new(
        gpu,
        pipeline,
        &sizes(g)?,
        &[
            x,
            w,
            bias.unwrap_or(d),
            residual.unwrap_or(d),
            y,
            fine.as_ref().unwrap_or(gpu.dummy_rw()),
        ],
        grid,
    )?;
    let (Some(fine), Some(stats)) = (fine, stats) else {
        return Ok(vec![conv]);
    };
    let factor = STATS_BLOCK / BLOCK_PIXELS;
    let work = pixels.div_ceil(STATS_BLOCK) * g.cout;
    let condense = Dispatch::new(
        gpu,
        gpu.pipeline(&CONV2D_STATS_CONDENSE, &[])?,
        &[
            u32_of("conv2d output channels", g.cout)?,
            u32_of("conv2d output pixels", pixels)?,
            BLOCK_PIXELS as u32,
            factor as u32,
        ],
        &[&fine, stats],
        grid_1d(groups_for("conv2d statistics blocks", work, 64)?),
    )?;
    Ok(vec![conv, condense])
}

/// The forward kernels' epilogue overrides: bias, residual, activation.
pub(super) fn epilogue_constants(
    epi: Epilogue,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
) -> [(&'static str, f64); 3] {
    [
        ("HAS_BIAS", f64::from(u8::from(bias.is_some()))),
        ("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))),
        ("ACT", f64::from(epi.act.code())),
    ]
}

/// The forward kernels' grid: blocks of `pixels` output pixels (x, y) by blocks of `channels`
/// output channels within each group (z).
pub(super) fn forward_grid(g: &Conv2dGeom, pixels: usize, channels: usize) -> Result<[u32; 3]> {
    let groups = g.args.groups;
    let channel_blocks = groups * (g.cout / groups).div_ceil(channels);
    let mut grid = grid_1d(groups_for("conv2d output pixels", g.n * g.oh * g.ow, pixels)?);
    grid[2] = u32_of("conv2d channel blocks", channel_blocks)?;
    Ok(grid)
}

/// Output pixels per workgroup of conv2d_fwd_block (its BN).
const BLOCK_PIXELS: usize = 64;

/// Output channels per workgroup of conv2d_fwd_block (its BM).
const BLOCK_CHANNELS: usize = 64;

/// The fewest channels per group for which the gpu family's forward defaults to the block tile.
const BLOCK_MIN_ROWS: usize = 32;

/// The loop order of the implicit-GEMM kernels for `k` reduced channels per group: taps
/// outside and channels inside, so each tap's index arithmetic and bounds checks run once for
/// all channels (r18_l1 forward 400 -> 302 ms, stride-2 input gradient 528 -> 175 ms on
/// lavapipe), unless there are too few channels to pay for it: the 3-channel stem and depthwise
/// convs walk one channel's window tap by tap instead (their planes stay in cache; 350 against
/// 430 ms and 60 against 99 ms the other way). ResNeXt's 4 channels per group gain (25 -> 20 ms).
/// For the input gradient (k = output channels per group) it picks the kernel: conv2d_bwd_data
/// has the taps-outside order only, narrower groups run conv2d_bwd_data_narrow.
fn taps_outer(k: usize) -> bool {
    k >= 4
}

/// Longest row segment the kernels keep in registers (their SEG_MAX).
const SEGMENT_MAX: usize = 32;

/// Whether conv2d_fwd runs with ROW_SEGMENT: the channels-outside loop order (few input
/// channels per group: depthwise, the stem) and rows that hold whole invocations (OW a multiple
/// of FWD_PIXELS), so each invocation's pixels are neighbours in one row and each tap row of
/// their window is one segment of input (mbv2_dw forward 317 -> 237-252 ms on lavapipe, Zen 3).
fn forward_row_segment(g: &Conv2dGeom) -> bool {
    let [_, (x0, x1)] = tap_window(g);
    !taps_outer(g.cin / g.args.groups)
        && g.ow.is_multiple_of(FWD_PIXELS)
        && x1 > x0
        && (FWD_PIXELS - 1) * g.args.stride + (x1 - x0 - 1) * g.args.dilation < SEGMENT_MAX
}

/// The Params struct of the conv kernels (the weight gradients append their chunk size).
pub(super) fn sizes(g: &Conv2dGeom) -> Result<[u32; 8]> {
    u32_of("conv2d input elements", g.n * g.cin * g.h * g.w)?;
    u32_of("conv2d output elements", g.n * g.cout * g.oh * g.ow)?;
    Ok([
        u32_of("conv2d batch", g.n)?,
        u32_of("conv2d input channels", g.cin)?,
        u32_of("conv2d input height", g.h)?,
        u32_of("conv2d input width", g.w)?,
        u32_of("conv2d output channels", g.cout)?,
        u32_of("conv2d output height", g.oh)?,
        u32_of("conv2d output width", g.ow)?,
        u32_of("conv2d groups", g.args.groups)?,
    ])
}

/// dx (N, Cin, H, W) from dy (N, Cout, OH, OW) and w: the forward kernel's layout with input
/// channels as the tile rows (`tile.ocb` of them) and input pixels as its columns; with stride
/// S, one dispatch per stride phase (S*S of them).
pub fn backward_data(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if is_pointwise_gemm(g) {
        // dX_n (Cin, H*W) = W^T (Cin, Cout) x dY_n (Cout, H*W)
        let rows = super::linear::RowsGeom {
            batch: g.n,
            m: g.cin,
            n: g.h * g.w,
            k: g.cout,
            trans_a: true,
        };
        return Ok(vec![super::linear::gemm_rows(
            gpu,
            &rows,
            0,
            DType::F32,
            w,
            dy,
            None,
            None,
            dx,
        )?]);
    }
    if !taps_outer(g.cout / g.args.groups) {
        return Ok(vec![backward_data_narrow(gpu, g, dy, w, dx)?]);
    }
    // the largest stride phase's input pixels
    let s = g.args.stride;
    let pixels = g.n * g.h.div_ceil(s) * g.w.div_ceil(s);
    let candidates = ConvTile::candidates(gpu, g.cin / g.args.groups, pixels);
    choose(gpu, "conv2d_bwd_data", g, &candidates, |t| {
        backward_data_tiled(gpu, g, t, dy, w, dx)
    })
}

/// `backward_data` with an explicit register tile.
pub fn backward_data_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    tile.check_backward()?;
    let groups = g.args.groups;
    if !taps_outer(g.cout / groups) {
        return Err(tile.refuse("groups with fewer than 4 output channels run backward_data_narrow"));
    }
    let channel_blocks = u32_of(
        "conv2d input channel blocks",
        groups * (g.cin / groups).div_ceil(tile.ocb),
    )?;
    let (s, pad) = (g.args.stride, g.args.padding);
    let mut out = Vec::with_capacity(s * s);
    for ry in 0..s {
        for rx in 0..s {
            // the input rows (columns) of this phase start at the first i with (i + P) % S == r
            let rows = g.h.saturating_sub((ry + s - pad % s) % s).div_ceil(s);
            let cols = g.w.saturating_sub((rx + s - pad % s) % s).div_ceil(s);
            if rows * cols == 0 {
                continue;
            }
            let mut constants = geometry_constants(g);
            constants.push(("WG", tile.wg as f64));
            constants.push(("ICB", tile.ocb as f64));
            constants.push(("RY", ry as f64));
            constants.push(("RX", rx as f64));
            constants.extend(tap_window_constants(g));
            let pipeline = gpu.pipeline(&CONV2D_BWD_DATA, &constants)?;
            let pixels = g.n * rows * cols;
            let mut grid = grid_1d(groups_for("conv2d input pixels", pixels, tile.wg * FWD_PIXELS)?);
            grid[2] = channel_blocks;
            out.push(Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)?);
        }
    }
    Ok(out)
}

/// The input gradient of a conv whose groups have fewer than 4 output channels (depthwise, a
/// small depth multiplier), through conv2d_bwd_data_narrow: a direct transposed convolution in
/// one dispatch, each invocation computing `CELLS` cells of stride x stride input pixels (every
/// stride phase) from the dy segments they share.
pub fn backward_data_narrow(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Dispatch> {
    let a = &g.args;
    // the accumulators of one cell row hold stride x cells values: at most SEGMENT_MAX (32)
    let cells = (SEGMENT_MAX / a.stride).min(NARROW_CELLS);
    if cells == 0 {
        return Err(Error::arg(
            "conv2d input gradient",
            "stride",
            format!(
                "{} is more than {SEGMENT_MAX}, the most the grouped-conv input gradient supports",
                a.stride
            ),
        ));
    }
    let [_, (x0, x1)] = tap_window(g);
    let reach = (x1.max(1) - 1) * a.dilation / a.stride;
    let segment = cells + reach - x0 * a.dilation / a.stride;
    let mut constants = geometry_constants(g);
    constants.push(("CELLS", cells as f64));
    constants.push(("SEGMENT", f64::from(u8::from(segment <= SEGMENT_MAX))));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(&CONV2D_BWD_DATA_NARROW, &constants)?;
    let cell_rows = (g.h - 1 + a.padding) / a.stride + 1;
    let cell_cols = (g.w - 1 + a.padding) / a.stride + 1;
    let lanes = g.n * cell_rows * cell_cols.div_ceil(cells);
    let mut grid = grid_1d(groups_for("conv2d input-gradient cells", lanes, WG)?);
    grid[2] = u32_of("conv2d input channels", g.cin)?;
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)
}

/// Cells per invocation of conv2d_bwd_data_narrow (its CELLS), fewer for strides above 8.
const NARROW_CELLS: usize = 4;

/// Weight columns per group (Cin/g * KH * KW) up to which the weight gradient runs
/// conv2d_bwd_weight_narrow (its MAX_COLS): conv2d_bwd_weight spreads the columns over the
/// lanes, 4 per invocation, so a depthwise 3x3 (9 columns) would leave almost every lane idle.
const NARROW_COLUMNS: usize = 32;
/// Weight columns per invocation of conv2d_bwd_weight (its KC).
const BWD_WEIGHT_COLUMNS: usize = 4;
/// The split-K reduction gives each workgroup at least this many output pixels, and splits until
/// about `SPLIT_K_WORKGROUPS` workgroups run (enough to fill a GPU; more only adds partials).
const MIN_CHUNK: usize = 256;
const SPLIT_K_WORKGROUPS: usize = 512;
/// The gpu family's split-K target: thousands of workgroups, so that a GPU with 100+ compute
/// units holds several per unit (512 would leave an H100's 132 SMs ~4 workgroups each, each
/// walking thousands of pixels alone).
const BLOCK_SPLIT_K_WORKGROUPS: usize = 4096;
/// The most bytes of split-K partial sums the block weight gradient writes (each chunk adds a
/// slice as large as dw).
const SPLIT_K_SCRATCH_BYTES: usize = 64 << 20;

/// dw (Cout, Cin/g, KH, KW) from dy and x. Returns the dispatches to run in order: the split-K
/// partial products and their reduction (one dispatch when one chunk covers every pixel).
pub fn backward_weight(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let cols = (g.cin / g.args.groups) * g.kh * g.kw;
    if cols <= NARROW_COLUMNS {
        return backward_weight_narrow(gpu, g, None, dy, x, dw);
    }
    let texture = super::conv_texture::uses_texture(gpu, g);
    // workgroups no wider than the (live) columns they cover, and of 32 rather than 64 lanes
    // where that leaves fewer lanes idle (ResNet's 64-channel 3x3: 144 lanes in 160, not 192;
    // r18_l1 weight gradient ~2450 -> ~2050 ms on lavapipe, Zen 3)
    let lanes = if texture {
        super::conv_texture::weight_gradient_lanes(g)
    } else {
        weight_gradient_lanes(g)
    };
    let idle = |wg: usize| lanes.div_ceil(wg) * wg - lanes;
    let wg = if lanes <= WG / 2 {
        lanes.next_power_of_two().max(16)
    } else if idle(WG / 2) < idle(WG) {
        WG / 2
    } else {
        WG
    };
    let rows = g.cout / g.args.groups;
    let mut candidates = ConvTile::candidates_after(ConvTile::register(rows, wg), rows);
    if ConvTile::block_first(gpu, rows) {
        candidates.insert(0, ConvTile::BLOCK);
    }
    if texture {
        return choose(gpu, "conv2d_bwd_weight_tex", g, &candidates, |t| {
            super::conv_texture::backward_weight(gpu, g, t, None, dy, x, dw)
        });
    }
    choose(gpu, "conv2d_bwd_weight", g, &candidates, |t| {
        backward_weight_tiled(gpu, g, t, None, dy, x, dw)
    })
}

/// Output pixels per split-K chunk: the given number, or enough chunks that about `target`
/// workgroups run when each chunk has `per_chunk` of them, each chunk at least `MIN_CHUNK`
/// pixels and at most `most` chunks.
fn split_k_chunk(pixels: usize, per_chunk: usize, target: usize, most: usize, chunk: Option<usize>) -> usize {
    let chunk = chunk.unwrap_or_else(|| {
        let want = target.div_ceil(per_chunk.max(1));
        let by_work = pixels.div_ceil(MIN_CHUNK);
        pixels.div_ceil(want.min(by_work.max(1)).min(most).max(1))
    });
    chunk.clamp(1, pixels.max(1))
}

/// The weight-gradient dispatches of a split-K kernel: `pipeline` over `grid` (its Params:
/// `params`, then the chunk) writes dw itself when there is one chunk, else one slice of partial
/// sums per chunk that `split_k_reduce` adds. `inputs` are its bindings before the output.
#[allow(clippy::too_many_arguments)]
fn split_k_dispatches(
    gpu: &Gpu,
    g: &Conv2dGeom,
    pipeline: std::sync::Arc<crate::device::Pipeline>,
    chunk: usize,
    grid: [u32; 3],
    params: &[u32],
    inputs: &[Resource],
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let bind = |out| {
        let mut r = inputs.to_vec();
        r.push(Resource::Buffer(out));
        r
    };
    let chunks = (g.n * g.oh * g.ow).div_ceil(chunk);
    let len = g.cout * (g.cin / g.args.groups) * g.kh * g.kw;
    let mut params = params.to_vec();
    params.push(u32_of("conv2d weight-gradient chunk", chunk)?);
    if chunks == 1 {
        return Ok(vec![Dispatch::with_resources(gpu, pipeline, &params, &bind(dw), grid)?]);
    }
    let part = gpu.scratch_buffer("conv2d weight-gradient partial sums", (chunks * len * 4) as u64)?;
    let partial = Dispatch::with_resources(gpu, pipeline, &params, &bind(&part), grid)?;
    let reduce_pipeline = gpu.pipeline(&SPLIT_K_REDUCE, &[("WG", 256.0)])?;
    let reduce = Dispatch::new(
        gpu,
        reduce_pipeline,
        &[u32_of("conv2d weight gradient", len)?, chunks as u32],
        &[&part, dw],
        grid_1d(groups_for("split-K reduction", len, 256)?),
    )?;
    Ok(vec![partial, reduce])
}

/// `backward_weight` through the split-K kernel with an explicit tile and, optionally, a fixed
/// number of pixels per chunk.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight_tiled(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    chunk: Option<usize>,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if tile.kind == TileKind::Block {
        return backward_weight_block(gpu, &CONV2D_BWD_WEIGHT_BLOCK, g, chunk, dy, x, dw);
    }
    let inputs = [Resource::Buffer(dy), Resource::Buffer(x)];
    let lanes = weight_gradient_lanes(g);
    split_k_weight_gradient(gpu, g, &CONV2D_BWD_WEIGHT, tile, lanes, chunk, &sizes(g)?, &inputs, dw)
}

/// The dispatches of a split-K weight-gradient kernel with lanes over weight columns
/// (conv2d_bwd_weight or its texture twin): `tile` over `lanes` column lanes per block of
/// output channels, chunks of `chunk` output pixels or the default; `params` are the kernel's
/// Params before the chunk, `inputs` its bindings before the output.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_k_weight_gradient(
    gpu: &Gpu,
    g: &Conv2dGeom,
    shader: &'static crate::device::Shader,
    tile: ConvTile,
    lanes: usize,
    chunk: Option<usize>,
    params: &[u32],
    inputs: &[Resource],
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    tile.check_backward()?;
    let groups = g.args.groups;
    let col_blocks = lanes.div_ceil(tile.wg).max(1);
    let channel_blocks = groups * (g.cout / groups).div_ceil(tile.ocb);
    let pixels = g.n * g.oh * g.ow;
    let chunk = split_k_chunk(
        pixels,
        col_blocks * channel_blocks,
        SPLIT_K_WORKGROUPS,
        usize::MAX,
        chunk,
    );
    let mut constants = geometry_constants(g);
    constants.push(("WG", tile.wg as f64));
    constants.push(("OCB", tile.ocb as f64));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(shader, &constants)?;
    let grid = [
        u32_of("conv2d weight column blocks", col_blocks)?,
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d output channel blocks", channel_blocks)?,
    ];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, params, inputs, dw)
}

/// The gpu family's weight gradient through `kernel` (conv2d_bwd_weight_block; its tests pass
/// copies with a barrier removed): 64 x 64 blocks of dw staged
/// through workgroup memory, split over chunks of the output pixels so that about
/// `BLOCK_SPLIT_K_WORKGROUPS` workgroups run (each at least `MIN_CHUNK` pixels, the partial sums
/// at most `SPLIT_K_SCRATCH_BYTES`), or over chunks of `chunk` pixels.
pub fn backward_weight_block(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let groups = g.args.groups;
    let cols = (g.cin / groups) * g.kh * g.kw;
    let col_blocks = cols.div_ceil(BLOCK_CHANNELS);
    let channel_blocks = groups * (g.cout / groups).div_ceil(BLOCK_CHANNELS);
    let pixels = g.n * g.oh * g.ow;
    let most = SPLIT_K_SCRATCH_BYTES / (g.cout * cols * 4).max(1);
    let chunk = split_k_chunk(
        pixels,
        col_blocks * channel_blocks,
        BLOCK_SPLIT_K_WORKGROUPS,
        most,
        chunk,
    );
    let pipeline = gpu.pipeline(kernel, &geometry_constants(g))?;
    let grid = [
        u32_of("conv2d weight column blocks", col_blocks)?,
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d output channel blocks", channel_blocks)?,
    ];
    let inputs = [Resource::Buffer(dy), Resource::Buffer(x)];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &inputs, dw)
}

/// The weight gradient of a conv whose groups have at most 32 weight columns (depthwise, few
/// input channels per group): one workgroup per output channel and chunk of output pixels,
/// each lane accumulating every column (conv2d_bwd_weight_narrow), optionally with a fixed
/// number of pixels per chunk.
pub fn backward_weight_narrow(
    gpu: &Gpu,
    g: &Conv2dGeom,
    chunk: Option<usize>,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let cin_g = g.cin / g.args.groups;
    let cols = cin_g * g.kh * g.kw;
    if cols > NARROW_COLUMNS {
        return Err(Error::arg(
            "conv2d weight gradient",
            "weight columns per group",
            format!("{cols} (Cin/groups x KH x KW) is more than the narrow kernel's {NARROW_COLUMNS}"),
        ));
    }
    let pixels = g.n * g.oh * g.ow;
    let chunk = split_k_chunk(pixels, g.cout, SPLIT_K_WORKGROUPS, usize::MAX, chunk);
    let mut constants = geometry_constants(g);
    constants.push(("CIN_G", cin_g as f64));
    let pipeline = gpu.pipeline(&CONV2D_BWD_WEIGHT_NARROW, &constants)?;
    let grid = [
        u32_of("conv2d weight-gradient chunks", pixels.div_ceil(chunk))?,
        u32_of("conv2d output channels", g.cout)?,
        1,
    ];
    let inputs = [Resource::Buffer(dy), Resource::Buffer(x)];
    split_k_dispatches(gpu, g, pipeline, chunk, grid, &sizes(g)?, &inputs, dw)
}

#[cfg(test)]
mod tests {
    use super::{live_taps, pixel_workgroup};

    #[test]
    fn live_taps_are_the_taps_some_output_reads_inside_the_input() {
        // (k, stride, pad, dilation, input, output) -> [lo, hi)
        assert_eq!(live_taps(3, 1, 1, 1, 1, 1), (1, 2)); // 3x3 on a 1x1 map: the centre
        assert_eq!(live_taps(3, 2, 1, 1, 2, 1), (1, 3)); // stride 2 onto 1x1
        assert_eq!(live_taps(5, 1, 2, 1, 2, 2), (1, 4));
        assert_eq!(live_taps(3, 1, 1, 1, 7, 7), (0, 3)); // every tap on a larger map
        assert_eq!(live_taps(3, 1, 2, 2, 1, 1), (1, 2)); // dilated
        assert_eq!(live_taps(1, 2, 1, 1, 1, 2), (0, 0)); // only padding
    }

    #[test]
    fn pixel_workgroups_leave_the_fewest_lanes_idle() {
        // (pixels, SIMD width) -> invocations per workgroup, each invocation taking 4 pixels
        assert_eq!(pixel_workgroup(18, 4, 8, 64), 8); // a small map: the fewest that cover it
        assert_eq!(pixel_workgroup(60, 4, 8, 64), 16);
        assert_eq!(pixel_workgroup(256, 4, 8, 64), 64);
        assert_eq!(pixel_workgroup(18, 4, 32, 64), 8); // small maps cover alike on any device
        assert_eq!(pixel_workgroup(392, 4, 8, 64), 8); // 98 lanes: 6 idle at 8 wide, 30 at 64
        assert_eq!(pixel_workgroup(392, 4, 32, 64), 64); // 30 idle at 32 and 64 wide: the wider
        assert_eq!(pixel_workgroup(1568, 4, 8, 64), 8);
        assert_eq!(pixel_workgroup(1568, 4, 16, 64), 16);
        assert_eq!(pixel_workgroup(25088, 4, 8, 64), 64); // whole workgroups at every width
        assert_eq!(pixel_workgroup(1000, 4, 128, 64), 64); // SIMD width unknown: never above 64
    }
}
