//! The conv input gradient: dx from dy and w.

use super::buffers::{ForwardBuffers, Placement};
use super::constants::{
    geometry_constants, sizes, tap_window, tap_window_constants, taps_outer, transpose_constants, FWD_PIXELS,
    SEGMENT_MAX, WG,
};
use super::forward::{depthwise_staged_fits, forward, forward_block, forward_depthwise, is_pointwise_gemm};
use super::texture;
use super::tile::{ConvTile, TileKind};
use super::tune::{choose, Rows};
use crate::device::{grid_1d, Dispatch, Gpu, KernelFamily};
use crate::error::{Error, Result};
use crate::kernels::shaders::{
    CONV2D_BWD_DATA, CONV2D_BWD_DATA_NARROW, CONV2D_FWD_BLOCK, CONV2D_SCATTER_PHASE, CONV2D_TRANSPOSE_WEIGHTS,
};
use crate::kernels::{groups_for, u32_of};
use crate::shape::{Conv2dGeom, DType, Epilogue};

/// dx (N, Cin, H, W) from dy (N, Cout, OH, OW) and w: the forward kernel's layout with input
/// channels as the tile rows (`tile.ocb` of them) and input pixels as its columns; with stride
/// S, one dispatch per stride phase (S*S of them). Where a forward kernel is the faster one,
/// the input gradient is the forward of dy with transposed weights: the texture forward on the
/// cpu family, per stride phase (`backward_data_texture`), the block forward on the gpu family
/// (`backward_data_block` for stride 1, per stride phase for larger strides).
pub fn backward_data(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    kept: Option<&texture::KeptOperands>,
) -> Result<Vec<Dispatch>> {
    if let Some(phases) = forward_phases(gpu, g) {
        return through_forward_phases(gpu, g, &phases, dy, w, dx, kept);
    }
    let block = ConvTile::block_first(gpu, g.cin / g.args.groups) && transposes_to_forward(g);
    if is_pointwise_gemm(g) && !block {
        // dX_n (Cin, H*W) = W^T (Cin, Cout) x dY_n (Cout, H*W)
        let rows = crate::kernels::gemm::RowsGeom {
            batch: g.n,
            m: g.cin,
            n: g.h * g.w,
            k: g.cout,
            trans_a: true,
        };
        return Ok(vec![crate::kernels::gemm::gemm_rows(
            gpu,
            &rows,
            crate::shape::Act::None,
            DType::F32,
            w,
            dy,
            None,
            None,
            dx,
        )?]);
    }
    // the gpu family's stride-1 depthwise input gradient: the staged depthwise forward of dy
    // with the kernel flipped
    if gpu.policy().family == KernelFamily::Gpu
        && transposes_to_forward(g)
        && depthwise_staged_fits(&transposed_geometry(g))
    {
        return backward_data_depthwise(gpu, g, dy, w, dx);
    }
    if !taps_outer(g.cout / g.args.groups) {
        return Ok(vec![backward_data_narrow(gpu, g, dy, w, dx)?]);
    }
    // the largest stride phase's input pixels
    let [sh, sw] = g.args.stride;
    let pixels = g.n * g.h.div_ceil(sh) * g.w.div_ceil(sw);
    let mut candidates = ConvTile::candidates(gpu, g.cin / g.args.groups, pixels);
    if block {
        candidates.insert(0, ConvTile::BLOCK);
    }
    choose(gpu, "conv2d_bwd_data", g, Rows::Inputs, &candidates, |g, t| {
        backward_data_tiled(gpu, g, t, dy, w, dx)
    })
}

/// Whether the input gradient of `g` is a forward conv of dy: stride 1 (larger strides leave
/// holes between dy's taps) and each axis's padding at most the dilated kernel's reach, so
/// that the transposed conv's padding, d*(K-1) - P per axis, is not negative.
pub fn transposes_to_forward(g: &Conv2dGeom) -> bool {
    let a = &g.args;
    a.stride == [1, 1] && a.padding[0] <= a.dilation[0] * (g.kh - 1) && a.padding[1] <= a.dilation[1] * (g.kw - 1)
}

