//! f16 activation storage: every kernel with an f16 variant against the float64 reference, fed
//! the same f16-rounded inputs the GPU holds. The kernels widen loads to f32, accumulate in f32
//! and round once when storing, so the error is one f16 rounding of the output (2^-11 = 4.9e-4
//! relative) plus the f32 sum's (~1e-6): HALF_RTOL = 1e-3 allows two f16 ulps and would still
//! catch a kernel that accumulates in f16 (its error grows with the number of terms: ~1e-2
//! for the 3x3x32 sums below) or reads the wrong half of a word.

use crate::common::{assert_close, gpu, has_f16_else_refused, reference, to_f64};
use crate::sweep::Sweep;
use convoy::graph::Epilogue;
use convoy::internals::kernels::conv::{self, ConvTile};
use convoy::internals::kernels::shaders::{f16_variant, variant, ACTIVATION_FWD, CROSS_ENTROPY_FWD};
use convoy::ops::{
    adaptive_avg_pool2d, add, avg_pool2d, batch_norm, conv2d, linear, max_pool2d, relu, BatchNormArgs, BatchNormState,
    Conv2dArgs, Conv2dGeom, Pool2dArgs,
};
use convoy::DType;
use convoy::Gpu;
use convoy::Rng;
use convoy::Tensor;

pub const HALF_RTOL: f64 = 1e-3;

/// What f16 storage holds for `v`: the nearest f16 (ties to even).
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// An f16 tensor of `data` and the f64 values it holds.
fn half_input(g: &Gpu, data: &[f32], shape: &[usize]) -> (Tensor, Vec<f64>) {
    let t = Tensor::from_slice_f16(g, data, shape.to_vec()).unwrap();
    (t, to_f64(&round_f16(data)))
}

fn check(what: &str, y: &Tensor, want: &[f64]) {
    assert_eq!(y.dtype(), DType::F16, "{what}: output storage");
    assert_close(&format!("{what} (f16)"), &y.to_vec().unwrap(), want, HALF_RTOL);
}

/// The f16 tests run where the adapter has shader-f16 (lavapipe on Vulkan); elsewhere (wgpu's GL
/// backend) each checks that f16 is refused with an error naming the feature.
#[test]
fn f16_runs_or_is_refused_with_the_feature_named() {
    let g = gpu();
    if has_f16_else_refused(g) {
        return;
    }
    let t = Tensor::from_slice(g, &[1.0, 2.0], [2]).unwrap();
    let Err(err) = t.to_dtype(DType::F16) else {
        panic!("a cast to f16 without shader-f16 must be refused");
    };
    assert!(err.to_string().contains("shader-f16"), "{err}");
    let Err(err) = Tensor::empty_of(g, [4], DType::F16) else {
        panic!("an f16 tensor without shader-f16 must be refused");
    };
    assert!(err.to_string().contains("shader-f16"), "{err}");
}

#[test]
fn cast_rounds_to_nearest_and_widens_exactly() {
    let g = gpu();
    if !has_f16_else_refused(g) {
        return;
    }
    let mut rng = Rng::new(31);
    for n in [1usize, 2, 7, 1000, 4097] {
        // magnitudes from f16 subnormals to near its largest value
        let x: Vec<f32> = (0..n)
            .map(|i| rng.vec(1, -1.0, 1.0)[0] * 10f32.powi((i % 11) as i32 - 6))
            .collect();
        let t = Tensor::from_slice(g, &x, [n]).unwrap();
        let h = t.to_dtype(DType::F16).unwrap();
        assert_eq!(h.dtype(), DType::F16);
        let got = h.to_vec().unwrap();
        let want = round_f16(&x);
        // WGSL lets a conversion round to either neighbour; lavapipe rounds to nearest (it
        // matches exactly), another driver may be one ulp off
        let off = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| {
                half::f16::from_f32(**a)
                    .to_bits()
                    .abs_diff(half::f16::from_f32(**b).to_bits())
                    > 1
            })
            .count();
        assert_eq!(off, 0, "{n} values: f32 -> f16 more than one ulp from round-to-nearest");
        let back = h.to_dtype(DType::F32).unwrap();
        assert_eq!(back.dtype(), DType::F32);
        assert_eq!(back.to_vec().unwrap(), got, "{n} values: f16 -> f32 must be exact");
    }
}

#[test]
fn conv2d_f16_matches_reference() {
    conv2d_f16_tiles(Sweep::Sample);
}

#[test]
#[ignore = "extended: every tile on every shape (cargo test --release -- --include-ignored)"]
fn conv2d_f16_matches_reference_every_tile() {
    conv2d_f16_tiles(Sweep::Every);
}

