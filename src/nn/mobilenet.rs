//! MobileNets: v2 exactly as torchvision builds it (inverted residuals, ReLU6, width
//! multiplier, names), and v1 (depthwise-separable convs).

use super::{Conv2dSpec, ConvInit, Init, Model, Net};
use crate::error::Result;
use crate::graph::ValueId;

/// torchvision's `_make_divisible`: round to a multiple of 8, never more than 10% down.
pub fn make_divisible(v: f32, divisor: usize) -> usize {
    let d = divisor as f32;
    let mut n = ((v + d / 2.0) / d).floor().max(1.0) as usize * divisor;
    if (n as f32) < 0.9 * v {
        n += divisor;
    }
    n
}

#[derive(Clone, Debug)]
pub struct MobileNetV2 {
    pub classes: usize,
    pub width_mult: f32,
    pub in_channels: usize,
}

pub fn mobilenet_v2(classes: usize) -> MobileNetV2 {
    MobileNetV2 {
        classes,
        width_mult: 1.0,
        in_channels: 3,
    }
}

/// conv -> BN -> ReLU6 as torchvision's Conv2dNormActivation: scopes `0` and `1`, the conv `conv`
/// with padding (k-1)/2 and no bias (whatever it says of those).
fn conv_bn_relu6(net: &mut Net, x: ValueId, conv: Conv2dSpec) -> Result<ValueId> {
    let conv = conv.padding((conv.k - 1) / 2).bias(false);
    let c = net.scope("0", |n| n.conv2d(x, conv))?;
    let b = net.scope("1", |n| n.batch_norm(c, conv.cout, false))?;
    Ok(net.relu6(b))
}

impl Model for MobileNetV2 {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingFanOut;
        // expansion t, channels c, repeats n, first stride s
        let settings = [
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ];
        let wm = self.width_mult;
        let mut cin = make_divisible(32.0 * wm, 8);
        let last = make_divisible(1280.0 * wm.max(1.0), 8);
        let stem = Conv2dSpec::new(self.in_channels, cin, 3).stride(2);
        let mut h = net.scope("features", |n| n.scope("0", |n| conv_bn_relu6(n, x, stem)))?;
        let mut idx = 1;
        for (t, c, reps, s) in settings {
            let cout = make_divisible(c as f32 * wm, 8);
            for r in 0..reps {
                let stride = if r == 0 { s } else { 1 };
                let hidden = cin * t;
                let input = h;
                let depthwise = Conv2dSpec::new(hidden, hidden, 3).stride(stride).groups(hidden);
                let project = Conv2dSpec::new(hidden, cout, 1).bias(false);
                h = net.scope("features", |n| {
                    n.scope(&idx.to_string(), |n| {
                        n.scope("conv", |n| {
                            let mut y = input;
                            let mut j = 0;
                            if t != 1 {
                                y = n.scope("0", |n| conv_bn_relu6(n, y, Conv2dSpec::new(cin, hidden, 1)))?;
                                j = 1;
                            }
                            y = n.scope(&j.to_string(), |n| conv_bn_relu6(n, y, depthwise))?;
                            let p = n.scope(&(j + 1).to_string(), |n| n.conv2d(y, project))?;
                            n.scope(&(j + 2).to_string(), |n| n.batch_norm(p, cout, false))
                        })
                    })
                })?;
                if stride == 1 && cin == cout {
                    h = net.graph.add(input, h)?;
                }
                cin = cout;
                idx += 1;
            }
        }
        h = net.scope("features", |n| {
            n.scope(&idx.to_string(), |n| conv_bn_relu6(n, h, Conv2dSpec::new(cin, last, 1)))
        })?;
        let f = net.global_pool(h)?;
        // classifier.0: torchvision's Dropout(0.2)
        let f = net.dropout(f, 0.2)?;
        net.scope("classifier", |n| {
            n.scope("1", |n| {
                n.linear_with(f, last, self.classes, Init::Normal(0.01), Init::Const(0.0))
            })
        })
    }

    fn head_prefix(&self) -> String {
        "classifier.".into()
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}

/// MobileNet v1: a 3x3 stem, then 13 depthwise-separable blocks (3x3 depthwise conv-BN-ReLU,
/// 1x1 pointwise conv-BN-ReLU), global average pool, linear.
#[derive(Clone, Debug)]
pub struct MobileNetV1 {
    pub classes: usize,
    pub width_mult: f32,
    pub in_channels: usize,
}

pub fn mobilenet_v1(classes: usize) -> MobileNetV1 {
    MobileNetV1 {
        classes,
        width_mult: 1.0,
        in_channels: 3,
    }
}

impl Model for MobileNetV1 {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingFanOut;
        let w = |c: usize| ((c as f32 * self.width_mult) as usize).max(8);
        let blocks = [
            (64, 1),
            (128, 2),
            (128, 1),
            (256, 2),
            (256, 1),
            (512, 2),
            (512, 1),
            (512, 1),
            (512, 1),
            (512, 1),
            (512, 1),
            (1024, 2),
            (1024, 1),
        ];
        let mut cin = w(32);
        let stem = Conv2dSpec::new(self.in_channels, cin, 3)
            .stride(2)
            .padding(1)
            .bias(false);
        let mut h = net.scope("features.0", |n| {
            let c = n.scope("0", |n| n.conv2d(x, stem))?;
            let b = n.scope("1", |n| n.batch_norm(c, cin, false))?;
            Ok(n.relu(b))
        })?;
        for (i, &(c, s)) in blocks.iter().enumerate() {
            let cout = w(c);
            let depthwise = Conv2dSpec::new(cin, cin, 3)
                .stride(s)
                .padding(1)
                .groups(cin)
                .bias(false);
            h = net.scope(&format!("features.{}", i + 1), |n| {
                let d = n.scope("0", |n| n.conv2d(h, depthwise))?;
                let d = n.scope("1", |n| n.batch_norm(d, cin, false))?;
                let d = n.relu(d);
                let p = n.scope("3", |n| n.conv2d(d, Conv2dSpec::new(cin, cout, 1).bias(false)))?;
                let p = n.scope("4", |n| n.batch_norm(p, cout, false))?;
                Ok(n.relu(p))
            })?;
            cin = cout;
        }
        let f = net.global_pool(h)?;
        net.scope("fc", |n| n.linear(f, cin, self.classes))
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}
