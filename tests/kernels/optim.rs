//! The multi-tensor optimizer update (`kernels::optim::update`) against PyTorch's rules in f64,
//! tensor by tensor: more tensors than one dispatch takes, sizes with and without vec4s, one of
//! several chunks, three parameter groups of their own hyperparameters, two steps; with three
//! tensors a dispatch and with as many as the device binds.

use crate::common::{self, gpu};
use convoy::internals::kernels::optim::{tensors_per_dispatch, update_by, UpdateKind, UpdateTensor, HYPER_STRIDE};
use convoy::{Rng, Tensor};

/// One group's hyperparameters at step `t` (1-based), as `Optimizer::hyper` packs them.
fn hyper(kind: UpdateKind, group: usize, t: i32) -> [f32; HYPER_STRIDE] {
    let g = group as f32;
    let lr = 0.05 + 0.02 * g;
    match kind {
        UpdateKind::Sgd { .. } => [lr, [0.9, 0.0, 0.5][group], 0.01 * g, 0.0, 0.0, 0.0, 1.0, 1.0],
        UpdateKind::AdamW => {
            let (b1, b2) = (0.9 - 0.05 * g, 0.999 - 0.01 * g);
            let bc = |b: f32| (1.0 - (b as f64).powi(t)) as f32;
            [lr, 0.0, 0.1 * g, b1, b2, 1e-8 * (1.0 + g), bc(b1), bc(b2)]
        }
    }
}

/// PyTorch's rule on one element in f64: (param, state) after the step.
fn reference(kind: UpdateKind, h: &[f32; HYPER_STRIDE], g: f64, p: f64, s: &mut [f64]) -> f64 {
    let [lr, momentum, wd, b1, b2, eps, bc1, bc2] = h.map(f64::from);
    match kind {
        UpdateKind::Sgd { nesterov } => {
            let mut d = g + wd * p;
            if momentum != 0.0 {
                s[0] = momentum * s[0] + d;
                d = if nesterov { d + momentum * s[0] } else { s[0] };
            }
            p - lr * d
        }
        UpdateKind::AdamW => {
            s[0] = b1 * s[0] + (1.0 - b1) * g;
            s[1] = b2 * s[1] + (1.0 - b2) * g * g;
            p * (1.0 - lr * wd) - lr * (s[0] / bc1) / ((s[1] / bc2).sqrt() + eps)
        }
    }
}

#[test]
fn multi_tensor_updates_match_pytorch_rules() {
    let g = gpu();
    for kind in [
        UpdateKind::Sgd { nesterov: false },
        UpdateKind::Sgd { nesterov: true },
        UpdateKind::AdamW,
    ] {
        for per in [3.min(tensors_per_dispatch(g, kind)), tensors_per_dispatch(g, kind)] {
            check_updates(kind, per);
        }
    }
}

/// `kind` over two steps of tensors taken `per` a dispatch.
fn check_updates(kind: UpdateKind, per: usize) {
    let g = gpu();
    let mut rng = Rng::new(17 + per as u64);
    // two full dispatches and a partial one of vec4 tensors, and odd sizes of their own
    let mut sizes: Vec<usize> = (0..2 * per + 1).map(|_| 4 * rng.int(1, 700)).collect();
    sizes.extend([1, 3, 4097, 10]);
    sizes[1] = 4 * 2600; // several chunks of one tensor
    let groups: Vec<usize> = (0..sizes.len()).map(|i| i % 3).collect();
    let p0: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n, -1.0, 1.0)).collect();
    let states = kind.states();
    let params: Vec<Tensor> = p0
        .iter()
        .map(|p| Tensor::from_slice(g, p, [p.len()]).unwrap())
        .collect();
    let grads: Vec<Tensor> = sizes.iter().map(|&n| Tensor::zeros(g, [n]).unwrap()).collect();
    let state: Vec<Vec<Tensor>> = sizes
        .iter()
        .map(|&n| (0..states).map(|_| Tensor::zeros(g, [n]).unwrap()).collect())
        .collect();
    let hyper_buf = Tensor::zeros(g, [3 * HYPER_STRIDE]).unwrap();
    let tensors: Vec<UpdateTensor> = (0..sizes.len())
        .map(|i| UpdateTensor {
            numel: sizes[i],
            group: groups[i],
            grad: grads[i].buffer(),
            param: params[i].buffer(),
            state: state[i].iter().map(|t| t.buffer()).collect(),
        })
        .collect();
    let dispatches = update_by(g, kind, hyper_buf.buffer(), None, &tensors, per).unwrap();
    // the vec4 tensors in ceil((2 per + 1) / per) = 3 dispatches, the odd sizes in one
    assert_eq!(
        dispatches.len(),
        3 + 4_usize.div_ceil(per),
        "{kind:?}: {per} tensors a dispatch"
    );
    let mut want: Vec<Vec<f64>> = p0.iter().map(|p| common::to_f64(p)).collect();
    let mut want_state: Vec<Vec<Vec<f64>>> = sizes.iter().map(|&n| vec![vec![0.0; n]; states]).collect();
    for t in 1..=2 {
        let h: Vec<[f32; HYPER_STRIDE]> = (0..3).map(|k| hyper(kind, k, t)).collect();
        g.queue()
            .write_buffer(hyper_buf.buffer(), 0, bytemuck::cast_slice(&h.concat()));
        let gv: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.vec(n, -1.0, 1.0)).collect();
        for (buf, v) in grads.iter().zip(&gv) {
            g.queue().write_buffer(buf.buffer(), 0, bytemuck::cast_slice(v));
        }
        g.run(&dispatches);
        for i in 0..sizes.len() {
            for j in 0..sizes[i] {
                let mut s: Vec<f64> = (0..states).map(|k| want_state[i][k][j]).collect();
                want[i][j] = reference(kind, &h[groups[i]], gv[i][j] as f64, want[i][j], &mut s);
                for k in 0..states {
                    want_state[i][k][j] = s[k];
                }
            }
        }
    }
    for i in 0..sizes.len() {
        let got = params[i].to_vec().unwrap();
        // the update w - w0, tensor by tensor: f32 arithmetic over two steps, ~1e-6 of it
        let du: Vec<f32> = got.iter().zip(&p0[i]).map(|(a, b)| a - b).collect();
        let dw: Vec<f64> = want[i].iter().zip(&p0[i]).map(|(a, &b)| a - b as f64).collect();
        common::assert_close(
            &format!("{kind:?} tensor {i} ({} values) update", sizes[i]),
            &du,
            &dw,
            1e-4,
        );
        for k in 0..states {
            let s = state[i][k].to_vec().unwrap();
            common::assert_close(&format!("{kind:?} tensor {i} state {k}"), &s, &want_state[i][k], 1e-5);
        }
    }
}
