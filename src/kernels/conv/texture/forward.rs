//! The texture forward: conv2d_fwd_tex reading the packed input and weights.

use crate::device::{Dispatch, Gpu, Resource};
use crate::error::{Error, Result};
use crate::kernels::conv::buffers::{ForwardBuffers, Placement};
use crate::kernels::conv::constants::{
    epilogue_constants, forward_grid, geometry_constants, sizes, tap_window_constants,
};
use crate::kernels::conv::tile::{ConvTile, TileKind};
use crate::kernels::shaders::{operand_variant, variant, CONV2D_FWD_TEX};
use crate::kernels::u32_of;
use crate::shape::{Conv2dGeom, DType, Epilogue};

use super::layout::{layout, weights_as_input, PackedInput};
use super::packing::{self, packed, PackMap};

/// Output positions (N x OH x OW) below which conv2d_fwd_tex may take its shape from the Params
/// (SHAPE_IN_PARAMS): its reciprocal division is exact for dividends below 2^22.
const SHAPE_IN_PARAMS_POSITIONS: usize = 1 << 22;

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
            let d = packing::pack(gpu, &wg, &wl, DType::F32, w, &wtex, PackMap::Transposed(&t))?;
            (wl, wtex, d)
        }
        // the plan's constant weights packed once, in its prologue (`KeptOperands`)
        None => packed(gpu, "conv2d weights", 2, &wg, DType::F32, w, kept)?,
    };
    let (shape, in_params) = shape_words(gpu, g, &l, &place, [y0, x0]);
    // the taps stay constants either way; the padding is in the packing
    let mut constants: Vec<(&'static str, f64)> = geometry_constants(g)
        .into_iter()
        .filter(|(name, _)| !in_params || !matches!(*name, "SH" | "SW" | "PH" | "PW"))
        .collect();
    constants.extend(tap_window_constants(g));
    // the bias and the residual in the Params with the shape (one pipeline for either), the
    // activation a constant; else all constants
    let epilogue = epilogue_constants(epi, bias, residual);
    match in_params {
        true => constants.extend([("EPILOGUE_IN_PARAMS", 1.0), epilogue[2], epilogue[3]]),
        false => constants.extend(epilogue),
    }
    constants.push(("STATS", f64::from(u8::from(stats.is_some()))));
    constants.push(("WG", tile.wg as f64));
    constants.push(("OCB", tile.ocb as f64));
    constants.push(("PX", px as f64));
    match in_params {
        true => constants.push(("SHAPE_IN_PARAMS", 1.0)),
        false => constants.extend(shape.iter().map(|&(name, v)| (name, v as f64))),
    }
    let shader = operand_variant(gpu, variant(gpu, &CONV2D_FWD_TEX, storage)?, tile.wg);
    let pipeline = gpu.pipeline(shader, &constants)?;
    let grid = forward_grid(g, tile.wg * px, tile.ocb)?;
    let params = conv_params(g, &l, &wl, &shape, epilogue)?;
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

/// conv2d_fwd_tex's Params: the sizes, x's packed layout `l`, the weights' per band (of `wl`),
/// the shape words, the reciprocals `div_shape` multiplies by, and whether the epilogue adds a
/// bias and a residual (of its `epilogue` constants).
fn conv_params(
    g: &Conv2dGeom,
    l: &PackedInput,
    wl: &PackedInput,
    shape: &[(&'static str, usize)],
    epilogue: [(&'static str, f64); 4],
) -> Result<Vec<u32>> {
    let mut params = sizes(g)?.to_vec();
    params.extend(l.words()?);
    params.push(u32_of("conv2d packed weights per band", wl.per_band)?);
    for &(name, v) in shape {
        params.push(u32_of(name, v)?);
    }
    for d in [g.ow, g.oh * g.ow, l.per_band] {
        params.push(((1.0 / d.max(1) as f64) as f32).to_bits());
    }
    // HAS_BIAS, HAS_RESIDUAL
    params.extend([epilogue[0].1 as u32, epilogue[1].1 as u32]);
    Ok(params)
}

/// The overrides SHAPE_IN_PARAMS moves into the Params, by name, in the Params' order; and
/// whether this conv takes them there (the policy's choice, where the kernel's reciprocal
/// division is exact: fewer than 2^22 output positions).
fn shape_words(
    gpu: &Gpu,
    g: &Conv2dGeom,
    l: &PackedInput,
    place: &Placement,
    [y0, x0]: [usize; 2],
) -> ([(&'static str, usize); 13], bool) {
    let a = &g.args;
    let shape = [
        ("SH", a.stride[0]),
        ("SW", a.stride[1]),
        ("OUT_W", g.ow),
        ("OUT_PLANE", g.oh * g.ow),
        ("PER_BAND", l.per_band),
        ("DST_W", place.w),
        ("DST_PLANE", place.h * place.w),
        ("FIRST_Y", place.first[0]),
        ("FIRST_X", place.first[1]),
        ("STEP_Y", place.stride[0]),
        ("STEP_X", place.stride[1]),
        ("IN_Y0", y0),
        ("IN_X0", x0),
    ];
    let in_params = gpu.policy().shape_in_params && g.n * g.oh * g.ow < SHAPE_IN_PARAMS_POSITIONS;
    (shape, in_params)
}
