//! Activation statistics (act_stats kernels) against a float64 reference, on random sizes that
//! leave partial workgroups and several partial rows, with values inside and outside the
//! histogram range.

use crate::common::{reduction_gpus, to_f64};
use convoy::internals::kernels::stats::act_stats;
use convoy::Rng;
use convoy::Tensor;

/// `xf` (the f32 values) decides the bins with the kernel's own f32 product, so a value within
/// an ulp of a bin edge lands where the kernel puts it.
fn reference(xf: &[f32], bins: usize, hi: f64, near: f64) -> Vec<f64> {
    let x = to_f64(xf);
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let near_zero = x.iter().filter(|v| v.abs() <= near).count() as f64 / n;
    let mut hist = vec![0.0; bins];
    let scale = bins as f32 / hi as f32;
    for &v in xf {
        let b = v * scale;
        if (0.0..bins as f32).contains(&b) {
            hist[(b as usize).min(bins - 1)] += 1.0;
        }
    }
    let mut out = vec![mean, var.sqrt(), near_zero];
    out.extend(hist);
    out
}

#[test]
fn act_stats_matches_f64() {
    for g in reduction_gpus() {
        let mut rng = Rng::new(11);
        for (n, bins, hi) in [
            (1, 40, 10.0),
            (255, 8, 2.0),
            (4097, 40, 10.0),
            (300_001, 64, 3.0),
            (70_000, 1, 1.0),
        ] {
            // ReLU-like data: a third exactly zero, the rest spread past the histogram's top
            let x: Vec<f32> = (0..n)
                .map(|_| {
                    let v = (-1.0 + rng.uniform() * (1.5 * hi + 1.0)) as f32;
                    v.max(0.0)
                })
                .collect();
            let xt = Tensor::from_slice(g, &x, [n]).unwrap();
            let out = Tensor::zeros(g, [3 + bins]).unwrap();
            let ds = act_stats(g, n, (bins, hi as f32, 0.05), xt.buffer(), out.buffer()).unwrap();
            g.run(&ds);
            let got = out.to_vec().unwrap();
            let want = reference(&x, bins, hi, 0.05);
            // mean and std from f32 partial sums of up to 300k terms: ~1e-5 relative; the std uses
            // E[x^2] - mean^2, which loses a little more when std << mean (not the case here)
            for (i, what) in ["mean", "std", "near zero"].iter().enumerate() {
                let tol = 1e-4 * want[i].abs().max(1e-3);
                assert!(
                    (got[i] as f64 - want[i]).abs() <= tol,
                    "n {n} {what}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
            // counts are exact (integers below 2^24)
            for b in 0..bins {
                assert_eq!(got[3 + b] as f64, want[3 + b], "n {n} bin {b}");
            }
        }
        // bad settings are errors, not garbage
        let t = Tensor::zeros(g, [4]).unwrap();
        assert!(act_stats(g, 4, (0, 1.0, 0.1), t.buffer(), t.buffer()).is_err());
        assert!(act_stats(g, 4, (65, 1.0, 0.1), t.buffer(), t.buffer()).is_err());
        assert!(act_stats(g, 4, (8, f32::NAN, 0.1), t.buffer(), t.buffer()).is_err());
    }
}
