//! Scratch buffers of the kernel launchers: one of their own per call, or one shared per kind
//! by every call whose scratch lives only within its own run of dispatches.

use super::Gpu;
use crate::error::Result;

/// The kinds of scratch the kernel launchers share (`Gpu::shared_scratch`): each written by one
/// dispatch of a launcher's run and read by a later one of the same run, with no other user of
/// that kind in between, so that one buffer per kind serves every conv of every plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scratch {
    /// Split-K partial sums: a split forward's slices, or a weight gradient's chunks, read by
    /// the reduction right after.
    SplitPartials,
    /// A conv's weights flipped and transposed for its input gradient, read by the forward of
    /// dy right after.
    TransposedWeights,
    /// One stride phase of an input gradient, written by its forward and scattered into dx.
    PhaseMap,
    /// The statistics of a forward's 64- or 128-pixel blocks, condensed right after.
    FineStats,
}

impl Scratch {
    fn label(self) -> &'static str {
        match self {
            Scratch::SplitPartials => "split-K partial sums (shared)",
            Scratch::TransposedWeights => "transposed weights (shared)",
            Scratch::PhaseMap => "input-gradient stride phase (shared)",
            Scratch::FineStats => "fine block statistics (shared)",
        }
    }
}

impl Gpu {
    /// A storage buffer a kernel launcher keeps for itself (split-K partial sums, reduction
    /// rows), checked against the binding limit; the bind groups that use it keep it alive.
    pub(crate) fn scratch_buffer(&self, what: &'static str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_binding(what, bytes)?;
        Ok(self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        }))
    }

    /// A scratch buffer of at least `bytes` for `kind`, shared by every kernel launcher whose
    /// scratch of that kind lives only within one run of its own dispatches (a split kernel
    /// writes its partial sums and the reduction right after it reads them; see `Scratch`):
    /// the queue runs dispatches in order, so one buffer per kind as large as the largest
    /// serves a whole plan, and every plan, where a buffer per conv would hold hundreds of
    /// megabytes (ResNet-50's split convs at batch 32). Grows by replacing it; the bind groups
    /// built on a smaller one keep theirs alive.
    pub(crate) fn shared_scratch(&self, kind: Scratch, what: &'static str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_binding(what, bytes)?;
        let mut held = super::lock(&self.inner.shared_scratch);
        if let Some(b) = held.get(&kind).filter(|b| b.size() >= bytes.max(4)) {
            return Ok(b.clone());
        }
        let b = self.scratch_buffer(kind.label(), bytes.max(4))?;
        held.insert(kind, b.clone());
        Ok(b)
    }
}
