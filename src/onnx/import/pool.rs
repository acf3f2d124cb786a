//! MaxPool, AveragePool (taking over a Pad before it), GlobalAveragePool and a ReduceMean
//! over H and W.

use super::{Importer, Val, LARGEST_ATTRIBUTE};
use crate::error::Result;
use crate::onnx::graph::OnnxNode;
use crate::ops::Pool2dArgs;

impl Importer<'_> {
    pub(super) fn pool(&mut self, n: &OnnxNode) -> Result<Val> {
        let (x, extra) = if n.op_type == "AveragePool" {
            self.padded_input(n)?
        } else {
            (self.tensor(n, 0)?, [0; 4])
        };
        let kernel = match n.ints("kernel_shape") {
            Some(&[a, b]) if (1..=LARGEST_ATTRIBUTE).contains(&a) && (1..=LARGEST_ATTRIBUTE).contains(&b) => {
                [a as usize, b as usize]
            }
            k => return self.fail(n, format!("kernel_shape {k:?}: expected a 2-D window")),
        };
        let stride = self.pair(n, "strides", 1)?;
        let dilation = self.pair(n, "dilations", 1)?;
        let own = self.pads(n, self.padded_hw(x, extra), kernel, stride, dilation)?;
        let max = n.op_type == "MaxPool";
        let count_pad = n.int("count_include_pad", 0) != 0;
        let (_, own_rest) = Self::split_pads(own);
        // an average that leaves its padding out cannot take padding it sees as values: the
        // zeros of a Pad before it, or an explicit pad of its uneven sides
        if !max && !count_pad && own != [(0, 0); 2] && (extra != [0; 4] || own_rest != [0; 4]) {
            return self.fail(
                n,
                format!("padding {own:?} (uneven, or after a Pad) of an average pool that leaves its padding out"),
            );
        }
        let (padding, rest) = Self::split_pads(if max { own } else { Self::add_pads(own, extra) });
        // max pooling pads with the lowest float, which no window of real values ends on
        let x = self.pad_rest(x, rest, if max { f32::MIN } else { 0.0 })?;
        let args = Pool2dArgs {
            kernel,
            stride,
            padding,
            dilation,
            // the zeros of a Pad before the pool, or of its uneven sides, are values it averages
            count_include_pad: count_pad || extra != [0; 4] || rest != [0; 4],
            ceil_mode: n.int("ceil_mode", 0) != 0,
        };
        if n.op_type == "MaxPool" {
            if n.outputs.len() > 1 && !n.outputs[1].is_empty() {
                return self.fail(n, "max pooling's indices output");
            }
            Ok(Val::Tensor(self.net.graph.max_pool2d(x, args)?))
        } else {
            Ok(Val::Tensor(self.net.graph.avg_pool2d(x, args)?))
        }
    }

    pub(super) fn reduce_mean(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        let axes = match n.ints("axes") {
            Some(a) => Some(a.to_vec()),
            None => self.ints_input(n, 1)?,
        };
        let mut axes: Vec<i64> = axes
            .unwrap_or_default()
            .iter()
            .map(|&a| if a < 0 { a + d.len() as i64 } else { a })
            .collect();
        axes.sort();
        if d.len() != 4 || axes != [2, 3] {
            return self.fail(
                n,
                format!("mean over axes {axes:?} of {d:?} (convoy: the spatial axes of (N, C, H, W))"),
            );
        }
        let y = self.net.graph.adaptive_avg_pool2d(x, [1, 1])?;
        if n.int("keepdims", 1) != 0 {
            return Ok(Val::Tensor(y));
        }
        Ok(Val::Tensor(self.net.graph.flatten(y)?))
    }

    pub(super) fn global_average_pool(&mut self, n: &OnnxNode) -> Result<Val> {
        Ok(Val::Tensor(
            self.net.graph.adaptive_avg_pool2d(self.tensor(n, 0)?, [1, 1])?,
        ))
    }
}
