//! mul_channels (squeeze-and-excite's gate) and its scale gradient against float64.

use crate::common::{assert_close, gpu, reduction_gpus, RTOL};
use convoy::internals::ops::mul_channels::{mul_channels, scale_gradient};
use convoy::Rng;
use convoy::Tensor;

#[test]
fn mul_channels_and_its_scale_gradient_match_reference() {
    for g in reduction_gpus() {
        let mut rng = Rng::new(12);
        // maps from 1x1 to wider than a workgroup's 64 lanes; a 4-d scale and a 2-d one
        for (i, (n, c, h, w)) in [
            (1, 1, 1, 1),
            (2, 3, 7, 7),
            (3, 17, 9, 13),
            (2, 40, 1, 1),
            (1, 5, 30, 31),
        ]
        .into_iter()
        .enumerate()
        {
            let hw = h * w;
            let x = rng.vec(n * c * hw, -2.0, 2.0);
            let s = rng.vec(n * c, -1.5, 1.5);
            let dy = rng.vec(n * c * hw, -1.0, 1.0);
            let xt = Tensor::from_slice(g, &x, [n, c, h, w]).unwrap();
            let st = if i % 2 == 0 {
                Tensor::from_slice(g, &s, [n, c, 1, 1]).unwrap()
            } else {
                Tensor::from_slice(g, &s, [n, c]).unwrap()
            };
            let want: Vec<f64> = (0..x.len()).map(|k| x[k] as f64 * s[k / hw] as f64).collect();
            // one f32 rounding of the product
            assert_close(
                "mul_channels",
                &mul_channels(g, &xt, &st).unwrap().to_vec().unwrap(),
                &want,
                1e-7,
            );
            let dyt = Tensor::from_slice(g, &dy, [n, c, h, w]).unwrap();
            let ds = Tensor::empty(g, [n, c]).unwrap();
            g.run(&[scale_gradient(g, [n, c, hw], dyt.buffer(), xt.buffer(), ds.buffer()).unwrap()]);
            let want_ds: Vec<f64> = (0..n * c)
                .map(|r| (0..hw).map(|j| dy[r * hw + j] as f64 * x[r * hw + j] as f64).sum())
                .collect();
            assert_close(
                &format!("mul_channels scale gradient [{n}, {c}, {h}, {w}]"),
                &ds.to_vec().unwrap(),
                &want_ds,
                RTOL,
            );
        }
    }
}

#[test]
fn mul_channels_rejects_a_scale_of_another_shape() {
    let g = gpu();
    let x = Tensor::zeros(g, [2, 3, 4, 4]).unwrap();
    for bad in [vec![2, 4], vec![3, 2], vec![2, 3, 4, 4], vec![6]] {
        let s = Tensor::zeros(g, bad.clone()).unwrap();
        let e = mul_channels(g, &x, &s).unwrap_err().to_string();
        assert!(e.contains("mul_channels") && e.contains("[2, 3]"), "{bad:?}: {e}");
    }
}
