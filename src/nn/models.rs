//! Models. Each writes its forward graph into a `Net` given the input value.

use super::{
    mobilenet_v1, mobilenet_v2, resnet101, resnet152, resnet18, resnet34, resnet50, resnext50_32x4d, wide_resnet50_2,
    xresnet18, xresnet34, xresnet50, Conv2dSpec, Model, Net,
};
use crate::error::{Error, Result};
use crate::graph::ValueId;

/// The names `by_name` knows.
pub const MODEL_NAMES: [&str; 27] = [
    "resnet_mini",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "xresnet18",
    "xresnet34",
    "xresnet50",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "densenet121",
    "squeezenet1_1",
    "shufflenet_v2_x1_0",
    "vgg11_bn",
    "simple_cnn",
    "plain8",
    "plain14",
    "plain20",
    "resplain8",
    "resplain14",
    "resplain20",
];

/// A model by name, for `classes` outputs and images of `in_channels` channels.
pub fn by_name(name: &str, classes: usize, in_channels: usize) -> Result<Box<dyn Model>> {
    if classes == 0 || in_channels == 0 {
        return Err(Error::arg("model", "num_classes/in_channels", "must be at least 1"));
    }
    Ok(match name {
        "resnet18" | "resnet34" | "resnet50" | "resnet101" | "resnet152" | "resnext50_32x4d" | "wide_resnet50_2"
        | "xresnet18" | "xresnet34" | "xresnet50" => {
            let mut m = match name {
                "resnet18" => resnet18(classes),
                "resnet34" => resnet34(classes),
                "resnet50" => resnet50(classes),
                "resnet101" => resnet101(classes),
                "resnet152" => resnet152(classes),
                "resnext50_32x4d" => resnext50_32x4d(classes),
                "wide_resnet50_2" => wide_resnet50_2(classes),
                "xresnet18" => xresnet18(classes),
                "xresnet34" => xresnet34(classes),
                _ => xresnet50(classes),
            };
            m.in_channels = in_channels;
            Box::new(m)
        }
        "mobilenet_v1" => Box::new(super::MobileNetV1 {
            in_channels,
            ..mobilenet_v1(classes)
        }),
        "mobilenet_v2" => Box::new(super::MobileNetV2 {
            in_channels,
            ..mobilenet_v2(classes)
        }),
        "mobilenet_v3_small" | "mobilenet_v3_large" => Box::new(super::MobileNetV3 {
            in_channels,
            large: name == "mobilenet_v3_large",
            classes,
        }),
        "efficientnet_b0" => Box::new(super::EfficientNet { classes, in_channels }),
        "densenet121" => Box::new(super::DenseNet {
            in_channels,
            ..super::densenet121(classes)
        }),
        "squeezenet1_1" => Box::new(super::SqueezeNet { classes, in_channels }),
        "shufflenet_v2_x1_0" => Box::new(super::ShuffleNetV2 { classes, in_channels }),
        "vgg11_bn" => Box::new(super::Vgg {
            in_channels,
            ..super::vgg11_bn(classes)
        }),
        "resnet_mini" => Box::new(ResNetMini { classes, in_channels }),
        "simple_cnn" => Box::new(SimpleCnn {
            in_channels,
            ..simple_cnn(classes)
        }),
        "plain8" | "plain14" | "plain20" | "resplain8" | "resplain14" | "resplain20" => {
            let depth: usize = name
                .trim_start_matches("res")
                .trim_start_matches("plain")
                .parse()
                .expect("listed names");
            Box::new(plain_net(classes, in_channels, depth, name.starts_with("res")))
        }
        other => {
            return Err(Error::arg(
                "model",
                "name",
                format!("'{other}' is not one of {}", MODEL_NAMES.join(", ")),
            ))
        }
    })
}

/// A basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, then (with `residual`) + the input or its
/// 1x1-conv-BN projection, then ReLU. torchvision's names (conv1, bn1, conv2, bn2, downsample).
/// `zero_gamma` starts bn2 at zero, so the block starts as its shortcut.
fn basic_block(
    n: &mut Net,
    input: ValueId,
    (cin, cout, stride): (usize, usize, usize),
    residual: bool,
    zero_gamma: bool,
) -> Result<ValueId> {
    let conv1 = Conv2dSpec::new(cin, cout, 3).stride(stride).padding(1).bias(false);
    let a = n.scope("conv1", |n| n.conv2d(input, conv1))?;
    let a = n.scope("bn1", |n| n.batch_norm(a, cout, false))?;
    let a = n.relu(a);
    let conv2 = Conv2dSpec::new(cout, cout, 3).padding(1).bias(false);
    let a = n.scope("conv2", |n| n.conv2d(a, conv2))?;
    let a = n.scope("bn2", |n| n.batch_norm(a, cout, zero_gamma))?;
    if !residual {
        return Ok(n.relu(a));
    }
    let short = if stride == 1 && cin == cout {
        input
    } else {
        let project = Conv2dSpec::new(cin, cout, 1).stride(stride).bias(false);
        let s = n.scope("downsample.0", |n| n.conv2d(input, project))?;
        n.scope("downsample.1", |n| n.batch_norm(s, cout, false))?
    };
    let y = n.graph.add(a, short)?;
    Ok(n.relu(y))
}