/// The input gradient of a stride-1 conv through the block forward `kernel`
/// (conv2d_fwd_block): dx = conv2d(dy, wt) with wt the kernel flipped and its channel axes
/// swapped within each group (conv2d_transpose_weights, into a scratch buffer, first), padding
/// d*(K-1) - P. The input gradient then runs at the forward's efficiency: its 64 x 64 tiles of
/// input channels x input pixels, K = Cout/g x taps staged through workgroup memory.
pub fn backward_data_block(
    gpu: &Gpu,
    kernel: &'static crate::device::Shader,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    if !transposes_to_forward(g) {
        return Err(
            ConvTile::BLOCK.refuse("the block input gradient needs stride 1 and padding <= d*(K-1) on each axis")
        );
    }
    through_forward(
        gpu,
        g,
        all_taps(g),
        &transposed_geometry(g),
        dy,
        w,
        dx,
        false,
        |t, b| forward_block(gpu, kernel, t, Epilogue::default(), DType::F32, b),
    )
}

/// One axis of a conv's input gradient split by stride phase. The input positions i with
/// (i + P) % S == r take the taps k with k*D % S == r: k0, k0 + step, ... (`taps` of them), whose
/// dy positions are `dil` apart; as a stride-1 forward over dy the phase is a map of `count`
/// outputs, output m at input position `first` + S*m, with padding `pad` in front of dy (None
/// when it would be negative: a padding larger than the kernel's reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PhaseAxis {
    k0: usize,
    step: usize,
    taps: usize,
    dil: usize,
    first: usize,
    count: usize,
    pad: Option<usize>,
}

/// Phase `r` of one axis: input size `size`, kernel `k`, stride `s`, padding `p`, dilation `d`.
fn phase_axis(size: usize, k: usize, s: usize, p: usize, d: usize, r: usize) -> PhaseAxis {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let step = s / gcd(d, s);
    let k0 = (0..k.min(step)).find(|&k| k * d % s == r);
    let taps = k0.map_or(0, |k0| (k - k0).div_ceil(step));
    // the first phase output: the smallest m with r + s*m - p >= 0
    let m0 = if p > r { (p - r).div_ceil(s) } else { 0 };
    let first = r + s * m0 - p;
    let count = if first < size { (size - first).div_ceil(s) } else { 0 };
    let dil = step * d / s;
    // tap j reads dy at m - e_j, e_j = (k_j*d - r) / s = e_0 + j*dil; flipped, the forward's
    // padding is e_max - m0
    let pad = k0.and_then(|k0| ((k0 * d - r) / s + (taps - 1) * dil).checked_sub(m0));
    PhaseAxis {
        k0: k0.unwrap_or(0),
        step,
        taps,
        dil,
        first,
        count,
        pad,
    }
}

/// The stride phases of `g`'s input gradient that a forward kernel runs, as (rows, columns, the
/// phase's forward geometry, None where no tap reaches it) per phase; else None. On the cpu
/// family (texture operands) when every phase with taps fits the texture forward (3+ output
/// channels per group, dy within the texture limit, no negative padding). On the gpu family for
/// a strided conv whose groups have the block forward's 32+ rows (input channels here): each
/// phase is a stride-1 conv of dy that the block forward runs at its efficiency, far above the
/// register kernel it replaces (BENCHMARKS.md, "The first GPU runs"); stride 1 keeps
/// `backward_data_block` among the tuner's candidates.
fn forward_phases(gpu: &Gpu, g: &Conv2dGeom) -> Option<Vec<ForwardPhase>> {
    let a = &g.args;
    let policy = gpu.policy();
    let texture = policy.texture_operands;
    let block = !texture
        && policy.family == KernelFamily::Gpu
        && a.stride != [1, 1]
        && ConvTile::block_first(gpu, g.cin / a.groups);
    if !texture && !block {
        return None;
    }
    let axes = |axis: usize, size: usize, k: usize| -> Vec<PhaseAxis> {
        (0..a.stride[axis])
            .map(|r| phase_axis(size, k, a.stride[axis], a.padding[axis], a.dilation[axis], r))
            .collect()
    };
    let (rows, cols) = (axes(0, g.h, g.kh), axes(1, g.w, g.kw));
    let mut phases = Vec::new();
    for &py in &rows {
        for &px in &cols {
            if py.count == 0 || px.count == 0 {
                continue;
            }
            let geom = match py.taps > 0 && px.taps > 0 {
                true => Some(phase_geometry(g, &py, &px)?),
                false => None,
            };
            if texture && geom.is_some_and(|geom| !texture::uses_texture(gpu, &geom)) {
                return None;
            }
            phases.push((py, px, geom));
        }
    }
    Some(phases)
}

