//! Choosing among a kernel's tile candidates: the deterministic default, or with tuning on, the
//! recorded or measured fastest.

use super::tile::ConvTile;
use crate::device::{Dispatch, Gpu};
use crate::error::Result;
use crate::shape::Conv2dGeom;

/// Which channels a kernel's tile rows run over (the forward's and the weight gradient's: the
/// output channels; the input gradient's: the input channels).
#[derive(Clone, Copy)]
pub(super) enum Rows {
    Outputs,
    Inputs,
}

/// The tile for `kernel` on shape `g`: the first candidate (the deterministic default) unless
/// tuning is on; then the tuner's recorded choice, or, for a shape seen the first time, the
/// candidate that ran fastest here (each built and timed, on a sample of the problem where the
/// policy says so). `build` makes a candidate's dispatches for a geometry: `g`, or its sample
/// (the same buffers, partly used: timing reads them, and the chosen tile is then built for
/// `g`, which writes every output).
pub(super) fn choose(
    gpu: &Gpu,
    kernel: &str,
    g: &Conv2dGeom,
    rows: Rows,
    candidates: &[ConvTile],
    build: impl Fn(&Conv2dGeom, ConvTile) -> Result<Vec<Dispatch>>,
) -> Result<Vec<Dispatch>> {
    let Some(tuner) = gpu.tuner() else {
        return build(g, candidates[0]);
    };
    let key = key(kernel, g);
    if let Some(t) = tuner.get(&key).as_deref().and_then(ConvTile::from_record) {
        if candidates.contains(&t) {
            return build(g, t);
        }
    }
    if cfg!(target_arch = "wasm32") {
        return build(g, candidates[0]);
    }
    let started = std::time::Instant::now();
    let sample = match gpu.policy().tune_sample_pixels() {
        Some(pixels) => sample_geometry(g, rows, pixels),
        None => *g,
    };
    let mut best: Option<(f64, ConvTile)> = None;
    let mut runs = 0;
    for &t in candidates {
        let ds = build(&sample, t)?;
        // a second run only for a candidate whose first came within RERUN_WITHIN of the best
        // (the first run also warms caches and lazily compiled state, so it reads high; a
        // clear loser is not worth another)
        let mut ms = time_once(gpu, &ds)?;
        runs += 1;
        if best.as_ref().is_none_or(|(b, _)| ms < b * RERUN_WITHIN) {
            ms = ms.min(time_once(gpu, &ds)?);
            runs += 1;
        }
        if crate::device::debug_level() >= 1 {
            eprintln!(
                "convoy: tuning {key} on n{} c{} -> {}: {t:?} {ms:.2} ms",
                sample.n, sample.cin, sample.cout
            );
        }
        if best.as_ref().is_none_or(|(b, _)| ms < *b) {
            best = Some((ms, t));
        }
    }
    let (_, t) = best.expect("at least one candidate");
    tuner.set(&key, t.record());
    tuner.add_cost(candidates.len(), runs, started.elapsed().as_secs_f64());
    build(g, t)
}

/// The tuner's cache key of `kernel` (the variant table's `Tiled::tuner`) on shape `g`.
pub fn key(kernel: &str, g: &Conv2dGeom) -> String {
    let a = &g.args;
    // one number where both axes agree (the keys recorded before per-axis arguments)
    let pair = |v: [usize; 2]| {
        if v[0] == v[1] {
            v[0].to_string()
        } else {
            format!("{}x{}", v[0], v[1])
        }
    };
    format!(
        "{kernel} n{} c{} {}x{} -> {} k{}x{} s{} p{} d{} g{}",
        g.n,
        g.cin,
        g.h,
        g.w,
        g.cout,
        g.kh,
        g.kw,
        pair(a.stride),
        pair(a.padding),
        pair(a.dilation),
        a.groups
    )
}

/// The tile the tuner recorded for `kernel` on shape `g` on this device, if any.
pub fn recorded_tile(gpu: &Gpu, kernel: &str, g: &Conv2dGeom) -> Option<ConvTile> {
    gpu.tuner()?
        .get(&key(kernel, g))
        .as_deref()
        .and_then(ConvTile::from_record)
}

/// A candidate's first run within this factor of the best so far earns it a second (lavapipe's
/// first run of a new pipeline reads up to ~30% high, but a candidate 15% behind on its first
/// run rarely wins, and the reruns were a quarter of the tuning time at 1.5).
const RERUN_WITHIN: f64 = 1.15;

/// The tile rows the tuner keeps at least (the block tile's 64).
const SAMPLE_ROWS: usize = 64;

/// `g` cut down for timing where time follows the work (a CPU driver): its first images, enough
/// for `pixels` output pixels, and for a conv of one group the first `SAMPLE_ROWS` channels of
/// its tile rows. What a tile trades (channels per invocation, pixels per invocation,
/// workgroup width, K per step) is all still there; a ResNet's 512-channel stage costs 8x less
/// to time.
fn sample_geometry(g: &Conv2dGeom, rows: Rows, pixels: usize) -> Conv2dGeom {
    let n = pixels.div_ceil(g.oh * g.ow).clamp(1, g.n);
    let mut s = Conv2dGeom { n, ..*g };
    if g.args.groups == 1 {
        match rows {
            Rows::Outputs => s.cout = g.cout.min(SAMPLE_ROWS),
            Rows::Inputs => s.cin = g.cin.min(SAMPLE_ROWS),
        }
    }
    s
}

/// One run's time in milliseconds, by the device's clock for timing (`Clock::for_timing`).
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn time_once(gpu: &Gpu, ds: &[Dispatch]) -> Result<f64> {
    crate::device::time_dispatches(gpu, ds, 1, crate::device::Clock::for_timing(gpu))
}

#[cfg(target_arch = "wasm32")]
pub(super) fn time_once(_: &Gpu, _: &[Dispatch]) -> Result<f64> {
    Ok(0.0)
}
