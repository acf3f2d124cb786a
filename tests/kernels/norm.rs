//! batch_norm training (batch statistics, running-statistics update) and eval, against f64.

use crate::common::{assert_close, gpu, reference, to_f64, RTOL};
use convoy::ops::{batch_norm, BatchNormArgs, BatchNormState};
use convoy::rng::Rng;
use convoy::Tensor;

#[test]
fn batch_norm_training_and_eval_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(7);
    for (n, c, h, w) in [(2, 3, 5, 5), (1, 7, 3, 4), (4, 16, 9, 7), (8, 5, 1, 1), (3, 2, 31, 29)] {
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
