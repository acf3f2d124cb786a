//! The conv kernels of the CPU-driver family (`KernelPolicy::texture_operands`): the input is
//! first packed into an rgba32float operand texture (conv2d_pack_input: 4 channels of a group
//! per texel, the zero padding included), which the forward and the weight gradient read with
//! `textureLoad` (the weight gradient reads dy from a second texture, packed alike; the input
//! gradient is this forward of dy, see `backward_data_texture`). On a CPU driver a texel fetch is one vectorised gather where a storage-buffer
//! load with a per-lane address is a loop over the lanes. The packing pass moves the input once;
//! the conv reads it KH*KW*Cout/OCB times.

use super::{
    epilogue_constants, forward_grid, geometry_constants, sizes, split_k_weight_gradient, tap_window,
    tap_window_constants, ConvTile, ForwardBuffers, Placement, TileKind,
};
use crate::device::{Dispatch, Gpu, OperandTexture, Resource, TextureFill};
use crate::error::{Error, Result};
use crate::kernels::shaders::{operand_variant, variant, CONV2D_BWD_WEIGHT_TEX, CONV2D_FWD_TEX, CONV2D_PACK_INPUT};
use crate::kernels::u32_of;
use crate::shape::{Conv2dGeom, DType, Epilogue};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Where conv2d_pack_input puts each input value in the operand texture: one plane of
/// `hp` x `wp` texels per (image, block of 4 channels of a group), the padding included;
/// `per_band` images side by side, bands of them stacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackedInput {
    /// Channel blocks (texels) per group: ceil(Cin/groups / 4).
    pub c4g: usize,
    /// Plane size: the rows and columns some tap reaches, from the first padding row.
    pub hp: usize,
    pub wp: usize,
    pub per_band: usize,
    pub width: usize,
    pub height: usize,
    /// Where the image starts in its plane: the conv's padding rows and columns.
    pub ph: usize,
    pub pw: usize,
}

impl PackedInput {
    /// The layout of `g`'s input in textures of at most `max_side` texels a side, or None when
    /// it does not fit (then the storage-buffer kernels run).
    pub fn new(g: &Conv2dGeom, max_side: usize) -> Option<PackedInput> {
        let a = &g.args;
        let c4g = (g.cin / a.groups).div_ceil(4);
        // padded coordinates of a tap: o * stride + k * dilation
        let hp = (g.oh.max(1) - 1) * a.stride[0] + (g.kh - 1) * a.dilation[0] + 1;
        let wp = (g.ow.max(1) - 1) * a.stride[1] + (g.kw - 1) * a.dilation[1] + 1;
        let per_band = g.n.min(max_side / wp);
        if per_band == 0 {
            return None;
        }
        let height = g.n.div_ceil(per_band).checked_mul(a.groups * c4g * hp)?;
        (height <= max_side).then_some(PackedInput {
            c4g,
            hp,
            wp,
            per_band,
            width: per_band * wp,
            height,
            ph: a.padding[0],
            pw: a.padding[1],
        })
    }

    /// The layout that holds each of `layouts` (packings of one tensor, N images of `groups`
    /// groups, planes of `map` = (H, W)) at an offset: per axis the largest padding before the
    /// map and the largest extent from there on (the whole map at least, so a weight gradient
    /// can read dy from it too); None when it does not fit textures of `max_side` texels.
    pub fn covering(
        layouts: &[PackedInput],
        n: usize,
        groups: usize,
        map: [usize; 2],
        max_side: usize,
    ) -> Option<PackedInput> {
        let first = layouts.first()?;
        let ph = layouts.iter().map(|l| l.ph).max()?;
        let pw = layouts.iter().map(|l| l.pw).max()?;
        let hp = ph + layouts.iter().map(|l| l.hp - l.ph).max()?.max(map[0]);
        let wp = pw + layouts.iter().map(|l| l.wp - l.pw).max()?.max(map[1]);
        let per_band = n.min(max_side / wp);
        if per_band == 0 || layouts.iter().any(|l| l.c4g != first.c4g) {
            return None;
        }
        let height = n.div_ceil(per_band).checked_mul(groups * first.c4g * hp)?;
        (height <= max_side).then_some(PackedInput {
            c4g: first.c4g,
            hp,
            wp,
            per_band,
            width: per_band * wp,
            height,
            ph,
            pw,
        })
    }