/// One stride phase of an input gradient through a forward kernel: its rows, its columns, and
/// its forward geometry (None for a phase no tap reaches).
type ForwardPhase = (PhaseAxis, PhaseAxis, Option<Conv2dGeom>);

/// The forward geometry of one stride phase: dy as the input, the phase's taps as the kernel
/// (flipped, channel axes swapped), the phase's map as the output; None for a negative padding.
fn phase_geometry(g: &Conv2dGeom, py: &PhaseAxis, px: &PhaseAxis) -> Option<Conv2dGeom> {
    Some(Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: py.taps,
        kw: px.taps,
        oh: py.count,
        ow: px.count,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, g.args.groups).hw([1, 1], [py.pad?, px.pad?], [py.dil, px.dil]),
    })
}

/// The input gradient through the cpu family's texture forward (conv2d_fwd_tex, after packing dy
/// into an operand texture), one stride phase at a time: each phase of dx is the forward of dy
/// with that phase's taps flipped and their channel axes swapped (as the weights are packed),
/// stored straight into its positions in dx (a `Placement`); a phase no tap reaches gets zeros
/// (conv2d_scatter_phase). On a CPU driver the register kernel's per-lane
/// storage loads of dy are loops over the lanes; the texture forward fetches 4 channels of dy
/// per texel in one gather.
pub fn backward_data_texture(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let Some(phases) = forward_phases(gpu, g).filter(|_| gpu.policy().texture_operands) else {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!(
                "{g:?}: the texture input gradient takes convs with 3+ output channels per group whose dy fits an operand texture and whose padding is within the kernel's reach, under the texture policy"
            ),
        ));
    };
    through_forward_phases(gpu, g, &phases, dy, w, dx, None)
}

