//! Appends the optimizer update of every trainable parameter after the backward graph, with the
//! optimizer state as resident values named as PyTorch names its state
//! (`<param>.momentum_buffer`, `<param>.exp_avg`, `<param>.exp_avg_sq`).

use super::autodiff::Grads;
use crate::error::Result;
use crate::graph::{Graph, Op, ValueId};

/// Which update kernel runs; the hyperparameters themselves are runtime values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateRule {
    Sgd { nesterov: bool },
    AdamW,
}

/// Add one update node per parameter in `grads`. `group_of(name)` gives the parameter group
/// (an index into the hyperparameter buffer), for discriminative learning rates.
/// Suffixes of the optimizer-state values after their parameter's name.
const MOMENTUM: &str = ".momentum_buffer";
const EXP_AVG: &str = ".exp_avg";
const EXP_AVG_SQ: &str = ".exp_avg_sq";

/// Is `name` optimizer state (what a weights-only file leaves out)?
pub fn is_optimizer_state(name: &str) -> bool {
    [MOMENTUM, EXP_AVG, EXP_AVG_SQ].iter().any(|s| name.ends_with(s))
}

pub fn append_updates(g: &mut Graph, grads: &Grads, rule: UpdateRule, group_of: &dyn Fn(&str) -> usize) -> Result<()> {
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
        g.add_node(op, [vec![param, grad], state].concat(), vec![]);
    }
    g.verify()
}
