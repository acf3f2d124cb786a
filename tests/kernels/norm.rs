//! batch_norm training (batch statistics, running-statistics update) and eval, against f64.

use crate::common::{assert_close, gpu, open_gpu, reduction_gpus, reference, subgroups_else_refused, to_f64, RTOL};
use crate::sweep::Sweep;
use convoy::ops::{batch_norm, BatchNormArgs, BatchNormState};
use convoy::DType;
use convoy::Rng;
use convoy::Tensor;

#[test]
fn batch_norm_training_and_eval_match_reference() {
    for g in reduction_gpus() {
        let mut rng = Rng::new(7);
        for (n, c, h, w) in [
            (2, 3, 5, 5),
            (1, 7, 3, 4),
            (4, 16, 9, 7),
            (8, 5, 1, 1),
            (3, 2, 31, 29),
            (3, 12, 6, 6),
            (4, 3, 5, 1),
        ] {
            let shape = [n, c, h, w];
            // an offset per tensor: the two-pass variance must not lose it to cancellation
            let x = rng.vec(n * c * h * w, 2.0, 4.0);
            let gamma = rng.vec(c, 0.5, 1.5);
            let beta = rng.vec(c, -1.0, 1.0);
            let rm = rng.vec(c, -0.5, 0.5);
            let rv = rng.vec(c, 0.5, 2.0);
            let xt = Tensor::from_slice(g, &x, shape).unwrap();
            let (gt, bt) = (
                Tensor::from_slice(g, &gamma, [c]).unwrap(),
                Tensor::from_slice(g, &beta, [c]).unwrap(),
            );
            let (rmt, rvt) = (
                Tensor::from_slice(g, &rm, [c]).unwrap(),
                Tensor::from_slice(g, &rv, [c]).unwrap(),
            );
            let state = BatchNormState {
                weight: &gt,
                bias: &bt,
                running_mean: &rmt,
                running_var: &rvt,
            };
            let x64 = to_f64(&x);
            let (g64, b64) = (to_f64(&gamma), to_f64(&beta));

            // eval first: uses the running statistics as given
            let eval = BatchNormArgs {
                training: false,
                ..Default::default()
            };
            let (y, _, _) = batch_norm(g, &xt, &state, eval).unwrap();
            let want = reference::batch_norm_apply(&x64, shape, &to_f64(&rm), &to_f64(&rv), &g64, &b64, 1e-5);
            assert_close(&format!("batch_norm eval {shape:?}"), &y.to_vec().unwrap(), &want, RTOL);

            let args = BatchNormArgs {
                training: true,
                momentum: 0.3,
                eps: 1e-3,
            };
            let (y, mean, var) = batch_norm(g, &xt, &state, args).unwrap();
            let (m64, v64) = reference::channel_stats(&x64, shape);
            let want = reference::batch_norm_apply(&x64, shape, &m64, &v64, &g64, &b64, 1e-3);
            assert_close(
                &format!("batch_norm train {shape:?}"),
                &y.to_vec().unwrap(),
                &want,
                RTOL,
            );
            assert_close("batch mean", &mean.to_vec().unwrap(), &m64, RTOL);
            assert_close("batch var", &var.to_vec().unwrap(), &v64, RTOL);
            // PyTorch: running = 0.7 * running + 0.3 * batch, with the unbiased variance
            let cnt = (n * h * w) as f64;
            let want_rm: Vec<f64> = rm.iter().zip(&m64).map(|(&r, m)| 0.7 * r as f64 + 0.3 * m).collect();
            let want_rv: Vec<f64> = rv
                .iter()
                .zip(&v64)
                .map(|(&r, v)| 0.7 * r as f64 + 0.3 * v * cnt / (cnt - 1.0))
                .collect();
            assert_close("running_mean", &rmt.to_vec().unwrap(), &want_rm, RTOL);
            assert_close("running_var", &rvt.to_vec().unwrap(), &want_rv, RTOL);
        }
    }
}