fn conv2d_f16_tiles(sweep: Sweep) {
    let g = gpu();
    if !has_f16_else_refused(g) {
        return;
    }
    let mut rng = Rng::new(32);
    // (x shape, cout, k, stride, pad, dilation, groups): 3x3, strided, 1x1 (the GEMM path),
    // 1x1 on a small map (implicit GEMM), strided 1x1, depthwise, dilated, grouped, odd sizes
    let cases = [
        ([2, 32, 9, 11], 16, 3, 1, 1, 1, 1),
        ([1, 8, 15, 13], 12, 3, 2, 1, 1, 1),
        ([2, 24, 16, 16], 20, 1, 1, 0, 1, 1),
        ([4, 24, 2, 2], 20, 1, 1, 0, 1, 1),
        ([1, 16, 7, 7], 8, 1, 2, 0, 1, 1),
        ([2, 12, 10, 9], 12, 3, 1, 1, 1, 12),
        ([1, 6, 12, 12], 5, 3, 1, 2, 2, 1),
        ([1, 8, 6, 7], 8, 3, 1, 1, 1, 4),
        // depthwise and a stem on rows that hold whole invocations (the row-segment forward)
        ([2, 12, 10, 12], 12, 3, 1, 1, 1, 12),
        ([1, 3, 16, 16], 8, 7, 2, 3, 1, 1),
    ];
    for (case, (xs, cout, k, s, p, d, groups)) in cases.into_iter().enumerate() {
        let ws = [cout, xs[1] / groups, k, k];
        let args = Conv2dArgs::new(s, p, d, groups);
        let x = rng.vec(xs.iter().product(), -2.0, 2.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -1.0, 1.0);
        let (xt, x64) = half_input(g, &x, &xs);
        let wt = Tensor::from_slice(g, &w, ws).unwrap();
        let bt = Tensor::from_slice(g, &b, [cout]).unwrap();
        let (want, _) = reference::conv2d(&x64, xs, &to_f64(&w), ws, Some(&to_f64(&b)), s, p, d, groups);
        let y = conv2d(g, &xt, &wt, Some(&bt), args).unwrap();
        let what = format!("conv2d x{xs:?} w{ws:?} s{s} p{p} d{d} g{groups}");
        check(&what, &y, &want);

        // the tiles the tuner may pick (a rotating sample by default: tests/kernels/sweep.rs), with the fused epilogue: + residual (f16), ReLU
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let r = rng.vec(want.len(), -1.0, 1.0);
        let (rt, r64) = half_input(g, &r, geom.out_shape().dims());
        let want_epi: Vec<f64> = want.iter().zip(&r64).map(|(a, b)| (a + b).max(0.0)).collect();
        let epi = Epilogue {
            residual: true,
            act: convoy::graph::Act::Relu,
        };
        let pixels = geom.out_shape().numel() / cout;
        let mut tiles = ConvTile::forward_candidates(g, cout / groups, pixels);
        tiles.extend(ConvTile::texture_candidates(g, cout / groups, pixels));
        for tile in sweep.pick(tiles, case) {
            let y = Tensor::empty_of(g, geom.out_shape(), DType::F16).unwrap();
            let dispatch = if conv::is_pointwise_gemm(&geom) {
                conv::forward(
                    g,
                    &geom,
                    epi,
                    DType::F16,
                    &conv::ForwardBuffers {
                        x: xt.buffer(),
                        w: wt.buffer(),
                        bias: Some(bt.buffer()),
                        residual: Some(rt.buffer()),
                        y: y.buffer(),
                        stats: None,
                        kept: None,
                        placement: None,
                        x_packed: None,
                        w_transposed: None,
                    },
                )
            } else {
                conv::forward_tiled(
                    g,
                    &geom,
                    tile,
                    epi,
                    DType::F16,
                    &conv::ForwardBuffers {
                        x: xt.buffer(),
                        w: wt.buffer(),
                        bias: Some(bt.buffer()),
                        residual: Some(rt.buffer()),
                        y: y.buffer(),
                        stats: None,
                        kept: None,
                        placement: None,
                        x_packed: None,
                        w_transposed: None,
                    },
                )
            };
            g.run(&dispatch.unwrap());
            check(&format!("{what} {tile:?} + residual, relu"), &y, &want_epi);
        }
    }
}

