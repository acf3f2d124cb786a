//! Batches of normalised images and labels from an in-memory split, shuffled per epoch with a
//! seed. Preparing a batch is cheap next to a GPU step for MNIST-sized data.

use super::mnist::Split;
use crate::rng::Rng;

/// Mean and standard deviation of Fashion-MNIST pixels in [0, 1] (over the 60,000 training
/// images), used to normalise inputs to zero mean and unit variance.
pub const FASHION_MEAN: f32 = 0.2860;
pub const FASHION_STD: f32 = 0.3530;

/// One batch: images (N, 1, H, W) normalised, labels (N).
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i32>,
    pub n: usize,
}

/// The order of one epoch: a seeded permutation (shuffle) or 0..n.
pub fn epoch_order(n: usize, shuffle: Option<u64>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if let Some(seed) = shuffle {
        Rng::new(seed).shuffle(&mut idx);
    }
    idx
}

/// Gather the images and labels at `idx` into a batch, normalised with (mean, std).
pub fn gather(split: &Split, idx: &[usize], mean: f32, std: f32) -> Batch {
    let px = split.h * split.w;
    let mut images = Vec::with_capacity(idx.len() * px);
    for &i in idx {
        images.extend(
            split.images[i * px..(i + 1) * px]
                .iter()
                .map(|&b| (b as f32 / 255.0 - mean) / std),
        );
    }
    Batch {
        images,
        labels: idx.iter().map(|&i| split.labels[i] as i32).collect(),
        n: idx.len(),
    }
}

/// The batches of an epoch over `split`: full batches of `bs`; the last partial batch is kept
/// only if `keep_last` (training drops it so every step has one compiled shape).
pub fn batches<'a>(
    split: &'a Split,
    bs: usize,
    order: Vec<usize>,
    keep_last: bool,
) -> impl Iterator<Item = Batch> + 'a {
    let chunks: Vec<Vec<usize>> = order
        .chunks(bs.max(1))
        .filter(|c| keep_last || c.len() == bs)
        .map(|c| c.to_vec())
        .collect();
    chunks
        .into_iter()
        .map(move |c| gather(split, &c, FASHION_MEAN, FASHION_STD))
}