/// The input gradient for the phases `forward_phases` found, each through `forward`: the
/// texture forward on the cpu family, storing each phase in place; the block forward or the
/// tuner's choice on the gpu family, into a scratch map put in place by conv2d_scatter_phase.
/// Stride 1 is one phase, dx itself.
fn through_forward_phases(
    gpu: &Gpu,
    g: &Conv2dGeom,
    phases: &[ForwardPhase],
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
    kept: Option<&texture::KeptOperands>,
) -> Result<Vec<Dispatch>> {
    let dense = g.args.stride == [1, 1];
    // the cpu family's phases all run the texture forward (`forward_phases`)
    let texture = gpu.policy().texture_operands;
    let in_place = !dense && texture;
    let planes = g.n * g.cin;
    // (first, count, step) per axis of a map scattered into dx
    let scatter = |rows: [usize; 3], cols: [usize; 3], zero: bool, phase: &wgpu::Buffer| -> Result<Dispatch> {
        let total = planes * rows[1] * cols[1];
        Dispatch::new(
            gpu,
            gpu.pipeline(
                &CONV2D_SCATTER_PHASE,
                &[
                    ("ZERO", f64::from(u8::from(zero))),
                    ("ROWS", rows[1] as f64),
                    ("COLS", cols[1] as f64),
                ],
            )?,
            &[
                u32_of("conv2d input planes", planes)?,
                g.h as u32,
                g.w as u32,
                rows[0] as u32,
                cols[0] as u32,
                rows[2] as u32,
                cols[2] as u32,
            ],
            &[phase, dx],
            grid_1d(groups_for("conv2d input-gradient phase", total, 64)?),
        )
    };
    let mut out = Vec::new();
    // dy packed once for every phase with taps (and kept for the weight gradient where the
    // plan wants it), where each phase packed it with its own padding
    let readers: Vec<Conv2dGeom> = phases.iter().filter_map(|p| p.2).collect();
    let (shared, packing) = match in_place {
        true => texture::pack_for_phases(gpu, g, &readers, dy, kept)?.map_or((None, vec![]), |(s, d)| (Some(s), d)),
        false => (None, vec![]),
    };
    if in_place && phases.iter().any(|(_, _, geom)| geom.is_none()) {
        // phases no tap reaches: one pass zeroes all of dx, and the phases with taps then store
        // over their positions (one dispatch where a zero pass per phase took S*S - 1; a 1x1
        // stride-2 projection has 3 such phases)
        out.push(scatter([0, g.h, 1], [0, g.w, 1], true, gpu.dummy())?);
    }
    out.extend(packing);
    for &(py, px, geom) in phases {
        let (rows, cols) = (
            [py.first, py.count, g.args.stride[0]],
            [px.first, px.count, g.args.stride[1]],
        );
        let Some(geom) = geom else {
            if !in_place {
                out.push(scatter(rows, cols, true, gpu.dummy())?);
            }
            continue;
        };
        let taps = [(py.k0, py.step, py.taps), (px.k0, px.step, px.taps)];
        if dense {
            // dy's one packing (no phases): kept for the weight gradient where the plan wants it
            out.extend(through_forward(gpu, g, taps, &geom, dy, w, dx, texture, |t, b| {
                forward(gpu, t, Epilogue::default(), DType::F32, &ForwardBuffers { kept, ..*b })
            })?);
        } else if in_place {
            // the texture forward stores the phase straight into its positions in dx
            let placement = Placement {
                h: g.h,
                w: g.w,
                first: [py.first, px.first],
                stride: g.args.stride,
            };
            out.extend(through_forward(gpu, g, taps, &geom, dy, w, dx, true, |t, b| {
                let b = ForwardBuffers {
                    placement: Some(placement),
                    x_packed: shared.as_ref(),
                    ..*b
                };
                forward(gpu, t, Epilogue::default(), DType::F32, &b)
            })?);
        } else {
            let bytes = (planes * py.count * px.count * 4) as u64;
            let phase = gpu.scratch_buffer("conv2d input-gradient phase", bytes)?;
            out.extend(through_forward(gpu, g, taps, &geom, dy, w, &phase, false, |t, b| {
                forward(gpu, t, Epilogue::default(), DType::F32, b)
            })?);
            out.push(scatter(rows, cols, false, &phase)?);
        }
    }
    Ok(out)
}

/// The forward geometry whose output is the input gradient of a stride-1 conv `g`: dy as the
/// input, the flipped kernel with its channel axes swapped, padding d*(K-1) - P per axis
/// (callers check `transposes_to_forward`, which keeps it non-negative).
fn transposed_geometry(g: &Conv2dGeom) -> Conv2dGeom {
    let a = &g.args;
    Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: g.kh,
        kw: g.kw,
        oh: g.h,
        ow: g.w,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, a.groups).hw(
            [1, 1],
            [
                (a.dilation[0] * (g.kh - 1)).saturating_sub(a.padding[0]),
                (a.dilation[1] * (g.kw - 1)).saturating_sub(a.padding[1]),
            ],
            a.dilation,
        ),
    }
}

