//! Layers and models. A model writes itself into a `Net`: the graph being built, with
//! torchvision-style names (`layer1.0.conv1.weight`) from a prefix stack, and the list of
//! parameters and buffers it needs with their PyTorch default initialisation.

/// Parameter chunking, which lives in io beside the files it splits and joins.
pub use crate::io::chunks;
mod classic;
mod efficient;
mod mobilenet;
mod models;
mod resnet;

pub use classic::{densenet121, shufflenet_v2_x1_0, squeezenet1_1, vgg11_bn, DenseNet, ShuffleNetV2, SqueezeNet, Vgg};
pub use efficient::{efficientnet_b0, mobilenet_v3_large, mobilenet_v3_small, EfficientNet, MobileNetV3};
pub use mobilenet::{mobilenet_v1, mobilenet_v2, MobileNetV1, MobileNetV2};
pub use models::{by_name, plain_net, simple_cnn, PlainNet, ResNetMini, SimpleCnn, MODEL_NAMES};
pub use resnet::Block;
pub use resnet::{
    resnet101, resnet152, resnet18, resnet34, resnet50, resnext50_32x4d, wide_resnet50_2, xresnet18, xresnet34,
    xresnet50, ResNet,
};

use crate::device::Gpu;
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::ops::{Conv2dArgs, Pool2dArgs};
use crate::rng::Rng;
use crate::shape::Shape;
use crate::store::ParamStore;
use crate::tensor::Tensor;

/// How a tensor starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// U(-bound, bound): PyTorch's default for conv and linear weights and biases
    /// (kaiming_uniform with a = sqrt(5) gives bound = 1 / sqrt(fan_in) for both).
    Uniform(f32),
    /// N(0, std): torchvision's kaiming_normal(mode="fan_out") for ResNet and MobileNet convs.
    Normal(f32),
    Const(f32),
    /// These values, in the tensor's layout: an imported model's weights (`onnx`).
    Data(std::sync::Arc<Vec<f32>>),
}

impl Init {
    /// The init of rows [a, b) of a tensor whose rows hold `row` values (a chunk, `chunks`).
    fn rows(&self, a: usize, b: usize, row: usize) -> Init {
        match self {
            Init::Data(d) => Init::Data(std::sync::Arc::new(d[a * row..(b * row).min(d.len())].to_vec())),
            other => other.clone(),
        }
    }
}

/// How `Net::conv2d` initialises weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvInit {
    /// PyTorch's nn.Conv2d default (uniform, bound 1/sqrt(fan_in)).
    Default,
    /// kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / (Cout*K*K)).
    KaimingFanOut,
    /// kaiming_normal_ with its defaults (fan_in): std = sqrt(2 / (Cin/g*K*K)) (DenseNet).
    KaimingNormalFanIn,
    /// kaiming_uniform_ with its defaults: bound = sqrt(6 / (Cin/g*K*K)) (SqueezeNet).
    KaimingUniformFanIn,
}

/// The arguments of `nn.Conv2d(cin, cout, k, stride, padding, groups, bias)` for `Net::conv2d`, with
/// PyTorch's defaults (stride 1, padding 0, groups 1, a bias) unless set:
/// `Conv2dSpec::new(cin, cout, 3).stride(2).padding(1).bias(false)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub cin: usize,
    pub cout: usize,
    /// The kernel's height and width.
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
}

