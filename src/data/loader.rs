//! `Split` (an in-memory set of 8-bit grey images, as MNIST) as a `Dataset`: normalised with the
//! Fashion-MNIST statistics, resized bilinearly when a batch asks for another size (progressive
//! resizing), no augmentation.

use super::dataset::{Batch, Dataset};
use super::mnist::Split;
use super::transform::{crop_resize_normalize, Box2, Crop, Image, Normalize};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Mean and standard deviation of Fashion-MNIST pixels in [0, 1] (over the 60,000 training
/// images), used to normalise inputs to zero mean and unit variance.
pub const FASHION_MEAN: f32 = 0.2860;
pub const FASHION_STD: f32 = 0.3530;

impl Dataset for Split {
    fn len(&self) -> usize {
        self.n
    }
    fn channels(&self) -> usize {
        1
    }
    fn classes(&self) -> usize {
        self.labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0)
    }
    fn default_size(&self) -> [usize; 2] {
        [self.h, self.w]
    }
    fn batch(&self, idx: &[usize], size: Option<usize>, _augment: Option<&mut Rng>) -> Result<Batch> {
        let (h, w) = size.map_or((self.h, self.w), |s| (s, s));
        if h == 0 || w == 0 {
            return Err(Error::arg("batch", "size", "must be at least 1"));
        }
        let px = self.h * self.w;
        let mut images = vec![0.0; idx.len() * h * w];
        for (k, &i) in idx.iter().enumerate() {
            if i >= self.n {
                return Err(Error::arg(
                    "batch",
                    "index",
                    format!("{i} is past the {} images", self.n),
                ));
            }
            let src = &self.images[i * px..(i + 1) * px];
            let out = &mut images[k * h * w..(k + 1) * h * w];
            if (h, w) == (self.h, self.w) {
                for (o, &b) in out.iter_mut().zip(src) {
                    *o = (f32::from(b) / 255.0 - FASHION_MEAN) / FASHION_STD;
                }
            } else {
                let img = Image {
                    w: self.w,
                    h: self.h,
                    c: 1,
                    pixels: src,
                };
                let whole = Crop {
                    region: Box2 {
                        x: 0.0,
                        y: 0.0,
                        w: self.w as f32,
                        h: self.h as f32,
                    },
                    size: [h, w],
                    flip: false,
                };
                let norm = Normalize {
                    mean: &[FASHION_MEAN],
                    std: &[FASHION_STD],
                };
                crop_resize_normalize(&img, whole, norm, out);
            }
        }
        Ok(Batch {
            images,
            labels: idx.iter().map(|&i| i32::from(self.labels[i])).collect(),
            shape: [idx.len(), 1, h, w],
        })
    }
}
