//! ShuffleNetV2, SqueezeNet 1.1, DenseNet-121 and VGG-11 with batch norm, exactly as
//! torchvision builds them (names, initialisation): the zoo's users of concatenation, channel
//! slices and shuffles, and big classifiers with dropout.

use super::{Conv2dSpec, ConvInit, Init, Model, Net};
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{Act, Pool2dArgs};

/// `spec` with padding (k-1)/2 and no bias (whatever it says of those) in scope `conv`, batch
/// norm in scope `bn`, optionally ReLU.
fn conv_bn(net: &mut Net, x: ValueId, (conv, bn): (&str, &str), spec: Conv2dSpec, relu: bool) -> Result<ValueId> {
    let spec = spec.padding((spec.k - 1) / 2).bias(false);
    let c = net.scope(conv, |n| n.conv2d(x, spec))?;
    let b = net.scope(bn, |n| n.batch_norm(c, spec.cout, false))?;
    Ok(if relu { net.relu(b) } else { b })
}

#[derive(Clone, Debug)]
pub struct ShuffleNetV2 {
    pub classes: usize,
    pub in_channels: usize,
}

pub fn shufflenet_v2_x1_0(classes: usize) -> ShuffleNetV2 {
    ShuffleNetV2 {
        classes,
        in_channels: 3,
    }
}

impl ShuffleNetV2 {
    /// torchvision's InvertedResidual: stride 1 splits x in two halves and transforms one;
    /// stride 2 transforms x twice (branch1, branch2); the halves are concatenated and shuffled.
    fn unit(net: &mut Net, x: ValueId, cin: usize, cout: usize, stride: usize) -> Result<ValueId> {
        let half = cout / 2;
        let (keep, into2, c2) = if stride == 1 {
            let h = net.graph.chunk(x, 2)?;
            (h[0], h[1], half)
        } else {
            let b1 = net.scope("branch1", |n| {
                let depthwise = Conv2dSpec::new(cin, cin, 3).stride(stride).groups(cin);
                let y = conv_bn(n, x, ("0", "1"), depthwise, false)?;
                conv_bn(n, y, ("2", "3"), Conv2dSpec::new(cin, half, 1), true)
            })?;
            (b1, x, cin)
        };
        let b2 = net.scope("branch2", |n| {
            let y = conv_bn(n, into2, ("0", "1"), Conv2dSpec::new(c2, half, 1), true)?;
            let depthwise = Conv2dSpec::new(half, half, 3).stride(stride).groups(half);
            let y = conv_bn(n, y, ("3", "4"), depthwise, false)?;
            conv_bn(n, y, ("5", "6"), Conv2dSpec::new(half, half, 1), true)
        })?;
        let y = net.graph.concat(&[keep, b2])?;
        net.graph.channel_shuffle(y, 2)
    }
}

impl Model for ShuffleNetV2 {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::Default;
        let stem = Conv2dSpec::new(self.in_channels, 24, 3).stride(2);
        let mut h = net.scope("conv1", |n| conv_bn(n, x, ("0", "1"), stem, true))?;
        h = net.max_pool2d(h, Pool2dArgs::new(3).stride(2).padding(1))?;
        let mut cin = 24;
        for (stage, (repeats, cout)) in [(4, 116), (8, 232), (4, 464)].into_iter().enumerate() {
            for i in 0..repeats {
                let stride = if i == 0 { 2 } else { 1 };
                let c = if i == 0 { cin } else { cout };
                h = net.scope(&format!("stage{}.{i}", stage + 2), |n| {
                    Self::unit(n, h, c, cout, stride)
                })?;
            }
            cin = cout;
        }
        h = net.scope("conv5", |n| {
            conv_bn(n, h, ("0", "1"), Conv2dSpec::new(cin, 1024, 1), true)
        })?;
        let f = net.global_pool(h)?;
        net.scope("fc", |n| n.linear(f, 1024, self.classes))
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}

