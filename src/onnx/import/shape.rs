//! Flatten, Reshape and Transpose: views of a tensor's data, including ShuffleNet's channel
//! shuffle (reshape to 5-D, transpose the groups, reshape back), kept as `Val::Grouped`.

use super::host::transpose;
use super::{Importer, Val};
use crate::error::Result;
use crate::io::safetensors::{HostData, HostTensor};
use crate::onnx::graph::OnnxNode;
use crate::shape::Shape;
use std::sync::Arc;

impl Importer<'_> {
    pub(super) fn flatten(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        let axis = n.int("axis", 1);
        let r = d.len() as i64;
        if axis < -r || axis > r {
            return self.fail(n, format!("axis {axis} of a rank-{r} tensor"));
        }
        let axis = if axis < 0 { axis + r } else { axis } as usize;
        let shape = Shape::new(&[d[..axis].iter().product(), d[axis..].iter().product()]);
        Ok(Val::Tensor(self.net.graph.reshape(x, shape)))
    }

    pub(super) fn reshape(&mut self, n: &OnnxNode) -> Result<Val> {
        let Some(target) = self.ints_input(n, 1)? else {
            return self.fail(n, "a reshape without a shape");
        };
        let (input_dims, grouped) = match self.val(n, 0)? {
            Val::Tensor(v) => (self.dims(*v), None),
            Val::Grouped { base, dims } => (dims.to_vec(), Some(*base)),
            Val::Padded { .. } => return self.fail(n, "reshaping a padded tensor"),
            Val::Const(t) => {
                let mut t = HostTensor::clone(t);
                t.shape = self.resolve_shape(n, &t.shape, &target)?;
                return Ok(Val::Const(Arc::new(t)));
            }
        };
        let shape = self.resolve_shape(n, &input_dims, &target)?;
        let x = match grouped {
            Some(base) => {
                // back to 4-D after a channel shuffle's transpose
                if shape.len() != 4 {
                    return self.fail(n, format!("reshaping a 5-D view to {shape:?}"));
                }
                base
            }
            None => self.tensor(n, 0)?,
        };
        if shape.len() == 5 && input_dims.len() == 4 {
            let (d, s) = (&input_dims, &shape);
            if s[0] == d[0] && s[1] * s[2] == d[1] && s[3..] == d[2..] {
                return Ok(Val::Grouped {
                    base: x,
                    dims: [s[0], s[1], s[2], s[3], s[4]],
                });
            }
        }
        if shape.len() > 4 {
            return self.fail(
                n,
                format!("reshaping {input_dims:?} to {shape:?}: convoy's tensors have at most 4 dimensions"),
            );
        }
        if shape == self.dims(x) {
            return Ok(Val::Tensor(x));
        }
        Ok(Val::Tensor(self.net.graph.reshape(x, Shape::new(&shape))))
    }

    /// ONNX's reshape target: 0 copies the input's dimension (unless allowzero), -1 is inferred.
    fn resolve_shape(&self, n: &OnnxNode, input: &[usize], target: &[i64]) -> Result<Vec<usize>> {
        let numel: usize = input.iter().product();
        let allow_zero = n.int("allowzero", 0) != 0;
        let mut out = Vec::with_capacity(target.len());
        let mut infer = None;
        for (i, &t) in target.iter().enumerate() {
            match t {
                -1 if infer.is_none() => {
                    infer = Some(i);
                    out.push(1);
                }
                0 if !allow_zero => match input.get(i) {
                    Some(&d) => out.push(d),
                    None => return self.fail(n, format!("target {target:?} copies dimension {i} of {input:?}")),
                },
                t if t >= 0 => out.push(t as usize),
                _ => return self.fail(n, format!("target shape {target:?}")),
            }
        }
        let known: usize = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(0);
        if let Some(i) = infer {
            if known == 0 || !numel.is_multiple_of(known) {
                return self.fail(n, format!("cannot reshape {input:?} to {target:?}"));
            }
            out[i] = numel / known;
        } else if known != numel {
            return self.fail(n, format!("cannot reshape {input:?} ({numel} values) to {target:?}"));
        }
        Ok(out)
    }

    pub(super) fn transpose(&mut self, n: &OnnxNode) -> Result<Val> {
        if let Some(t) = self.constant(n, 0) {
            let rank = t.shape.len();
            let perm: Vec<usize> = match n.ints("perm") {
                Some(p) => p.iter().map(|&a| a.max(0) as usize).collect(),
                None => (0..rank).rev().collect(),
            };
            if rank != 2 || perm != [1, 0] {
                return self.fail(
                    n,
                    format!("transposing a rank-{rank} constant by {perm:?} (convoy: 2-D)"),
                );
            }
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let out = HostTensor {
                shape: vec![cols, rows],
                data: match &t.data {
                    HostData::F32(v) => HostData::F32(transpose(v, rows, cols)),
                    HostData::I64(v) => HostData::I64((0..v.len()).map(|i| v[(i % rows) * cols + i / rows]).collect()),
                },
            };
            if let (Some(out), true) = (n.outputs.first(), self.g.initializers.contains_key(&n.inputs[0])) {
                self.transposes.insert(out.clone(), n.inputs[0].clone());
            }
            return Ok(Val::Const(Arc::new(out)));
        }
        match (self.val(n, 0)?.clone(), n.ints("perm")) {
            (Val::Grouped { base, dims }, Some(&[0, 2, 1, 3, 4])) => {
                let y = self.net.graph.channel_shuffle(base, dims[1])?;
                Ok(Val::Grouped {
                    base: y,
                    dims: [dims[0], dims[2], dims[1], dims[3], dims[4]],
                })
            }
            (_, perm) => self.fail(
                n,
                format!("transpose {perm:?}: convoy transposes only the channel groups of a channel shuffle"),
            ),
        }
    }
}
