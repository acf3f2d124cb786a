//! Nearest and bilinear upsampling (align_corners=False) against a float64 reference written
//! from PyTorch's definition, and the backward's gather against the forward's transpose.

use crate::common::{assert_close, gpu, reference};
use convoy::internals::ops::upsample::{launch, upsample, UpsampleArgs};
use convoy::Rng;
use convoy::Tensor;

/// The upsampling as a matrix over one plane: y = U x; the backward is U^T dy.
fn matrix(h: usize, w: usize, s: usize, bilinear: bool) -> Vec<Vec<(usize, f64)>> {
    let mut rows = Vec::new();
    for oy in 0..h * s {
        for ox in 0..w * s {
            let (y0, y1, ly) = reference::upsample_taps(oy, h, s, bilinear);
            let (x0, x1, lx) = reference::upsample_taps(ox, w, s, bilinear);
            rows.push(vec![
                (y0 * w + x0, (1.0 - ly) * (1.0 - lx)),
                (y0 * w + x1, (1.0 - ly) * lx),
                (y1 * w + x0, ly * (1.0 - lx)),
                (y1 * w + x1, ly * lx),
            ]);
        }
    }
    rows
}

#[test]
fn upsampling_and_its_gradient_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(41);
    for (n, c, h, w, s) in [
        (1, 1, 1, 1, 2),
        (2, 3, 5, 4, 2),
        (1, 2, 7, 9, 3),
        (2, 2, 1, 6, 2),
        (1, 1, 4, 4, 4),
    ] {
        for bilinear in [false, true] {
            let args = UpsampleArgs { scale: s, bilinear };
            let x = rng.vec(n * c * h * w, -1.0, 1.0);
            let dy = rng.vec(n * c * h * w * s * s, -1.0, 1.0);
            let u = matrix(h, w, s, bilinear);
            let (plane, big) = (h * w, h * w * s * s);
            let mut want = vec![0.0; n * c * big];
            let mut want_dx = vec![0.0; n * c * plane];
            for p in 0..n * c {
                for (o, row) in u.iter().enumerate() {
                    for &(i, wt) in row {
                        want[p * big + o] += wt * x[p * plane + i] as f64;
                        want_dx[p * plane + i] += wt * dy[p * big + o] as f64;
                    }
                }
            }
            let what = format!(
                "{} x{s} [{n}, {c}, {h}, {w}]",
                if bilinear { "bilinear" } else { "nearest" }
            );
            let xt = Tensor::from_slice(g, &x, [n, c, h, w]).unwrap();
            // float32 rounds the source coordinate (o + 1/2) / s - 1/2 (as PyTorch does): for
            // s = 3 its weights move by up to an ulp of o / s (~1e-6 here); measured 1.6e-6
            let tol = if s.is_power_of_two() { 1e-6 } else { 1e-5 };
            assert_close(&what, &upsample(g, &xt, args).unwrap().to_vec().unwrap(), &want, tol);
            let dyt = Tensor::from_slice(g, &dy, [n, c, h * s, w * s]).unwrap();
            let dx = Tensor::empty(g, [n, c, h, w]).unwrap();
            g.run(&[launch(g, args, [n * c, h, w], true, dyt.buffer(), dx.buffer()).unwrap()]);
            assert_close(&format!("{what} backward"), &dx.to_vec().unwrap(), &want_dx, tol);
        }
    }
}