    /// Where `own` (a conv's packing of the same tensor) starts in this one, (rows, columns),
    /// when this one holds it: the same channel blocks, at least its padding before and its
    /// extent after.
    pub fn offset_of(&self, own: &PackedInput) -> Option<[usize; 2]> {
        let holds = self.c4g == own.c4g
            && self.ph >= own.ph
            && self.pw >= own.pw
            && self.hp - self.ph >= own.hp - own.ph
            && self.wp - self.pw >= own.wp - own.pw;
        holds.then(|| [self.ph - own.ph, self.pw - own.pw])
    }

    /// The texture layout words the texture kernels append to the conv Params (the images
    /// per band go in as a pipeline constant).
    fn words(&self) -> Result<[u32; 3]> {
        Ok([
            u32_of("conv2d packed channel blocks", self.c4g)?,
            u32_of("conv2d packed plane width", self.wp)?,
            u32_of("conv2d packed plane height", self.hp)?,
        ])
    }
}

/// Whether the CPU family's texture kernels run `g`: the policy asks for texture operands, the
/// input fits the texture limit, and the conv has one group or at least 3 input channels per
/// group (a texel holds 4: depthwise convs would waste 3 of 4 lanes of every fetch and
/// multiply-add, and run the row-segment kernels instead). A one-channel stem wastes 3 of 4
/// too, yet its texture passes beat the storage kernels' per-lane gathers, packings included
/// (BENCHMARKS.md, "Batch norm in vec4s, phases stored in place, a texture stem").
pub fn uses_texture(gpu: &Gpu, g: &Conv2dGeom) -> bool {
    let policy = gpu.policy();
    let max = policy.max_texture_side as usize;
    policy.texture_operands
        && (g.args.groups == 1 || g.cin / g.args.groups >= 3)
        && PackedInput::new(g, max).is_some()
        && PackedInput::new(&weights_as_input(g), max).is_some()
}

/// Whether the weight gradient of `g` runs the texture kernel: `uses_texture`, and dy (packed
/// alike, a texel per 4 output channels) fits the texture limit too.
pub fn weight_gradient_uses_texture(gpu: &Gpu, g: &Conv2dGeom) -> bool {
    uses_texture(gpu, g) && PackedInput::new(&dy_as_input(g), gpu.policy().max_texture_side as usize).is_some()
}

/// The weights (Cout, Cin/groups, KH, KW) of `g` as the input of a conv that packs them like an
/// input: Cout images of Cin/groups channels of KH x KW, unpadded. The forward reads the 4
/// weights of a texel (4 input channels of one output channel at one tap) with one fetch, where
/// 4 storage loads at the workgroup's (not constant) address cost lavapipe 4 loops over the
/// lanes (BENCHMARKS.md, "What a load costs on lavapipe, and the texture kernels rebuilt on
/// it").
fn weights_as_input(g: &Conv2dGeom) -> Conv2dGeom {
    Conv2dGeom {
        n: g.cout,
        cin: g.cin / g.args.groups,
        h: g.kh,
        w: g.kw,
        cout: 1,
        kh: g.kh,
        kw: g.kw,
        oh: 1,
        ow: 1,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, 1),
    }
}

/// The packed layout of `g`'s input on `gpu`, or an error naming the limit.
fn layout(gpu: &Gpu, what: &str, g: &Conv2dGeom) -> Result<PackedInput> {
    let max = gpu.policy().max_texture_side as usize;
    PackedInput::new(g, max).ok_or_else(|| Error::Limit {
        what: format!(
            "{what} (N {}, C {}, {}x{}, groups {}) packed as an operand texture",
            g.n, g.cin, g.h, g.w, g.args.groups
        ),
        need: (g.n * g.args.groups * (g.cin / g.args.groups).div_ceil(4) * g.h) as u64,
        max: max as u64,
    })
}

