//! Pooling's window arguments and its checked sizes, shared by the pool shape rules
//! (`ops::pool`), the graph's `Op`s and the pool kernels.

use super::{window_out, Shape};
use crate::error::{Error, Result};

/// Window arguments of max_pool2d and avg_pool2d, per axis (height, width): square windows
/// from `new`, `stride`, `padding` and `dilation`; non-square ones from the `_hw` forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dArgs {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    /// max_pool2d only; must be 1 for avg_pool2d.
    pub dilation: [usize; 2],
    /// avg_pool2d only: divide by the padded window (PyTorch's default, true).
    pub count_include_pad: bool,
    /// Round the output size up, so a last partial window counts (PyTorch's ceil_mode).
    pub ceil_mode: bool,
}

impl Pool2dArgs {
    /// A `kernel` x `kernel` window with stride = kernel, no padding (PyTorch's defaults).
    pub fn new(kernel: usize) -> Self {
        Self::new_hw(kernel, kernel)
    }
    /// A `kh` x `kw` window with stride = the window, no padding.
    pub fn new_hw(kh: usize, kw: usize) -> Self {
        Pool2dArgs {
            kernel: [kh, kw],
            stride: [kh, kw],
            padding: [0, 0],
            dilation: [1, 1],
            count_include_pad: true,
            ceil_mode: false,
        }
    }
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    pub fn stride(self, s: usize) -> Self {
        self.stride_hw(s, s)
    }
    pub fn stride_hw(mut self, sh: usize, sw: usize) -> Self {
        self.stride = [sh, sw];
        self
    }
    pub fn padding(self, p: usize) -> Self {
        self.padding_hw(p, p)
    }
    pub fn padding_hw(mut self, ph: usize, pw: usize) -> Self {
        self.padding = [ph, pw];
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
}

/// The sizes of one pooling: x (N, C, H, W) -> y (N, C, OH, OW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub args: Pool2dArgs,
}

impl Pool2dGeom {
    /// Shape rule of max_pool2d / avg_pool2d, with PyTorch's argument checks.
    pub fn new(op: &str, x: &Shape, args: Pool2dArgs) -> Result<Pool2dGeom> {
        let [n, c, h, w] = x.nchw(op, "input")?;
        for (name, v) in [
            ("kernel", args.kernel),
            ("stride", args.stride),
            ("dilation", args.dilation),
        ] {
            if v.contains(&0) {
                return Err(Error::arg(op, name, format!("{v:?} must be at least 1")));
            }
        }
        if op == "avg_pool2d" && args.dilation != [1, 1] {
            return Err(Error::arg(op, "dilation", "avg_pool2d has no dilation; use 1"));
        }
        // one axis: its output size, with PyTorch's checks and ceil mode
        let axis = |i: usize, input: usize| -> Result<usize> {
            let (k, s, p, d) = (args.kernel[i], args.stride[i], args.padding[i], args.dilation[i]);
            if p * 2 > k {
                return Err(Error::arg(
                    op,
                    "padding",
                    format!("{p} is more than half the kernel size {k}"),
                ));
            }
            let out = window_out(op, input, k, s, p, d)?;
            // PyTorch: one more window if it starts inside the input or its left padding
            let span = d * (k - 1) + 1;
            let more = args.ceil_mode && !(input + 2 * p - span).is_multiple_of(s) && out * s < input + p;
            Ok(out + usize::from(more))
        };
        let (oh, ow) = (axis(0, h)?, axis(1, w)?);
        Ok(Pool2dGeom {
            n,
            c,
            h,
            w,
            oh,
            ow,
            args,
        })
    }

    /// Shape rule of adaptive_avg_pool2d: any output size from 1 up.
    pub fn adaptive(x: &Shape, out: [usize; 2]) -> Result<Pool2dGeom> {
        const OP: &str = "adaptive_avg_pool2d";
        let [n, c, h, w] = x.nchw(OP, "input")?;
        if out[0] == 0 || out[1] == 0 {
            return Err(Error::arg(OP, "output_size", format!("{out:?} must be at least 1x1")));
        }
        if h == 0 || w == 0 {
            return Err(Error::shape(OP, "a non-empty input", x));
        }
        Ok(Pool2dGeom {
            n,
            c,
            h,
            w,
            oh: out[0],
            ow: out[1],
            args: Pool2dArgs::new(1),
        })
    }

    pub fn out_shape(&self) -> Shape {
        Shape::new(&[self.n, self.c, self.oh, self.ow])
    }
}
