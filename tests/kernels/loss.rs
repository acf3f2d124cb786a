//! cross_entropy (with label smoothing) and top-k accuracy against the f64 reference.

use crate::common::{gpu, reduction_gpus, reference, to_f64};
use convoy::ops::{cross_entropy, topk_accuracy};
use convoy::Rng;
use convoy::Tensor;

#[test]
fn cross_entropy_matches_reference() {
    for g in reduction_gpus() {
        let mut rng = Rng::new(5);
        for (n, k, eps) in [(1, 2, 0.0), (7, 10, 0.1), (300, 13, 0.0), (33, 1000, 0.2), (5, 3, 1.0)] {
            // logits up to +-20: exercises the max-subtraction of logsumexp
            let logits = rng.vec(n * k, -20.0, 20.0);
            let labels: Vec<i32> = (0..n).map(|_| rng.int(0, k - 1) as i32).collect();
            let lt = Tensor::from_slice(g, &logits, [n, k]).unwrap();
            let yt = Tensor::from_i32(g, &labels, [n]).unwrap();
            let got = cross_entropy(g, &lt, &yt, eps as f32).unwrap().to_vec().unwrap()[0] as f64;
            let want = reference::cross_entropy(&to_f64(&logits), n, k, &labels, eps);
            // fp32 logsumexp of values up to 20: absolute error ~ k * 1e-6 per row before the mean
            let err = (got - want).abs() / want.abs().max(1.0);
            assert!(err < 1e-5, "cross_entropy n{n} k{k} eps{eps}: {got} vs {want}");
        }
    }
}

#[test]
fn topk_accuracy_matches_reference() {
    for g in reduction_gpus() {
        let mut rng = Rng::new(6);
        for (n, k) in [(1, 10), (50, 10), (513, 7), (64, 1000)] {
            let logits = rng.vec(n * k, -3.0, 3.0);
            let labels: Vec<i32> = (0..n).map(|_| rng.int(0, k - 1) as i32).collect();
            let lt = Tensor::from_slice(g, &logits, [n, k]).unwrap();
            let yt = Tensor::from_i32(g, &labels, [n]).unwrap();
            for topk in [1, 5] {
                let got = topk_accuracy(g, &lt, &yt, topk).unwrap().to_vec().unwrap()[0] as f64;
                let want = reference::topk_accuracy(&to_f64(&logits), n, k, &labels, topk);
                assert!((got - want).abs() < 1e-6, "top-{topk} n{n} k{k}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn loss_rejects_bad_inputs() {
    let g = gpu();
    let logits = Tensor::zeros(g, [4, 10]).unwrap();
    let labels = Tensor::from_i32(g, &[0, 1, 2], [3]).unwrap();
    let err = cross_entropy(g, &logits, &labels, 0.0).unwrap_err().to_string();
    assert!(err.contains("labels") && err.contains("[3]"), "{err}");
    let float_labels = Tensor::zeros(g, [4]).unwrap();
    assert!(cross_entropy(g, &logits, &float_labels, 0.0).is_err());
    let ok_labels = Tensor::from_i32(g, &[0, 1, 2, 3], [4]).unwrap();
    assert!(cross_entropy(g, &logits, &ok_labels, 1.5).is_err());
    assert!(topk_accuracy(g, &logits, &ok_labels, 0).is_err());
    // a label outside [0, K) gives NaN, never a wrong finite loss
    let bad = Tensor::from_i32(g, &[0, 1, 2, 10], [4]).unwrap();
    assert!(cross_entropy(g, &logits, &bad, 0.0).unwrap().to_vec().unwrap()[0].is_nan());
}
