//! conv2d_fwd_depthwise_vec4 against the float64 reference under both kernel families (a
//! CPU driver's lanes walk runs of units that carry their segments along a row; a GPU's take a
//! unit each): the forward with its epilogue, the block statistics of a training batch norm,
//! f16 storage, the stride-1 input gradient through the flipped kernel, and the weight
//! gradient (conv2d_bwd_weight_depthwise_vec4) in one chunk and in several; each directly and
//! as the variant table's choice.

use crate::common::{assert_close, gpu, has_f16_else_refused, open_gpu, reference, to_f64, RTOL};
use crate::half::{round_f16, HALF_RTOL};
use convoy::graph::{Act, Epilogue};
use convoy::internals::kernels::conv::{
    self, depthwise_transposed_vec4_fits, depthwise_vec4_fits, variants, STATS_BLOCK,
};
use convoy::ops::{Conv2dArgs, Conv2dGeom};
use convoy::{DType, Gpu, KernelFamily, Rng, Tensor};

/// (x, kernel, stride, padding, dilation, act): rows of whole vec4s in and out.
type Case = ([usize; 4], [usize; 2], [usize; 2], [usize; 2], [usize; 2], Act);

const CASES: [Case; 10] = [
    // MobileNetV2's: 3x3 pad 1, stride 1 and 2; 3 images of 12x12 (144 positions: blocks of
    // 256 span images, the last partial)
    ([3, 5, 12, 12], [3, 3], [1, 1], [1, 1], [1, 1], Act::Relu6),
    ([2, 3, 24, 16], [3, 3], [2, 2], [1, 1], [1, 1], Act::HardSwish),
    // 5x5 (EfficientNet, MobileNetV3), stride 2: 4 vec4s under a unit
    ([1, 4, 20, 40], [5, 5], [2, 2], [2, 2], [1, 1], Act::Silu),
    // dilation 2, no padding (units whose segments start inside the row)
    ([2, 3, 13, 20], [3, 3], [1, 1], [0, 0], [2, 2], Act::None),
    // padding past a vec4 and on one axis only, 1x7 and 7x1 kernels
    ([1, 2, 9, 24], [1, 7], [1, 1], [0, 3], [1, 1], Act::Relu),
    ([2, 2, 15, 8], [7, 1], [1, 1], [3, 0], [1, 1], Act::None),
    ([1, 3, 16, 16], [3, 3], [1, 1], [5, 5], [1, 1], Act::None),
    // one unit a row (OW = 4): no unit carries; a single row of many units
    ([5, 3, 7, 4], [3, 3], [1, 1], [1, 1], [1, 1], Act::Relu),
    ([1, 2, 1, 64], [3, 3], [1, 1], [1, 1], [1, 1], Act::None),
    // many channels and blocks: the grid folds over y past 65,535 workgroups
    ([1, 70_000, 4, 4], [3, 3], [1, 1], [1, 1], [1, 1], Act::Relu),
];

/// The block statistics of y (N, C, OH, OW) in f64: (blocks of STATS_BLOCK positions, C, 2),
/// each block's channel mean and sum of squared deviations.
fn block_stats(y: &[f64], [n, c, h, w]: [usize; 4]) -> Vec<f64> {
    let plane = h * w;
    let total = n * plane;
    let blocks = total.div_ceil(STATS_BLOCK);
    let mut out = vec![0.0; blocks * c * 2];
    for b in 0..blocks {
        let qs = b * STATS_BLOCK..total.min((b + 1) * STATS_BLOCK);
        for ch in 0..c {
            let v: Vec<f64> = qs
                .clone()
                .map(|q| y[((q / plane) * c + ch) * plane + q % plane])
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            out[(b * c + ch) * 2] = mean;
            out[(b * c + ch) * 2 + 1] = v.iter().map(|x| (x - mean) * (x - mean)).sum();
        }
    }
    out
}

