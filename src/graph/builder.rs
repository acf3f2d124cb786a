//! Building graphs: one method per forward op, each running the op's shape rule so a bad graph
//! is rejected where it is built, with the op and the shapes in the error.

use super::{Graph, Op, ValueId, ValueKind};
use crate::error::{Error, Result};
use crate::ops::{Conv2dArgs, Conv2dGeom, Pool2dArgs, Pool2dGeom};
use crate::shape::Shape;
use crate::tensor::DType;

impl Graph {
    /// A float input written by the host each run, e.g. images (N, C, H, W).
    pub fn input(&mut self, name: &str, shape: impl Into<Shape>) -> ValueId {
        self.add_value(name, shape.into(), DType::F32, ValueKind::Input)
    }

    /// Class labels (N), i32, written by the host each run.
    pub fn labels(&mut self, name: &str, n: usize) -> ValueId {
        self.add_value(name, Shape::new(&[n]), DType::I32, ValueKind::Input)
    }

    /// A learned tensor; its buffer comes from the parameter store under `name`.
    pub fn param(&mut self, name: &str, shape: impl Into<Shape>, trainable: bool) -> ValueId {
        self.add_value(name, shape.into(), DType::F32, ValueKind::Param { trainable })
    }

    /// Resident state such as running statistics, from the parameter store under `name`.
    pub fn state(&mut self, name: &str, shape: impl Into<Shape>) -> ValueId {
        self.add_value(name, shape.into(), DType::F32, ValueKind::State)
    }

    fn f32_out(&mut self, op: Op, inputs: Vec<ValueId>, shape: Shape) -> ValueId {
        self.add_node(op, inputs, vec![(shape, DType::F32)])[0]
    }

    fn expect_vector(&self, op: &str, what: &str, v: ValueId, len: usize) -> Result<()> {
        if self.shape(v).dims() != [len] {
            return Err(Error::shape(op, format!("{what} of shape [{len}]"), self.shape(v)));
        }
        Ok(())
    }

