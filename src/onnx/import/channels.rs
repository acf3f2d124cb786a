//! Concat, Split and Slice: along the channels of (N, C, H, W) for tensors (the ops of
//! DenseNet, ShuffleNet, YOLO), and along any axis for 1-D constants (shape arithmetic).

use super::host::{as_f32, as_i64, floats, ints, slice_const};
use super::{Importer, Val, LARGEST_ATTRIBUTE};
use crate::error::Result;
use crate::graph::ValueId;
use crate::io::safetensors::{HostData, HostTensor};
use crate::onnx::graph::OnnxNode;
use std::sync::Arc;

impl Importer<'_> {
    fn axis(&self, n: &OnnxNode, rank: usize, default: i64) -> Result<usize> {
        let a = n.int("axis", default);
        let r = rank as i64;
        if a < -r || a >= r.max(1) {
            return self.fail(n, format!("axis {a} of a rank-{rank} tensor"));
        }
        Ok(if a < 0 { a + r } else { a } as usize)
    }

    pub(super) fn concat(&mut self, n: &OnnxNode) -> Result<Val> {
        let count = n.inputs.len();
        let consts: Vec<Option<&HostTensor>> = (0..count).map(|i| self.constant(n, i)).collect();
        if count > 0 && consts.iter().all(Option::is_some) {
            let parts: Vec<&HostTensor> = consts.into_iter().flatten().collect();
            if parts.iter().any(|t| t.shape.len() != 1) {
                return self.fail(n, "concatenating constants of rank other than 1");
            }
            let len = parts.iter().map(|t| t.shape[0]).sum();
            return Ok(Val::Const(Arc::new(match parts[0].data {
                HostData::I64(_) => ints(vec![len], parts.iter().flat_map(|t| as_i64(t)).collect()),
                HostData::F32(_) => floats(vec![len], parts.iter().flat_map(|t| as_f32(t)).collect()),
            })));
        }
        let xs: Vec<ValueId> = (0..count).map(|i| self.tensor(n, i)).collect::<Result<_>>()?;
        let rank = xs.first().map_or(0, |&x| self.dims(x).len());
        let axis = self.axis(n, rank, 1)?;
        if rank != 4 || axis != 1 {
            return self.fail(
                n,
                format!("concat along axis {axis} of rank-{rank} tensors (convoy: channels of (N, C, H, W))"),
            );
        }
        Ok(Val::Tensor(self.net.graph.concat(&xs)?))
    }

    pub(super) fn split(&mut self, n: &OnnxNode) -> Result<()> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        let axis = self.axis(n, d.len(), 0)?;
        if d.len() != 4 || axis != 1 {
            return self.fail(
                n,
                format!("split along axis {axis} of {d:?} (convoy: channels of (N, C, H, W))"),
            );
        }
        let parts = n.outputs.len();
        let sizes: Vec<usize> = match self.ints_input(n, 1)?.or_else(|| n.ints("split").map(<[i64]>::to_vec)) {
            Some(s) => s.iter().map(|&v| v.clamp(0, LARGEST_ATTRIBUTE) as usize).collect(),
            None if parts > 0 => {
                let size = d[1].div_ceil(parts);
                (0..parts).map(|i| size.min(d[1].saturating_sub(i * size))).collect()
            }
            None => return self.fail(n, "a split with no outputs"),
        };
        if sizes.len() != parts || sizes.iter().sum::<usize>() != d[1] {
            return self.fail(
                n,
                format!("split sizes {sizes:?} into {parts} outputs of {} channels", d[1]),
            );
        }
        let mut start = 0;
        for (o, &len) in n.outputs.iter().zip(&sizes) {
            let y = self.net.graph.slice_channels(x, start, len)?;
            self.vals.insert(o.clone(), Val::Tensor(y));
            start += len;
        }
        Ok(())
    }

    pub(super) fn slice(&mut self, n: &OnnxNode) -> Result<Val> {
        let (starts, ends, axes, steps) = if self.g.opset < 10 {
            let v = |k: &str| n.ints(k).map(<[i64]>::to_vec);
            (v("starts"), v("ends"), v("axes"), None)
        } else {
            (
                self.ints_input(n, 1)?,
                self.ints_input(n, 2)?,
                self.ints_input(n, 3)?,
                self.ints_input(n, 4)?,
            )
        };
        let (Some(starts), Some(ends)) = (starts, ends) else {
            return self.fail(n, "a slice without starts and ends");
        };
        let shape = match self.val(n, 0)? {
            Val::Tensor(v) => self.dims(*v),
            Val::Const(t) => t.shape.clone(),
            Val::Grouped { .. } | Val::Padded { .. } => return self.fail(n, "slicing a 5-D or padded tensor"),
        };
        let rank = shape.len() as i64;
        let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
        if axes.len() != starts.len() || ends.len() != starts.len() || steps.len() != starts.len() {
            return self.fail(n, "starts, ends, axes and steps of different lengths");
        }
        // per axis of the input: (start, step, count) with ONNX's clamping
        let mut ranges: Vec<(i64, i64, usize)> = shape.iter().map(|&d| (0, 1, d)).collect();
        for i in 0..starts.len() {
            let (axis, step) = (axes[i], steps[i]);
            if axis < -rank || axis >= rank || step == 0 {
                return self.fail(n, format!("axis {axis} with step {step} of a rank-{rank} tensor"));
            }
            let axis = if axis < 0 { axis + rank } else { axis } as usize;
            let dim = shape[axis] as i64;
            let at = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
            let (s, e) = if step > 0 {
                (at(starts[i]).clamp(0, dim), at(ends[i]).clamp(0, dim))
            } else {
                (at(starts[i]).clamp(0, dim - 1), at(ends[i]).clamp(-1, dim - 1))
            };
            let span = if step > 0 { e - s } else { s - e }.max(0) as u64;
            let count = span.div_ceil(step.unsigned_abs());
            ranges[axis] = (s, step, count as usize);
        }
        if let Some(t) = self.constant(n, 0) {
            return Ok(Val::Const(Arc::new(slice_const(t, &ranges))));
        }
        let x = self.tensor(n, 0)?;
        let cut: Vec<usize> = (0..shape.len()).filter(|&a| ranges[a] != (0, 1, shape[a])).collect();
        match cut[..] {
            [] => Ok(Val::Tensor(x)),
            [1] if shape.len() == 4 && ranges[1].1 == 1 => {
                let (s, _, count) = ranges[1];
                Ok(Val::Tensor(self.net.graph.slice_channels(x, s as usize, count)?))
            }
            _ => self.fail(
                n,
                format!("slicing axes {cut:?} of {shape:?} (convoy: channels of (N, C, H, W), step 1)"),
            ),
        }
    }
}
