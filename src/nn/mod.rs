//! Layers and models. A model writes itself into a `Net`: the graph being built, with
//! torchvision-style names (`layer1.0.conv1.weight`) from a prefix stack, and the list of
//! parameters and buffers it needs with their PyTorch default initialisation.

mod models;

pub use models::{simple_cnn, Model};

use crate::device::Gpu;
use crate::error::Result;
use crate::exec::ParamStore;
use crate::graph::{Graph, ValueId};
use crate::ops::{Conv2dArgs, Pool2dArgs};
use crate::rng::Rng;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// How a tensor starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// U(-bound, bound): PyTorch's default for conv and linear weights and biases
    /// (kaiming_uniform with a = sqrt(5) gives bound = 1 / sqrt(fan_in) for both).
    Uniform(f32),
    Const(f32),
}

/// A graph under construction plus the parameters it declared.
pub struct Net {
    pub graph: Graph,
    pub training: bool,
    prefix: Vec<String>,
    /// (name, shape, init, trainable)
    pub declared: Vec<(String, Shape, Init, bool)>,
    frozen: Vec<String>,
}

impl Net {
    pub fn new(training: bool) -> Net {
        Net {
            graph: Graph::new(),
            training,
            prefix: Vec::new(),
            declared: Vec::new(),
            frozen: Vec::new(),
        }
    }

    /// Parameters whose names start with one of these prefixes get no gradient and no update.
    pub fn freeze(&mut self, prefixes: &[&str]) {
        self.frozen.extend(prefixes.iter().map(|p| p.to_string()));
    }

    /// Run `f` with `name` appended to the naming prefix (`layer1`, then `0`, then `conv1`).
    pub fn scope<T>(&mut self, name: &str, f: impl FnOnce(&mut Net) -> Result<T>) -> Result<T> {
        self.prefix.push(name.to_string());
        let r = f(self);
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
        let trainable = !self.frozen.iter().any(|p| name.starts_with(p.as_str()));
        self.declared.push((name.clone(), shape.clone(), init, true));
        self.graph.param(&name, shape, trainable)
    }

    fn buffer(&mut self, leaf: &str, shape: Shape, init: Init) -> ValueId {
        let name = self.full(leaf);
        self.declared.push((name.clone(), shape.clone(), init, false));
        self.graph.state(&name, shape)
    }

    /// `nn.Conv2d(cin, cout, k, stride, padding, groups, bias)` in the current scope.
    #[allow(clippy::too_many_arguments)]
    pub fn conv2d(
        &mut self,
        x: ValueId,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        bias: bool,
    ) -> Result<ValueId> {
        let bound = 1.0 / ((cin / groups.max(1) * k * k) as f32).sqrt();
        let w = self.param(
            "weight",
            Shape::new(&[cout, cin / groups.max(1), k, k]),
            Init::Uniform(bound),
        );
        let b = bias.then(|| self.param("bias", Shape::new(&[cout]), Init::Uniform(bound)));
        let args = Conv2dArgs {
            stride,
            padding,
            dilation: 1,
            groups,
        };
        self.graph.conv2d(x, w, b, args)
    }

    /// `nn.BatchNorm2d(c)` (momentum 0.1, eps 1e-5); `zero_gamma` starts the scale at 0.
    pub fn batch_norm(&mut self, x: ValueId, c: usize, zero_gamma: bool) -> Result<ValueId> {
        let gamma = self.param(
            "weight",
            Shape::new(&[c]),
            Init::Const(if zero_gamma { 0.0 } else { 1.0 }),
        );
        let beta = self.param("bias", Shape::new(&[c]), Init::Const(0.0));
        let rm = self.buffer("running_mean", Shape::new(&[c]), Init::Const(0.0));
        let rv = self.buffer("running_var", Shape::new(&[c]), Init::Const(1.0));
        let training = self.training;
        self.graph.batch_norm(x, [gamma, beta, rm, rv], training, 0.1, 1e-5)
    }

    /// `nn.Linear(fin, fout)`.
    pub fn linear(&mut self, x: ValueId, fin: usize, fout: usize) -> Result<ValueId> {
        let bound = 1.0 / (fin as f32).sqrt();
        let w = self.param("weight", Shape::new(&[fout, fin]), Init::Uniform(bound));
        let b = self.param("bias", Shape::new(&[fout]), Init::Uniform(bound));
        self.graph.linear(x, w, Some(b))
    }

    pub fn relu(&mut self, x: ValueId) -> ValueId {
        self.graph.relu(x)
    }

    pub fn max_pool2d(&mut self, x: ValueId, args: Pool2dArgs) -> Result<ValueId> {
        self.graph.max_pool2d(x, args)
    }

    /// Create every declared tensor missing from `store`, drawn from `seed`.
    pub fn init_params(&self, gpu: &Gpu, store: &mut ParamStore, seed: u64) -> Result<()> {
        let mut rng = Rng::new(seed);
        for (name, shape, init, _) in &self.declared {
            let n = shape.numel();
            let data: Vec<f32> = match *init {
                Init::Uniform(b) => rng.vec(n, -b as f64, b as f64),
                Init::Const(c) => vec![c; n],
            };
            if store.get(name).is_none() {
                store.insert(name.clone(), Tensor::from_slice(gpu, &data, shape.clone())?);
            }
        }
        Ok(())
    }
}
