//! ResNets exactly as torchvision builds them (names included), and fastai's xresnet.

use super::{Conv2dSpec, ConvInit, Model, Net};
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::Pool2dArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// two 3x3 convs (expansion 1)
    Basic,
    /// 1x1 reduce, 3x3 (stride here, torchvision's v1.5), 1x1 expand x4
    Bottleneck,
}

#[derive(Clone, Debug)]
pub struct ResNet {
    pub block: Block,
    pub layers: [usize; 4],
    pub classes: usize,
    /// fastai's xresnet: 3-conv stem, avgpool + 1x1 shortcut, zero-init last BN gamma.
    pub x: bool,
    pub in_channels: usize,
    /// The 3x3 conv of a bottleneck: `groups` groups of `width_per_group` channels per 64
    /// planes (ResNeXt: 32 x 4; Wide ResNet: 1 x 128; ResNet: 1 x 64).
    pub groups: usize,
    pub width_per_group: usize,
}

pub fn resnet18(classes: usize) -> ResNet {
    ResNet {
        block: Block::Basic,
        layers: [2, 2, 2, 2],
        classes,
        x: false,
        in_channels: 3,
        groups: 1,
        width_per_group: 64,
    }
}
pub fn resnet34(classes: usize) -> ResNet {
    ResNet {
        layers: [3, 4, 6, 3],
        ..resnet18(classes)
    }
}
pub fn resnet50(classes: usize) -> ResNet {
    ResNet {
        block: Block::Bottleneck,
        ..resnet34(classes)
    }
}
pub fn resnet101(classes: usize) -> ResNet {
    ResNet {
        layers: [3, 4, 23, 3],
        ..resnet50(classes)
    }
}
pub fn resnet152(classes: usize) -> ResNet {
    ResNet {
        layers: [3, 8, 36, 3],
        ..resnet50(classes)
    }
}
/// torchvision's resnext50_32x4d: 32 groups of 4 channels per 64 planes in each 3x3 conv.
pub fn resnext50_32x4d(classes: usize) -> ResNet {
    ResNet {
        groups: 32,
        width_per_group: 4,
        ..resnet50(classes)
    }
}
/// torchvision's wide_resnet50_2: bottlenecks twice as wide (128 channels per 64 planes).
pub fn wide_resnet50_2(classes: usize) -> ResNet {
    ResNet {
        width_per_group: 128,
        ..resnet50(classes)
    }
}
pub fn xresnet18(classes: usize) -> ResNet {
    ResNet {
        x: true,
        ..resnet18(classes)
    }
}
pub fn xresnet34(classes: usize) -> ResNet {
    ResNet {
        x: true,
        ..resnet34(classes)
    }
}
pub fn xresnet50(classes: usize) -> ResNet {
    ResNet {
        x: true,
        ..resnet50(classes)
    }
}

/// What follows a conv-BN of a residual block: a ReLU, or (the block's last) the residual add.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Relu,
    Residual,
}

impl ResNet {
    fn expansion(&self) -> usize {
        match self.block {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }

    /// conv -> BN in scopes `conv{i}` / `bn{i}` of the current block, then what `next` says. The
    /// conv is `conv` with padding k/2 and no bias, whatever it says of those.
    fn conv_bn(&self, net: &mut Net, h: ValueId, i: usize, conv: Conv2dSpec, next: Next) -> Result<ValueId> {
        let conv = conv.padding(conv.k / 2).bias(false);
        let c = net.scope(&format!("conv{i}"), |n| n.conv2d(h, conv))?;
        // xresnet zero-initialises the last BN of each block
        let zero = next == Next::Residual && self.x;
        let b = net.scope(&format!("bn{i}"), |n| n.batch_norm(c, conv.cout, zero))?;
        Ok(match next {
            Next::Relu => net.relu(b),
            Next::Residual => b,
        })
    }

    fn block(&self, net: &mut Net, x: ValueId, cin: usize, planes: usize, stride: usize) -> Result<ValueId> {
        let cout = planes * self.expansion();
        let main = match self.block {
            Block::Basic => {
                let h = self.conv_bn(net, x, 1, Conv2dSpec::new(cin, planes, 3).stride(stride), Next::Relu)?;
                self.conv_bn(net, h, 2, Conv2dSpec::new(planes, planes, 3), Next::Residual)?
            }
            Block::Bottleneck => {
                // torchvision: width = planes * (width_per_group / 64) * groups
                let width = planes * self.width_per_group / 64 * self.groups;
                let h = self.conv_bn(net, x, 1, Conv2dSpec::new(cin, width, 1), Next::Relu)?;
                let grouped = Conv2dSpec::new(width, width, 3).stride(stride).groups(self.groups);
                let h = self.conv_bn(net, h, 2, grouped, Next::Relu)?;
                self.conv_bn(net, h, 3, Conv2dSpec::new(width, cout, 1), Next::Residual)?
            }
        };
        let short = if stride == 1 && cin == cout {
            x
        } else {
            net.scope("downsample", |n| {
                let mut h = x;
                let mut stride1x1 = stride;
                if self.x && stride != 1 {
                    // fastai: average-pool the identity instead of a strided 1x1 conv
                    h = n.graph.avg_pool2d(h, Pool2dArgs::new(2).stride(2).ceil_mode(true))?;
                    stride1x1 = 1;
                }
                let project = Conv2dSpec::new(cin, cout, 1).stride(stride1x1).bias(false);
                let c = n.scope("0", |n| n.conv2d(h, project))?;
                n.scope("1", |n| n.batch_norm(c, cout, false))
            })?
        };
        let y = net.graph.add(main, short)?;
        Ok(net.relu(y))
    }
}

impl Model for ResNet {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        net.conv_init = ConvInit::KaimingFanOut;
        let mut h = if self.x {
            // stem: three 3x3 conv-BN-ReLU (32, 32, 64), the first with stride 2
            let mut h = x;
            let chans = [self.in_channels, 32, 32, 64];
            for i in 0..3 {
                let stride = if i == 0 { 2 } else { 1 };
                let conv = Conv2dSpec::new(chans[i], chans[i + 1], 3)
                    .stride(stride)
                    .padding(1)
                    .bias(false);
                h = net.scope(&format!("stem.{i}"), |n| {
                    let c = n.scope("0", |n| n.conv2d(h, conv))?;
                    let b = n.scope("1", |n| n.batch_norm(c, chans[i + 1], false))?;
                    Ok(n.relu(b))
                })?;
            }
            h
        } else {
            let conv1 = Conv2dSpec::new(self.in_channels, 64, 7)
                .stride(2)
                .padding(3)
                .bias(false);
            let c = net.scope("conv1", |n| n.conv2d(x, conv1))?;
            let b = net.scope("bn1", |n| n.batch_norm(c, 64, false))?;
            net.relu(b)
        };
        h = net.max_pool2d(h, Pool2dArgs::new(3).stride(2).padding(1))?;
        let mut cin = 64;
        for (li, &blocks) in self.layers.iter().enumerate() {
            let planes = 64 << li;
            for bi in 0..blocks {
                let stride = if li > 0 && bi == 0 { 2 } else { 1 };
                h = net.scope(&format!("layer{}", li + 1), |n| {
                    n.scope(&bi.to_string(), |n| self.block(n, h, cin, planes, stride))
                })?;
                cin = planes * self.expansion();
            }
        }
        let f = net.global_pool(h)?;
        net.scope("fc", |n| n.linear(f, cin, self.classes))
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}
