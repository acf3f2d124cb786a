//! Tensor upload/download, reshape, dtypes, and the errors on bad lengths.

use crate::common::gpu;
use convoy::Rng;
use convoy::{DType, Tensor};

#[test]
fn round_trip_and_reshape() {
    let g = gpu();
    let mut rng = Rng::new(10);
    let v = rng.vec(2 * 3 * 5, -1.0, 1.0);
    let t = Tensor::from_slice(g, &v, [2, 3, 5]).unwrap();
    assert_eq!(t.to_vec().unwrap(), v);
    let r = t.reshape([6, 5]).unwrap();
    assert_eq!(r.dims(), &[6, 5]);
    assert_eq!(r.to_vec().unwrap(), v);
    assert!(t.reshape([7, 5]).is_err());
    let labels = Tensor::from_i32(g, &[3, -1, 7], [3]).unwrap();
    assert_eq!(labels.dtype(), DType::I32);
    assert_eq!(labels.to_i32_vec().unwrap(), vec![3, -1, 7]);
    let w = [9.0f32; 30];
    t.write(&w).unwrap();
    assert_eq!(t.to_vec().unwrap(), w);
}

#[test]
fn bad_lengths_are_errors() {
    let g = gpu();
    let err = Tensor::from_slice(g, &[1.0, 2.0, 3.0], [2, 2]).unwrap_err().to_string();
    assert!(err.contains("4 values") && err.contains("3 values"), "{err}");
    let t = Tensor::zeros(g, [2, 2]).unwrap();
    assert!(t.write(&[1.0]).is_err());
    // larger than the device allows as one binding: a clear Limit error, not a panic
    let huge = g.limits().max_storage_buffer_binding_size as usize / 4 + 1;
    let err = Tensor::zeros(g, [huge]).unwrap_err().to_string();
    assert!(err.contains("device allows"), "{err}");
}

#[test]
fn f16_storage_round_trips_where_supported() {
    let g = gpu();
    let v = [0.5f32, -1.25, 3.0, 65504.0, 1e-3];
    match Tensor::from_slice_f16(g, &v, [5]) {
        Ok(t) => {
            assert_eq!(t.dtype(), DType::F16);
            let back = t.to_vec().unwrap();
            for (a, b) in v.iter().zip(&back) {
                // f16 has an 11-bit significand: relative error <= 2^-11
                assert!((a - b).abs() <= a.abs() * 4.9e-4, "{a} vs {b}");
            }
        }
        Err(e) => assert!(!g.info().has_f16() && e.to_string().contains("shader-f16"), "{e}"),
    }
}

/// A lost device (destroyed here, as a driver reset would) turns the next readback and sync
/// into errors that say so, in bounded time, never a panic or a hang.
#[test]
fn a_lost_device_is_an_error_not_a_panic_or_hang() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let g = convoy::Gpu::new().unwrap();
        let t = Tensor::from_slice(&g, &[1.0, 2.0, 3.0], [3]).unwrap();
        assert_eq!(t.to_vec().unwrap(), [1.0, 2.0, 3.0]);
        g.device().destroy();
        let read = t.to_vec().map(|_| ()).map_err(|e| e.to_string());
        let sync = g.sync().map_err(|e| e.to_string());
        let _ = tx.send((read, sync));
    });
    let (read, sync) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("no hang, no panic after the device is lost");
    let sync = sync.expect_err("sync after loss is an error");
    assert!(
        sync.contains("lost") || sync.contains("Lost") || sync.contains("destroy"),
        "{sync}"
    );
    assert!(read.is_err(), "readback from a lost device returned data");
}

/// A buffer larger than the device allows is refused before allocation, naming the limit.
#[test]
fn oversized_tensors_are_refused_clearly() {
    let g = gpu();
    let max = g.limits().max_storage_buffer_binding_size;
    let n = (max / 4 + 1) as usize;
    let Err(err) = Tensor::zeros(g, [n]) else {
        panic!("a tensor over the binding limit was allocated");
    };
    assert!(err.to_string().contains(&max.to_string()), "{err}");
}

/// `Gpu::memory_counts` sees a buffer come and go, with its bytes where the backend counts them
/// (the soak benchmark's probe): a device of its own, so no other test's buffers move the counts.
/// On wgpu's GL backend the buffer, freed by whoever next holds the device (`device::serial`),
/// is gone by the next count too.
#[test]
fn memory_counts_follow_buffers() {
    let g = convoy::Gpu::builder()
        .build()
        .expect("a GPU adapter (lavapipe is enough)");
    let before = g.memory_counts();
    let t = Tensor::zeros(&g, [1 << 20]).unwrap();
    let during = g.memory_counts();
    assert_eq!(during.buffers, before.buffers + 1, "{before:?} -> {during:?}");
    let backend = g.info().backend;
    assert_eq!(
        during.bytes_counted,
        matches!(backend, wgpu::Backend::Vulkan | wgpu::Backend::Dx12),
        "{backend:?}"
    );
    if during.bytes_counted {
        assert!(
            during.buffer_bytes - before.buffer_bytes >= 4 << 20,
            "{before:?} -> {during:?}"
        );
    } else {
        assert_eq!((before.buffer_bytes, during.buffer_bytes), (0, 0), "{backend:?}");
    }
    drop(t);
    g.sync().unwrap();
    let after = g.memory_counts();
    assert_eq!(
        after.buffers, before.buffers,
        "{during:?} -> {after:?}: the buffer was freed"
    );
    assert_eq!(after.buffer_bytes, before.buffer_bytes);
}
