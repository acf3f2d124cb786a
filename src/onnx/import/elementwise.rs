//! Add, Sub, Mul and Div: folded on the host when both operands are constants (shape
//! arithmetic), else the tensor ops convoy has (a sum of one shape, squeeze-excite's scale).

use super::host::fold_arithmetic;
use super::{Importer, Val};
use crate::error::Result;
use crate::onnx::graph::OnnxNode;
use std::sync::Arc;

impl Importer<'_> {
    pub(super) fn arithmetic(&mut self, n: &OnnxNode) -> Result<Val> {
        if let (Some(a), Some(b)) = (self.constant(n, 0), self.constant(n, 1)) {
            return match fold_arithmetic(&n.op_type, a, b) {
                Some(t) => Ok(Val::Const(Arc::new(t))),
                None => self.fail(
                    n,
                    format!("constant operands of shapes {:?} and {:?}", a.shape, b.shape),
                ),
            };
        }
        let (a, b) = (self.tensor(n, 0)?, self.tensor(n, 1)?);
        let (da, db) = (self.dims(a), self.dims(b));
        match n.op_type.as_str() {
            "Add" if da == db => Ok(Val::Tensor(self.net.graph.add(a, b)?)),
            "Mul" => {
                // squeeze-excite: (N, C, H, W) * (N, C, 1, 1), either way round
                let scale_of =
                    |x: &[usize], s: &[usize]| x.len() == 4 && s.len() == 4 && s[..2] == x[..2] && s[2..] == [1, 1];
                if scale_of(&da, &db) {
                    Ok(Val::Tensor(self.net.graph.mul_channels(a, b)?))
                } else if scale_of(&db, &da) {
                    Ok(Val::Tensor(self.net.graph.mul_channels(b, a)?))
                } else {
                    self.fail(n, format!("multiplying {da:?} by {db:?}: convoy multiplies (N, C, H, W) by (N, C, 1, 1), or x by sigmoid(x)"))
                }
            }
            op => self.fail(
                n,
                format!("{op} of tensors {da:?} and {db:?}: convoy adds tensors of one shape"),
            ),
        }
    }
}
