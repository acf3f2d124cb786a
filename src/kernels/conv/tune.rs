//! Choosing among a kernel's tile candidates: the deterministic default, or with tuning on, the
//! recorded or measured fastest.

use super::*;

/// The tile for `kernel` on shape `g`: the first candidate (the deterministic default) unless
/// tuning is on; then the tuner's recorded choice, or, for a shape seen the first time, the
/// candidate that ran fastest here (each built and timed `TIMED_RUNS` times, on the first
/// images of the batch where the policy says so). `build` makes a candidate's dispatches for a
/// geometry: `g`, or its first images (the same buffers, partly used).
pub(super) fn choose(
    gpu: &Gpu,
    kernel: &str,
    g: &Conv2dGeom,
    candidates: &[ConvTile],
    build: impl Fn(&Conv2dGeom, ConvTile) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    let Some(tuner) = gpu.tuner() else {
        return build(g, candidates[0]);
    };
    let a = &g.args;
    let key = format!(
        "{kernel} n{} c{} {}x{} -> {} k{}x{} s{} p{} d{} g{}",
        g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, a.stride, a.padding, a.dilation, a.groups
    );
    if let Some(t) = tuner.get(&key).as_deref().and_then(ConvTile::from_record) {
        if candidates.contains(&t) {
            return build(g, t);
        }
    }
    if cfg!(target_arch = "wasm32") {
        return build(g, candidates[0]);
    }
    let started = std::time::Instant::now();
    let sample = sample_geometry(g, gpu.policy().tune_sample_pixels);
    let mut best: Option<(f64, ConvTile)> = None;
    for &t in candidates {
        let ms = time_once(gpu, &build(&sample, t)?)?;
        if crate::exec::debug_level() >= 1 {
            eprintln!(
                "convoy: tuning {key} on {} of {} images: {t:?} {ms:.2} ms",
                sample.n, g.n
            );
        }
        if best.as_ref().is_none_or(|(b, _)| ms < *b) {
            best = Some((ms, t));
        }
    }
    let (_, t) = best.expect("at least one candidate");
    tuner.set(&key, t.record());
    tuner.add_cost(candidates.len(), TIMED_RUNS, started.elapsed().as_secs_f64());
    build(g, t)
}

/// `g` on its first images, enough for `pixels` output pixels (all of them when None or when
/// the batch has fewer).
fn sample_geometry(g: &Conv2dGeom, pixels: Option<usize>) -> Conv2dGeom {
    let n = pixels.map_or(g.n, |p| p.div_ceil(g.oh * g.ow).clamp(1, g.n));
    Conv2dGeom { n, ..*g }
}

/// Timed runs of each candidate; the best counts (the first also warms caches up).
const TIMED_RUNS: usize = 2;

/// Best of the timed runs, in milliseconds (the GPU's clock where it has one).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn time_once(gpu: &Gpu, ds: &[Dispatch]) -> Result<f64> {
    crate::device::time_dispatches(gpu, ds, TIMED_RUNS)
}

#[cfg(target_arch = "wasm32")]
pub(super) fn time_once(_: &Gpu, _: &[Dispatch]) -> Result<f64> {
    Ok(0.0)
}
