//! Reading a buffer back to the host without blocking the thread: native code polls the device,
//! the browser resolves the map from its event loop.

use super::gpu::Gpu;
use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

type Slot = Arc<Mutex<(Option<std::result::Result<(), wgpu::BufferAsyncError>>, Option<Waker>)>>;

struct MapFuture(Slot);

impl Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = super::lock(&self.0);
        match s.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Copy `bytes` bytes of `src` to the host. Submits its own copy; earlier submits finish first.
pub async fn read_buffer(gpu: &Gpu, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let size = bytes.div_ceil(4) * 4;
    let staging = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("convoy readback"),
        size: size.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    if size > 0 {
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, size);
    }
    gpu.queue().submit([encoder.finish()]);
    let mut out = map_read(gpu, &staging).await?;
    out.truncate(bytes as usize);
    Ok(out)
}

/// Map a whole MAP_READ buffer once submitted work has filled it, copy it out, unmap it.
pub async fn map_read(gpu: &Gpu, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let slot: Slot = Arc::new(Mutex::new((None, None)));
    let s2 = slot.clone();
    // mapping and unmapping enter wgpu's GL context too: held like the device (`device::serial`)
    let held = gpu.hold();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let mut s = super::lock(&s2);
        s.0 = Some(r);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    drop(held);
    #[cfg(not(target_arch = "wasm32"))]
    gpu.sync()?;
    MapFuture(slot).await.map_err(|e| Error::Gpu {
        during: "readback".into(),
        reason: e.to_string(),
    })?;
    gpu.check_fault("readback")?;
    copy_out_and_unmap(gpu, staging)
}

/// The contents of a mapped staging buffer; unmaps it.
fn copy_out_and_unmap(gpu: &Gpu, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let _held = gpu.hold();
    let out = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| Error::Gpu {
            during: "readback".into(),
            reason: e.to_string(),
        })?
        .to_vec();
    staging.unmap();
    Ok(out)
}

/// How long `map_read_after` waits for a map's callback once its submission has finished.
#[cfg(not(target_arch = "wasm32"))]
const MAP_CALLBACK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// As `map_read`, blocking until submission `index` (the one that filled `staging`) has
/// finished, and no longer: later submissions keep running (native; overlaps host work, such as
/// an all-reduce, with the GPU's).
#[cfg(not(target_arch = "wasm32"))]
pub fn map_read_after(gpu: &Gpu, staging: &wgpu::Buffer, index: wgpu::SubmissionIndex) -> Result<Vec<u8>> {
    let slot: Slot = Arc::new(Mutex::new((None, None)));
    let s2 = slot.clone();
    let held = gpu.hold();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        super::lock(&s2).0 = Some(r);
    });
    drop(held);
    let polled = gpu.device().poll(wgpu::PollType::Wait {
        submission_index: Some(index),
        timeout: None,
    });
    gpu.check_fault("readback")?;
    polled.map_err(|e| Error::Gpu {
        during: "readback".into(),
        reason: e.to_string(),
    })?;
    // Another thread polling the same device may have collected the map's callback and not
    // yet run it when this poll returns (seen once in CI, with tests sharing one device): the
    // submission is done, so the callback comes; wait for it, for a bounded time.
    let start = std::time::Instant::now();
    let mut mapped = super::lock(&slot).0.take();
    while mapped.is_none() && start.elapsed() < MAP_CALLBACK_WAIT {
        std::thread::yield_now();
        let _ = gpu.device().poll(wgpu::PollType::Poll);
        mapped = super::lock(&slot).0.take();
    }
    match mapped {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            return Err(Error::Gpu {
                during: "readback".into(),
                reason: e.to_string(),
            })
        }
        None => {
            return Err(Error::Gpu {
                during: "readback".into(),
                reason: "the buffer was not mapped after its submission finished".into(),
            })
        }
    }
    copy_out_and_unmap(gpu, staging)
}
