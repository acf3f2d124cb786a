//! Packing inputs into operand textures (conv2d_pack_input), and the packings a training plan
//! keeps from a forward to its weight gradient or shares between the stride phases of an input
//! gradient.

use crate::device::{Dispatch, Gpu, OperandTexture, Resource, TextureFill};
use crate::error::{Error, Result};
use crate::kernels::conv::constants::{sizes, transpose_constants};
use crate::kernels::shaders::{variant, CONV2D_PACK_INPUT};
use crate::kernels::{f32_bits, u32_of};
use crate::shape::{Conv2dGeom, DType};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::layout::{dy_as_input, layout, weight_gradient_reads_packed_operands, PackedInput};

/// A plan's operands that stay packed past the conv that packs them. A training plan's
/// activations from one texture conv to a later one: a conv's input x from its forward to its
/// weight gradient, and (stride 1) its output gradient dy from its input gradient to its weight
/// gradient. A conv that packs a wanted buffer packs it into a texture of its own instead of the
/// pooled scratch, and the weight gradient reads that texture instead of packing again
/// (BENCHMARKS.md, "Packing once for the forward and the weight gradient"). And the weights the
/// plan never writes (`constant`): a forward packs them into a texture of their own in the
/// plan's prologue, which runs again only when the parameters change, instead of on every run.
/// One per plan, built before its nodes are lowered, which tell it, in the order the plan runs,
/// what their dispatches fill (`lowered`) and which buffers they write (`written`): a record
/// holds from a packing to the next write of its buffer.
#[derive(Default)]
pub struct KeptOperands {
    /// Buffers some weight gradient of the plan reads as a packed texture.
    wanted: HashSet<wgpu::Buffer>,
    /// Weights no node of the plan writes: parameters without an optimizer update in the plan,
    /// and what the prologue derives from them (batch norms folded into a conv's weights).
    constant: HashSet<wgpu::Buffer>,
    /// Their textures by (buffer, layout).
    constant_textures: RefCell<HashMap<(wgpu::Buffer, PackedInput), Arc<OperandTexture>>>,
    /// Of those, folded weights that every reader packs (`fold_into_packing`): packed straight
    /// from the conv's weights and the batch norm's scale, never computed on their own.
    folded: HashMap<wgpu::Buffer, FoldedWeights>,
    /// Their textures by (buffer, layout), once a conv packs into them.
    textures: RefCell<HashMap<(wgpu::Buffer, PackedInput), Arc<OperandTexture>>>,
    /// Those whose contents are current at this point of the plan.
    filled: RefCell<HashSet<(wgpu::Buffer, PackedInput)>>,
}

impl KeptOperands {
    /// Keep the operands of `g`'s weight gradient packed (x, and dy), where that gradient reads
    /// them as packed textures (`weight_gradient_reads_packed_operands`).
    pub fn want(&mut self, gpu: &Gpu, g: &Conv2dGeom, dy: &wgpu::Buffer, x: &wgpu::Buffer) {
        if weight_gradient_reads_packed_operands(gpu, g) {
            self.wanted.insert(x.clone());
            self.wanted.insert(dy.clone());
        }
    }

    /// Pack `folded.w` scaled by the batch norm of `folded` wherever a conv packs `w_folded`
    /// (a fold_bn node's output, all of whose readers pack it): the fold then computes only
    /// the bias (`folds_into_packing`).
    pub fn fold_into_packing(&mut self, w_folded: &wgpu::Buffer, folded: FoldedWeights) {
        self.constant.insert(w_folded.clone());
        self.folded.insert(w_folded.clone(), folded);
    }

    /// Whether the packings of `w_folded` fold its batch norm in (`fold_into_packing`).
    pub fn folds_into_packing(&self, w_folded: &wgpu::Buffer) -> bool {
        self.folded.contains_key(w_folded)
    }

    /// Keep the weights `w` packed across runs: no node of the plan writes them.
    pub fn constant_weights(&mut self, w: &wgpu::Buffer) {
        self.constant.insert(w.clone());
    }

    /// The texture of its own to pack constant weights `w` into with layout `l` (in the
    /// prologue), when `w` is constant.
    fn constant_texture(
        &self,
        gpu: &Gpu,
        what: &str,
        w: &wgpu::Buffer,
        l: &PackedInput,
    ) -> Result<Option<Arc<OperandTexture>>> {
        if !self.constant.contains(w) {
            return Ok(None);
        }
        texture_of_own(&self.constant_textures, gpu, what, w, l).map(Some)
    }

    /// Bytes of the textures that hold constant weights packed.
    pub fn constant_bytes(&self) -> u64 {
        let texels = |t: &OperandTexture| u64::from(t.texture.width()) * u64::from(t.texture.height());
        self.constant_textures
            .borrow()
            .values()
            .map(|t| texels(t) * u64::from(crate::device::TEXEL_BYTES))
            .sum()
    }