/// The input gradient of `g` (or one stride phase of it) as the forward `forward` runs on
/// `geom`, the transposed geometry: the weights' taps `taps` per axis ((k0, step, count): k0,
/// k0 + step, ...) flipped and channel-swapped (conv2d_transpose_weights, into a scratch buffer)
/// first, then the forward of dy with them into `out`. A `texture` forward packs them
/// transposed from w itself (`texture::TransposedWeights`), with no transposed copy.
#[allow(clippy::too_many_arguments)]
fn through_forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    taps: [(usize, usize, usize); 2],
    geom: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    out: &wgpu::Buffer,
    texture: bool,
    forward: impl FnOnce(&Conv2dGeom, &ForwardBuffers<'_>) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    if texture {
        let b = ForwardBuffers {
            w_transposed: Some(texture::TransposedWeights { conv: *g, taps }),
            ..ForwardBuffers::new(dy, w, out)
        };
        return forward(geom, &b);
    }
    let (cout_g, [(_, _, th), (_, _, tw)]) = (g.cout / g.args.groups, taps);
    let wt = gpu.scratch_buffer("conv2d transposed weights", (g.cin * cout_g * th * tw * 4) as u64)?;
    let transpose = transpose_weights(gpu, g, taps, w, &wt)?;
    let mut dispatches = vec![transpose];
    dispatches.extend(forward(geom, &ForwardBuffers::new(dy, &wt, out))?);
    Ok(dispatches)
}

/// The dispatch of conv2d_transpose_weights: `w` of `g` (Cout, Cin/g, KH, KW) into `wt` (Cin,
/// Cout/g, TH, TW) with the taps `taps` per axis ((k0, step, count)) flipped and the channel
/// axes swapped within each group (`transpose_constants`).
pub(super) fn transpose_weights(
    gpu: &Gpu,
    g: &Conv2dGeom,
    taps: [(usize, usize, usize); 2],
    w: &wgpu::Buffer,
    wt: &wgpu::Buffer,
) -> Result<Dispatch> {
    let a = &g.args;
    let (cin_g, cout_g) = (g.cin / a.groups, g.cout / a.groups);
    let [(_, _, th), (_, _, tw)] = taps;
    let total = g.cin * cout_g * th * tw;
    u32_of("conv2d input channels per group", cin_g)?;
    u32_of("conv2d output channels per group", cout_g)?;
    let mut constants = transpose_constants(g, taps).to_vec();
    constants.extend([("TH", th as f64), ("TW", tw as f64)]);
    Dispatch::new(
        gpu,
        gpu.pipeline(&CONV2D_TRANSPOSE_WEIGHTS, &constants)?,
        &[u32_of("conv2d weights", total)?],
        &[w, wt],
        grid_1d(groups_for("conv2d weights", total, 64)?),
    )
}

/// Every tap of each axis, for a stride-1 conv's transposed weights.
fn all_taps(g: &Conv2dGeom) -> [(usize, usize, usize); 2] {
    [(0, 1, g.kh), (0, 1, g.kw)]
}

