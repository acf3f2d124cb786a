//! `Dataset`: what the Learner trains on. A data set knows its size, classes and channels, and
//! turns a list of indices into a normalised batch at a requested image size, with training
//! augmentation when given a random generator. In-memory splits (MNIST) and image folders
//! (ImageNet / Imagenette layout) both implement it.

use crate::error::Result;
use crate::rng::Rng;

/// One batch: images (N, C, H, W) normalised, labels (N).
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i32>,
    pub shape: [usize; 4],
}

impl Batch {
    pub fn n(&self) -> usize {
        self.shape[0]
    }
}

pub trait Dataset: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn channels(&self) -> usize;
    fn classes(&self) -> usize;
    /// The image size (height, width) of a batch when no size is asked for.
    fn default_size(&self) -> [usize; 2];
    /// The images and labels at `idx`, resized to `size` x `size` if given; `augment` (training)
    /// draws random crops and flips from the generator, otherwise the transform is fixed.
    fn batch(&self, idx: &[usize], size: Option<usize>, augment: Option<&mut Rng>) -> Result<Batch>;
}

/// The order of one epoch: a seeded permutation (shuffle) or 0..n.
pub fn epoch_order(n: usize, shuffle: Option<u64>) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if let Some(seed) = shuffle {
        Rng::new(seed).shuffle(&mut idx);
    }
    idx
}

/// The index lists of an epoch's batches: full batches of `bs`; the last partial one only if
/// `keep_last` (training drops it so every step has one compiled shape).
pub fn batch_indices(order: &[usize], bs: usize, keep_last: bool) -> Vec<Vec<usize>> {
    order
        .chunks(bs.max(1))
        .filter(|c| keep_last || c.len() == bs)
        .map(<[usize]>::to_vec)
        .collect()
}

/// The augmentation generator of batch `i` of an epoch seeded with `seed` (None: no augmentation).
fn batch_rng(seed: Option<u64>, i: usize) -> Option<Rng> {
    seed.map(|s| Rng::new(s ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// Prepare the batches `lists` on a background thread, two ahead of the consumer, and hand each
/// to `consume` in order (native). The augmentation generator of batch i is seeded from
/// (`seed`, i), so the data does not depend on timing, and a resumed run sees the same batches.
/// `consume` returning an error stops the producer.
#[cfg(not(target_arch = "wasm32"))]
pub fn for_each_batch(
    data: &dyn Dataset,
    lists: &[Vec<usize>],
    size: Option<usize>,
    augment_seed: Option<u64>,
    mut consume: impl FnMut(usize, Batch) -> Result<std::ops::ControlFlow<()>>,
) -> Result<()> {
    let make = |i: usize| data.batch(&lists[i], size, batch_rng(augment_seed, i).as_mut());
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(2);
        s.spawn(move || {
            for i in 0..lists.len() {
                // a closed channel means the consumer stopped
                if tx.send(make(i)).is_err() {
                    break;
                }
            }
        });
        for (i, b) in rx.iter().enumerate() {
            if consume(i, b?)?.is_break() {
                break;
            }
        }
        Ok(())
    })
}

/// The web build has no threads: the same contract, prepared in line.
#[cfg(target_arch = "wasm32")]
pub fn for_each_batch(
    data: &dyn Dataset,
    lists: &[Vec<usize>],
    size: Option<usize>,
    augment_seed: Option<u64>,
    mut consume: impl FnMut(usize, Batch) -> Result<std::ops::ControlFlow<()>>,
) -> Result<()> {
    for (i, l) in lists.iter().enumerate() {
        if consume(i, data.batch(l, size, batch_rng(augment_seed, i).as_mut())?)?.is_break() {
            break;
        }
    }
    Ok(())
}
