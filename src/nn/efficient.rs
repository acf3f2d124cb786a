//! MobileNetV3 (small, large) and EfficientNet-B0 exactly as torchvision builds them (names,
//! initialisation, batch-norm settings): inverted residuals with squeeze-and-excite,
//! hard-swish / SiLU, and EfficientNet's stochastic depth.

use super::mobilenet::make_divisible;
use super::{Conv2dSpec, ConvInit, Init, Model, Net};
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::Act;

/// Batch-norm momentum and eps of a family (PyTorch's momentum convention).
#[derive(Clone, Copy)]
struct Norm {
    momentum: f32,
    eps: f32,
}

/// torchvision's Conv2dNormActivation: `conv` with padding (k-1)/2 and no bias (whatever it says
/// of those) in scope `0`, batch norm in `1`, then the activation (none for a projection).
fn conv_bn_act(net: &mut Net, x: ValueId, conv: Conv2dSpec, norm: Norm, act: Act) -> Result<ValueId> {
    let conv = conv.padding((conv.k - 1) / 2).bias(false);
    let c = net.scope("0", |n| n.conv2d(x, conv))?;
    let b = net.scope("1", |n| n.batch_norm_with(c, conv.cout, false, norm.momentum, norm.eps))?;
    net.activation(b, act)
}

/// torchvision.ops.SqueezeExcitation: global average pool, 1x1 conv `fc1` (with bias), `act`,
/// 1x1 conv `fc2`, `gate`, and x scaled by the result per image and channel.
fn squeeze_excite(net: &mut Net, x: ValueId, c: usize, squeeze: usize, act: Act, gate: Act) -> Result<ValueId> {
    let p = net.graph.adaptive_avg_pool2d(x, [1, 1])?;
    let h = net.scope("fc1", |n| n.conv2d(p, Conv2dSpec::new(c, squeeze, 1)))?;
    let h = net.graph.activation(h, act)?;
    let s = net.scope("fc2", |n| n.conv2d(h, Conv2dSpec::new(squeeze, c, 1)))?;
    let s = net.graph.activation(s, gate)?;
    net.graph.mul_channels(x, s)
}

/// One MobileNetV3 bottleneck: input, kernel, expanded, output channels, squeeze-excite,
/// hard-swish (else ReLU), stride.
type Bneck = (usize, usize, usize, usize, bool, bool, usize);

#[derive(Clone, Debug)]
pub struct MobileNetV3 {
    pub classes: usize,
    pub in_channels: usize,
    /// torchvision's mobilenet_v3_large (else _small)
    pub large: bool,
}

pub fn mobilenet_v3_small(classes: usize) -> MobileNetV3 {
    MobileNetV3 {
        classes,
        in_channels: 3,
        large: false,
    }
}

pub fn mobilenet_v3_large(classes: usize) -> MobileNetV3 {
    MobileNetV3 {
        large: true,
        ..mobilenet_v3_small(classes)
    }
}

impl MobileNetV3 {
    /// torchvision's `_mobilenet_v3_conf` at width 1.0: the bottlenecks and the classifier's
    /// hidden width.
    fn settings(&self) -> (Vec<Bneck>, usize) {
        let (re, hs) = (false, true);
        if self.large {
            let v = vec![
                (16, 3, 16, 16, false, re, 1),
                (16, 3, 64, 24, false, re, 2),
                (24, 3, 72, 24, false, re, 1),
                (24, 5, 72, 40, true, re, 2),
                (40, 5, 120, 40, true, re, 1),
                (40, 5, 120, 40, true, re, 1),
                (40, 3, 240, 80, false, hs, 2),
                (80, 3, 200, 80, false, hs, 1),
                (80, 3, 184, 80, false, hs, 1),
                (80, 3, 184, 80, false, hs, 1),
                (80, 3, 480, 112, true, hs, 1),
                (112, 3, 672, 112, true, hs, 1),
                (112, 5, 672, 160, true, hs, 2),
                (160, 5, 960, 160, true, hs, 1),
                (160, 5, 960, 160, true, hs, 1),
            ];
            (v, 1280)
        } else {
            let v = vec![
                (16, 3, 16, 16, true, re, 2),
                (16, 3, 72, 24, false, re, 2),
                (24, 3, 88, 24, false, re, 1),
                (24, 5, 96, 40, true, hs, 2),
                (40, 5, 240, 40, true, hs, 1),
                (40, 5, 240, 40, true, hs, 1),
                (40, 5, 120, 48, true, hs, 1),
                (48, 5, 144, 48, true, hs, 1),
                (48, 5, 288, 96, true, hs, 2),
                (96, 5, 576, 96, true, hs, 1),
                (96, 5, 576, 96, true, hs, 1),
            ];
            (v, 1024)
        }
    }
}

