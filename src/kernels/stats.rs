//! Activation statistics (training diagnostics): mean, std, fraction near zero and a histogram of
//! one tensor, reduced on the GPU into 3 + bins numbers, so reading them costs a few hundred bytes.

use super::shaders::{reduction_variant, ACT_STATS_FINISH, ACT_STATS_PARTIAL};
use super::u32_of;
use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};

/// Histogram bins the kernel supports at most (its workgroup histogram).
pub const MAX_BINS: usize = 64;
/// Invocations per workgroup of the partial pass, and the most workgroups it uses.
const WG: usize = 256;
const MAX_PARTS: usize = 64;

/// Bins 1..=MAX_BINS, a finite positive histogram top, a finite non-negative "near zero".
pub fn check_config(bins: usize, hi: f32, near: f32) -> Result<()> {
    if bins == 0 || bins > MAX_BINS || !hi.is_finite() || hi <= 0.0 || !near.is_finite() || near < 0.0 {
        return Err(Error::arg(
            "act_stats",
            "bins/hi/near",
            format!("bins {bins} must be 1..={MAX_BINS}, hi {hi} finite and positive, near {near} finite and >= 0"),
        ));
    }
    Ok(())
}

/// The two dispatches that reduce `x` (n values) into `out` = [mean, std, near_zero, hist(bins)],
/// the histogram over [0, hi), "near zero" meaning |x| <= near.
pub fn act_stats(
    gpu: &Gpu,
    n: usize,
    (bins, hi, near): (usize, f32, f32),
    x: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    check_config(bins, hi, near)?;
    if n == 0 {
        return Err(Error::arg("act_stats", "input", "has no values"));
    }
    let parts = n.div_ceil(WG * 16).clamp(1, MAX_PARTS);
    let per_part = n.div_ceil(parts);
    let params = [u32_of("act_stats values", n)?, parts as u32, per_part as u32];
    let constants = [("BINS", bins as f64), ("HI", f64::from(hi)), ("NEAR", f64::from(near))];
    let width = 3 + bins;
    let part = gpu.scratch_buffer("act_stats partials", (parts * width * 4) as u64)?;
    let partial = Dispatch::new(
        gpu,
        gpu.pipeline(reduction_variant(gpu, &ACT_STATS_PARTIAL), &constants)?,
        &params,
        &[x, &part],
        [parts as u32, 1, 1],
    )?;
    let finish = Dispatch::new(
        gpu,
        gpu.pipeline(&ACT_STATS_FINISH, &constants)?,
        &params,
        &[&part, out],
        [1, 1, 1],
    )?;
    Ok(vec![partial, finish])
}