impl Conv2dSpec {
    /// A `k` x `k` conv from `cin` to `cout` channels, stride 1, no padding, one group, a bias.
    pub const fn new(cin: usize, cout: usize, k: usize) -> Self {
        Conv2dSpec {
            cin,
            cout,
            k,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
        }
    }
    pub const fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub const fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    pub const fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    pub const fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

/// A model: builds its graph for an input of shape (N, C, H, W). Defined beside `Net`, which every
/// model file builds with, so the model files and `by_name`'s table import it without a circle.
pub trait Model {
    fn forward(&self, net: &mut Net, x: ValueId) -> Result<ValueId>;
    fn num_classes(&self) -> usize;
    /// The name prefix of the classifier head: what transfer learning replaces (and leaves
    /// unfrozen). torchvision's `fc.` unless the model says otherwise.
    fn head_prefix(&self) -> String {
        "fc.".into()
    }
}

/// A graph under construction plus the parameters it declared.
pub struct Net {
    pub graph: Graph,
    pub training: bool,
    prefix: Vec<String>,
    /// (name, shape, init, trainable)
    pub declared: Vec<(String, Shape, Init, bool)>,
    /// Host integer buffers declared (`<bn>.num_batches_tracked`).
    pub counters: Vec<String>,
    frozen: Vec<String>,
    /// When set, only parameters under this prefix train (transfer learning: the new head).
    train_only: Option<String>,
    pub conv_init: ConvInit,
    /// Every activation (ReLU / ReLU6 output) in model order, named by its scope: what
    /// activation statistics watch.
    pub activations: Vec<(String, ValueId)>,
    /// Build dropout layers as the identity even in training (comparisons with a reference
    /// whose random masks cannot be reproduced; PyTorch's `dropout=0.0`).
    pub dropout_off: bool,
}

impl Net {
    pub fn new(training: bool) -> Net {
        Net {
            graph: Graph::new(),
            training,
            prefix: Vec::new(),
            declared: Vec::new(),
            counters: Vec::new(),
            frozen: Vec::new(),
            train_only: None,
            conv_init: ConvInit::Default,
            activations: Vec::new(),
            dropout_off: false,
        }
    }

    /// Parameters whose names start with one of these prefixes get no gradient and no update.
    pub fn freeze(&mut self, prefixes: &[&str]) {
        self.frozen.extend(prefixes.iter().map(|p| p.to_string()));
    }

    /// Freeze every parameter except those whose names start with `prefix` (the head).
    pub fn freeze_all_but(&mut self, prefix: &str) {
        self.train_only = Some(prefix.to_string());
    }

    /// Run `f` with `name` appended to the naming prefix (`layer1`, then `0`, then `conv1`); an
    /// error from it names the innermost layer it came from (`layer1.0.conv1: ...`).
    pub fn scope<T>(&mut self, name: &str, f: impl FnOnce(&mut Net) -> Result<T>) -> Result<T> {
        self.prefix.push(name.to_string());
        let r = f(self).map_err(|e| e.in_layer(&self.prefix.join(".")));
        self.prefix.pop();
        r
    }

    fn full(&self, leaf: &str) -> String {
        let mut s = self.prefix.join(".");
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(leaf);
        s
    }

    fn param(&mut self, leaf: &str, shape: Shape, init: Init) -> ValueId {
        let name = self.full(leaf);
        self.named_param(&name, shape, init)
    }

    /// A parameter named `name` whatever the scope (an imported model's own tensor names);
    /// frozen by the same rules as `param`.
    pub(crate) fn named_param(&mut self, name: &str, shape: Shape, init: Init) -> ValueId {
        let name = name.to_string();
        let trainable = !self.frozen.iter().any(|p| name.starts_with(p.as_str()))
            && self.train_only.as_ref().is_none_or(|p| name.starts_with(p.as_str()));
        self.declared.push((name.clone(), shape.clone(), init, true));
        self.graph.param(&name, shape, trainable)
    }

    fn buffer(&mut self, leaf: &str, shape: Shape, init: Init) -> ValueId {
        let name = self.full(leaf);
        self.named_buffer(&name, shape, init)
    }

    /// A buffer (resident, not learned) named `name` whatever the scope.
    pub(crate) fn named_buffer(&mut self, name: &str, shape: Shape, init: Init) -> ValueId {
        let name = name.to_string();
        self.declared.push((name.clone(), shape.clone(), init, false));
        self.graph.state(&name, shape)
    }