#[test]
fn elementwise_norm_pool_and_linear_f16_match_reference() {
    let g = gpu();
    if !has_f16_else_refused(g) {
        return;
    }
    let mut rng = Rng::new(33);
    let shape = [3, 5, 9, 7];
    let n: usize = shape.iter().product();
    let (at, a64) = half_input(g, &rng.vec(n, -3.0, 3.0), &shape);
    let (bt, b64) = half_input(g, &rng.vec(n, -3.0, 3.0), &shape);

    let want: Vec<f64> = a64.iter().map(|v| v.max(0.0)).collect();
    check("relu", &relu(g, &at).unwrap(), &want);
    let want: Vec<f64> = a64.iter().zip(&b64).map(|(a, b)| a + b).collect();
    check("add", &add(g, &at, &bt).unwrap(), &want);
    let f32_b = Tensor::from_slice(g, &rng.vec(n, -1.0, 1.0), shape).unwrap();
    assert!(add(g, &at, &f32_b).is_err(), "f16 + f32 must be refused, not misread");

    let c = shape[1];
    let (gamma, beta, rm, rv) = (
        rng.vec(c, 0.5, 1.5),
        rng.vec(c, -1.0, 1.0),
        rng.vec(c, -0.5, 0.5),
        rng.vec(c, 0.5, 2.0),
    );
    let t = |v: &[f32]| Tensor::from_slice(g, v, [c]).unwrap();
    let (gt, btt, rmt, rvt) = (t(&gamma), t(&beta), t(&rm), t(&rv));
    let state = BatchNormState {
        weight: &gt,
        bias: &btt,
        running_mean: &rmt,
        running_var: &rvt,
    };
    let eval = BatchNormArgs {
        training: false,
        ..Default::default()
    };
    let (y, _, _) = batch_norm(g, &at, &state, eval).unwrap();
    let want = reference::batch_norm_apply(
        &a64,
        shape,
        &to_f64(&rm),
        &to_f64(&rv),
        &to_f64(&gamma),
        &to_f64(&beta),
        eval.eps as f64,
    );
    check("batch_norm eval", &y, &want);
    // training (mixed precision): batch statistics of the f16 input, summed in f32
    let train = BatchNormArgs {
        training: true,
        ..Default::default()
    };
    let (y, mean, var) = batch_norm(g, &at, &state, train).unwrap();
    let (m64, v64) = reference::channel_stats(&a64, shape);
    assert_close("batch_norm training mean", &mean.to_vec().unwrap(), &m64, 1e-5);
    assert_close("batch_norm training var", &var.to_vec().unwrap(), &v64, 1e-5);
    let want = reference::batch_norm_apply(
        &a64,
        shape,
        &m64,
        &v64,
        &to_f64(&gamma),
        &to_f64(&beta),
        train.eps as f64,
    );
    check("batch_norm training", &y, &want);

    let args = Pool2dArgs::new(3).stride(2).padding(1);
    check(
        "max_pool2d",
        &max_pool2d(g, &at, args).unwrap(),
        &reference::max_pool2d(&a64, shape, [3, 3], [2, 2], [1, 1], [1, 1], false),
    );
    check(
        "avg_pool2d",
        &avg_pool2d(g, &at, args).unwrap(),
        &reference::avg_pool2d(&a64, shape, [3, 3], [2, 2], [1, 1], true, false),
    );
    check(
        "adaptive_avg_pool2d",
        &adaptive_avg_pool2d(g, &at, [2, 3]).unwrap(),
        &reference::adaptive_avg_pool2d(&a64, shape, 2, 3),
    );

    let (rows, fin, fout) = (7, 75, 13);
    let (xt, x64) = half_input(g, &rng.vec(rows * fin, -1.0, 1.0), &[rows, fin]);
    let w = rng.vec(fout * fin, -0.3, 0.3);
    let bias = rng.vec(fout, -1.0, 1.0);
    let wt = Tensor::from_slice(g, &w, [fout, fin]).unwrap();
    let bt2 = Tensor::from_slice(g, &bias, [fout]).unwrap();
    let y = linear(g, &xt, &wt, Some(&bt2)).unwrap();
    check(
        "linear",
        &y,
        &reference::linear(&x64, rows, fin, &to_f64(&w), fout, Some(&to_f64(&bias))),
    );
}

#[test]
fn f16_is_refused_where_a_kernel_has_no_variant() {
    assert!(f16_variant(&CROSS_ENTROPY_FWD).is_err(), "the loss runs in f32 only");
    if !has_f16_else_refused(gpu()) {
        // no f16 kernel at all on such an adapter, even where one has a variant
        let Err(err) = variant(gpu(), &ACTIVATION_FWD, DType::F16) else {
            panic!("an f16 kernel without shader-f16 must be refused");
        };
        assert!(err.to_string().contains("shader-f16"), "{err}");
        return;
    }
    let v = variant(gpu(), &ACTIVATION_FWD, DType::F16).unwrap();
    assert_eq!(v.name, "activation_fwd_f16");
    assert!(v.source.starts_with("enable f16;"));
    // asked twice, the same kernel (pipelines are cached by it)
    assert!(std::ptr::eq(v, variant(gpu(), &ACTIVATION_FWD, DType::F16).unwrap()));
    assert!(variant(gpu(), &ACTIVATION_FWD, DType::I32).is_err());
}