fn families() -> [Gpu; 2] {
    [KernelFamily::Cpu, KernelFamily::Gpu].map(|f| open_gpu(Gpu::builder().kernels(f)))
}

/// A case's depthwise conv: its geometry, its weights' shape, and how messages name it on `g`.
fn depthwise(g: &Gpu, (xs, [kh, kw], stride, padding, dilation, _): Case) -> (Conv2dGeom, [usize; 4], String) {
    let c = xs[1];
    let args = Conv2dArgs::new(1, 0, 1, c).hw(stride, padding, dilation);
    let ws = [c, 1, kh, kw];
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let what = format!(
        "{:?} x{xs:?} k{kh}x{kw} s{stride:?} p{padding:?} d{dilation:?}",
        g.policy().family
    );
    (geom, ws, what)
}

/// Random x, w and dy for `case`, and the f64 reference's dx and dw from them.
struct Gradients {
    x: Vec<f32>,
    w: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f64>,
    dw: Vec<f64>,
}

fn gradients(rng: &mut Rng, (xs, [kh, kw], stride, padding, dilation, _): Case, geom: &Conv2dGeom) -> Gradients {
    let c = xs[1];
    let ws = [c, 1, kh, kw];
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let w = rng.vec(ws.iter().product(), -0.5, 0.5);
    let dy = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
    let (dx, dw) = reference::conv2d_backward(
        &to_f64(&x),
        xs,
        &to_f64(&w),
        ws,
        &to_f64(&dy),
        stride,
        padding,
        dilation,
        c,
    );
    Gradients { x, w, dy, dx, dw }
}

#[test]
fn conv2d_depthwise_vec4_matches_reference() {
    for g in &families() {
        let mut rng = Rng::new(41);
        for case in CASES {
            let (xs, _, stride, padding, dilation, act) = case;
            let c = xs[1];
            let (geom, ws, what) = depthwise(g, case);
            assert!(depthwise_vec4_fits(&geom), "{geom:?}");
            let ys = geom.out_shape();
            let yd: [usize; 4] = ys.dims().try_into().unwrap();
            let x = rng.vec(xs.iter().product(), -1.0, 1.0);
            let w = rng.vec(ws.iter().product(), -0.5, 0.5);
            let bias = rng.vec(c, -0.5, 0.5);
            let res = rng.vec(ys.numel(), -0.5, 0.5);
            let (conv64, _) = reference::conv2d(
                &to_f64(&x),
                xs,
                &to_f64(&w),
                ws,
                Some(&to_f64(&bias)),
                stride,
                padding,
                dilation,
                c,
            );
            let want: Vec<f64> = conv64
                .iter()
                .zip(&res)
                .map(|(v, &r)| reference::activation(act, v + r as f64))
                .collect();
            let t = |v: &[f32], s: &[usize]| Tensor::from_slice(g, v, s.to_vec()).unwrap();
            let (xt, wt, bt, rt) = (t(&x, &xs), t(&w, &ws), t(&bias, &[c]), t(&res, &yd));
            let epi = Epilogue { residual: true, act };
            // the table's choice for the forward, with and without statistics
            for stats in [false, true] {
                let choice = variants::forward(g.into(), &geom, DType::F32, stats).unwrap();
                assert_eq!(choice.kernel, variants::Forward::DepthwiseVec4, "{what}");
            }
            for direct in [true, false] {
                let y = Tensor::empty(g, ys.clone()).unwrap();
                let mut bufs = conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
                bufs.bias = Some(bt.buffer());
                bufs.residual = Some(rt.buffer());
                let d = match direct {
                    true => conv::forward_depthwise_vec4(g, &geom, epi, DType::F32, &bufs).unwrap(),
                    false => conv::forward(g, &geom, epi, DType::F32, &bufs).unwrap(),
                };
                g.run(&d);
                assert_close(&format!("{what} (direct {direct})"), &y.to_vec().unwrap(), &want, RTOL);
            }
            // the training forward (no epilogue): y and its block statistics
            let (plain, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, stride, padding, dilation, c);
            let blocks = (yd[0] * yd[2] * yd[3]).div_ceil(STATS_BLOCK);
            let y = Tensor::empty(g, ys.clone()).unwrap();
            let stats = Tensor::empty(g, [blocks * c * 2]).unwrap();
            let mut bufs = conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
            bufs.stats = Some(stats.buffer());
            g.run(&conv::forward(g, &geom, Epilogue::default(), DType::F32, &bufs).unwrap());
            assert_close(&format!("{what} training forward"), &y.to_vec().unwrap(), &plain, RTOL);
            let want_stats = block_stats(&plain, yd);
            let got = stats.to_vec().unwrap();
            // the means and the sums of squared deviations apart, each to f32's few ulps
            for (k, name) in [(0, "means"), (1, "M2s")] {
                let pick = |v: &[f64]| v.iter().skip(k).step_by(2).copied().collect::<Vec<f64>>();
                let got: Vec<f32> = got.iter().skip(k).step_by(2).copied().collect();
                assert_close(&format!("{what} block {name}"), &got, &pick(&want_stats), 1e-5);
            }
        }
    }
}