#[derive(Clone, Debug)]
pub struct SqueezeNet {
    pub classes: usize,
    pub in_channels: usize,
}

pub fn squeezenet1_1(classes: usize) -> SqueezeNet {
    SqueezeNet {
        classes,
        in_channels: 3,
    }
}

impl Model for SqueezeNet {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingUniformFanIn;
        let pool = |net: &mut Net, h| net.max_pool2d(h, Pool2dArgs::new(3).stride(2).ceil_mode(true));
        // Fire: squeeze 1x1 + ReLU, then 1x1 and 3x3 expansions + ReLU, concatenated
        let fire = |net: &mut Net, h: ValueId, at: usize, cin: usize, s: usize, e: usize| {
            net.scope(&format!("features.{at}"), |n| {
                let q = n.scope("squeeze", |n| n.conv2d(h, Conv2dSpec::new(cin, s, 1)))?;
                let q = n.relu(q);
                let a = n.scope("expand1x1", |n| n.conv2d(q, Conv2dSpec::new(s, e, 1)))?;
                let a = n.relu(a);
                let b = n.scope("expand3x3", |n| n.conv2d(q, Conv2dSpec::new(s, e, 3).padding(1)))?;
                let b = n.relu(b);
                n.graph.concat(&[a, b])
            })
        };
        let h = net.scope("features.0", |n| {
            n.conv2d(x, Conv2dSpec::new(self.in_channels, 64, 3).stride(2))
        })?;
        let mut h = net.relu(h);
        h = pool(net, h)?;
        h = fire(net, h, 3, 64, 16, 64)?;
        h = fire(net, h, 4, 128, 16, 64)?;
        h = pool(net, h)?;
        h = fire(net, h, 6, 128, 32, 128)?;
        h = fire(net, h, 7, 256, 32, 128)?;
        h = pool(net, h)?;
        h = fire(net, h, 9, 256, 48, 192)?;
        h = fire(net, h, 10, 384, 48, 192)?;
        h = fire(net, h, 11, 384, 64, 256)?;
        h = fire(net, h, 12, 512, 64, 256)?;
        // classifier: Dropout(0.5), final 1x1 conv (N(0, 0.01) init), ReLU, global average pool
        let h = net.dropout(h, 0.5)?;
        let c = net.scope("classifier.1", |n| n.conv2d(h, Conv2dSpec::new(512, self.classes, 1)))?;
        if let Some(d) = net.declared.iter_mut().find(|d| d.0 == "classifier.1.weight") {
            d.2 = Init::Normal(0.01);
        }
        let c = net.relu(c);
        net.global_pool(c)
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn head_prefix(&self) -> String {
        "classifier.1.".into()
    }
}

#[derive(Clone, Debug)]
pub struct DenseNet {
    pub classes: usize,
    pub in_channels: usize,
    pub growth: usize,
    pub blocks: [usize; 4],
    pub init_features: usize,
    pub bn_size: usize,
}

pub fn densenet121(classes: usize) -> DenseNet {
    DenseNet {
        classes,
        in_channels: 3,
        growth: 32,
        blocks: [6, 12, 24, 16],
        init_features: 64,
        bn_size: 4,
    }
}

impl DenseNet {
    /// batch norm (scope `bn`), ReLU, conv (scope `conv`, no bias): DenseNet's pre-activation.
    fn bn_relu_conv(
        net: &mut Net,
        x: ValueId,
        (bn, conv): (&str, &str),
        (cin, cout, k): (usize, usize, usize),
    ) -> Result<ValueId> {
        let b = net.scope(bn, |n| n.batch_norm(x, cin, false))?;
        let r = net.relu(b);
        net.scope(conv, |n| {
            n.conv2d(r, Conv2dSpec::new(cin, cout, k).padding((k - 1) / 2).bias(false))
        })
    }
}

