//! One thread at a time through wgpu's GL backend.
//!
//! wgpu's GL backend runs every call that touches the driver under one context lock, and a
//! thread that waits more than a few seconds for it panics ("Could not lock adapter context").
//! On a software GL driver (llvmpipe) a submission executes while it holds that lock, so a
//! training step on one thread makes any other thread's buffer creation, upload or readback
//! panic. On GL, convoy therefore takes a lock of its own (without a timeout) around every call
//! it makes into the device and queue, and around dropping the buffers it owns: the other
//! threads wait on convoy's lock instead of wgpu's. The lock is reentrant (a launcher that holds
//! the device may read the queue) and off on every other backend, whose devices are free-threaded.
//!
//! Dropping the last handle of a buffer, texture or bind group also enters the context, and a
//! `Drop` cannot always wait for the lock where it runs (the owner's fields drop after its
//! `drop`). So on GL the objects convoy owns (tensors, dispatches, plans) hand their handles to
//! the lock's graveyard when dropped, and whoever takes the lock next frees them.

use std::ops::Deref;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

/// A reentrant lock that is a no-op unless `on`.
#[derive(Debug)]
pub(crate) struct Serial {
    on: bool,
    /// The owning thread and how many guards it holds.
    state: Mutex<(Option<ThreadId>, usize)>,
    freed: Condvar,
    /// wgpu handles dropped while the lock may have been held elsewhere; freed under it.
    #[cfg(not(target_arch = "wasm32"))]
    graves: Mutex<Vec<Box<dyn std::any::Any + Send>>>,
}

impl Serial {
    pub(crate) fn new(on: bool) -> Serial {
        Serial {
            on,
            state: Mutex::new((None, 0)),
            freed: Condvar::new(),
            #[cfg(not(target_arch = "wasm32"))]
            graves: Mutex::default(),
        }
    }

    /// Keep `handle` (a clone of a wgpu handle whose owner is being dropped) until the next
    /// holder of the lock frees it; off GL it is dropped here.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn bury<T: Send + 'static>(&self, handle: T) {
        if self.on {
            super::lock(&self.graves).push(Box::new(handle));
        }
    }

    #[cfg(target_arch = "wasm32")]
    pub(crate) fn bury<T: 'static>(&self, handle: T) {
        drop(handle);
    }

    /// Whether calls are serialised (the GL backend).
    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    /// Hold the lock until the guard drops; returns at once off GL or when this thread holds it.
    pub(crate) fn hold(&self) -> SerialGuard<'_> {
        if !self.on {
            return SerialGuard { serial: None };
        }
        let me = std::thread::current().id();
        let mut s = super::lock(&self.state);
        while s.0.is_some_and(|owner| owner != me) {
            s = self.freed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.0 = Some(me);
        s.1 += 1;
        let first = s.1 == 1;
        drop(s);
        if first {
            self.free_graves();
        }
        SerialGuard { serial: Some(self) }
    }

    /// Free what was dropped while another thread held the lock (this thread holds it now).
    fn free_graves(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            // out of the graveyard's mutex first, so the handles drop without it held
            let graves = std::mem::take(&mut *super::lock(&self.graves));
            drop(graves);
        }
    }
}

/// Holds a `Serial` (or nothing, off GL) until dropped.
#[must_use]
pub struct SerialGuard<'a> {
    serial: Option<&'a Serial>,
}

impl Drop for SerialGuard<'_> {
    fn drop(&mut self) {
        if let Some(serial) = self.serial {
            let mut s = super::lock(&serial.state);
            s.1 -= 1;
            if s.1 == 0 {
                s.0 = None;
                serial.freed.notify_one();
            }
        }
    }
}

/// A wgpu handle (the device or the queue) with the `Gpu`'s serial lock held while it is used:
/// what `Gpu::device()` and `Gpu::queue()` return. Dereferences to the handle; hold it no
/// longer than the calls that need it.
pub struct Held<'a, T> {
    _guard: SerialGuard<'a>,
    value: &'a T,
}

impl<'a, T> Held<'a, T> {
    pub(crate) fn new(guard: SerialGuard<'a>, value: &'a T) -> Self {
        Held { _guard: guard, value }
    }
}

impl<T> Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn one_thread_at_a_time_and_reentrant() {
        let serial = Arc::new(Serial::new(true));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (serial, inside, most) = (serial.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _outer = serial.hold();
                        // reentrant: the same thread takes it again without waiting on itself
                        let _inner = serial.hold();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two threads held the lock at once");
        assert_eq!(*super::super::lock(&serial.state), (None, 0));
    }

    #[test]
    fn the_graveyard_empties_under_the_lock() {
        let serial = Serial::new(true);
        let handle = Arc::new(());
        serial.bury(handle.clone());
        assert_eq!(Arc::strong_count(&handle), 2, "kept until the lock is taken");
        drop(serial.hold());
        assert_eq!(Arc::strong_count(&handle), 1, "freed by the next holder");
        let off = Serial::new(false);
        off.bury(handle.clone());
        assert_eq!(Arc::strong_count(&handle), 1, "dropped at once off GL");
    }

    #[test]
    fn off_it_never_waits() {
        let serial = Serial::new(false);
        let _a = serial.hold();
        let b = std::thread::scope(|s| s.spawn(|| serial.hold().serial.is_none()).join().unwrap());
        assert!(b);
    }
}
