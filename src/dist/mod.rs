//! Data-parallel training: one process per GPU, gradients averaged across processes before the
//! optimizer step, optionally batch-norm statistics synchronised across them.
//!
//! The executor only needs [`Collective`]: sums of float arrays across ranks and a broadcast.
//! [`Mpi`] (cargo feature `mpi`) implements it over the system's MPI; the core has no
//! dependency on MPI, so the default and wasm builds need nothing new.
//!
//! What crosses ranks, and when (see `exec::host_sync`):
//! - gradients, in buckets of about `bucket_bytes`, each reduced as soon as the backward has
//!   produced its last gradient while the GPU goes on with the rest of the backward (PyTorch
//!   DDP's overlap);
//! - with `sync_bn`, each training batch norm's per-channel mean and E[x^2] in the forward and
//!   its per-channel sums of dy and dy * x_hat in the backward (PyTorch SyncBatchNorm).
//!
//! Every reduction is a weighted sum: rank r contributes `n_r / N` of its values, n_r being its
//! samples in the step and N the samples of all ranks, so an uneven last batch is averaged
//! exactly as one process would average the whole global batch.

#[cfg(feature = "mpi")]
mod mpi_collective;
mod shard;

#[cfg(feature = "mpi")]
pub use mpi_collective::Mpi;
pub use shard::{shard_epoch, RankBatch};

use crate::error::Result;
use std::rc::Rc;

/// Collective operations across the ranks of a data-parallel job, called by every rank in the
/// same order.
pub trait Collective {
    /// This process's rank, 0..size.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replace `data` by its elementwise sum over all ranks.
    fn all_reduce_sum(&self, data: &mut [f32]) -> Result<()>;
    /// As `all_reduce_sum`, in double precision (metrics, sample counts).
    fn all_reduce_sum_f64(&self, data: &mut [f64]) -> Result<()>;
    /// Replace `data` on every rank by rank `root`'s (the same length on every rank).
    fn broadcast(&self, data: &mut [u8], root: usize) -> Result<()>;
    /// Stop every rank of the job after an error on this one, with `code` as exit status.
    fn abort(&self, code: i32) -> !;
}

/// How a training step is distributed.
#[derive(Clone)]
pub struct DistOptions {
    pub collective: Rc<dyn Collective>,
    /// Gradient bytes per all-reduce bucket (PyTorch DDP's default: 25 MB).
    pub bucket_bytes: u64,
    /// Synchronise batch-norm statistics across ranks (SyncBatchNorm) instead of per-rank
    /// statistics (DDP's default).
    pub sync_bn: bool,
}

/// PyTorch DDP's default bucket size.
pub const DEFAULT_BUCKET_BYTES: u64 = 25 << 20;

impl DistOptions {
    pub fn new(collective: Rc<dyn Collective>) -> DistOptions {
        DistOptions {
            collective,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
            sync_bn: false,
        }
    }
}

impl std::fmt::Debug for DistOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistOptions")
            .field("rank", &self.collective.rank())
            .field("size", &self.collective.size())
            .field("bucket_bytes", &self.bucket_bytes)
            .field("sync_bn", &self.sync_bn)
            .finish()
    }
}

/// Sum `data * weight` over ranks: the weighted average of a per-rank quantity. A rank with
/// weight 0 contributes zeros (not 0 x its values: a NaN there must not reach the others).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn weighted_sum(c: &dyn Collective, data: &mut [f32], weight: f32) -> Result<()> {
    for v in data.iter_mut() {
        *v = if weight == 0.0 { 0.0 } else { *v * weight };
    }
    c.all_reduce_sum(data)
}
