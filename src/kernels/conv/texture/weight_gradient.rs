//! The texture weight gradient: conv2d_bwd_weight_tex reading x and dy packed, split over
//! chunks of the output pixels.

use crate::device::{Dispatch, Gpu, Resource};
use crate::error::{Error, Result};
use crate::kernels::conv::buffers::WeightGradientBuffers;
use crate::kernels::conv::constants::sizes;
use crate::kernels::conv::split_k::{split_k_weight_gradient, SplitKKernel};
use crate::kernels::conv::tile::ConvTile;
use crate::kernels::shaders::{operand_variant, CONV2D_BWD_WEIGHT_TEX};
use crate::kernels::u32_of;
use crate::shape::{Conv2dGeom, DType};

use super::layout::{dy_as_input, layout, weight_gradient_lanes, PackedInput};
use super::packing::{packed, KeptOperands};

/// The weight gradient through conv2d_bwd_weight_tex with a register tile, `columns` (1 or 2)
/// texel columns per lane and, optionally, a fixed number of output pixels per split-K chunk:
/// packing, the partial products, and their reduction when there is more than one chunk.
pub fn backward_weight(
    gpu: &Gpu,
    g: &Conv2dGeom,
    tile: ConvTile,
    columns: usize,
    chunk: Option<usize>,
    b: &WeightGradientBuffers<'_>,
    kept: Option<&KeptOperands>,
) -> Result<Vec<Dispatch>> {
    let WeightGradientBuffers { dy, x, dw } = *b;
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
    let packed = WeightGradientBuffers {
        dy: Resource::Texture(&dtex.view),
        x: Resource::Texture(&tex.view),
        dw,
    };
    let kernel = SplitKKernel {
        shader: operand_variant(gpu, &CONV2D_BWD_WEIGHT_TEX, tile.wg),
        tile,
        lanes: weight_gradient_lanes(g, columns),
        overrides: &[
            ("CB", columns as f64),
            ("OUT_W", g.ow as f64),
            ("OUT_PLANE", (g.oh * g.ow) as f64),
            ("PER_BAND", l.per_band as f64),
            ("DPER_BAND", dl.per_band as f64),
        ],
        params: &params,
    };
    let mut out = xpack;
    out.extend(dpack);
    out.extend(split_k_weight_gradient(gpu, g, &kernel, chunk, &packed)?);
    Ok(out)
}
