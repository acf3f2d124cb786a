//! Conv and BatchNormalization: the weights become parameters (the running statistics
//! buffers) under their ONNX names.

use super::{Importer, Val, LARGEST_ATTRIBUTE};
use crate::error::Result;
use crate::onnx::graph::OnnxNode;
use crate::ops::Conv2dArgs;

impl Importer<'_> {
    pub(super) fn conv(&mut self, n: &OnnxNode) -> Result<Val> {
        let (x, extra) = self.padded_input(n)?;
        let (w, wd) = self.weight(n, 1, false)?;
        if wd.len() != 4 {
            return self.fail(n, format!("weight of shape {wd:?}: convoy runs 2-D convolutions"));
        }
        let k = [wd[2], wd[3]];
        if n.ints("kernel_shape")
            .is_some_and(|ks| ks != [k[0] as i64, k[1] as i64])
        {
            return self.fail(
                n,
                format!(
                    "kernel_shape {:?} does not match the weight {wd:?}",
                    n.ints("kernel_shape")
                ),
            );
        }
        let b = match n.input(2) {
            Some(_) => Some(self.weight(n, 2, false)?.0),
            None => None,
        };
        let stride = self.pair(n, "strides", 1)?;
        let dilation = self.pair(n, "dilations", 1)?;
        let groups = n.int("group", 1);
        if !(1..=LARGEST_ATTRIBUTE).contains(&groups) {
            return self.fail(n, format!("group {groups}"));
        }
        let own = self.pads(n, self.padded_hw(x, extra), k, stride, dilation)?;
        // a Pad before the conv (zeros) adds to the conv's own padding; what is not the same
        // on both sides is padded explicitly
        let (padding, rest) = Self::split_pads(Self::add_pads(own, extra));
        let x = self.pad_rest(x, rest, 0.0)?;
        let args = Conv2dArgs {
            stride,
            padding,
            dilation,
            groups: groups as usize,
        };
        Ok(Val::Tensor(self.net.graph.conv2d(x, w, b, args)?))
    }

    pub(super) fn batch_norm(&mut self, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let (gamma, _) = self.weight(n, 1, false)?;
        let (beta, _) = self.weight(n, 2, false)?;
        let (mean, _) = self.weight(n, 3, true)?;
        let (var, _) = self.weight(n, 4, true)?;
        // ONNX: running = running * momentum + batch * (1 - momentum); PyTorch's momentum is
        // 1 - that. The file holds ONNX's as a float32 (0.9 for PyTorch's 0.1), whose
        // complement is 0.1 only to float32 precision: rounded to 6 decimals it is the value
        // the model was built with again (0.1, 0.01, 0.001), so a fine-tuned import's running
        // statistics move as the original model's do
        let momentum = ((1.0 - n.float("momentum", 0.9) as f64) * 1e6).round() / 1e6;
        let momentum = momentum as f32;
        let eps = n.float("epsilon", 1e-5);
        let training = self.net.training;
        let y = self
            .net
            .graph
            .batch_norm(x, [gamma, beta, mean, var], training, momentum, eps)?;
        Ok(Val::Tensor(y))
    }
}