    /// `nn.Conv2d` in the current scope: `nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)` is
    /// `net.conv2d(x, Conv2dSpec::new(3, 64, 7).stride(2).padding(3).bias(false))`.
    pub fn conv2d(&mut self, x: ValueId, spec: Conv2dSpec) -> Result<ValueId> {
        let Conv2dSpec {
            cin,
            cout,
            k,
            stride,
            padding,
            groups,
            bias,
        } = spec;
        let bound = 1.0 / ((cin / groups.max(1) * k * k) as f32).sqrt();
        let (w_init, b_init) = match self.conv_init {
            ConvInit::Default => (Init::Uniform(bound), Init::Uniform(bound)),
            // torchvision's rule for its ResNets, MobileNets and EfficientNets: zero biases
            ConvInit::KaimingFanOut => (Init::Normal((2.0 / (cout * k * k) as f32).sqrt()), Init::Const(0.0)),
            ConvInit::KaimingNormalFanIn => (Init::Normal(2f32.sqrt() * bound), Init::Const(0.0)),
            ConvInit::KaimingUniformFanIn => (Init::Uniform(6f32.sqrt() * bound), Init::Const(0.0)),
        };
        let w = self.param("weight", Shape::new(&[cout, cin / groups.max(1), k, k]), w_init);
        let b = bias.then(|| self.param("bias", Shape::new(&[cout]), b_init));
        let args = Conv2dArgs::new(stride, padding, 1, groups);
        self.graph.conv2d(x, w, b, args)
    }

    /// `nn.BatchNorm2d(c)` (momentum 0.1, eps 1e-5); `zero_gamma` starts the scale at 0.
    pub fn batch_norm(&mut self, x: ValueId, c: usize, zero_gamma: bool) -> Result<ValueId> {
        self.batch_norm_with(x, c, zero_gamma, 0.1, 1e-5)
    }

