//! max_pool2d, avg_pool2d, adaptive_avg_pool2d against f64.

use crate::common::{assert_close, gpu, reference, to_f64, RTOL};
use convoy::ops::{adaptive_avg_pool2d, avg_pool2d, max_pool2d, Pool2dArgs};
use convoy::Rng;
use convoy::Tensor;

/// Non-square windows, strides and paddings (Inception's 1x3 / 3x1, a 2x1 pool), each axis
/// with its own sizes, for max (with dilation 1) and average pooling.
#[test]
fn non_square_pools_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(9);
    for (i, (k, s, p)) in [
        ([1, 3], [1, 1], [0, 1]),
        ([3, 1], [1, 2], [1, 0]),
        ([2, 3], [2, 1], [1, 1]),
        ([3, 2], [2, 3], [0, 1]),
    ]
    .into_iter()
    .enumerate()
    {
        let ceil = i % 2 == 1;
        let shape = [2, 3, rng.int(4, 9), rng.int(4, 9)];
        let x = rng.vec(shape.iter().product(), -3.0, 3.0);
        let xt = Tensor::from_slice(g, &x, shape).unwrap();
        let x64 = to_f64(&x);
        let args = Pool2dArgs::new_hw(k[0], k[1])
            .stride_hw(s[0], s[1])
            .padding_hw(p[0], p[1])
            .ceil_mode(ceil);
        let what = format!("{shape:?} k{k:?} s{s:?} p{p:?} ceil {ceil}");
        let want = reference::max_pool2d(&x64, shape, k, s, p, [1, 1], ceil);
        assert_close(
            &format!("max_pool2d {what}"),
            &max_pool2d(g, &xt, args).unwrap().to_vec().unwrap(),
            &want,
            0.0,
        );
        let want = reference::avg_pool2d(&x64, shape, k, s, p, true, ceil);
        assert_close(
            &format!("avg_pool2d {what}"),
            &avg_pool2d(g, &xt, args).unwrap().to_vec().unwrap(),
            &want,
            RTOL,
        );
    }
}

#[test]
fn pools_match_reference_on_random_shapes() {
    let g = gpu();
    let mut rng = Rng::new(8);
    let mut cases = vec![(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 1, 2), (5, 3, 2, 1)];
    for _ in 0..8 {
        let k = rng.int(1, 4);
        cases.push((k, rng.int(1, 3), rng.int(0, k / 2), rng.int(1, 2)));
    }
    for (i, (k, s, p, d)) in cases.into_iter().enumerate() {
        let ceil = i % 2 == 1;
        let span = d * (k - 1) + 1;
        let shape = [
            rng.int(1, 3),
            rng.int(1, 5),
            rng.int(span, span + 10),
            rng.int(span, span + 10),
        ];
        let x = rng.vec(shape.iter().product(), -3.0, 3.0);
        let xt = Tensor::from_slice(g, &x, shape).unwrap();
        let x64 = to_f64(&x);
        let args = Pool2dArgs::new(k).stride(s).padding(p).dilation(d).ceil_mode(ceil);
        let y = max_pool2d(g, &xt, args).unwrap();
        let what = format!("max_pool2d {shape:?} k{k} s{s} p{p} d{d} ceil {ceil}");
        assert_close(
            &what,
            &y.to_vec().unwrap(),
            &reference::max_pool2d(&x64, shape, [k, k], [s, s], [p, p], [d, d], ceil),
            0.0,
        );
        for include in [true, false] {
            let y = avg_pool2d(
                g,
                &xt,
                Pool2dArgs::new(k)
                    .stride(s)
                    .padding(p)
                    .count_include_pad(include)
                    .ceil_mode(ceil),
            )
            .unwrap();
            let want = reference::avg_pool2d(&x64, shape, [k, k], [s, s], [p, p], include, ceil);
            assert_close(
                &format!("avg_pool2d {shape:?} k{k} s{s} p{p} inc {include} ceil {ceil}"),
                &y.to_vec().unwrap(),
                &want,
                RTOL,
            );
        }
    }
}

