//! What an epoch of training measured: the Learner reports it, checkpoints carry it (so both
//! builds, native and web, know it).

/// Metrics of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f32,
    pub valid_loss: f32,
    pub top1: f32,
    pub top5: f32,
    pub seconds: f64,
    pub images_per_sec: f64,
}