/// Input-gradient geometries beyond the forward's: strides 4 and (2, 1), stride 3 (across: not
/// a divisor of 4, so another kernel), a 5x5 at stride 2 whose dy rows are not whole vec4s.
const GRADIENT_CASES: [Case; 4] = [
    ([1, 2, 16, 16], [3, 3], [4, 4], [1, 1], [1, 1], Act::None),
    ([2, 3, 10, 12], [3, 3], [2, 1], [1, 1], [1, 1], Act::None),
    ([1, 2, 12, 12], [3, 3], [3, 3], [1, 1], [1, 1], Act::None),
    ([2, 3, 28, 28], [5, 5], [2, 2], [2, 2], [1, 1], Act::None),
];

/// An input-gradient launcher under test: its dispatches into dx.
type Launch<'a> = dyn Fn(&Tensor) -> Vec<convoy::internals::device::Dispatch> + 'a;

#[test]
fn conv2d_depthwise_vec4_input_gradient_matches_reference() {
    for g in &families() {
        let mut rng = Rng::new(43);
        for case in CASES.into_iter().chain(GRADIENT_CASES) {
            let (xs, [kh, kw], stride, padding, dilation, _) = case;
            let (geom, ws, what) = depthwise(g, case);
            let flipped =
                stride == [1, 1] && padding[0] <= dilation[0] * (kh - 1) && padding[1] <= dilation[1] * (kw - 1);
            let transposed = depthwise_transposed_vec4_fits(&geom);
            // all but stride 3 across and the 1x7 (its unit reads 10 dy values a row)
            assert_eq!(transposed, stride[1] != 3 && kw != 7, "{xs:?} k{kh}x{kw} s{stride:?}");
            let choice = variants::input_gradient(g.into(), &geom, DType::F32);
            let want = if flipped {
                variants::InputGradient::DepthwiseVec4
            } else {
                variants::InputGradient::DepthwiseTransposedVec4
            };
            assert_eq!(choice.kernel == want, flipped || transposed, "{what}: {choice:?}");
            let ys = geom.out_shape();
            let Gradients { w, dy, dx: dx64, .. } = gradients(&mut rng, case, &geom);
            let wt = Tensor::from_slice(g, &w, ws.to_vec()).unwrap();
            let dyt = Tensor::from_slice(g, &dy, ys.dims().to_vec()).unwrap();
            // each vec4 kernel directly where it takes the conv (the transposed one takes the
            // stride-1 convs too), and backward_data's choice; one dispatch each
            let mut runs: Vec<(&str, Box<Launch>)> = vec![(
                "backward_data",
                Box::new(|dx: &Tensor| {
                    conv::backward_data(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer(), DType::F32, None).unwrap()
                }),
            )];
            if flipped {
                runs.push((
                    "flipped forward",
                    Box::new(|dx: &Tensor| {
                        conv::backward_data_depthwise_vec4(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer()).unwrap()
                    }),
                ));
            }
            if transposed {
                runs.push((
                    "transposed",
                    Box::new(|dx: &Tensor| {
                        vec![
                            conv::backward_data_depthwise_transposed(g, &geom, dyt.buffer(), wt.buffer(), dx.buffer())
                                .unwrap(),
                        ]
                    }),
                ));
            }
            for (how, run) in &runs {
                let dx = Tensor::empty(g, xs).unwrap();
                let d = run(&dx);
                if flipped || transposed {
                    assert_eq!(d.len(), 1, "{what} {how}: dispatches of the input gradient");
                }
                g.run(&d);
                assert_close(
                    &format!("{what} input gradient ({how})"),
                    &dx.to_vec().unwrap(),
                    &dx64,
                    RTOL,
                );
            }
        }
    }
}