impl Model for MobileNetV3 {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingFanOut;
        let norm = Norm {
            momentum: 0.01,
            eps: 1e-3,
        };
        let (settings, hidden) = self.settings();
        let first = settings[0].0;
        let stem = Conv2dSpec::new(self.in_channels, first, 3).stride(2);
        let mut h = net.scope("features.0", |n| conv_bn_act(n, x, stem, norm, Act::HardSwish))?;
        for (i, &(cin, k, exp, cout, se, hswish, stride)) in settings.iter().enumerate() {
            let act = if hswish { Act::HardSwish } else { Act::Relu };
            h = net.scope(&format!("features.{}.block", i + 1), |n| {
                let mut y = h;
                let mut at = 0;
                if exp != cin {
                    y = n.scope("0", |n| conv_bn_act(n, y, Conv2dSpec::new(cin, exp, 1), norm, act))?;
                    at += 1;
                }
                let depthwise = Conv2dSpec::new(exp, exp, k).stride(stride).groups(exp);
                y = n.scope(&at.to_string(), |n| conv_bn_act(n, y, depthwise, norm, act))?;
                at += 1;
                if se {
                    let squeeze = make_divisible((exp / 4) as f32, 8);
                    y = n.scope(&at.to_string(), |n| {
                        squeeze_excite(n, y, exp, squeeze, Act::Relu, Act::HardSigmoid)
                    })?;
                    at += 1;
                }
                y = n.scope(&at.to_string(), |n| {
                    conv_bn_act(n, y, Conv2dSpec::new(exp, cout, 1), norm, Act::None)
                })?;
                if stride == 1 && cin == cout {
                    y = n.graph.add(y, h)?;
                }
                Ok(y)
            })?;
        }
        let last_in = settings.last().expect("bottlenecks").3;
        let last = 6 * last_in;
        let idx = settings.len() + 1;
        h = net.scope(&format!("features.{idx}"), |n| {
            conv_bn_act(n, h, Conv2dSpec::new(last_in, last, 1), norm, Act::HardSwish)
        })?;
        let f = net.global_pool(h)?;
        let f = net.scope("classifier.0", |n| {
            n.linear_with(f, last, hidden, Init::Normal(0.01), Init::Const(0.0))
        })?;
        let f = net.activation(f, Act::HardSwish)?;
        let f = net.dropout(f, 0.2)?;
        net.scope("classifier.3", |n| {
            n.linear_with(f, hidden, self.classes, Init::Normal(0.01), Init::Const(0.0))
        })
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn head_prefix(&self) -> String {
        "classifier.3.".into()
    }
}

#[derive(Clone, Debug)]
pub struct EfficientNet {
    pub classes: usize,
    pub in_channels: usize,
}

pub fn efficientnet_b0(classes: usize) -> EfficientNet {
    EfficientNet {
        classes,
        in_channels: 3,
    }
}

impl Model for EfficientNet {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingFanOut;
        let norm = Norm {
            momentum: 0.1,
            eps: 1e-5,
        };
        // expand ratio, kernel, stride, input, output channels, blocks (B0: width and depth 1)
        let settings = [
            (1, 3, 1, 32, 16, 1),
            (6, 3, 2, 16, 24, 2),
            (6, 5, 2, 24, 40, 2),
            (6, 3, 2, 40, 80, 3),
            (6, 5, 1, 80, 112, 3),
            (6, 5, 2, 112, 192, 4),
            (6, 3, 1, 192, 320, 1),
        ];
        let total: usize = settings.iter().map(|s| s.5).sum();
        let stem = Conv2dSpec::new(self.in_channels, 32, 3).stride(2);
        let mut h = net.scope("features.0", |n| conv_bn_act(n, x, stem, norm, Act::Silu))?;
        let mut block_id = 0;
        for (si, &(ratio, k, stride0, cin0, cout, blocks)) in settings.iter().enumerate() {
            for b in 0..blocks {
                let (cin, stride) = if b == 0 { (cin0, stride0) } else { (cout, 1) };
                // torchvision: the drop probability grows linearly with the block's index
                let drop = 0.2 * block_id as f32 / total as f32;
                h = net.scope(&format!("features.{}.{b}", si + 1), |n| {
                    n.scope("block", |n| {
                        let exp = make_divisible((cin * ratio) as f32, 8);
                        let mut y = h;
                        let mut at = 0;
                        if exp != cin {
                            y = n.scope("0", |n| {
                                conv_bn_act(n, y, Conv2dSpec::new(cin, exp, 1), norm, Act::Silu)
                            })?;
                            at += 1;
                        }
                        let depthwise = Conv2dSpec::new(exp, exp, k).stride(stride).groups(exp);
                        y = n.scope(&at.to_string(), |n| conv_bn_act(n, y, depthwise, norm, Act::Silu))?;
                        let squeeze = (cin / 4).max(1);
                        y = n.scope(&(at + 1).to_string(), |n| {
                            squeeze_excite(n, y, exp, squeeze, Act::Silu, Act::Sigmoid)
                        })?;
                        y = n.scope(&(at + 2).to_string(), |n| {
                            conv_bn_act(n, y, Conv2dSpec::new(exp, cout, 1), norm, Act::None)
                        })?;
                        if stride == 1 && cin == cout {
                            y = n.stochastic_depth(y, drop)?;
                            y = n.graph.add(y, h)?;
                        }
                        Ok(y)
                    })
                })?;
                block_id += 1;
            }
        }
        h = net.scope("features.8", |n| {
            conv_bn_act(n, h, Conv2dSpec::new(320, 1280, 1), norm, Act::Silu)
        })?;
        let f = net.global_pool(h)?;
        let f = net.dropout(f, 0.2)?;
        // torchvision: U(-1/sqrt(out), 1/sqrt(out)) for the classifier, zero bias
        let bound = 1.0 / (self.classes as f32).sqrt();
        net.scope("classifier.1", |n| {
            n.linear_with(f, 1280, self.classes, Init::Uniform(bound), Init::Const(0.0))
        })
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn head_prefix(&self) -> String {
        "classifier.1.".into()
    }
}
