//! The browser build's JavaScript API (wasm32 + WebGPU, through wasm-bindgen): the same graph
//! executor, kernels and WGSL as native, driven with the async methods (`run_async`,
//! `step_read_async`) from the page's event loop. `web/` holds the page; `web/build.sh` builds
//! this module into `web/pkg/`.
//!
//! - [`Classifier`](classifier::Classifier): weights (safetensors bytes) in, logits out.
//! - [`Trainer`](trainer::Trainer): trains a small CNN on the embedded Fashion-MNIST subset,
//!   step by step.
//! - The embedded test images and the page's pre-processing, so the page normalises inputs
//!   exactly as training did.

mod classifier;
mod trainer;

use crate::data::loader::{FASHION_MEAN, FASHION_STD};
use crate::data::transform::{center_box, crop_resize_normalize, Crop, Image, Normalize};
use crate::data::{Mnist, Split, FASHION_CLASSES};
use std::sync::OnceLock;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// A panic's message on the page's console, where wasm would otherwise stop at an
/// `unreachable` with nothing said: installed once by the classifier's and the trainer's
/// constructors.
pub(crate) fn report_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| console_error(&format!("convoy panicked: {info}"))));
    });
}

/// A convoy error as a JavaScript exception with its message.
fn js(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn fashion() -> Result<&'static Mnist, JsError> {
    static DATA: OnceLock<Result<Mnist, String>> = OnceLock::new();
    DATA.get_or_init(|| Mnist::fashion_embedded().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| JsError::new(e))
}

fn test_split() -> Result<&'static Split, JsError> {
    Ok(&fashion()?.test)
}