/// A training plan's activations that stay packed from one texture conv to a later one: a
/// conv's input x from its forward to its weight gradient, and (stride 1) its output gradient
/// dy from its input gradient to its weight gradient. A conv that packs a wanted buffer packs it
/// into a texture of its own instead of the pooled scratch, and the weight gradient reads that
/// texture instead of packing again (BENCHMARKS.md, "Packing once for the forward and the
/// weight gradient"). One per plan, built before its nodes are lowered, which tell it, in the
/// order the plan runs, what their dispatches fill (`lowered`) and which buffers they write
/// (`written`): a record holds from a packing to the next write of its buffer.
#[derive(Default)]
pub struct KeptOperands {
    /// Buffers some weight gradient of the plan reads as a packed texture.
    wanted: HashSet<wgpu::Buffer>,
    /// Their textures by (buffer, layout), once a conv packs into them.
    textures: RefCell<HashMap<(wgpu::Buffer, PackedInput), Arc<OperandTexture>>>,
    /// Those whose contents are current at this point of the plan.
    filled: RefCell<HashSet<(wgpu::Buffer, PackedInput)>>,
}

impl KeptOperands {
    /// Keep the operands of `g`'s weight gradient packed (x, and dy), where that gradient reads
    /// them as packed textures (`weight_gradient_reads_packed_operands`).
    pub fn want(&mut self, gpu: &Gpu, g: &Conv2dGeom, dy: &wgpu::Buffer, x: &wgpu::Buffer) {
        if super::weight_gradient_reads_packed_operands(gpu, g) {
            self.wanted.insert(x.clone());
            self.wanted.insert(dy.clone());
        }
    }

    /// The kept texture to pack `x` into with layout `l`, when `x` is wanted.
    fn texture(&self, gpu: &Gpu, what: &str, x: &wgpu::Buffer, l: &PackedInput) -> Result<Option<Arc<OperandTexture>>> {
        if !self.wanted.contains(x) {
            return Ok(None);
        }
        let key = (x.clone(), *l);
        if let Some(t) = self.textures.borrow().get(&key) {
            return Ok(Some(t.clone()));
        }
        let t = gpu.kept_operand_texture(what, l.width as u32, l.height as u32)?;
        self.textures.borrow_mut().insert(key, t.clone());
        Ok(Some(t))
    }

    /// Record what a lowered node's dispatches fill. Called with the dispatches that run, not
    /// with the tuner's candidates, after `written` for the node's outputs.
    pub fn lowered(&self, dispatches: &[Dispatch]) {
        let textures = self.textures.borrow();
        for f in dispatches.iter().filter_map(|d| d.fill.as_ref()) {
            for (key, t) in textures.iter() {
                if t.texture == f.texture {
                    self.filled.borrow_mut().insert(key.clone());
                }
            }
        }
    }

    /// A node writes `b`: its packings are stale from here on.
    pub fn written(&self, b: &wgpu::Buffer) {
        self.filled.borrow_mut().retain(|(k, _)| k != b);
    }

    /// A current packing of `b` whose layout `fits`, with its texture.
    fn find(
        &self,
        b: &wgpu::Buffer,
        fits: impl Fn(&PackedInput) -> bool,
    ) -> Option<(PackedInput, Arc<OperandTexture>)> {
        let filled = self.filled.borrow();
        let (_, l) = filled.iter().find(|(k, l)| k == b && fits(l))?;
        let t = self.textures.borrow().get(&(b.clone(), *l)).cloned()?;
        Some((*l, t))
    }
}