    /// `nn.BatchNorm2d(c, eps, momentum)` (MobileNetV3: eps 1e-3, momentum 0.01).
    pub fn batch_norm_with(
        &mut self,
        x: ValueId,
        c: usize,
        zero_gamma: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<ValueId> {
        let gamma = self.param(
            "weight",
            Shape::new(&[c]),
            Init::Const(if zero_gamma { 0.0 } else { 1.0 }),
        );
        let beta = self.param("bias", Shape::new(&[c]), Init::Const(0.0));
        let rm = self.buffer("running_mean", Shape::new(&[c]), Init::Const(0.0));
        let rv = self.buffer("running_var", Shape::new(&[c]), Init::Const(1.0));
        let counter = self.full("num_batches_tracked");
        self.counters.push(counter);
        let training = self.training;
        self.graph.batch_norm(x, [gamma, beta, rm, rv], training, momentum, eps)
    }

    /// `nn.Linear(fin, fout)` with PyTorch's default init.
    pub fn linear(&mut self, x: ValueId, fin: usize, fout: usize) -> Result<ValueId> {
        let bound = 1.0 / (fin as f32).sqrt();
        self.linear_with(x, fin, fout, Init::Uniform(bound), Init::Uniform(bound))
    }

    /// `nn.Linear(fin, fout)` with the given weight and bias init.
    pub fn linear_with(&mut self, x: ValueId, fin: usize, fout: usize, w: Init, b: Init) -> Result<ValueId> {
        let (w_name, b_name) = (self.full("weight"), self.full("bias"));
        self.linear_named(x, &w_name, Some((&b_name, b)), [fout, fin], w)
    }

    /// A linear layer whose (fout, fin) weight is named `w_name` (and its bias `bias.0`),
    /// whatever the scope. A weight past one storage binding is held as row chunks
    /// (`chunks`), one linear layer each, their outputs concatenated; its bias must then be
    /// named like it (`fc.weight`, `fc.bias`), so that checkpoints split both alike.
    pub(crate) fn linear_named(
        &mut self,
        x: ValueId,
        w_name: &str,
        bias: Option<(&str, Init)>,
        [fout, fin]: [usize; 2],
        w_init: Init,
    ) -> Result<ValueId> {
        let Some(rows) = chunks::row_chunks(&[fout, fin]) else {
            let w = self.named_param(w_name, Shape::new(&[fout, fin]), w_init);
            let b = bias.map(|(name, init)| self.named_param(name, Shape::new(&[fout]), init));
            return self.graph.linear(x, w, b);
        };
        if let Some((b, _)) = bias
            .as_ref()
            .filter(|(b, _)| chunks::bias_of(w_name).as_deref() != Some(*b))
        {
            return Err(crate::error::Error::arg(
                "linear",
                w_name,
                format!(
                    "a weight past one storage binding is held in row chunks, and its bias '{b}' must be named like it"
                ),
            ));
        }
        let [n, _] = self.graph.shape(x).matrix("linear", "input (N, in_features)")?;
        let mut parts = Vec::with_capacity(rows.len());
        for (i, &(a, e)) in rows.iter().enumerate() {
            let w = self.named_param(
                &chunks::chunk_name(w_name, i),
                Shape::new(&[e - a, fin]),
                w_init.rows(a, e, fin),
            );
            let b = bias.as_ref().map(|(name, init)| {
                self.named_param(&chunks::chunk_name(name, i), Shape::new(&[e - a]), init.rows(a, e, 1))
            });
            let y = self.graph.linear(x, w, b)?;
            parts.push(self.graph.reshape(y, Shape::new(&[n, e - a, 1, 1])));
        }
        let y = self.graph.concat(&parts)?;
        Ok(self.graph.reshape(y, Shape::new(&[n, fout])))
    }

    /// Adaptive average pool to 1x1 and flatten: (N, C, H, W) -> (N, C), the classifier's input.
    pub fn global_pool(&mut self, x: ValueId) -> Result<ValueId> {
        let p = self.graph.adaptive_avg_pool2d(x, [1, 1])?;
        self.graph.flatten(p)
    }

    pub fn relu(&mut self, x: ValueId) -> ValueId {
        let y = self.graph.relu(x);
        self.record_activation(y);
        y
    }

    pub fn relu6(&mut self, x: ValueId) -> ValueId {
        let y = self.graph.relu6(x);
        self.record_activation(y);
        y
    }

    /// `nn.Dropout(p)`: in training (unless `dropout_off`); the identity in eval.
    pub fn dropout(&mut self, x: ValueId, p: f32) -> Result<ValueId> {
        if !self.training || self.dropout_off {
            return Ok(x);
        }
        self.graph.dropout(x, p, false)
    }

    /// torchvision's `StochasticDepth(p, "row")`: a residual branch dropped for whole images
    /// with probability p in training (unless `dropout_off`); the identity in eval.
    pub fn stochastic_depth(&mut self, x: ValueId, p: f32) -> Result<ValueId> {
        if !self.training || self.dropout_off {
            return Ok(x);
        }
        self.graph.dropout(x, p, true)
    }

    /// Any activation of `ops::Act` (`nn.SiLU`, `nn.Hardswish`, `nn.GELU`, ...).
    pub fn activation(&mut self, x: ValueId, act: crate::ops::Act) -> Result<ValueId> {
        let y = self.graph.activation(x, act)?;
        self.record_activation(y);
        Ok(y)
    }

    /// Name an activation after its scope (`layer1.0`, then `layer1.0.2` for the second there).
    fn record_activation(&mut self, v: ValueId) {
        let base = if self.prefix.is_empty() {
            "input".to_string()
        } else {
            self.prefix.join(".")
        };
        let same = self
            .activations
            .iter()
            .filter(|(n, _)| n == &base || n.starts_with(&format!("{base}#")))
            .count();
        let name = if same == 0 {
            base
        } else {
            format!("{base}#{}", same + 1)
        };
        self.activations.push((name, v));
    }

    /// Every tensor name the model has (parameters, buffers, counters): what a checkpoint holds.
    pub fn state_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.declared.iter().map(|d| d.0.clone()).collect();
        v.extend(self.counters.iter().cloned());
        v
    }

