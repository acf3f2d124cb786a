//! Padding: a window op's own (`pads`, `auto_pad`), split into convoy's symmetric padding
//! and an explicit pad of what is uneven; and the Pad node, whose zeros a conv or average pool
//! reading it takes over (`Val::Padded`).

use super::{Importer, Val, LARGEST_ATTRIBUTE};
use crate::error::Result;
use crate::graph::ValueId;
use crate::onnx::graph::OnnxNode;
use crate::ops::pad::Pad2dArgs;

impl Importer<'_> {
    /// A window op's own padding, (begin, end) per spatial axis, from `pads` / `auto_pad`, for a
    /// window `k` with `stride` and `dilation` over an input of `size`.
    pub(super) fn pads(
        &self,
        n: &OnnxNode,
        size: [usize; 2],
        k: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<[(usize, usize); 2]> {
        let auto = n.string("auto_pad", "NOTSET");
        Ok(match auto.as_str() {
            "NOTSET" => {
                let p = n.ints("pads").unwrap_or(&[0, 0, 0, 0]);
                if p.len() != 4 || p.iter().any(|&v| !(0..=LARGEST_ATTRIBUTE).contains(&v)) {
                    return self.fail(
                        n,
                        format!("pads {p:?}: expected four numbers in 0..={LARGEST_ATTRIBUTE}"),
                    );
                }
                [(p[0] as usize, p[2] as usize), (p[1] as usize, p[3] as usize)]
            }
            "VALID" => [(0, 0), (0, 0)],
            "SAME_UPPER" | "SAME_LOWER" => {
                let total = |a: usize| {
                    let out = size[a].div_ceil(stride[a]);
                    ((out.max(1) - 1) * stride[a] + (k[a] - 1) * dilation[a] + 1).saturating_sub(size[a])
                };
                let split = |t: usize| {
                    if auto == "SAME_UPPER" {
                        (t / 2, t - t / 2)
                    } else {
                        (t - t / 2, t / 2)
                    }
                };
                [split(total(0)), split(total(1))]
            }
            other => return self.fail(n, format!("auto_pad '{other}'")),
        })
    }

    /// Padding (begin, end) per axis as convoy's symmetric padding plus what is left over on one
    /// side, as (top, left, bottom, right) for an explicit pad before the op.
    pub(super) fn split_pads(pairs: [(usize, usize); 2]) -> ([usize; 2], [usize; 4]) {
        let sym = [pairs[0].0.min(pairs[0].1), pairs[1].0.min(pairs[1].1)];
        let rest = [
            pairs[0].0 - sym[0],
            pairs[1].0 - sym[1],
            pairs[0].1 - sym[0],
            pairs[1].1 - sym[1],
        ];
        (sym, rest)
    }

    /// (begin, end) padding per axis plus a Pad's (top, left, bottom, right) before the op.
    pub(super) fn add_pads(own: [(usize, usize); 2], extra: [usize; 4]) -> [(usize, usize); 2] {
        [
            (own[0].0 + extra[0], own[0].1 + extra[2]),
            (own[1].0 + extra[1], own[1].1 + extra[3]),
        ]
    }

    /// x padded by `rest` with `value` (nothing when `rest` is zero).
    pub(super) fn pad_rest(&mut self, x: ValueId, rest: [usize; 4], value: f32) -> Result<ValueId> {
        self.net.graph.pad2d(x, Pad2dArgs { pads: rest, value })
    }

    /// (H, W) of x after a pad by `extra`.
    pub(super) fn padded_hw(&self, x: ValueId, extra: [usize; 4]) -> [usize; 2] {
        let d = self.dims(x);
        let (h, w) = (d.get(2).copied().unwrap_or(0), d.get(3).copied().unwrap_or(0));
        [h + extra[0] + extra[2], w + extra[1] + extra[3]]
    }

    pub(super) fn pair(&self, n: &OnnxNode, name: &str, default: usize) -> Result<[usize; 2]> {
        match n.ints(name) {
            None => Ok([default; 2]),
            Some(&[a, b]) if (1..=LARGEST_ATTRIBUTE).contains(&a) && (1..=LARGEST_ATTRIBUTE).contains(&b) => {
                Ok([a as usize, b as usize])
            }
            Some(v) => self.fail(
                n,
                format!("{name} {v:?}: expected two numbers in 1..={LARGEST_ATTRIBUTE} (2-D)"),
            ),
        }
    }

    /// Zero padding of H and W: nothing when it pads nothing, else taken over by the conv or
    /// average pool that reads it.
    pub(super) fn pad(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let rank = self.dims(x).len();
        let pads = match self.ints_input(n, 1)? {
            Some(p) if self.g.opset >= 11 => p,
            _ => n.ints("pads").map(<[i64]>::to_vec).unwrap_or_default(),
        };
        let value = if self.g.opset >= 11 {
            self.floats_input(n, 2)?.and_then(|v| v.first().copied()).unwrap_or(0.0)
        } else {
            n.float("value", 0.0)
        };
        let mode = n.string("mode", "constant");
        if n.input(3).is_some() {
            return self.fail(n, "padding chosen axes (the axes input)");
        }
        let plausible = pads.iter().all(|&p| (0..=LARGEST_ATTRIBUTE).contains(&p));
        if rank != 4 || pads.len() != 8 || !plausible || pads[0] + pads[1] + pads[4] + pads[5] != 0 {
            return self.fail(
                n,
                format!("pads {pads:?} of a rank-{rank} tensor (convoy pads H and W of (N, C, H, W))"),
            );
        }
        let p = [pads[2] as usize, pads[3] as usize, pads[6] as usize, pads[7] as usize];
        if p == [0; 4] {
            return Ok(Val::Tensor(x));
        }
        if mode != "constant" {
            return self.fail(n, format!("{mode} padding (convoy pads with a constant)"));
        }
        let readers: Vec<&OnnxNode> = match n.outputs.first() {
            Some(o) => self.g.nodes.iter().filter(|r| r.inputs.first() == Some(o)).collect(),
            None => Vec::new(),
        };
        let absorbed = value == 0.0
            && !readers.is_empty()
            && readers
                .iter()
                .all(|r| r.op_type == "Conv" || r.op_type == "AveragePool")
            && Some(&self.g.output.0) != n.outputs.first();
        if absorbed {
            return Ok(Val::Padded { x, pads: p });
        }
        Ok(Val::Tensor(self.net.graph.pad2d(x, Pad2dArgs { pads: p, value })?))
    }
}