/// The dispatches that pack x (N, Cin, H, W), stored as `storage`, into `tex`: one per band of
/// rows the texture's staging buffer holds, each followed by its copy into the texture.
fn pack(
    gpu: &Gpu,
    g: &Conv2dGeom,
    l: &PackedInput,
    storage: DType,
    x: &wgpu::Buffer,
    tex: &OperandTexture,
    transposed: Option<&TransposedWeights>,
) -> Result<Vec<Dispatch>> {
    const WG: usize = 64;
    // the shape and layout as pipeline constants (the shader says why); sizes() checks that
    // they fit u32
    sizes(g)?;
    l.words()?;
    let mut constants = vec![
        ("WG", WG as f64),
        ("N", g.n as f64),
        ("CIN", g.cin as f64),
        ("H", g.h as f64),
        ("W", g.w as f64),
        ("GROUPS", g.args.groups as f64),
        ("C4G", l.c4g as f64),
        ("WP", l.wp as f64),
        ("HP", l.hp as f64),
        ("PER_BAND", l.per_band as f64),
        ("PH", l.ph as f64),
        ("PW", l.pw as f64),
    ];
    if let Some(t) = transposed {
        constants.extend(t.constants(g)?);
    }
    let pipeline = gpu.pipeline(variant(gpu, &CONV2D_PACK_INPUT, storage)?, &constants)?;
    let width = u32_of("conv2d packed width", l.width)?;
    let height = u32_of("conv2d packed height", l.height)?;
    let band = tex.staging_rows;
    (0..height)
        .step_by(band as usize)
        .map(|y0| {
            let rows = band.min(height - y0);
            let params = [width, y0, rows, tex.staging_stride];
            let grid = [u32_of("conv2d packing workgroups", l.width.div_ceil(WG))?, rows, 1];
            let d = Dispatch::with_resources(
                gpu,
                pipeline.clone(),
                &params,
                &[Resource::Buffer(x), Resource::Buffer(&tex.staging)],
                grid,
            )?;
            Ok(d.then_fill(TextureFill {
                staging: tex.staging.clone(),
                bytes_per_row: tex.staging_stride * crate::device::TEXEL_BYTES,
                texture: tex.texture.clone(),
                y0,
                width,
                rows,
            }))
        })
        .collect()
}

/// `x`, the input of `g` (`what`), packed into its kept texture where `kept` wants it, else
/// into scratch operand texture `slot`: the layout, the texture and the packing dispatches.
fn packed(
    gpu: &Gpu,
    what: &str,
    slot: u32,
    g: &Conv2dGeom,
    storage: DType,
    x: &wgpu::Buffer,
    kept: Option<&KeptOperands>,
) -> Result<(PackedInput, Arc<OperandTexture>, Vec<Dispatch>)> {
    let l = layout(gpu, what, g)?;
    let tex = match kept.map(|k| k.texture(gpu, what, x, &l)).transpose()?.flatten() {
        Some(t) => t,
        None => gpu.operand_texture(what, slot, l.width as u32, l.height as u32)?,
    };
    let d = pack(gpu, g, &l, storage, x, &tex, None)?;
    Ok((l, tex, d))
}

/// Weights packed straight from a conv's w (Cout, Cin/g, KH, KW) as the forward weights of its
/// input gradient or of one stride phase of it: the taps (k0, step, count) per axis, flipped,
/// the channel axes swapped within each group (conv2d_pack_input's TRANSPOSED map, where a
/// conv2d_transpose_weights pass wrote a transposed copy first).
#[derive(Clone, Copy, Debug)]
pub struct TransposedWeights {
    pub conv: Conv2dGeom,
    pub taps: [(usize, usize, usize); 2],
}

impl TransposedWeights {
    /// The TRANSPOSED constants of conv2d_pack_input packing these as the weights of `fwd`
    /// (as `weights_as_input` lays them out), or an error where `fwd` does not take them.
    fn constants(&self, fwd: &Conv2dGeom) -> Result<Vec<(&'static str, f64)>> {
        let (c, [(k0y, sy, th), (k0x, sx, tw)]) = (&self.conv, self.taps);
        let cout_g = c.cout / c.args.groups;
        let fits = fwd.n == c.cin && fwd.cin == cout_g && fwd.h == th && fwd.w == tw;
        let reach = |k0: usize, step: usize, n: usize, k: usize| n == 0 || k0 + (n - 1) * step < k;
        if !fits || !reach(k0y, sy, th, c.kh) || !reach(k0x, sx, tw, c.kw) {
            return Err(Error::arg(
                "conv2d transposed weights",
                "taps",
                format!("{:?} of {c:?} are not the weights of {fwd:?}", self.taps),
            ));
        }
        let mut constants = vec![("TRANSPOSED", 1.0)];
        constants.extend(super::transpose_constants(c, self.taps));
        Ok(constants)
    }
}