#[test]
fn conv2d_depthwise_vec4_weight_gradient_matches_reference() {
    for g in &families() {
        let mut rng = Rng::new(53);
        for case in CASES {
            let xs = case.0;
            let (geom, ws, what) = depthwise(g, case);
            let choice = variants::weight_gradient(g.into(), &geom, DType::F32);
            assert_eq!(choice.kernel, variants::WeightGradient::DepthwiseVec4, "{what}");
            let ys = geom.out_shape();
            let Gradients { x, dy, dw: dw64, .. } = gradients(&mut rng, case, &geom);
            let xt = Tensor::from_slice(g, &x, xs.to_vec()).unwrap();
            let dyt = Tensor::from_slice(g, &dy, ys.dims().to_vec()).unwrap();
            let positions = ys.dims()[0] * ys.dims()[2] * ys.dims()[3];
            // the launcher's chunks; one chunk of every position; chunks of 4 positions (the
            // least) and of 52 (units that end a chunk mid-row)
            for chunk in [None, Some(positions), Some(4), Some(52)] {
                let dw = Tensor::empty(g, ws.to_vec()).unwrap();
                let bufs = conv::WeightGradientBuffers {
                    dy: dyt.buffer(),
                    x: xt.buffer(),
                    dw: dw.buffer(),
                };
                let d = match chunk {
                    None => conv::backward_weight(g, &geom, &bufs, DType::F32, None),
                    Some(_) => conv::backward_weight_depthwise_vec4(g, &geom, chunk, &bufs),
                };
                g.run(&d.unwrap());
                assert_close(
                    &format!("{what} weight gradient, chunk {chunk:?}"),
                    &dw.to_vec().unwrap(),
                    &dw64,
                    RTOL,
                );
            }
        }
    }
}

/// The weight gradient's one barrier (before its invocations' sums are added) has teeth: with it
/// deleted, the gpu family's 64 lanes (8 of lavapipe's vectors, run one after another up to a
/// barrier) add sums not yet stored.
#[test]
fn conv2d_depthwise_vec4_weight_gradient_fails_without_its_barrier() {
    use convoy::internals::kernels::shaders::CONV2D_BWD_WEIGHT_DEPTHWISE_VEC4;
    let g = &open_gpu(Gpu::builder().kernels(KernelFamily::Gpu));
    let mut rng = Rng::new(59);
    let (xs, ws) = ([2, 3, 16, 16], [3, 1, 3, 3]);
    let args = Conv2dArgs::new(1, 1, 1, 3);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    let ys = geom.out_shape();
    let x = rng.vec(xs.iter().product(), -1.0, 1.0);
    let dy = rng.vec(ys.numel(), -1.0, 1.0);
    let (_, want) = reference::conv2d_backward(&to_f64(&x), xs, &[0.0; 27], ws, &to_f64(&dy), 1, 1, 1, 3);
    let xt = Tensor::from_slice(g, &x, xs.to_vec()).unwrap();
    let dyt = Tensor::from_slice(g, &dy, ys.dims().to_vec()).unwrap();
    let run = |kernel| {
        let dw = Tensor::empty(g, ws.to_vec()).unwrap();
        let bufs = conv::WeightGradientBuffers {
            dy: dyt.buffer(),
            x: xt.buffer(),
            dw: dw.buffer(),
        };
        g.run(&conv::backward_weight_depthwise_vec4_with(g, kernel, &geom, Some(512), &bufs).unwrap());
        crate::common::rel_err(&dw.to_vec().unwrap(), &want)
    };
    assert!(run(&CONV2D_BWD_WEIGHT_DEPTHWISE_VEC4) <= RTOL);
    let cut = crate::conv::without_barrier(&CONV2D_BWD_WEIGHT_DEPTHWISE_VEC4, 0);
    let e = run(cut);
    assert!(
        e > 1e-2,
        "without its barrier the weight gradient still matched (relative error {e:.2e})"
    );
}

