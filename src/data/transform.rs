//! Image transforms for training and evaluation, on decoded 8-bit images (H, W, C interleaved)
//! into normalised float CHW: a crop box resampled bilinearly to the output size (random resized
//! crop for training, the central crop for evaluation), optional horizontal flip, per-channel
//! normalisation. Written out rather than taken from an image library so the training input is
//! produced in one pass, straight into the batch buffer.

use crate::rng::Rng;

/// ImageNet's per-channel mean and standard deviation (RGB, pixels in [0, 1]), as torchvision.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A decoded image: `pixels` is (h, w, c) interleaved.
pub struct Image<'a> {
    pub w: usize,
    pub h: usize,
    pub c: usize,
    pub pixels: &'a [u8],
}

/// A region of the source image in pixels (may be fractional).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Box2 {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// torchvision's RandomResizedCrop box: area 35-100% of the image (fastai's default minimum
/// scale), aspect ratio in [3/4, 4/3] (log-uniform), up to 10 tries before the central crop.
pub fn random_resized_box(w: usize, h: usize, rng: &mut Rng) -> Box2 {
    let (wf, hf) = (w as f64, h as f64);
    for _ in 0..10 {
        let area = wf * hf * (0.35 + 0.65 * rng.uniform());
        let ratio = ((3.0f64 / 4.0).ln() + rng.uniform() * ((4.0f64 / 3.0).ln() - (3.0f64 / 4.0).ln())).exp();
        let cw = (area * ratio).sqrt();
        let ch = (area / ratio).sqrt();
        if cw <= wf && ch <= hf {
            return Box2 {
                x: (rng.uniform() * (wf - cw)) as f32,
                y: (rng.uniform() * (hf - ch)) as f32,
                w: cw as f32,
                h: ch as f32,
            };
        }
    }
    center_box(w, h, 1.0)
}

/// The central square covering `fraction` of the shorter side (evaluation: 0.875, as
/// Resize(256) + CenterCrop(224)).
pub fn center_box(w: usize, h: usize, fraction: f32) -> Box2 {
    let s = w.min(h) as f32 * fraction;
    Box2 {
        x: (w as f32 - s) / 2.0,
        y: (h as f32 - s) / 2.0,
        w: s,
        h: s,
    }
}

/// Where `crop_resize_normalize` samples and how it lays the sample out: `region` of the image
/// resampled to `size` (height, width), mirrored left to right if `flip`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    pub region: Box2,
    pub size: [usize; 2],
    pub flip: bool,
}

/// Per-channel normalisation, (v - mean[c]) / std[c] for pixels v in [0, 1]; channel c takes
/// entry c modulo the slice's length (one entry serves every channel).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize<'a> {
    pub mean: &'a [f32],
    pub std: &'a [f32],
}

impl Normalize<'static> {
    /// ImageNet's statistics (`IMAGENET_MEAN`, `IMAGENET_STD`), as torchvision's pretrained models
    /// expect.
    pub const IMAGENET: Normalize<'static> = Normalize {
        mean: &IMAGENET_MEAN,
        std: &IMAGENET_STD,
    };
}

/// Resample `crop.region` of `img` to `crop.size` (bilinear, pixel centres aligned as PyTorch's
/// align_corners=False), mirrored if `crop.flip`, normalised per channel, into `out` (C, H, W).
pub fn crop_resize_normalize(img: &Image, crop: Crop, norm: Normalize<'_>, out: &mut [f32]) {
    let Crop {
        region: b,
        size: [out_h, out_w],
        flip,
    } = crop;
    let Normalize { mean, std } = norm;
    let c = img.c;
    let plane = out_h * out_w;
    debug_assert_eq!(out.len(), c * plane);
    let sx = b.w / out_w as f32;
    let sy = b.h / out_h as f32;
    for oy in 0..out_h {
        let fy = (b.y + (oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (img.h - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(img.h - 1);
        let ty = fy - y0 as f32;
        for ox in 0..out_w {
            let dx = if flip { out_w - 1 - ox } else { ox };
            let fx = (b.x + (ox as f32 + 0.5) * sx - 0.5).clamp(0.0, (img.w - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(img.w - 1);
            let tx = fx - x0 as f32;
            for ch in 0..c {
                let p = |y: usize, x: usize| f32::from(img.pixels[(y * img.w + x) * c + ch]);
                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * tx;
                let bot = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * tx;
                let v = (top + (bot - top) * ty) / 255.0;
                out[ch * plane + oy * out_w + dx] = (v - mean[ch % mean.len()]) / std[ch % std.len()];
            }
        }
    }
}