/// One packing that several texture forwards read at their offsets (`PackedInput::offset_of`):
/// a strided conv's dy, packed once for all its stride phases (and its weight gradient, where
/// the plan keeps it), where each phase packed it with its own padding.
pub struct SharedPacking {
    pub layout: PackedInput,
    pub texture: Arc<OperandTexture>,
}

/// dy of the strided conv `g` packed once for the forwards of its stride phases `phases`
/// (their geometries: dy as the input), into its kept texture where the plan wants dy packed
/// for the weight gradient, else into scratch operand texture 0: the packing and its
/// dispatches, or None when the covering layout does not fit a texture (then each phase packs
/// its own).
pub fn pack_for_phases(
    gpu: &Gpu,
    g: &Conv2dGeom,
    phases: &[Conv2dGeom],
    dy: &wgpu::Buffer,
    kept: Option<&KeptOperands>,
) -> Result<Option<(SharedPacking, Vec<Dispatch>)>> {
    const WHAT: &str = "conv2d output gradient";
    let layouts = phases
        .iter()
        .map(|p| layout(gpu, WHAT, p))
        .collect::<Result<Vec<_>>>()?;
    let max = gpu.policy().max_texture_side as usize;
    let Some(l) = PackedInput::covering(&layouts, g.n, g.args.groups, [g.oh, g.ow], max) else {
        return Ok(None);
    };
    let tex = match kept.map(|k| k.texture(gpu, WHAT, dy, &l)).transpose()?.flatten() {
        Some(t) => t,
        None => gpu.operand_texture(WHAT, 0, l.width as u32, l.height as u32)?,
    };
    let d = pack(gpu, &dy_as_input(g), &l, DType::F32, dy, &tex, None)?;
    Ok(Some((
        SharedPacking {
            layout: l,
            texture: tex,
        },
        d,
    )))
}

/// The forward through conv2d_fwd_tex with a texture tile: the packing dispatch, then the conv.
pub fn forward(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    epi: Epilogue,
    storage: DType,
    b: &ForwardBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let ForwardBuffers {
        x,
        w,
        bias,
        residual,
        y,
        stats,
        kept,
        placement,
        x_packed,
        w_transposed,
    } = *b;
    let TileKind::Texture { px } = tile.kind else {
        return Err(tile.refuse("conv2d_fwd_tex runs texture tiles"));
    };
    let place = placement.unwrap_or(Placement::dense(g));
    if !place.holds(g) {
        return Err(Error::arg(
            "conv2d forward",
            "placement",
            format!("{place:?} does not hold the output of {g:?}"),
        ));
    }
    let (l, tex, pack, [y0, x0]) = match x_packed {
        Some(s) => {
            let own = layout(gpu, "conv2d input", g)?;
            let at = s.layout.offset_of(&own).ok_or_else(|| {
                Error::arg(
                    "conv2d forward",
                    "x_packed",
                    format!("{:?} does not hold the packing {own:?} of {g:?}", s.layout),
                )
            })?;
            (s.layout, s.texture.clone(), Vec::new(), at)
        }
        None => {
            let (l, tex, d) = packed(gpu, "conv2d input", 0, g, storage, x, kept)?;
            (l, tex, d, [0, 0])
        }
    };
    let wg = weights_as_input(g);
    let (wl, wtex, wpack) = match w_transposed {
        // another conv's weights, transposed as they are packed
        Some(t) => {
            let wl = layout(gpu, "conv2d weights", &wg)?;
            let wtex = gpu.operand_texture("conv2d weights", 2, wl.width as u32, wl.height as u32)?;
            let d = self::pack(gpu, &wg, &wl, DType::F32, w, &wtex, Some(&t))?;
            (wl, wtex, d)
        }
        None => packed(gpu, "conv2d weights", 2, &wg, DType::F32, w, None)?,
    };
    let mut constants = geometry_constants(g);
    constants.extend(epilogue_constants(epi, bias, residual));
    constants.push(("STATS", f64::from(u8::from(stats.is_some()))));
    constants.push(("WG", tile.wg as f64));
    constants.push(("OCB", tile.ocb as f64));
    constants.push(("PX", px as f64));
    constants.push(("OUT_W", g.ow as f64));
    constants.push(("OUT_PLANE", (g.oh * g.ow) as f64));
    constants.push(("PER_BAND", l.per_band as f64));
    constants.push(("DST_W", place.w as f64));
    constants.push(("DST_PLANE", (place.h * place.w) as f64));
    constants.push(("FIRST_Y", place.first[0] as f64));
    constants.push(("FIRST_X", place.first[1] as f64));
    constants.push(("STEP_Y", place.stride[0] as f64));
    constants.push(("STEP_X", place.stride[1] as f64));
    constants.push(("IN_Y0", y0 as f64));
    constants.push(("IN_X0", x0 as f64));
    constants.extend(tap_window_constants(g));
    let shader = operand_variant(gpu, variant(gpu, &CONV2D_FWD_TEX, storage)?, tile.wg);
    let pipeline = gpu.pipeline(shader, &constants)?;
    let grid = forward_grid(g, tile.wg * px, tile.ocb)?;
    let mut params = sizes(g)?.to_vec();
    params.extend(l.words()?);
    params.push(u32_of("conv2d packed weights per band", wl.per_band)?);
    let d = gpu.dummy();
    let conv = Dispatch::with_resources(
        gpu,
        pipeline,
        &params,
        &[
            Resource::Texture(&tex.view),
            Resource::Texture(&wtex.view),
            Resource::Buffer(bias.unwrap_or(d)),
            Resource::Buffer(residual.unwrap_or(d)),
            Resource::Buffer(y),
            Resource::Buffer(stats.unwrap_or(gpu.dummy_rw())),
        ],
        grid,
    )?;
    let mut out = pack;
    out.extend(wpack);
    out.push(conv);
    Ok(out)
}

