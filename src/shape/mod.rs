//! Sizes and attributes, the floor under graph, ops and kernels: `Shape`, element types, the
//! arguments and checked sizes of conv and pooling (their output-size formulas in one place), and
//! the attributes the graph's ops carry. Plain data with no GPU, so every layer above reads them
//! from here and none has to import another for a struct.

mod attrs;
mod conv;
mod dtype;
mod pool;

pub use attrs::{Act, DropoutArgs, Epilogue, Pad2dArgs, UpsampleArgs};
pub use conv::{Conv2dArgs, Conv2dGeom};
pub use dtype::DType;
pub use pool::{Pool2dArgs, Pool2dGeom};

use crate::error::{Error, Result};
use std::fmt;

/// A tensor shape, outermost dimension first (NCHW for images).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn new(dims: &[usize]) -> Self {
        Shape(dims.to_vec())
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
    /// The four dims of an NCHW shape, or an error naming the op.
    pub fn nchw(&self, op: &str, what: &str) -> Result<[usize; 4]> {
        match self.0[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(Error::shape(op, format!("{what} of rank 4 (N, C, H, W)"), self)),
        }
    }
    /// The two dims of a matrix shape, or an error naming the op.
    pub fn matrix(&self, op: &str, what: &str) -> Result<[usize; 2]> {
        match self.0[..] {
            [r, c] => Ok([r, c]),
            _ => Err(Error::shape(op, format!("{what} of rank 2"), self)),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}

impl<const R: usize> From<[usize; R]> for Shape {
    fn from(d: [usize; R]) -> Self {
        Shape(d.to_vec())
    }
}

/// Output length of a sliding window (conv or pool) along one dimension, as PyTorch computes it
/// with `ceil_mode=False`: floor((in + 2*pad - dilation*(k-1) - 1) / stride) + 1.
/// Errors when the window does not fit even once.
pub fn window_out(op: &str, input: usize, k: usize, stride: usize, pad: usize, dilation: usize) -> Result<usize> {
    let span = dilation * (k - 1) + 1;
    let padded = input + 2 * pad;
    if padded < span {
        return Err(Error::shape(
            op,
            format!(
                "an input of at least {} (kernel span {span} minus padding 2*{pad})",
                span.saturating_sub(2 * pad)
            ),
            format!("size {input}"),
        ));
    }
    Ok((padded - span) / stride + 1)
}

/// (batch, channels, spatial size) of a shape with at least two dims: N, C and the product of
/// the dims after them (1 for an (N, C) matrix), the view of the per-channel kernels (batch
/// norm, channel sums) that treat every position of a channel alike.
pub fn batch_channels_spatial(dims: &[usize]) -> [usize; 3] {
    [
        dims[0],
        dims.get(1).copied().unwrap_or(1),
        dims.iter().skip(2).product(),
    ]
}
