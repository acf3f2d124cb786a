//! Models. Each writes its forward graph into a `Net` given the input value.

use super::Net;
use crate::error::Result;
use crate::graph::ValueId;

/// A model: builds its graph for an input of shape (N, C, H, W).
pub trait Model {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId>;
    fn num_classes(&self) -> usize;
}

/// The MNIST chapter's CNN (fastai book ch. 13): stride-2 3x3 convs halve the image down to 1x1,
/// each with batch norm and ReLU but the last, then flatten. Layer names `conv{i}.0` (conv) and
/// `conv{i}.1` (batch norm), as nn.Sequential numbers them.
pub struct SimpleCnn {
    pub channels: Vec<usize>,
    pub in_channels: usize,
    pub classes: usize,
}

/// The design of the chapter: 1 -> 8 -> 16 -> 32 -> 64 -> classes, a 5x5 first conv.
pub fn simple_cnn(classes: usize) -> SimpleCnn {
    SimpleCnn {
        channels: vec![8, 16, 32, 64],
        in_channels: 1,
        classes,
    }
}

impl Model for SimpleCnn {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        let mut h = x;
        let mut cin = self.in_channels;
        let mut outs = self.channels.clone();
        outs.push(self.classes);
        let last = outs.len() - 1;
        for (i, &cout) in outs.iter().enumerate() {
            let k = if i == 0 { 5 } else { 3 };
            h = net.scope(&format!("conv{i}"), |net| {
                if i == last {
                    // the classifier conv: bias, no norm, no activation
                    return net.scope("0", |net| net.conv2d(h, cin, cout, k, 2, k / 2, 1, true));
                }
                let c = net.scope("0", |net| net.conv2d(h, cin, cout, k, 2, k / 2, 1, false))?;
                let b = net.scope("1", |net| net.batch_norm(c, cout, false))?;
                Ok(net.relu(b))
            })?;
            cin = cout;
        }
        net.graph.flatten(h)
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}