/// The small ResNet of the main job, sized for 28x28 images on a CPU driver: a 3x3 stride-2
/// stem to 14x14 (16 channels), one basic block per stage at 16, 32 and 64 channels (stride 2
/// entering stages 2 and 3: 14, 7, 4 pixels), global average pool, linear. ~2.4 MMAC per image.
pub struct ResNetMini {
    pub classes: usize,
    pub in_channels: usize,
}

impl Model for ResNetMini {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        let stem = Conv2dSpec::new(self.in_channels, 16, 3)
            .stride(2)
            .padding(1)
            .bias(false);
        let c = net.scope("stem.0", |n| n.conv2d(x, stem))?;
        let b = net.scope("stem.1", |n| n.batch_norm(c, 16, false))?;
        let mut h = net.relu(b);
        let mut cin = 16;
        for (si, cout) in [16, 32, 64].into_iter().enumerate() {
            let stride = if si > 0 { 2 } else { 1 };
            let input = h;
            h = net.scope(&format!("layer{}.0", si + 1), |n| {
                basic_block(n, input, (cin, cout, stride), true, true)
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

/// The depth experiment of the ResNet paper on small images: a 3x3 stem, three stages of
/// 3x3 conv-BN-ReLU pairs (16, 32, 64 channels; stride 2 entering stages 2 and 3), global
/// pool, linear. `depth` = 6n + 2 conv+fc layers; `residual` adds identity / 1x1 shortcuts
/// around each pair, which is the only difference between the plain and the residual net.
pub struct PlainNet {
    pub classes: usize,
    pub in_channels: usize,
    pub depth: usize,
    pub residual: bool,
}

pub fn plain_net(classes: usize, in_channels: usize, depth: usize, residual: bool) -> PlainNet {
    PlainNet {
        classes,
        in_channels,
        depth,
        residual,
    }
}

impl Model for PlainNet {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId> {
        let pairs = (self.depth.max(8) - 2) / 6;
        let stem = Conv2dSpec::new(self.in_channels, 16, 3).padding(1).bias(false);
        let c = net.scope("stem.0", |n| n.conv2d(x, stem))?;
        let b = net.scope("stem.1", |n| n.batch_norm(c, 16, false))?;
        let mut h = net.relu(b);
        let mut cin = 16;
        for (si, cout) in [16, 32, 64].into_iter().enumerate() {
            for p in 0..pairs {
                let stride = if si > 0 && p == 0 { 2 } else { 1 };
                let input = h;
                h = net.scope(&format!("layer{}.{p}", si + 1), |n| {
                    basic_block(n, input, (cin, cout, stride), self.residual, false)
                })?;
                cin = cout;
            }
        }
        let f = net.global_pool(h)?;
        net.scope("fc", |n| n.linear(f, cin, self.classes))
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
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
            let conv = Conv2dSpec::new(cin, cout, k).stride(2).padding(k / 2);
            h = net.scope(&format!("conv{i}"), |net| {
                if i == last {
                    // the classifier conv: bias, no norm, no activation
                    return net.scope("0", |net| net.conv2d(h, conv));
                }
                let c = net.scope("0", |net| net.conv2d(h, conv.bias(false)))?;
                let b = net.scope("1", |net| net.batch_norm(c, cout, false))?;
                Ok(net.relu(b))
            })?;
            cin = cout;
        }
        net.graph.flatten(h)
    }

    fn head_prefix(&self) -> String {
        format!("conv{}.", self.channels.len())
    }

    fn num_classes(&self) -> usize {
        self.classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name the CLI offers (its `--model` values come from `MODEL_NAMES`) builds its graph,
    /// with the classes asked for; other names are refused with the list.
    #[test]
    fn every_listed_name_builds() {
        for name in MODEL_NAMES {
            let m = by_name(name, 7, 3).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(m.num_classes(), 7, "{name}");
            let mut net = Net::new(true);
            let x = net.graph.input("x", [1, 3, 224, 224]);
            m.forward(&mut net, x).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let Err(e) = by_name("resnet9000", 10, 1) else {
            panic!("an unknown name must be refused");
        };
        assert!(e.to_string().contains("resnet_mini"), "{e}");
    }
}