#[test]
fn batch_norm_rejects_bad_inputs() {
    let g = gpu();
    let c3 = Tensor::zeros(g, [3]).unwrap();
    let c4 = Tensor::zeros(g, [4]).unwrap();
    let state = BatchNormState {
        weight: &c3,
        bias: &c3,
        running_mean: &c3,
        running_var: &c4,
    };
    let x = Tensor::zeros(g, [2, 3, 4, 4]).unwrap();
    let err = batch_norm(g, &x, &state, BatchNormArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("running_var") && err.contains("[4]"), "{err}");
    let ok = BatchNormState {
        weight: &c3,
        bias: &c3,
        running_mean: &c3,
        running_var: &c3,
    };
    let single = Tensor::zeros(g, [1, 3, 1, 1]).unwrap();
    let err = batch_norm(g, &single, &ok, BatchNormArgs::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 1 value"), "{err}");
}

/// Training fusion: a conv writes block statistics of its output and `merge_stats` combines
/// them into the batch mean and variance and the running update, for every tile the tuner may
/// pick for it; against the f64 statistics of the f64 conv. The outputs have an offset (bias 3)
/// so that a sum-of-squares formula would lose digits; blocks run partial, grouped and many.
#[test]
fn conv_block_statistics_merge_to_batch_statistics() {
    block_statistics_merge(Sweep::Sample);
}

#[test]
#[ignore = "extended: every tile on every shape (cargo test --release -- --include-ignored)"]
fn conv_block_statistics_merge_to_batch_statistics_every_tile() {
    block_statistics_merge(Sweep::Every);
}

fn block_statistics_merge(sweep: Sweep) {
    use convoy::internals::kernels::{conv, norm};
    use convoy::ops::Conv2dArgs;
    use convoy::ops::Conv2dGeom;
    // the cpu family merges a channel's blocks in one invocation, the gpu family in a workgroup
    // (each lane every 64th block, then a tree): 72 blocks give some lanes two
    let gpu_family = open_gpu(convoy::Gpu::builder().kernels(convoy::KernelFamily::Gpu));
    for (family, g) in [gpu(), &gpu_family].into_iter().enumerate() {
        let mut rng = Rng::new(11);
        // (n, cin, hw, cout, k, stride, pad, groups): 1 block, a partial last block, 33 blocks,
        // grouped, a 1x1 (forced through the implicit GEMM), a 1x1 map whose 8 taps read padding
        for (case, (n, cin, (h, w), cout, k, stride, pad, groups)) in [
            (1, 3, (9, 9), 5, 3, 1, 1, 1),
            (3, 4, (10, 10), 9, 3, 1, 1, 1),
            (4, 6, (46, 46), 7, 3, 1, 1, 1),
            (2, 8, (13, 13), 12, 3, 2, 1, 4),
            (5, 16, (8, 8), 10, 1, 1, 0, 1),
            (16, 12, (1, 1), 11, 3, 1, 1, 1),
            (2, 3, (41, 41), 16, 7, 2, 3, 1),
            (2, 16, (21, 21), 16, 3, 1, 1, 16),
            // rows that hold whole invocations (the forward's row segments): depthwise over 7 blocks
            // (the last partial), a 7x7 stride-2 stem
            (3, 8, (24, 24), 8, 3, 1, 1, 8),
            (2, 3, (40, 40), 16, 7, 2, 3, 1),
            // the block tile: two channel blocks, 17 of its 64-pixel blocks into 5 (the last partial)
            (2, 9, (23, 23), 70, 3, 1, 1, 1),
            // 72 blocks
            (8, 3, (48, 48), 8, 3, 1, 1, 1),
            // DenseNet's last block at 64x56: 1x1 convs on 2x1 maps, 4 values per channel
            (2, 928, (2, 1), 128, 1, 1, 0, 1),
            (2, 128, (2, 1), 32, 3, 1, 1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let xs = [n, cin, h, w];
            let ws = [cout, cin / groups, k, k];
            let args = Conv2dArgs::new(stride, pad, 1, groups);
            let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
            let ys = geom.out_shape();
            let yd = ys.dims().to_vec();
            let x = rng.vec(xs.iter().product(), -1.0, 1.0);
            let w = rng.vec(ws.iter().product(), -0.5, 0.5);
            let b = rng.vec(cout, 2.5, 3.5);
            let (y64, _) = reference::conv2d(
                &to_f64(&x),
                xs,
                &to_f64(&w),
                ws,
                Some(&to_f64(&b)),
                stride,
                pad,
                1,
                groups,
            );
            let (m64, v64) = reference::channel_stats(&y64, [yd[0], yd[1], yd[2], yd[3]]);
            let cnt = (yd[0] * yd[2] * yd[3]) as f64;
            let rm = rng.vec(cout, -0.5, 0.5);
            let rv = rng.vec(cout, 0.5, 2.0);
            let want_rm: Vec<f64> = rm.iter().zip(&m64).map(|(&r, m)| 0.9 * r as f64 + 0.1 * m).collect();
            let want_rv: Vec<f64> = rv
                .iter()
                .zip(&v64)
                .map(|(&r, v)| 0.9 * r as f64 + 0.1 * v * cnt / (cnt - 1.0))
                .collect();
            let xt = Tensor::from_slice(g, &x, xs).unwrap();
            let wt = Tensor::from_slice(g, &w, ws).unwrap();
            let bt = Tensor::from_slice(g, &b, [cout]).unwrap();
            let blocks = (yd[0] * yd[2] * yd[3]).div_ceil(conv::STATS_BLOCK);
            let what = format!(
                "{:?} family: x{xs:?} w{ws:?} s{stride} p{pad} g{groups}, {blocks} blocks",
                g.policy().family
            );
            let pixels = yd[0] * yd[2] * yd[3];
            // register tiles, the gpu family's block tile and the CPU family's texture tiles
            let tiles: Vec<_> = conv::ConvTile::candidates(g, cout / groups, pixels)
                .into_iter()
                .chain([conv::ConvTile::BLOCK])
                .chain(conv::ConvTile::texture_candidates(g, cout / groups, pixels))
                .filter(|t| t.writes_stats_blocks(pixels))
                .collect();
            assert!(!tiles.is_empty(), "{what}: no statistics tile");
            // a rotating sample by default (tests/kernels/sweep.rs)
            for tile in sweep.pick(tiles, case * 2 + family) {
                let y = Tensor::empty(g, ys.clone()).unwrap();
                let partials = Tensor::empty(g, [blocks, cout, 2]).unwrap();
                let (mean, var) = (Tensor::empty(g, [cout]).unwrap(), Tensor::empty(g, [cout]).unwrap());
                let (rmt, rvt) = (
                    Tensor::from_slice(g, &rm, [cout]).unwrap(),
                    Tensor::from_slice(g, &rv, [cout]).unwrap(),
                );
                let mut ds = conv::forward_tiled(
                    g,
                    &geom,
                    tile,
                    Default::default(),
                    convoy::DType::F32,
                    &conv::ForwardBuffers {
                        x: xt.buffer(),
                        w: wt.buffer(),
                        bias: Some(bt.buffer()),
                        residual: None,
                        y: y.buffer(),
                        stats: Some(partials.buffer()),
                        kept: None,
                        placement: None,
                        x_packed: None,
                        w_transposed: None,
                    },
                )
                .unwrap();
                let bufs = norm::StatsBuffers {
                    input: partials.buffer(),
                    mean: mean.buffer(),
                    var: var.buffer(),
                    running_mean: rmt.buffer(),
                    running_var: rvt.buffer(),
                };
                let merge = norm::merge_stats(g, [yd[0], cout, yd[2] * yd[3]], 0.1, true, &bufs).unwrap();
                ds.push(merge);
                g.run(&ds);
                let what = format!("{what} {tile:?}");
                assert_close(&format!("conv with stats {what}"), &y.to_vec().unwrap(), &y64, RTOL);
                assert_close(&format!("batch mean {what}"), &mean.to_vec().unwrap(), &m64, RTOL);
                assert_close(&format!("batch var {what}"), &var.to_vec().unwrap(), &v64, RTOL);
                assert_close(&format!("running_mean {what}"), &rmt.to_vec().unwrap(), &want_rm, RTOL);
                assert_close(&format!("running_var {what}"), &rvt.to_vec().unwrap(), &want_rv, RTOL);
            }
            // the launcher picks a statistics tile itself, also for a 1x1 gemm_rows would take
            let y = Tensor::empty(g, ys.clone()).unwrap();
            let partials = Tensor::empty(g, [blocks, cout, 2]).unwrap();
            let d = conv::forward(
                g,
                &geom,
                Default::default(),
                convoy::DType::F32,
                &conv::ForwardBuffers {
                    x: xt.buffer(),
                    w: wt.buffer(),
                    bias: Some(bt.buffer()),
                    residual: None,
                    y: y.buffer(),
                    stats: Some(partials.buffer()),
                    kept: None,
                    placement: None,
                    x_packed: None,
                    w_transposed: None,
                },
            )
            .unwrap();
            g.run(&d);
            let p = partials.to_vec().unwrap();
            assert!(p.iter().all(|v| v.is_finite()), "{what}: every block written");
        }
    }
}

/// The batch-norm backward reduction against f64, under both kernel families: on the gpu family
/// a channel of thousands of values is split over several workgroups (chunks that are not
/// multiples of the 256-lane workgroup) and finished by a second kernel; the cpu family reduces
/// each channel in one workgroup. dgamma, dbeta and dx, without and with fused activations
/// (whose derivative the kernels take from the output).
#[test]
fn batch_norm_backward_split_reduction_matches_reference() {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::norm::{backward, backward_splits, BnBackward};
    use convoy::{Gpu, KernelFamily};
    let mut rng = Rng::new(41);
    // each family with its reductions through subgroups (where the adapter has them) and trees
    let families = [
        (KernelFamily::Cpu, true),
        (KernelFamily::Cpu, false),
        (KernelFamily::Gpu, true),
        (KernelFamily::Gpu, false),
    ]
    .map(|(f, sg)| {
        open_gpu(
            Gpu::builder()
                .kernels(f)
                .subgroup_reductions(sg && subgroups_else_refused()),
        )
    });
    let eps = 1e-5;
    for (n, c, h, w) in [
        (3, 5, 4, 4),
        (2, 3, 64, 70),
        (5, 2, 41, 43),
        (1, 4, 129, 130),
        (4, 6, 7, 7),
    ] {
        let (count, total) = (n * h * w, n * c * h * w);
        let x = rng.vec(total, -1.0, 3.0);
        let dy = rng.vec(total, -1.0, 1.0);
        let gamma = rng.vec(c, 0.5, 1.5);
        let beta = rng.vec(c, -0.5, 0.5);
        let (x64, dy64) = (to_f64(&x), to_f64(&dy));
        let (mean, var) = reference::channel_stats(&x64, [n, c, h, w]);
        let at = |i: usize, ch: usize, p: usize| (i * c + ch) * h * w + p;
        for act in [
            Act::None,
            Act::Relu,
            Act::Sigmoid,
            Act::LeakyRelu(0.1),
            Act::Silu,
            Act::GeluTanh,
        ] {
            // what the fused backward takes the derivative from: the forward's output, or the
            // value before an activation whose gradient needs it; then the reference gradients
            let mut y = vec![0f32; total];
            let mut want_dx = vec![0f64; total];
            let (mut want_dg, mut want_db) = (vec![0f64; c], vec![0f64; c]);
            for ch in 0..c {
                let inv = 1.0 / (var[ch] + eps as f64).sqrt();
                let xhat = |i, p| (x64[at(i, ch, p)] - mean[ch]) * inv;
                let mut g = vec![0f64; count];
                for i in 0..n {
                    for p in 0..h * w {
                        let v = xhat(i, p) * gamma[ch] as f64 + beta[ch] as f64;
                        y[at(i, ch, p)] = if act.grad_from_output() {
                            reference::activation(act, v) as f32
                        } else {
                            v as f32
                        };
                        g[i * h * w + p] = dy64[at(i, ch, p)] * reference::activation_grad(act, v);
                        want_db[ch] += g[i * h * w + p];
                        want_dg[ch] += g[i * h * w + p] * xhat(i, p);
                    }
                }
                for i in 0..n {
                    for p in 0..h * w {
                        let k = count as f64;
                        want_dx[at(i, ch, p)] = gamma[ch] as f64 * inv / k
                            * (k * g[i * h * w + p] - want_db[ch] - xhat(i, p) * want_dg[ch]);
                    }
                }
            }
            for gpu in &families {
                let family = gpu.policy().family;
                let t = |v: &[f32], shape: Vec<usize>| Tensor::from_slice(gpu, v, shape).unwrap();
                let to32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
                let (xt, dyt, yt) = (
                    t(&x, vec![n, c, h, w]),
                    t(&dy, vec![n, c, h, w]),
                    t(&y, vec![n, c, h, w]),
                );
                let (mt, vt, gt) = (t(&to32(&mean), vec![c]), t(&to32(&var), vec![c]), t(&gamma, vec![c]));
                let dx = Tensor::empty(gpu, [n, c, h, w]).unwrap();
                let (dg, db) = (Tensor::empty(gpu, [c]).unwrap(), Tensor::empty(gpu, [c]).unwrap());
                let epi = Epilogue { residual: false, act };
                let bufs = BnBackward {
                    dy: dyt.buffer(),
                    x: xt.buffer(),
                    mean: mt.buffer(),
                    var: vt.buffer(),
                    gamma: gt.buffer(),
                    y: (act != Act::None).then(|| yt.buffer()),
                    dx: dx.buffer(),
                    dgamma: dg.buffer(),
                    dbeta: db.buffer(),
                    dr: None,
                    saved: DType::F32,
                };
                let d = backward(gpu, [n, c, h * w], eps, epi, &bufs).unwrap();
                let splits = backward_splits(gpu, count);
                assert_eq!(d.reduce.len(), if splits > 1 { 2 } else { 1 });
                if family == KernelFamily::Gpu && count > 8192 {
                    assert!(splits > 2, "{count} values per channel split {splits} ways");
                }
                gpu.run(&d.reduce);
                gpu.run(&[d.data]);
                let sg = gpu.policy().subgroup_reductions;
                let what = format!(
                    "{family:?} {act:?} x[{n}, {c}, {h}, {w}], {splits} workgroup(s) per channel, subgroups {sg}"
                );
                assert_close(&format!("dbeta {what}"), &db.to_vec().unwrap(), &want_db, RTOL);
                assert_close(&format!("dgamma {what}"), &dg.to_vec().unwrap(), &want_dg, RTOL);
                assert_close(&format!("dx {what}"), &dx.to_vec().unwrap(), &want_dx, RTOL);

                // mixed precision: x and y read from f16 give what the f32 kernel gives on the
                // same (rounded) values
                if !gpu.info().has_f16() {
                    continue;
                }
                let round = |v: &[f32]| v.iter().map(|&a| half::f16::from_f32(a).to_f32()).collect::<Vec<_>>();
                let (xr, yr) = (round(&x), round(&y));
                let half = |v: &[f32]| Tensor::from_slice_f16(gpu, v, vec![n, c, h, w]).unwrap();
                let mut outs = Vec::new();
                for (xb, yb, saved) in [
                    (t(&xr, vec![n, c, h, w]), t(&yr, vec![n, c, h, w]), DType::F32),
                    (half(&xr), half(&yr), DType::F16),
                ] {
                    let (dx, dg, db) = (
                        Tensor::empty(gpu, [n, c, h, w]).unwrap(),
                        Tensor::empty(gpu, [c]).unwrap(),
                        Tensor::empty(gpu, [c]).unwrap(),
                    );
                    let bufs = BnBackward {
                        x: xb.buffer(),
                        y: (act != Act::None).then(|| yb.buffer()),
                        dx: dx.buffer(),
                        dgamma: dg.buffer(),
                        dbeta: db.buffer(),
                        saved,
                        ..bufs
                    };
                    let d = backward(gpu, [n, c, h * w], eps, epi, &bufs).unwrap();
                    gpu.run(&d.reduce);
                    gpu.run(&[d.data]);
                    outs.push([dx.to_vec().unwrap(), dg.to_vec().unwrap(), db.to_vec().unwrap()]);
                }
                for (k, name) in ["dx", "dgamma", "dbeta"].iter().enumerate() {
                    let want: Vec<f64> = outs[0][k].iter().map(|&v| f64::from(v)).collect();
                    assert_close(&format!("{name} from f16 {what}"), &outs[1][k], &want, RTOL);
                }
            }
        }
    }
}