/// Texel columns (4 input channels of one live tap each) per lane of conv2d_bwd_weight_tex: two
/// where that still leaves `MIN_LANES_FOR_TWO_COLUMNS` lanes, since a second x texel reuses each dy
/// fetch (64 multiply-adds per 4 fetches, not 32 per 3).
pub fn weight_gradient_columns(g: &Conv2dGeom) -> usize {
    if weight_gradient_units(g) >= 2 * MIN_LANES_FOR_TWO_COLUMNS {
        2
    } else {
        1
    }
}

/// `g` as the conv from its output to its input, where that makes a better texture weight
/// gradient: a stride-1, unpadded, ungrouped 1x1 conv whose input channels give too few texel
/// columns for two per lane and whose output channels give enough (r50_expand, 64 -> 256: 16
/// against 64). dW = dY X^T is then computed as its transpose X dY^T, the weight gradient of
/// this conv with x as its output gradient and dy as its input; None otherwise.
pub fn swapped_pointwise(g: &Conv2dGeom) -> Option<Conv2dGeom> {
    let a = &g.args;
    let pointwise = g.kh == 1 && g.kw == 1 && a.stride == [1, 1] && a.padding == [0, 0] && a.groups == 1;
    let swapped = Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        kh: 1,
        kw: 1,
        oh: g.h,
        ow: g.w,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, 1),
    };
    let enough = 2 * MIN_LANES_FOR_TWO_COLUMNS;
    (pointwise && weight_gradient_units(g) < enough && weight_gradient_units(&swapped) >= enough).then_some(swapped)
}

/// Lanes of one block of output channels below which conv2d_bwd_weight_tex keeps one texel
/// column per lane: two columns per lane pay where they leave enough lanes, and lose where a
/// block has few (BENCHMARKS.md, "Two texel columns per lane").
const MIN_LANES_FOR_TWO_COLUMNS: usize = 16;

/// (block of 4 input channels of a group, live tap) pairs: the texel columns of dw.
fn weight_gradient_units(g: &Conv2dGeom) -> usize {
    let [(y0, y1), (x0, x1)] = tap_window(g);
    (g.cin / g.args.groups).div_ceil(4) * (y1 - y0) * (x1 - x0)
}

/// Lanes of conv2d_bwd_weight_tex per block of output channels with `columns` texel columns
/// each.
pub fn weight_gradient_lanes(g: &Conv2dGeom, columns: usize) -> usize {
    weight_gradient_units(g).div_ceil(columns)
}

