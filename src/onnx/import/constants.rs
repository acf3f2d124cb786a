//! The integer shape arithmetic exporters emit around a reshape (Shape, Gather, Unsqueeze,
//! Cast, Constant, ConstantOfShape, ...), evaluated on the host at import: convoy's graph
//! never sees it.

use super::host::{as_f32, as_i64, floats, ints};
use super::{Importer, Val};
use crate::error::Result;
use crate::io::safetensors::{HostData, HostTensor};
use crate::onnx::graph::OnnxNode;
use crate::onnx::tensor::{to_host, NoExternalData};
use std::sync::Arc;

impl Importer<'_> {
    pub(super) fn constant_node(&self, n: &OnnxNode) -> Result<HostTensor> {
        if let Some(t) = n.tensor("value") {
            return to_host(t, &format!("{}: node '{}'", self.source, n.name), &NoExternalData);
        }
        if n.has("value_float") {
            return Ok(floats(vec![], vec![n.float("value_float", 0.0)]));
        }
        if n.has("value_int") {
            return Ok(ints(vec![], vec![n.int("value_int", 0)]));
        }
        if let Some(v) = n.ints("value_ints") {
            return Ok(ints(vec![v.len()], v.to_vec()));
        }
        match n.attributes.iter().find(|a| a.name == "value_floats") {
            Some(a) => Ok(floats(vec![a.floats.len()], a.floats.clone())),
            None => self.fail(n, "a Constant without a tensor, float or int value"),
        }
    }

    /// ONNX's Shape (with start and end): the dims of a tensor, a padded tensor or a constant.
    pub(super) fn shape_of(&self, n: &OnnxNode) -> Result<Val> {
        let dims: Vec<i64> = match self.val(n, 0)? {
            Val::Tensor(v) => self.dims(*v).iter().map(|&d| d as i64).collect(),
            Val::Grouped { dims, .. } => dims.iter().map(|&d| d as i64).collect(),
            Val::Const(t) => t.shape.iter().map(|&d| d as i64).collect(),
            Val::Padded { x, pads } => {
                let (d, [h, w]) = (self.dims(*x), self.padded_hw(*x, *pads));
                [d[0], d[1], h, w].iter().map(|&v| v as i64).collect()
            }
        };
        let r = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(n.int("start", 0)), clamp(n.int("end", r)));
        let d = dims[s..e.max(s)].to_vec();
        Ok(Val::Const(Arc::new(ints(vec![d.len()], d))))
    }

    pub(super) fn constant_of_shape(&self, n: &OnnxNode) -> Result<Val> {
        let Some(dims) = self.ints_input(n, 0)? else {
            return self.fail(n, "no shape");
        };
        let shape: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        // a constant of the file's own making: no bigger than a shape exporters write
        let Some(numel) = numel.filter(|&k| k <= 1 << 16) else {
            return self.fail(n, format!("a constant of shape {shape:?}"));
        };
        let value = match n.tensor("value") {
            Some(t) => to_host(t, &format!("{}: node '{}'", self.source, n.name), &NoExternalData)?,
            None => floats(vec![1], vec![0.0]),
        };
        Ok(Val::Const(Arc::new(match value.data {
            HostData::I64(v) => ints(shape, vec![v.first().copied().unwrap_or(0); numel]),
            HostData::F32(v) => floats(shape, vec![v.first().copied().unwrap_or(0.0); numel]),
        })))
    }

    pub(super) fn gather(&mut self, n: &OnnxNode) -> Result<Val> {
        let (Some(data), Some(idx)) = (self.constant(n, 0), self.constant(n, 1)) else {
            return self.fail(n, "convoy gathers only from constants (shape arithmetic)");
        };
        if data.shape.len() != 1 || n.int("axis", 0) != 0 || idx.shape.len() > 1 {
            return self.fail(n, "convoy gathers along the one axis of a 1-D constant");
        }
        let len = data.shape[0] as i64;
        let mut picks = Vec::new();
        for &i in &as_i64(idx) {
            let j = if i < 0 { i + len } else { i };
            if !(0..len).contains(&j) {
                return self.fail(n, format!("index {i} of a {len}-element constant"));
            }
            picks.push(j as usize);
        }
        let shape = idx.shape.clone();
        Ok(Val::Const(Arc::new(match &data.data {
            HostData::I64(v) => ints(shape, picks.iter().map(|&j| v[j]).collect()),
            HostData::F32(v) => floats(shape, picks.iter().map(|&j| v[j]).collect()),
        })))
    }

    pub(super) fn squeeze(&mut self, n: &OnnxNode) -> Result<Val> {
        let Some(t) = self.constant(n, 0).cloned() else {
            return self.fail(
                n,
                format!("convoy {}s only constants (shape arithmetic)", n.op_type.to_lowercase()),
            );
        };
        let axes = match n.ints("axes") {
            Some(a) => Some(a.to_vec()),
            None => self.ints_input(n, 1)?,
        };
        let mut shape = t.shape.clone();
        if n.op_type == "Unsqueeze" {
            let Some(axes) = axes else {
                return self.fail(n, "unsqueeze without axes");
            };
            let rank = (shape.len() + axes.len()) as i64;
            let mut axes: Vec<usize> = axes
                .iter()
                .map(|&a| if a < 0 { a + rank } else { a }.clamp(0, rank) as usize)
                .collect();
            axes.sort();
            for a in axes {
                shape.insert(a.min(shape.len()), 1);
            }
        } else {
            let rank = shape.len() as i64;
            let drop: Vec<usize> = match axes {
                Some(a) => a.iter().map(|&a| if a < 0 { a + rank } else { a } as usize).collect(),
                None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
            };
            if drop.iter().any(|&a| shape.get(a) != Some(&1)) {
                return self.fail(n, format!("squeezing axes {drop:?} of {shape:?}"));
            }
            shape = shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, &d)| d)
                .collect();
        }
        Ok(Val::Const(Arc::new(HostTensor {
            shape,
            data: t.data.clone(),
        })))
    }

    pub(super) fn cast(&mut self, n: &OnnxNode) -> Result<Val> {
        let to = n.int("to", 1);
        let float = matches!(to, 1 | 10 | 11 | 16);
        match self.val(n, 0)?.clone() {
            Val::Const(t) => Ok(Val::Const(Arc::new(if float {
                floats(t.shape.clone(), as_f32(&t))
            } else {
                ints(t.shape.clone(), as_i64(&t))
            }))),
            Val::Tensor(v) if to == 1 => Ok(Val::Tensor(v)),
            _ => self.fail(
                n,
                format!("casting a tensor to ONNX type {to} (convoy computes in float)"),
            ),
        }
    }
}
