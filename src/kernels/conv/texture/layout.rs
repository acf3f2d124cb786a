//! Which convs the texture kernels take and how their operands are laid out in operand
//! textures: the packed layout of an input (`PackedInput`), a conv's weights and output gradient
//! seen as inputs, and the weight gradient's texel columns per lane.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels::conv::constants::tap_window;
use crate::kernels::conv::device::ConvDevice;
use crate::kernels::u32_of;
use crate::shape::Conv2dGeom;

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
    pub(super) fn words(&self) -> Result<[u32; 3]> {
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
pub fn uses_texture<'a>(dev: impl Into<ConvDevice<'a>>, g: &Conv2dGeom) -> bool {
    let policy = dev.into().policy;
    let max = policy.max_texture_side as usize;
    policy.texture_operands
        && (g.args.groups == 1 || g.cin / g.args.groups >= 3)
        && PackedInput::new(g, max).is_some()
        && PackedInput::new(&weights_as_input(g), max).is_some()
}

/// Whether the weight gradient of `g` runs the texture kernel: `uses_texture`, and dy (packed
/// alike, a texel per 4 output channels) fits the texture limit too.
pub fn weight_gradient_uses_texture<'a>(dev: impl Into<ConvDevice<'a>>, g: &Conv2dGeom) -> bool {
    let dev = dev.into();
    uses_texture(dev, g) && PackedInput::new(&dy_as_input(g), dev.policy.max_texture_side as usize).is_some()
}

/// The weights (Cout, Cin/groups, KH, KW) of `g` as the input of a conv that packs them like an
/// input: Cout images of Cin/groups channels of KH x KW, unpadded. The forward reads the 4
/// weights of a texel (4 input channels of one output channel at one tap) with one fetch, where
/// 4 storage loads at the workgroup's (not constant) address cost lavapipe 4 loops over the
/// lanes (BENCHMARKS.md, "What a load costs on lavapipe, and the texture kernels rebuilt on
/// it").
pub(super) fn weights_as_input(g: &Conv2dGeom) -> Conv2dGeom {
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
pub(super) fn layout(gpu: &Gpu, what: &str, g: &Conv2dGeom) -> Result<PackedInput> {
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

/// Whether the weight gradient of `g` reads x packed in `g`'s own texture layout and dy packed
/// (the texture kernel, not on the swapped pointwise conv): then a training plan keeps the
/// forward's packing of x, and a stride-1 input gradient's packing of dy, for it
/// (`KeptOperands`).
pub(in crate::kernels::conv) fn weight_gradient_reads_packed_operands(gpu: &Gpu, g: &Conv2dGeom) -> bool {
    weight_gradient_uses_texture(gpu, g) && swapped(gpu.into(), g).is_none()
}

/// The swapped pointwise conv whose weight gradient computes dw^T for `g`, where that runs.
pub(in crate::kernels::conv) fn swapped(dev: ConvDevice<'_>, g: &Conv2dGeom) -> Option<Conv2dGeom> {
    swapped_pointwise(g).filter(|s| weight_gradient_uses_texture(dev, g) && weight_gradient_uses_texture(dev, s))
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

/// dy of `g` as the input of a 1x1 conv (its channels, its map, no padding): what the packing
/// kernel takes to lay dy out in an operand texture.
pub(super) fn dy_as_input(g: &Conv2dGeom) -> Conv2dGeom {
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