    pub fn max_pool2d(&mut self, x: ValueId, args: Pool2dArgs) -> Result<ValueId> {
        self.graph.max_pool2d(x, args)
    }

    /// Check that `store` holds exactly the model's tensors with the model's shapes: the error
    /// names every missing, unexpected and mis-shaped tensor (as PyTorch's load_state_dict).
    pub fn check_state(&self, store: &ParamStore, source: &str) -> Result<()> {
        let mut missing = Vec::new();
        let mut shapes = Vec::new();
        for (name, shape, _, _) in &self.declared {
            match store.get(name) {
                None => missing.push(name.clone()),
                Some(t) if t.shape() != shape => {
                    shapes.push(format!("{name}: checkpoint {}, model {shape}", t.shape()))
                }
                Some(_) => {}
            }
        }
        let known: std::collections::HashSet<&str> = self
            .declared
            .iter()
            .map(|d| d.0.as_str())
            .chain(self.counters.iter().map(|c| c.as_str()))
            .collect();
        let unexpected: Vec<String> = store
            .iter()
            .map(|(n, _)| n.clone())
            .chain(crate::device::lock(store.counters()).keys().cloned())
            .filter(|n| !known.contains(n.as_str()))
            .collect();
        if missing.is_empty() && shapes.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        let mut why = Vec::new();
        let list = |v: &[String]| {
            if v.len() > 8 {
                format!("{} ... ({} in all)", v[..8].join(", "), v.len())
            } else {
                v.join(", ")
            }
        };
        if !missing.is_empty() {
            why.push(format!("missing tensors: {}", list(&missing)));
        }
        if !unexpected.is_empty() {
            why.push(format!("unexpected tensors: {}", list(&unexpected)));
        }
        if !shapes.is_empty() {
            why.push(format!("mis-shaped tensors: {}", list(&shapes)));
        }
        Err(crate::error::Error::format(
            source,
            format!("does not fit the model: {}", why.join("; ")),
        ))
    }

    /// Create every declared tensor missing from `store`, drawn from `seed`.
    pub fn init_params(&self, gpu: &Gpu, store: &mut ParamStore, seed: u64) -> Result<()> {
        let mut rng = Rng::new(seed);
        for (name, shape, init, _) in &self.declared {
            let n = shape.numel();
            if let Init::Data(d) = init {
                if d.len() != n {
                    return Err(crate::error::Error::shape(
                        format!("initial value of {name}"),
                        format!("{n} values ({shape})"),
                        d.len(),
                    ));
                }
            }
            // draws per value; a parameter already in the store (a checkpoint's) skips its draws
            // so that the ones after it get the values they would have had
            let draws = match init {
                Init::Uniform(_) => Rng::UNIFORM_DRAWS,
                Init::Normal(_) => Rng::NORMAL_DRAWS,
                Init::Const(_) | Init::Data(_) => 0,
            };
            if store.get(name).is_some() {
                rng.skip(n as u64 * draws);
                continue;
            }
            let data: Vec<f32> = match init {
                Init::Uniform(b) => rng.vec(n, -*b as f64, *b as f64),
                Init::Normal(std) => rng.normals(n, *std as f64),
                Init::Const(c) => vec![*c; n],
                Init::Data(d) => d.to_vec(),
            };
            store.insert(name.clone(), Tensor::from_slice(gpu, &data, shape.clone())?);
        }
        for c in &self.counters {
            if store.counter(c).is_none() {
                store.set_counter(c.clone(), 0);
            }
        }
        Ok(())
    }
}