/// The ten Fashion-MNIST class names, by label.
#[wasm_bindgen]
pub fn fashion_classes() -> Vec<String> {
    FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Images in the embedded test split.
#[wasm_bindgen]
pub fn embedded_test_count() -> Result<usize, JsError> {
    Ok(test_split()?.n)
}

fn test_range(start: usize, n: usize) -> Result<std::ops::Range<usize>, JsError> {
    let total = test_split()?.n;
    if n == 0 || start.checked_add(n).is_none_or(|end| end > total) {
        return Err(JsError::new(&format!(
            "test images {start}..{} are outside the {total} embedded ones",
            start.saturating_add(n)
        )));
    }
    Ok(start..start + n)
}

/// Test images `start..start + n` as the model sees them: (n, 1, 28, 28), normalised.
#[wasm_bindgen]
pub fn embedded_test_images(start: usize, n: usize) -> Result<Vec<f32>, JsError> {
    let idx: Vec<usize> = test_range(start, n)?.collect();
    let b = crate::data::Dataset::batch(test_split()?, &idx, None, None).map_err(js)?;
    Ok(b.images)
}

/// Labels of test images `start..start + n`.
#[wasm_bindgen]
pub fn embedded_test_labels(start: usize, n: usize) -> Result<Vec<i32>, JsError> {
    let s = test_split()?;
    Ok(test_range(start, n)?.map(|i| i32::from(s.labels[i])).collect())
}

/// The raw 28 x 28 grey bytes of test image `index` (for thumbnails).
#[wasm_bindgen]
pub fn embedded_test_pixels(index: usize) -> Result<Vec<u8>, JsError> {
    let s = test_split()?;
    test_range(index, 1)?;
    let px = s.h * s.w;
    Ok(s.images[index * px..(index + 1) * px].to_vec())
}

fn check_rgba(rgba: &[u8], width: usize, height: usize) -> Result<(), JsError> {
    if width == 0 || height == 0 || width.checked_mul(height).and_then(|p| p.checked_mul(4)) != Some(rgba.len()) {
        return Err(JsError::new(&format!(
            "an RGBA image of {width} x {height} needs {} bytes, got {}",
            width.saturating_mul(height).saturating_mul(4),
            rgba.len()
        )));
    }
    Ok(())
}

/// A drawing or photo as a Fashion-MNIST input: grey (mean of R, G, B), inverted if asked
/// (dark items on a light background), each of the 28 x 28 cells the mean of the pixels it
/// covers (area resampling: thin strokes survive, unlike point sampling), normalised.
#[wasm_bindgen]
pub fn preprocess_grey(rgba: &[u8], width: usize, height: usize, invert: bool) -> Result<Vec<f32>, JsError> {
    check_rgba(rgba, width, height)?;
    const S: usize = 28;
    let mut sum = vec![0.0f32; S * S];
    let mut count = vec![0.0f32; S * S];
    for y in 0..height {
        let oy = y * S / height;
        for x in 0..width {
            let p = &rgba[(y * width + x) * 4..][..3];
            let g = (f32::from(p[0]) + f32::from(p[1]) + f32::from(p[2])) / (3.0 * 255.0);
            let o = oy * S + x * S / width;
            sum[o] += if invert { 1.0 - g } else { g };
            count[o] += 1.0;
        }
    }
    Ok(sum
        .iter()
        .zip(&count)
        .map(|(s, c)| (s / c.max(1.0) - FASHION_MEAN) / FASHION_STD)
        .collect())
}

/// A photo as an ImageNet-model input: the central square (87.5% of the shorter side, as
/// Resize(256) + CenterCrop(224)), resized to `size` x `size`, normalised with the ImageNet
/// statistics: (3, size, size).
#[wasm_bindgen]
pub fn preprocess_rgb(rgba: &[u8], width: usize, height: usize, size: usize) -> Result<Vec<f32>, JsError> {
    check_rgba(rgba, width, height)?;
    if size == 0 || size > 1024 {
        return Err(JsError::new(&format!("input size {size} must be in 1..=1024")));
    }
    let rgb: Vec<u8> = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let img = Image {
        w: width,
        h: height,
        c: 3,
        pixels: &rgb,
    };
    let mut out = vec![0.0; 3 * size * size];
    let crop = Crop {
        region: center_box(width, height, 0.875),
        size: [size, size],
        flip: false,
    };
    crop_resize_normalize(&img, crop, Normalize::IMAGENET, &mut out);
    Ok(out)
}

/// Compile every kernel convoy has on this browser's GPU: "name: error" for each that fails
/// (an empty list when all compile).
#[wasm_bindgen]
pub async fn shader_errors() -> Result<Vec<String>, JsError> {
    let gpu = open_gpu().await?;
    let mut errors = Vec::new();
    for s in crate::kernels::shaders::ALL {
        // the large tiles are never offered in the browser (`kernels::conv::mm`): compiling
        // the forward's lost headless Chromium's device, and every kernel after it with it
        use crate::kernels::shaders::{CONV2D_BWD_DATA_MM, CONV2D_BWD_WEIGHT_MM, CONV2D_FWD_MM};
        if [&CONV2D_FWD_MM, &CONV2D_BWD_DATA_MM, &CONV2D_BWD_WEIGHT_MM]
            .iter()
            .any(|k| k.name == s.name)
        {
            continue;
        }
        if let Some(e) = gpu.shader_error(s).await {
            errors.push(format!("{}: {e}", s.name));
        }
    }
    Ok(errors)
}

/// `model` is one of `allowed`, or an error listing them.
fn check_model(model: &str, allowed: &[&str]) -> Result<(), JsError> {
    if allowed.contains(&model) {
        return Ok(());
    }
    Err(JsError::new(&format!(
        "model '{model}' is not one of {}",
        allowed.join(", ")
    )))
}

/// Adapter name, backend and the limits that matter here, for the page to show.
fn describe(gpu: &crate::Gpu) -> String {
    let i = gpu.info();
    let l = gpu.limits();
    let name = if i.name.is_empty() {
        "WebGPU adapter (unnamed by the browser)"
    } else {
        &i.name
    };
    format!(
        "{name} ({:?}); max storage binding {} MiB, max workgroup invocations {}, shader-f16 {}",
        i.backend,
        l.max_storage_buffer_binding_size >> 20,
        l.max_compute_invocations_per_workgroup,
        if gpu.info().has_f16() { "yes" } else { "no" }
    )
}

async fn open_gpu() -> Result<crate::Gpu, JsError> {
    crate::Gpu::builder().build_async().await.map_err(js)
}