#[test]
fn ceil_mode_keeps_the_last_partial_window() {
    // 3x3 input 1..9, 2x2 windows, stride 2: PyTorch gives 2x2 outputs with ceil_mode=True
    let g = gpu();
    let x = Tensor::from_slice(g, &[1., 2., 3., 4., 5., 6., 7., 8., 9.], [1, 1, 3, 3]).unwrap();
    let args = Pool2dArgs::new(2).ceil_mode(true);
    assert_eq!(avg_pool2d(g, &x, args).unwrap().to_vec().unwrap(), [3.0, 4.5, 7.5, 9.0]);
    assert_eq!(max_pool2d(g, &x, args).unwrap().to_vec().unwrap(), [5.0, 6.0, 8.0, 9.0]);
}

#[test]
fn adaptive_avg_pool_any_output_size() {
    let g = gpu();
    let mut rng = Rng::new(9);
    for (h, w, oh, ow) in [(7, 7, 1, 1), (10, 7, 3, 4), (5, 5, 5, 5), (4, 6, 7, 9), (13, 11, 2, 3)] {
        let shape = [2, 3, h, w];
        let x = rng.vec(shape.iter().product(), -3.0, 3.0);
        let y = adaptive_avg_pool2d(g, &Tensor::from_slice(g, &x, shape).unwrap(), [oh, ow]).unwrap();
        assert_eq!(y.dims(), &[2, 3, oh, ow]);
        let want = reference::adaptive_avg_pool2d(&to_f64(&x), shape, oh, ow);
        assert_close(
            &format!("adaptive {h}x{w} -> {oh}x{ow}"),
            &y.to_vec().unwrap(),
            &want,
            RTOL,
        );
    }
}

#[test]
fn pools_reject_bad_arguments() {
    let g = gpu();
    let x = Tensor::zeros(g, [1, 1, 4, 4]).unwrap();
    let err = max_pool2d(g, &x, Pool2dArgs::new(2).padding(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("padding"), "{err}");
    assert!(max_pool2d(g, &x, Pool2dArgs::new(5)).is_err());
    assert!(avg_pool2d(g, &x, Pool2dArgs::new(2).dilation(2)).is_err());
    assert!(adaptive_avg_pool2d(g, &x, [0, 1]).is_err());
    assert!(max_pool2d(g, &Tensor::zeros(g, [4, 4]).unwrap(), Pool2dArgs::new(2)).is_err());
}

/// The backward routes each window's gradient to the element PyTorch picks as its maximum: the
/// first in scan order among ties, a NaN over any number, the first valid one when all are -inf.
#[test]
fn max_pool2d_backward_picks_the_maximum_as_pytorch_does() {
    use convoy::internals::kernels::pool::max_backward;
    use convoy::ops::Pool2dGeom;
    let g = gpu();
    let nan = f32::NAN;
    let ninf = f32::NEG_INFINITY;
    // x (3x3), kernel, stride, dy, expected dx
    type Case = ([f32; 9], usize, usize, Vec<f32>, [f32; 9]);
    let cases: [Case; 3] = [
        (
            [1.0; 9],
            2,
            1,
            vec![1.0, 2.0, 3.0, 4.0],
            [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
        ),
        (
            [0.0, nan, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0],
            2,
            1,
            vec![1.0, 2.0, 3.0, 4.0],
            [0.0, 3.0, 0.0, 0.0, 4.0, 0.0, 3.0, 0.0, 0.0],
        ),
        (
            [ninf; 9],
            3,
            1,
            vec![7.0],
            [7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ),
    ];
    for (x, k, s, dy, want) in cases {
        let shape = [1, 1, 3, 3];
        let geom = Pool2dGeom::new("max_pool2d", &shape.into(), Pool2dArgs::new(k).stride(s)).unwrap();
        let xt = Tensor::from_slice(g, &x, shape).unwrap();
        let dyt = Tensor::from_slice(g, &dy, geom.out_shape()).unwrap();
        let dx = Tensor::empty(g, shape).unwrap();
        let ds = max_backward(g, &geom, dyt.buffer(), xt.buffer(), dx.buffer()).unwrap();
        g.run(&ds);
        assert_eq!(dx.to_vec().unwrap(), want, "x {x:?} k{k} s{s}");
        // the forward agrees: a window holding a NaN outputs NaN
        let y = max_pool2d(g, &xt, Pool2dArgs::new(k).stride(s))
            .unwrap()
            .to_vec()
            .unwrap();
        if x[1].is_nan() {
            assert!(y[0].is_nan() && y[1].is_nan() && y[2] == 5.0 && y[3] == 0.0, "{y:?}");
        }
    }
}