/// The weight gradient through conv2d_bwd_weight_tex with a register tile, `columns` (1 or 2)
/// texel columns per lane and, optionally, a fixed number of output pixels per split-K chunk:
/// packing, the partial products, and their reduction when there is more than one chunk.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    columns: usize,
    chunk: Option<usize>,
    dy: &wgpu::Buffer,
    x: &wgpu::Buffer,
    dw: &wgpu::Buffer,
    kept: Option<&KeptOperands>,
) -> Result<Vec<Dispatch>> {
    if !(1..=2).contains(&columns) {
        return Err(Error::arg(
            "conv2d_bwd_weight_tex",
            "columns",
            format!("texel columns per lane are 1 or 2, not {columns}"),
        ));
    }
    // whole texels of dy per workgroup: 4 or 8 output channels (those past the group's last
    // are zero components, unstored)
    let tile = ConvTile {
        ocb: tile.ocb.next_multiple_of(4).min(8),
        ..tile
    };
    // x as its forward packed it, where the plan kept that texture
    let l = layout(gpu, "conv2d input", g)?;
    let (tex, xpack) = match kept.and_then(|k| k.find(x, |kl| *kl == l)) {
        Some((_, tex)) => (tex, Vec::new()),
        None => {
            let (_, tex, d) = packed(gpu, "conv2d input", 0, g, DType::F32, x, None)?;
            (tex, d)
        }
    };
    // dy as the input gradient packed it (any padding around whole planes of dy), where the
    // plan kept that texture; else packed alike here (4 output channels of a group per texel,
    // no padding): the kernel fetches a texel per 4 output channels instead of 4 uniform loads
    let dyg = dy_as_input(g);
    let dc4g = (g.cout / g.args.groups).div_ceil(4);
    let holds_dy = |dl: &PackedInput| dl.c4g == dc4g && dl.ph + g.oh <= dl.hp && dl.pw + g.ow <= dl.wp;
    let (dl, dtex, dpack) = match kept.and_then(|k| k.find(dy, holds_dy)) {
        Some((dl, dtex)) => (dl, dtex, Vec::new()),
        None => packed(gpu, "conv2d output gradient", 1, &dyg, DType::F32, dy, None)?,
    };
    let mut params = sizes(g)?.to_vec();
    params.extend(l.words()?);
    params.extend([
        u32_of("conv2d packed output-gradient blocks", dl.c4g)?,
        u32_of("conv2d packed output-gradient plane width", dl.wp)?,
        u32_of("conv2d packed output-gradient plane height", dl.hp)?,
        u32_of("conv2d packed output-gradient padding", dl.ph)?,
        u32_of("conv2d packed output-gradient padding", dl.pw)?,
    ]);
    let inputs = [Resource::Texture(&dtex.view), Resource::Texture(&tex.view)];
    let lanes = weight_gradient_lanes(g, columns);
    let mut out = xpack;
    out.extend(dpack);
    out.extend(split_k_weight_gradient(
        gpu,
        g,
        operand_variant(gpu, &CONV2D_BWD_WEIGHT_TEX, tile.wg),
        tile,
        lanes,
        &[
            ("CB", columns as f64),
            ("OUT_W", g.ow as f64),
            ("OUT_PLANE", (g.oh * g.ow) as f64),
            ("PER_BAND", l.per_band as f64),
            ("DPER_BAND", dl.per_band as f64),
        ],
        chunk,
        &params,
        &inputs,
        dw,
    )?);
    Ok(out)
}

/// dy of `g` as the input of a 1x1 conv (its channels, its map, no padding): what the packing
/// kernel takes to lay dy out in an operand texture.
fn dy_as_input(g: &Conv2dGeom) -> Conv2dGeom {
    Conv2dGeom {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cout,
        kh: 1,
        kw: 1,
        oh: g.oh,
        ow: g.ow,
        args: crate::shape::Conv2dArgs::new(1, 0, 1, g.args.groups),
    }
}

#[cfg(test)]
mod tests {
    use super::PackedInput;
    use crate::shape::Shape;
    use crate::shape::{Conv2dArgs, Conv2dGeom};

