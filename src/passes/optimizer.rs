//! The optimizer: its description (`Optimizer`, the hyperparameters packed for the GPU update
//! kernels each step) and the pass that appends the update of every trainable parameter after
//! the backward graph, with the optimizer state as resident values named as PyTorch names its
//! state (`<param>.momentum_buffer`, `<param>.exp_avg`, `<param>.exp_avg_sq`). The description
//! lives here, beside the rule it picks, so the executor compiles a training step without
//! importing train (which re-exports it as `train::Optimizer`).

use super::autodiff::Grads;
use crate::error::Result;
use crate::graph::{Graph, Op, ValueId};
use crate::kernels::optim::HYPER_STRIDE;

/// Which update kernel runs; the hyperparameters themselves are runtime values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateRule {
    Sgd { nesterov: bool },
    AdamW,
}

/// Suffixes of the optimizer-state values after their parameter's name.
const MOMENTUM: &str = ".momentum_buffer";
const EXP_AVG: &str = ".exp_avg";
const EXP_AVG_SQ: &str = ".exp_avg_sq";

/// Is `name` optimizer state (what a weights-only file leaves out)? The loss scaler of
/// mixed-precision training counts as such.
pub fn is_optimizer_state(name: &str) -> bool {
    [MOMENTUM, EXP_AVG, EXP_AVG_SQ].iter().any(|s| name.ends_with(s)) || name == super::precision::LOSS_SCALER
}

/// Add one update node per parameter in `grads`. `group_of(name)` gives the parameter group
/// (an index into the hyperparameter buffer), for discriminative learning rates. `scaler`, the
/// loss scaler of a mixed-precision step, is every update's last input: the gradients arrive
/// scaled (`kernels::loss_scale`).
pub fn append_updates(
    g: &mut Graph,
    grads: &Grads,
    rule: UpdateRule,
    group_of: &dyn Fn(&str) -> usize,
    scaler: Option<ValueId>,
) -> Result<()> {
    for (&param, &grad) in grads {
        let name = g.value(param).name.clone();
        let shape = g.shape(param).clone();
        let group = group_of(&name);
        let (op, state): (Op, Vec<ValueId>) = match rule {
            UpdateRule::Sgd { nesterov } => (
                Op::SgdStep { group, nesterov },
                vec![g.state(&format!("{name}{MOMENTUM}"), shape)],
            ),
            UpdateRule::AdamW => (
                Op::AdamWStep { group },
                vec![
                    g.state(&format!("{name}{EXP_AVG}"), shape.clone()),
                    g.state(&format!("{name}{EXP_AVG_SQ}"), shape),
                ],
            ),
        };
        let mut inputs = [vec![param, grad], state].concat();
        inputs.extend(scaler);
        g.add_node(op, inputs, vec![]);
    }
    g.verify()
}

/// An optimizer with PyTorch's semantics (`torch.optim.SGD` with dampening 0, `torch.optim.AdamW`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd {
        lr: f32,
        momentum: f32,
        weight_decay: f32,
        nesterov: bool,
    },
    AdamW {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl Optimizer {
    /// SGD with the given learning rate, no momentum, no weight decay.
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::Sgd {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// AdamW with PyTorch's defaults (betas 0.9, 0.999; eps 1e-8; weight decay 0.01).
    pub fn adamw(lr: f32) -> Optimizer {
        Optimizer::AdamW {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    pub fn rule(&self) -> UpdateRule {
        match self {
            Optimizer::Sgd { nesterov, .. } => UpdateRule::Sgd { nesterov: *nesterov },
            Optimizer::AdamW { .. } => UpdateRule::AdamW,
        }
    }

    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd { lr, .. } | Optimizer::AdamW { lr, .. } => *lr,
        }
    }

    pub fn set_lr(&mut self, v: f32) {
        match self {
            Optimizer::Sgd { lr, .. } | Optimizer::AdamW { lr, .. } => *lr = v,
        }
    }

    /// SGD's momentum or AdamW's beta1: the value a 1cycle schedule cycles.
    pub fn momentum(&self) -> f32 {
        match self {
            Optimizer::Sgd { momentum, .. } => *momentum,
            Optimizer::AdamW { beta1, .. } => *beta1,
        }
    }

    pub fn set_momentum(&mut self, v: f32) {
        match self {
            Optimizer::Sgd { momentum, .. } => *momentum = v,
            Optimizer::AdamW { beta1, .. } => *beta1 = v,
        }
    }

    /// The packed hyperparameters of one group for update number `step` (1-based), with the
    /// group's learning-rate multiplier: lr, momentum, wd, beta1, beta2, eps, bc1, bc2.
    pub fn hyper(&self, step: u64, lr_mult: f32) -> [f32; HYPER_STRIDE] {
        match *self {
            Optimizer::Sgd {
                lr,
                momentum,
                weight_decay,
                ..
            } => [lr * lr_mult, momentum, weight_decay, 0., 0., 0., 1., 1.],
            Optimizer::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let t = step.max(1) as i32;
                let bc1 = 1.0 - (beta1 as f64).powi(t);
                let bc2 = 1.0 - (beta2 as f64).powi(t);
                [
                    lr * lr_mult,
                    0.,
                    weight_decay,
                    beta1,
                    beta2,
                    eps,
                    bc1 as f32,
                    bc2 as f32,
                ]
            }
        }
    }
}