#[test]
fn conv2d_depthwise_vec4_on_f16_matches_reference() {
    let g = gpu();
    if !has_f16_else_refused(g) {
        return;
    }
    let mut rng = Rng::new(47);
    for case in CASES.into_iter().take(4) {
        let (xs, _, stride, padding, dilation, act) = case;
        let c = xs[1];
        let (geom, ws, what) = depthwise(g, case);
        let ys = geom.out_shape();
        let x = round_f16(&rng.vec(xs.iter().product(), -1.0, 1.0));
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let (conv64, _) = reference::conv2d(&to_f64(&x), xs, &to_f64(&w), ws, None, stride, padding, dilation, c);
        let want: Vec<f64> = conv64.iter().map(|&v| reference::activation(act, v)).collect();
        let xt = Tensor::from_slice_f16(g, &x, xs.to_vec()).unwrap();
        let wt = Tensor::from_slice(g, &w, ws.to_vec()).unwrap();
        let y = Tensor::empty_of(g, ys.clone(), DType::F16).unwrap();
        let bufs = conv::ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer());
        let epi = Epilogue { residual: false, act };
        g.run(&conv::forward_depthwise_vec4(g, &geom, epi, DType::F16, &bufs).unwrap());
        assert_close(&format!("{what} (f16)"), &y.to_vec().unwrap(), &want, HALF_RTOL);
    }
}

#[test]
fn conv2d_depthwise_vec4_refuses_what_it_cannot_take() {
    let g = gpu();
    // OW = 9: its rows are not whole vec4s; the table takes another kernel
    let args = Conv2dArgs::new(1, 1, 1, 4);
    let geom = Conv2dGeom::new(&[1, 4, 9, 9].into(), &[4, 1, 3, 3].into(), args).unwrap();
    assert!(!depthwise_vec4_fits(&geom));
    let choice = variants::forward(g.into(), &geom, DType::F32, false).unwrap();
    assert_ne!(choice.kernel, variants::Forward::DepthwiseVec4);
    let t = |n: usize| Tensor::zeros(g, [n]).unwrap();
    let (x, w, y) = (t(81 * 4), t(36), t(81 * 4));
    let bufs = conv::ForwardBuffers::new(x.buffer(), w.buffer(), y.buffer());
    let Err(err) = conv::forward_depthwise_vec4(g, &geom, Epilogue::default(), DType::F32, &bufs) else {
        panic!("conv2d_fwd_depthwise_vec4 took OW = 9");
    };
    assert!(
        err.to_string().contains("whole vec4s") || err.to_string().contains("multiples of 4"),
        "{err}"
    );
    // a grouped conv of 2 channels per group is not depthwise
    let args = Conv2dArgs::new(1, 1, 1, 2);
    let geom = Conv2dGeom::new(&[1, 4, 8, 8].into(), &[4, 2, 3, 3].into(), args).unwrap();
    assert!(!depthwise_vec4_fits(&geom));
}