impl Model for DenseNet {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingNormalFanIn;
        let mut c = self.init_features;
        let mut h = net.scope("features", |n| {
            let stem = Conv2dSpec::new(self.in_channels, c, 7).stride(2);
            let y = conv_bn(n, x, ("conv0", "norm0"), stem, true)?;
            n.max_pool2d(y, Pool2dArgs::new(3).stride(2).padding(1))
        })?;
        for (bi, &layers) in self.blocks.iter().enumerate() {
            h = net.scope(&format!("features.denseblock{}", bi + 1), |n| {
                // each layer reads the concatenation of the block's input and every earlier
                // layer's output, and adds `growth` channels to it
                let mut features = vec![h];
                for l in 0..layers {
                    let cin = c + l * self.growth;
                    let input = n.graph.concat(&features)?;
                    let y = n.scope(&format!("denselayer{}", l + 1), |n| {
                        let y = Self::bn_relu_conv(n, input, ("norm1", "conv1"), (cin, self.bn_size * self.growth, 1))?;
                        Self::bn_relu_conv(n, y, ("norm2", "conv2"), (self.bn_size * self.growth, self.growth, 3))
                    })?;
                    features.push(y);
                }
                n.graph.concat(&features)
            })?;
            c += layers * self.growth;
            if bi + 1 < self.blocks.len() {
                h = net.scope(&format!("features.transition{}", bi + 1), |n| {
                    let y = Self::bn_relu_conv(n, h, ("norm", "conv"), (c, c / 2, 1))?;
                    n.graph.avg_pool2d(y, Pool2dArgs::new(2).stride(2))
                })?;
                c /= 2;
            }
        }
        let h = net.scope("features.norm5", |n| n.batch_norm(h, c, false))?;
        let h = net.activation(h, Act::Relu)?;
        let f = net.global_pool(h)?;
        let bound = 1.0 / (c as f32).sqrt();
        net.scope("classifier", |n| {
            n.linear_with(f, c, self.classes, Init::Uniform(bound), Init::Const(0.0))
        })
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn head_prefix(&self) -> String {
        "classifier.".into()
    }
}

#[derive(Clone, Debug)]
pub struct Vgg {
    pub classes: usize,
    pub in_channels: usize,
    /// Channels of each 3x3 conv-BN-ReLU, 0 for a 2x2 max pool (torchvision's cfgs).
    pub layers: Vec<usize>,
}

/// VGG-11 with batch norm (torchvision's cfg "A").
pub fn vgg11_bn(classes: usize) -> Vgg {
    Vgg {
        classes,
        in_channels: 3,
        layers: vec![64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
    }
}

impl Model for Vgg {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingFanOut;
        let mut h = x;
        let mut cin = self.in_channels;
        let mut at = 0;
        for &v in &self.layers {
            if v == 0 {
                h = net.max_pool2d(h, Pool2dArgs::new(2).stride(2))?;
                at += 1;
                continue;
            }
            let c = net.scope(&format!("features.{at}"), |n| {
                n.conv2d(h, Conv2dSpec::new(cin, v, 3).padding(1))
            })?;
            let b = net.scope(&format!("features.{}", at + 1), |n| n.batch_norm(c, v, false))?;
            h = net.relu(b);
            at += 3;
            cin = v;
        }
        let p = net.graph.adaptive_avg_pool2d(h, [7, 7])?;
        let f = net.graph.flatten(p)?;
        let linear = |net: &mut Net, f, at: usize, fin, fout| {
            net.scope(&format!("classifier.{at}"), |n| {
                n.linear_with(f, fin, fout, Init::Normal(0.01), Init::Const(0.0))
            })
        };
        let f = linear(net, f, 0, cin * 49, 4096)?;
        let f = net.relu(f);
        let f = net.dropout(f, 0.5)?;
        let f = linear(net, f, 3, 4096, 4096)?;
        let f = net.relu(f);
        let f = net.dropout(f, 0.5)?;
        linear(net, f, 6, 4096, self.classes)
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn head_prefix(&self) -> String {
        "classifier.6.".into()
    }
}