/// The input gradient of a stride-1 depthwise conv through the staged depthwise forward
/// (conv2d_fwd_depthwise, the gpu family's): dx = the depthwise conv of dy with each channel's
/// kernel flipped, padding d*(K-1) - P.
pub fn backward_data_depthwise(
    gpu: &Gpu,
    g: &Conv2dGeom,
    dy: &wgpu::Buffer,
    w: &wgpu::Buffer,
    dx: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let transposed = transposed_geometry(g);
    if !transposes_to_forward(g) || !depthwise_staged_fits(&transposed) {
        return Err(Error::arg(
            "conv2d input gradient",
            "kernel",
            format!("{g:?}: the staged depthwise input gradient takes stride-1 depthwise convs"),
        ));
    }
    through_forward(gpu, g, all_taps(g), &transposed, dy, w, dx, false, |t, b| {
        forward_depthwise(gpu, t, Epilogue::default(), DType::F32, b)
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
    if tile.kind == TileKind::Block {
        return backward_data_block(gpu, &CONV2D_FWD_BLOCK, g, dy, w, dx);
    }
    tile.check_backward()?;
    let groups = g.args.groups;
    if !taps_outer(g.cout / groups) {
        return Err(tile.refuse("groups with fewer than 4 output channels run backward_data_narrow"));
    }
    let channel_blocks = u32_of(
        "conv2d input channel blocks",
        groups * (g.cin / groups).div_ceil(tile.ocb),
    )?;
    let ([sh, sw], [ph, pw]) = (g.args.stride, g.args.padding);
    let mut out = Vec::with_capacity(sh * sw);
    for ry in 0..sh {
        for rx in 0..sw {
            // the input rows (columns) of this phase start at the first i with (i + P) % S == r
            let rows = g.h.saturating_sub((ry + sh - ph % sh) % sh).div_ceil(sh);
            let cols = g.w.saturating_sub((rx + sw - pw % sw) % sw).div_ceil(sw);
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
    let ([sh, sw], [ph, pw], dw) = (a.stride, a.padding, a.dilation[1]);
    // the accumulators of one cell row hold stride x cells values: at most SEGMENT_MAX (32)
    let cells = (SEGMENT_MAX / sw).min(NARROW_CELLS);
    if cells == 0 {
        return Err(Error::arg(
            "conv2d input gradient",
            "stride",
            format!("{sw} across is more than {SEGMENT_MAX}, the most the grouped-conv input gradient supports"),
        ));
    }
    let [_, (x0, x1)] = tap_window(g);
    let reach = (x1.max(1) - 1) * dw / sw;
    let segment = cells + reach - x0 * dw / sw;
    let mut constants = geometry_constants(g);
    constants.push(("CELLS", cells as f64));
    constants.push(("SEGMENT", f64::from(u8::from(segment <= SEGMENT_MAX))));
    constants.extend(tap_window_constants(g));
    let pipeline = gpu.pipeline(&CONV2D_BWD_DATA_NARROW, &constants)?;
    let cell_rows = (g.h - 1 + ph) / sh + 1;
    let cell_cols = (g.w - 1 + pw) / sw + 1;
    let lanes = g.n * cell_rows * cell_cols.div_ceil(cells);
    let mut grid = grid_1d(groups_for("conv2d input-gradient cells", lanes, WG)?);
    grid[2] = u32_of("conv2d input channels", g.cin)?;
    Dispatch::new(gpu, pipeline, &sizes(g)?, &[dy, w, dx], grid)
}

/// Cells per invocation of conv2d_bwd_data_narrow (its CELLS), fewer for strides above 8.
pub(super) const NARROW_CELLS: usize = 4;

#[cfg(test)]
mod tests {
    use super::{phase_axis, PhaseAxis};

    #[test]
    fn stride_phases_take_the_taps_that_land_on_them() {
        // 3 taps, stride 2, padding 1 (ResNet's downsampling 3x3) on 56 rows: the odd rows
        // (phase 0: (i + 1) % 2 == 0) take taps 0 and 2, the even rows tap 1
        let even = phase_axis(56, 3, 2, 1, 1, 0);
        assert_eq!(
            even,
            PhaseAxis {
                k0: 0,
                step: 2,
                taps: 2,
                dil: 1,
                first: 1,
                count: 28,
                pad: Some(0)
            }
        );
        let odd = phase_axis(56, 3, 2, 1, 1, 1);
        assert_eq!(
            (odd.k0, odd.taps, odd.first, odd.count, odd.pad),
            (1, 1, 0, 28, Some(0))
        );
        // stride 1 is one phase: every tap, padding d*(K-1) - P
        let one = phase_axis(9, 5, 1, 1, 2, 0);
        assert_eq!(
            (one.k0, one.step, one.taps, one.dil, one.first, one.count, one.pad),
            (0, 1, 5, 2, 0, 9, Some(7))
        );
        // dilation 2 at stride 2: the odd phase has no tap (its rows get zeros)
        assert_eq!(phase_axis(10, 3, 2, 0, 2, 1).taps, 0);
        // a 1x1 with padding 1 at stride 2: the padding lies beyond the kernel's reach
        let beyond = phase_axis(8, 1, 2, 1, 1, 0);
        assert_eq!((beyond.taps, beyond.pad), (1, None));
    }
}
