//! Activations, with the spellings exporters use for them: HardSigmoid with PyTorch's
//! constants, Clip to [0, 6] or [0, inf), and the Mul that ends a SiLU, hard-swish or GELU
//! (`patterns`). Softmax and Dropout, the other weightless layers of one tensor, sit here too.

use super::patterns::is_hard_sigmoid_of_hardswish;
use super::{Importer, Val};
use crate::error::Result;
use crate::graph::{Act, ValueId};
use crate::onnx::graph::OnnxNode;

impl Importer<'_> {
    pub(super) fn activation(&mut self, n: &OnnxNode) -> Result<Val> {
        Ok(match n.op_type.as_str() {
            "Relu" => self.act(n, self.tensor(n, 0)?, Act::Relu)?,
            "LeakyRelu" => self.act(n, self.tensor(n, 0)?, Act::LeakyRelu(n.float("alpha", 0.01)))?,
            "Sigmoid" => self.act(n, self.tensor(n, 0)?, Act::Sigmoid)?,
            "HardSwish" => self.act(n, self.tensor(n, 0)?, Act::HardSwish)?,
            "HardSigmoid" if is_hard_sigmoid_of_hardswish(n) => self.act(n, self.tensor(n, 0)?, Act::HardSigmoid)?,
            "HardSigmoid" => {
                return self.fail(
                    n,
                    format!(
                        "alpha {} and beta {}: convoy's hard sigmoid is PyTorch's (1/6, 0.5)",
                        n.float("alpha", 0.2),
                        n.float("beta", 0.5)
                    ),
                )
            }
            "Gelu" => {
                let act = match n.string("approximate", "none").as_str() {
                    "none" => Act::Gelu,
                    "tanh" => Act::GeluTanh,
                    other => return self.fail(n, format!("approximate '{other}'")),
                };
                self.act(n, self.tensor(n, 0)?, act)?
            }
            "Clip" => self.clip(n)?,
            "Erf" => return self.fail(n, "Erf outside GELU's x * 0.5 * (1 + erf(x / sqrt 2))"),
            other => return self.fail(n, format!("convoy cannot run the ONNX op {other}")),
        })
    }

    /// The Mul that ends a fused activation (`find_fused_activations`): the activation of its x.
    pub(super) fn fused(&mut self, index: usize, n: &OnnxNode) -> Result<Val> {
        let (act, x) = self.fused[&index].clone();
        let Some(Val::Tensor(x)) = self.vals.get(&x).cloned() else {
            return self.fail(
                n,
                format!("'{x}', the input of a fused {}, is not a tensor", act.name()),
            );
        };
        self.act(n, x, act)
    }

    /// An activation, named for the activation statistics after its node.
    fn act(&mut self, n: &OnnxNode, x: ValueId, act: Act) -> Result<Val> {
        let name = n.name.replace('/', ".");
        let name = name.trim_matches('.');
        let y = self.net.scope(name, |net| net.activation(x, act))?;
        Ok(Val::Tensor(y))
    }

    fn clip(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let bound = |i: usize, attr: &str| -> Result<Option<f32>> {
            if self.g.opset < 11 {
                return Ok(n.has(attr).then(|| n.float(attr, 0.0)));
            }
            Ok(self.floats_input(n, i)?.and_then(|v| v.first().copied()))
        };
        let (lo, hi) = (bound(1, "min")?, bound(2, "max")?);
        let act = match (lo, hi) {
            (Some(l), Some(h)) if l == 0.0 && h == 6.0 => Act::Relu6,
            (Some(0.0), None) => Act::Relu,
            (Some(l), Some(h)) if l == 0.0 && h == f32::INFINITY => Act::Relu,
            _ => {
                return self.fail(
                    n,
                    format!("clip to [{lo:?}, {hi:?}]: convoy clips to [0, 6] (ReLU6) or [0, inf) (ReLU)"),
                )
            }
        };
        self.act(n, x, act)
    }

    pub(super) fn softmax(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let rank = self.dims(x).len() as i64;
        let default = if self.g.opset >= 13 { -1 } else { 1 };
        let axis = n.int("axis", default);
        if rank != 2 || !(axis == 1 || axis == -1) {
            return self.fail(
                n,
                format!("softmax over axis {axis} of a rank-{rank} tensor (convoy: axis 1 of (N, K))"),
            );
        }
        Ok(Val::Tensor(self.net.graph.softmax(x)?))
    }

    pub(super) fn dropout(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let p = match self.floats_input(n, 1)? {
            Some(v) => v.first().copied().unwrap_or(0.5),
            None => n.float("ratio", 0.5),
        };
        Ok(Val::Tensor(self.net.dropout(x, p)?))
    }
}
