//! linear (the GEMM kernel) against the f64 reference.

use crate::common::{assert_close, gpu, reference, to_f64, RTOL};
use convoy::ops::linear;
use convoy::rng::Rng;
use convoy::Tensor;

#[test]
fn linear_random_shapes() {
    let g = gpu();
    let mut rng = Rng::new(4);
    // includes sizes around the 64-wide tile and the 16-deep k step, and a 1-row batch
    let mut shapes = vec![(1, 10, 3), (64, 64, 16), (65, 17, 129), (3, 200, 70)];
    for _ in 0..6 {
        shapes.push((rng.int(1, 90), rng.int(1, 150), rng.int(1, 90)));
    }
    for (n, fin, fout) in shapes {
        let x = rng.vec(n * fin, -1.0, 1.0);
        let w = rng.vec(fout * fin, -0.5, 0.5);
        let b = rng.vec(fout, -1.0, 1.0);
        let xt = Tensor::from_slice(g, &x, [n, fin]).unwrap();
        let wt = Tensor::from_slice(g, &w, [fout, fin]).unwrap();
        let bt = Tensor::from_slice(g, &b, [fout]).unwrap();
        for with_bias in [true, false] {
            let y = linear(g, &xt, &wt, with_bias.then_some(&bt)).unwrap();
            assert_eq!(y.dims(), &[n, fout]);
            let bf = to_f64(&b);
            let want = reference::linear(&to_f64(&x), n, fin, &to_f64(&w), fout, with_bias.then_some(&bf[..]));
            assert_close(
                &format!("linear {n}x{fin} -> {fout}"),
                &y.to_vec().unwrap(),
                &want,
                RTOL,
            );
        }
    }
}

#[test]
fn linear_rejects_bad_shapes() {
    let g = gpu();
    let x = Tensor::zeros(g, [4, 10]).unwrap();
    let err = linear(g, &x, &Tensor::zeros(g, [3, 9]).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linear") && err.contains("[3, 9]"), "{err}");
    let err = linear(
        g,
        &x,
        &Tensor::zeros(g, [3, 10]).unwrap(),
        Some(&Tensor::zeros(g, [4]).unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
    assert!(linear(
        g,
        &Tensor::zeros(g, [4, 10, 1]).unwrap(),
        &Tensor::zeros(g, [3, 10]).unwrap(),
        None
    )
    .is_err());
}
