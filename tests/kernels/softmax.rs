//! softmax and its backward against float64, on rows shorter and longer than a workgroup.

use crate::common::{assert_close, reduction_gpus, reference, to_f64};
use convoy::internals::ops::softmax::{launch, softmax};
use convoy::Rng;
use convoy::Tensor;

#[test]
fn softmax_and_its_backward_match_reference() {
    for g in reduction_gpus() {
        let mut rng = Rng::new(31);
        for (n, k) in [(1, 1), (3, 10), (5, 64), (2, 1000), (70, 7)] {
            // large logits: exp overflows unless the row's max is taken out first
            let x = rng.vec(n * k, -40.0, 90.0);
            let dy = rng.vec(n * k, -1.0, 1.0);
            let xt = Tensor::from_slice(g, &x, [n, k]).unwrap();
            let y = softmax(g, &xt).unwrap();
            let want = reference::softmax(&to_f64(&x), k);
            let mut want_dx = Vec::new();
            for r in 0..n {
                let p = &want[r * k..(r + 1) * k];
                let dot: f64 = (0..k).map(|j| p[j] * dy[r * k + j] as f64).sum();
                want_dx.extend((0..k).map(|j| p[j] * (dy[r * k + j] as f64 - dot)));
            }
            // exp's rounding on lavapipe (~1e-6 relative at these arguments), per element
            assert_close(&format!("softmax [{n}, {k}]"), &y.to_vec().unwrap(), &want, 1e-5);
            let dyt = Tensor::from_slice(g, &dy, [n, k]).unwrap();
            let dx = Tensor::empty(g, [n, k]).unwrap();
            g.run(&[launch(g, [n, k], y.buffer(), Some(dyt.buffer()), dx.buffer()).unwrap()]);
            assert_close(
                &format!("softmax backward [{n}, {k}]"),
                &dx.to_vec().unwrap(),
                &want_dx,
                1e-5,
            );
        }
    }
}