    pub fn conv2d(&mut self, x: ValueId, w: ValueId, bias: Option<ValueId>, args: Conv2dArgs) -> Result<ValueId> {
        let g = Conv2dGeom::new(self.shape(x), self.shape(w), args)?;
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            self.expect_vector("conv2d", "bias", b, g.cout)?;
            inputs.push(b);
        }
        Ok(self.f32_out(
            Op::Conv2d {
                args,
                bias: bias.is_some(),
                epi: Default::default(),
                stats: false,
            },
            inputs,
            g.out_shape(),
        ))
    }

    /// Batch norm over (N, H, W). `stats` = [gamma, beta, running_mean, running_var], each (C).
    pub fn batch_norm(
        &mut self,
        x: ValueId,
        stats: [ValueId; 4],
        training: bool,
        momentum: f32,
        eps: f32,
    ) -> Result<ValueId> {
        let [n, c, h, w] = self.shape(x).nchw("batch_norm", "input")?;
        for (what, v) in ["weight", "bias", "running_mean", "running_var"].into_iter().zip(stats) {
            self.expect_vector("batch_norm", what, v, c)?;
        }
        if training && n * h * w < 2 {
            return Err(Error::shape(
                "batch_norm",
                "more than 1 value per channel in training",
                self.shape(x),
            ));
        }
        let op = Op::BatchNorm {
            training,
            momentum,
            eps,
            epi: Default::default(),
            partials: false,
        };
        let shape = self.shape(x).clone();
        let mut outs = vec![(shape, DType::F32)];
        if training {
            outs.push((Shape::new(&[c]), DType::F32));
            outs.push((Shape::new(&[c]), DType::F32));
        }
        Ok(self.add_node(op, [&[x][..], &stats[..]].concat(), outs)[0])
    }

    pub fn add(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        if self.shape(a) != self.shape(b) {
            return Err(Error::shape(
                "add",
                format!("two tensors of shape {}", self.shape(a)),
                self.shape(b),
            ));
        }
        let s = self.shape(a).clone();
        Ok(self.f32_out(Op::Add, vec![a, b], s))
    }

    pub fn max_pool2d(&mut self, x: ValueId, args: Pool2dArgs) -> Result<ValueId> {
        let g = Pool2dGeom::new("max_pool2d", self.shape(x), args)?;
        Ok(self.f32_out(Op::MaxPool2d(args), vec![x], g.out_shape()))
    }

    pub fn avg_pool2d(&mut self, x: ValueId, args: Pool2dArgs) -> Result<ValueId> {
        let g = Pool2dGeom::new("avg_pool2d", self.shape(x), args)?;
        Ok(self.f32_out(Op::AvgPool2d(args), vec![x], g.out_shape()))
    }

    pub fn adaptive_avg_pool2d(&mut self, x: ValueId, out: [usize; 2]) -> Result<ValueId> {
        let g = Pool2dGeom::adaptive(self.shape(x), out)?;
        Ok(self.f32_out(Op::AdaptiveAvgPool2d(out), vec![x], g.out_shape()))
    }

    /// (N, ...) -> (N, prod(...)): a view of x's buffer.
    pub fn flatten(&mut self, x: ValueId) -> Result<ValueId> {
        let d = self.shape(x).dims().to_vec();
        if d.is_empty() {
            return Err(Error::shape("flatten", "a tensor of rank >= 1", self.shape(x)));
        }
        Ok(self.reshape(x, Shape::new(&[d[0], d[1..].iter().product()])))
    }

    pub(crate) fn reshape(&mut self, x: ValueId, shape: Shape) -> ValueId {
        debug_assert_eq!(shape.numel(), self.shape(x).numel());
        let dtype = self.value(x).dtype;
        self.add_node(Op::Reshape, vec![x], vec![(shape, dtype)])[0]
    }

    pub fn linear(&mut self, x: ValueId, w: ValueId, bias: Option<ValueId>) -> Result<ValueId> {
        let [n, fin] = self.shape(x).matrix("linear", "input (N, in_features)")?;
        let [fout, win] = self.shape(w).matrix("linear", "weight (out_features, in_features)")?;
        if win != fin {
            return Err(Error::shape(
                "linear",
                format!("weight with {fin} in_features (input {})", self.shape(x)),
                self.shape(w),
            ));
        }
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            self.expect_vector("linear", "bias", b, fout)?;
            inputs.push(b);
        }
        Ok(self.f32_out(Op::Linear, inputs, Shape::new(&[n, fout])))
    }

    fn check_logits(&self, op: &str, logits: ValueId, labels: ValueId) -> Result<()> {
        let [n, _] = self.shape(logits).matrix(op, "logits (N, classes)")?;
        if self.value(labels).dtype != DType::I32 || self.shape(labels).dims() != [n] {
            return Err(Error::shape(
                op,
                format!("i32 labels of shape [{n}]"),
                self.shape(labels),
            ));
        }
        Ok(())
    }

    pub fn cross_entropy(&mut self, logits: ValueId, labels: ValueId, smoothing: f32) -> Result<ValueId> {
        self.check_logits("cross_entropy", logits, labels)?;
        if !(0.0..=1.0).contains(&smoothing) {
            return Err(Error::arg(
                "cross_entropy",
                "label_smoothing",
                format!("{smoothing} is not in [0, 1]"),
            ));
        }
        Ok(self.f32_out(Op::CrossEntropy { smoothing }, vec![logits, labels], Shape::new(&[1])))
    }

    pub fn topk_accuracy(&mut self, logits: ValueId, labels: ValueId, k: usize) -> Result<ValueId> {
        self.check_logits("topk_accuracy", logits, labels)?;
        if k == 0 {
            return Err(Error::arg("topk_accuracy", "k", "must be at least 1"));
        }
        Ok(self.f32_out(Op::TopkAccuracy { k }, vec![logits, labels], Shape::new(&[1])))
    }

    /// Activation statistics of `x` (any shape): [mean, std, fraction with |x| <= near,
    /// histogram of `bins` equal bins over [0, hi)], 3 + bins values.
    pub fn act_stats(&mut self, x: ValueId, bins: usize, hi: f32, near: f32) -> Result<ValueId> {
        crate::kernels::stats::check_config(bins, hi, near)?;
        Ok(self.f32_out(Op::ActStats { bins, hi, near }, vec![x], Shape::new(&[3 + bins])))
    }
}