    /// The kept texture to pack `x` into with layout `l`, when `x` is wanted.
    pub(super) fn texture(
        &self,
        gpu: &Gpu,
        what: &str,
        x: &wgpu::Buffer,
        l: &PackedInput,
    ) -> Result<Option<Arc<OperandTexture>>> {
        if !self.wanted.contains(x) {
            return Ok(None);
        }
        texture_of_own(&self.textures, gpu, what, x, l).map(Some)
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
    pub(super) fn find(
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

/// The texture of its own in `textures` that packs `x` (`what`) with layout `l`, made on first
/// asking.
fn texture_of_own(
    textures: &RefCell<HashMap<(wgpu::Buffer, PackedInput), Arc<OperandTexture>>>,
    gpu: &Gpu,
    what: &str,
    x: &wgpu::Buffer,
    l: &PackedInput,
) -> Result<Arc<OperandTexture>> {
    let key = (x.clone(), *l);
    if let Some(t) = textures.borrow().get(&key) {
        return Ok(t.clone());
    }
    let t = gpu.kept_operand_texture(what, l.width as u32, l.height as u32)?;
    textures.borrow_mut().insert(key, t.clone());
    Ok(t)
}

/// The dispatches that pack x (N, Cin, H, W), stored as `storage`, into `tex`: one per band of
/// rows the texture's staging buffer holds, each followed by its copy into the texture.
pub(super) fn pack(
    gpu: &Gpu,
    g: &Conv2dGeom,
    l: &PackedInput,
    storage: DType,
    x: &wgpu::Buffer,
    tex: &OperandTexture,
    map: PackMap<'_>,
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
    let (x, scale, eps) = match map {
        PackMap::Plain => (x, None, 0.0),
        PackMap::Transposed(t) => {
            constants.extend(t.constants(g)?);
            (x, None, 0.0)
        }
        PackMap::Folded(f) => {
            if storage != DType::F32 {
                return Err(Error::arg("conv2d packing", "storage", "folded weights are f32"));
            }
            constants.push(("SCALED", 1.0));
            (&f.w, Some((&f.gamma, &f.run_var)), f.eps)
        }
    };
    let pipeline = gpu.pipeline(variant(gpu, &CONV2D_PACK_INPUT, storage)?, &constants)?;
    let (gamma, run_var) = scale.unwrap_or((gpu.dummy(), gpu.dummy()));
    let width = u32_of("conv2d packed width", l.width)?;
    let height = u32_of("conv2d packed height", l.height)?;
    let band = tex.staging_rows;
    (0..height)
        .step_by(band as usize)
        .map(|y0| {
            let rows = band.min(height - y0);
            let params = [width, y0, rows, tex.staging_stride, f32_bits(eps)];
            let grid = [u32_of("conv2d packing workgroups", l.width.div_ceil(WG))?, rows, 1];
            let resources = [x, &tex.staging, gamma, run_var].map(Resource::Buffer);
            let d = Dispatch::with_resources(gpu, pipeline.clone(), &params, &resources, grid)?;
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

/// `x`, the input of `g` (`what`), packed into its kept texture where `kept` wants it or holds
/// it constant (then by dispatches that derive it, for the prologue), else into scratch operand
/// texture `slot`: the layout, the texture and the packing dispatches.
pub(super) fn packed(
    gpu: &Gpu,
    what: &str,
    slot: u32,
    g: &Conv2dGeom,
    storage: DType,
    x: &wgpu::Buffer,
    kept: Option<&KeptOperands>,
) -> Result<(PackedInput, Arc<OperandTexture>, Vec<Dispatch>)> {
    let l = layout(gpu, what, g)?;
    if let Some(k) = kept {
        if let Some(tex) = k.constant_texture(gpu, what, x, &l)? {
            let map = k.folded.get(x).map_or(PackMap::Plain, PackMap::Folded);
            let d = pack(gpu, g, &l, storage, x, &tex, map)?;
            return Ok((l, tex, d.into_iter().map(Dispatch::deriving).collect()));
        }
    }
    let tex = match kept.map(|k| k.texture(gpu, what, x, &l)).transpose()?.flatten() {
        Some(t) => t,
        None => gpu.operand_texture(what, slot, l.width as u32, l.height as u32)?,
    };
    let d = pack(gpu, g, &l, storage, x, &tex, PackMap::Plain)?;
    Ok((l, tex, d))
}

/// How a packing maps its source to the operand: the tensor itself, a conv's weights transposed
/// (the forward weights of its input gradient), or a conv's weights with an inference batch norm
/// folded in.
#[derive(Clone, Copy)]
pub(super) enum PackMap<'a> {
    Plain,
    Transposed(&'a TransposedWeights),
    Folded(&'a FoldedWeights),
}

/// A conv's weights w (Cout, ...) and the inference batch norm after it (gamma and running_var,
/// (Cout) each, and eps): packed as w * gamma / sqrt(running_var + eps) per output channel.
#[derive(Clone, Debug)]
pub struct FoldedWeights {
    pub w: wgpu::Buffer,
    pub gamma: wgpu::Buffer,
    pub run_var: wgpu::Buffer,
    pub eps: f32,
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
    /// `fwd` may take fewer rows (its output channels, the conv's input channels) than there
    /// are: the tuner times a candidate on a sample of the problem (`tune::sample_geometry`)
    /// whose forward computes the first channels only, from the first rows of the weights.
    fn constants(&self, fwd: &Conv2dGeom) -> Result<Vec<(&'static str, f64)>> {
        let (c, [(k0y, sy, th), (k0x, sx, tw)]) = (&self.conv, self.taps);
        let cout_g = c.cout / c.args.groups;
        let fits = fwd.n >= 1 && fwd.n <= c.cin && fwd.cin == cout_g && fwd.h == th && fwd.w == tw;
        let reach = |k0: usize, step: usize, n: usize, k: usize| n == 0 || k0 + (n - 1) * step < k;
        if !fits || !reach(k0y, sy, th, c.kh) || !reach(k0x, sx, tw, c.kw) {
            return Err(Error::arg(
                "conv2d transposed weights",
                "taps",
                format!("{:?} of {c:?} are not the weights of {fwd:?}", self.taps),
            ));
        }
        let mut constants = vec![("TRANSPOSED", 1.0)];
        constants.extend(transpose_constants(c, self.taps));
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
    let d = pack(gpu, &dy_as_input(g), &l, DType::F32, dy, &tex, PackMap::Plain)?;
    Ok(Some((
        SharedPacking {
            layout: l,
            texture: tex,
        },
        d,
    )))
}