    fn geom(n: usize, cin: usize, hw: usize, k: usize, stride: usize, pad: usize, groups: usize) -> Conv2dGeom {
        let args = Conv2dArgs::new(stride, pad, 1, groups);
        Conv2dGeom::new(
            &Shape::new(&[n, cin, hw, hw]),
            &Shape::new(&[cin, cin / groups, k, k]),
            args,
        )
        .unwrap()
    }

    #[test]
    fn packed_planes_hold_the_padding_and_fold_the_batch_into_bands() {
        // 3x3, pad 1 on 56x56: planes of 58x58 texels, 64 channels -> 16 blocks
        let l = PackedInput::new(&geom(8, 64, 56, 3, 1, 1, 1), 16384).unwrap();
        assert_eq!((l.c4g, l.hp, l.wp, l.per_band), (16, 58, 58, 8));
        assert_eq!((l.width, l.height), (8 * 58, 16 * 58));
        // 16 blocks of 58 rows do not fit a side of 200: refused (the buffer kernels run)
        assert!(PackedInput::new(&geom(8, 64, 56, 3, 1, 1, 1), 200).is_none());
        // a small side folds the 8 images into bands of 3
        let l = PackedInput::new(&geom(8, 4, 10, 3, 1, 1, 1), 40).unwrap();
        assert_eq!((l.hp, l.wp, l.per_band, l.width, l.height), (12, 12, 3, 36, 36));
        // stride 2 reaches fewer columns than the padded image has: 7x7 pad 3 s2 on 224
        let l = PackedInput::new(&geom(1, 3, 224, 7, 2, 3, 1), 16384).unwrap();
        assert_eq!((l.c4g, l.hp, l.wp), (1, 229, 229));
        // groups: one set of blocks per group
        let l = PackedInput::new(&geom(2, 128, 28, 3, 1, 1, 32), 16384).unwrap();
        assert_eq!((l.c4g, l.height), (1, 32 * 30));
        // a plane wider than the side: nothing fits
        assert!(PackedInput::new(&geom(1, 4, 100, 3, 1, 1, 1), 64).is_none());
    }

    #[test]
    fn a_covering_packing_holds_each_reader_at_its_offset() {
        // dy of 7x7 read by a 2x2 kernel with padding 1 (9x9 planes from row -1) and a 1x1
        // (7x7 from row 0): one packing of 9x9 from row -1
        let two = PackedInput::new(&geom(4, 8, 7, 2, 1, 1, 1), 1024).unwrap();
        let one = PackedInput::new(&geom(4, 8, 7, 1, 1, 0, 1), 1024).unwrap();
        assert_eq!((two.ph, two.hp, one.ph, one.hp), (1, 9, 0, 7));
        let c = PackedInput::covering(&[two, one], 4, 1, [7, 7], 1024).unwrap();
        assert_eq!((c.ph, c.pw, c.hp, c.wp, c.per_band), (1, 1, 9, 9, 4));
        assert_eq!(c.offset_of(&two), Some([0, 0]));
        assert_eq!(c.offset_of(&one), Some([1, 1]));
        // a 3x3 with padding 1 reaches as far (held); with padding 2 further (refused)
        let three = PackedInput::new(&geom(4, 8, 7, 3, 1, 1, 1), 1024).unwrap();
        assert_eq!(c.offset_of(&three), Some([0, 0]));
        let far = PackedInput::new(&geom(4, 8, 7, 3, 1, 2, 1), 1024).unwrap();
        assert_eq!(c.offset_of(&far), None);
        // another tensor's channel blocks: not held, and not covered together
        let wide = PackedInput::new(&geom(4, 16, 7, 1, 1, 0, 1), 1024).unwrap();
        assert_eq!(c.offset_of(&wide), None);
        assert!(PackedInput::covering(&[two, wide], 4, 1, [7, 7], 1024).is_none());
        // the whole map at least, for the weight gradient: a reader of 5 rows still gets 7
        let short = PackedInput { hp: 5, wp: 5, ..one };
        let c = PackedInput::covering(&[short], 4, 1, [7, 7], 1024).unwrap();
        assert_eq!((c.hp, c.wp), (7, 7));
        // too tall for the side
        assert!(PackedInput::covering(&[two, one], 4, 1, [7, 7], 20).is_none());
    }
}
