//! Building graphs: the values a graph starts from (inputs, labels, parameters, state). The
//! builder of each op lives with its family in `ops/` (`Graph::conv2d` in `ops/conv.rs`, ...),
//! each running the op's shape rule so a bad graph is rejected where it is built, with the op
//! and the shapes in the error.

use super::{Graph, ValueId, ValueKind};
use crate::error::{Error, Result};
use crate::shape::{DType, Shape};

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

    /// An error unless `v` is a vector of `len` values (a bias, a batch norm's statistics).
    pub(crate) fn expect_vector(&self, op: &str, what: &str, v: ValueId, len: usize) -> Result<()> {
        if self.shape(v).dims() != [len] {
            return Err(Error::shape(op, format!("{what} of shape [{len}]"), self.shape(v)));
        }
        Ok(())
    }
}
