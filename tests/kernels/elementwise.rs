//! relu, add, flatten.

use crate::common::{assert_close, gpu};
use convoy::ops::{add, flatten, relu};
use convoy::Rng;
use convoy::Tensor;

#[test]
fn relu_and_add_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(3);
    // random shapes, and one of each kind for add's lanes: a multiple of 4 (vec4s) and not
    let random: Vec<[usize; 4]> = (0..6)
        .map(|_| [rng.int(1, 4), rng.int(1, 7), rng.int(1, 9), rng.int(1, 9)])
        .collect();
    for shape in [[2, 3, 4, 4], [1, 3, 5, 7]].into_iter().chain(random) {
        let n: usize = shape.iter().product();
        let a = rng.vec(n, -2.0, 2.0);
        let b = rng.vec(n, -2.0, 2.0);
        let at = Tensor::from_slice(g, &a, shape).unwrap();
        let bt = Tensor::from_slice(g, &b, shape).unwrap();
        let r: Vec<f64> = a.iter().map(|&v| (v as f64).max(0.0)).collect();
        assert_close("relu", &relu(g, &at).unwrap().to_vec().unwrap(), &r, 0.0);
        let s: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| x as f64 + y as f64).collect();
        // one f32 rounding of the sum: 2^-24 relative
        assert_close("add", &add(g, &at, &bt).unwrap().to_vec().unwrap(), &s, 1e-7);
    }
}

#[test]
fn relu_over_many_workgroups_folds_the_grid() {
    // 20M elements = 78,125 workgroups of 256: more than the 65,535 of one grid dimension.
    let g = gpu();
    let n = 20_000_000;
    let x: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { -1.0 } else { i as f32 }).collect();
    let y = relu(g, &Tensor::from_slice(g, &x, [n]).unwrap())
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(y
        .iter()
        .enumerate()
        .all(|(i, &v)| v == if i % 2 == 0 { 0.0 } else { i as f32 }));
}

#[test]
fn add_rejects_mismatched_shapes_and_flatten_is_a_view() {
    let g = gpu();
    let a = Tensor::zeros(g, [2, 3]).unwrap();
    let b = Tensor::zeros(g, [3, 2]).unwrap();
    let err = add(g, &a, &b).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("[3, 2]"), "{err}");
    // values that name their (n, c, h, w) position, so a transposed or shifted read shows
    let value = |n: usize, c: usize, h: usize, w: usize| (1000 * n + 100 * c + 10 * h + w) as f32;
    let mut data = Vec::new();
    for n in 0..2 {
        for c in 0..3 {
            for h in 0..2 {
                for w in 0..2 {
                    data.push(value(n, c, h, w));
                }
            }
        }
    }
    let x = Tensor::from_slice(g, &data, [2, 3, 2, 2]).unwrap();
    let f = flatten(&x).unwrap();
    assert_eq!(f.dims(), &[2, 12]);
    let got = f.to_vec().unwrap();
    for n in 0..2 {
        for c in 0..3 {
            for h in 0..2 {
                for w in 0..2 {
                    assert_eq!(
                        got[n * 12 + c * 4 + h * 2 + w],
                        value(n, c, h, w),
                        "flatten at ({n}, {c}, {h}, {w})"
                    );
                }
            }
        }
    }
    // a view: a write through the input is seen through the flattened tensor
    x.write(&[7.0; 24]).unwrap();
    assert_eq!(
        f.to_vec().unwrap(),
        vec![7.0; 24],
        "flatten copied its input instead of viewing it"
    );
    assert!(flatten(
        &Tensor::from_slice(g, &[1.0], [1])
            .unwrap()
            .reshape(Vec::<usize>::new())
            .unwrap()
    )
    .is_err());
}
