//! A 2-D convolution's arguments and its checked sizes: the contract between the conv shape rule
//! (`ops::conv`), the graph's `Op::Conv2d` and the conv kernels, which all read it from here.

use super::{window_out, Shape};
use crate::error::{Error, Result};

/// Arguments of a 2-D convolution, as in `torch.nn.functional.conv2d`: stride, padding and
/// dilation per axis (height, width), so 1x7 / 7x1 convs pad (0, 3) / (3, 0); the kernel's size
/// comes from the weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dArgs {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dArgs {
    fn default() -> Self {
        Conv2dArgs::new(1, 0, 1, 1)
    }
}

impl Conv2dArgs {
    /// The same stride, padding and dilation on both axes.
    pub fn new(stride: usize, padding: usize, dilation: usize, groups: usize) -> Self {
        Conv2dArgs {
            stride: [stride; 2],
            padding: [padding; 2],
            dilation: [dilation; 2],
            groups,
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s; 2];
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p; 2];
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d; 2];
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Stride, padding and dilation as (height, width) pairs.
    pub fn hw(mut self, stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Self {
        self.stride = stride;
        self.padding = padding;
        self.dilation = dilation;
        self
    }
    /// Whether every per-axis value is the same on both axes.
    pub fn is_square(&self) -> bool {
        self.stride[0] == self.stride[1] && self.padding[0] == self.padding[1] && self.dilation[0] == self.dilation[1]
    }
}

/// Every size of one convolution, checked: the contract between the shape rule and the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeom {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub args: Conv2dArgs,
}

impl Conv2dGeom {
    /// The fewest bytes a pass of this conv moves (f32; each tensor read or written once):
    /// forward x + w + y, input gradient dy + w + dx, weight gradient dy + x + dw, backward both.
    pub fn min_bytes(&self, pass: &str) -> f64 {
        let x = (self.n * self.cin * self.h * self.w) as f64;
        let y = (self.n * self.cout * self.oh * self.ow) as f64;
        let w = (self.cout * (self.cin / self.args.groups) * self.kh * self.kw) as f64;
        match pass {
            // f16 activations, f32 weights
            "fwd_f16" => 2.0 * (x + y) + 4.0 * w,
            "forward" | "fwd_stats" | "bwd_data" | "bwd_weight" => 4.0 * (x + y + w),
            _ => 8.0 * (x + y + w),
        }
    }

    /// Shape rule: x (N, Cin, H, W), weight (Cout, Cin/groups, KH, KW) -> y (N, Cout, OH, OW).
    pub fn new(x: &Shape, weight: &Shape, args: Conv2dArgs) -> Result<Conv2dGeom> {
        const OP: &str = "conv2d";
        let [n, cin, h, w] = x.nchw(OP, "input")?;
        let [cout, cin_g, kh, kw] = weight.nchw(OP, "weight (Cout, Cin/groups, KH, KW)")?;
        for (name, v) in [
            ("stride", args.stride),
            ("dilation", args.dilation),
            ("groups", [args.groups; 2]),
        ] {
            if v.contains(&0) {
                return Err(Error::arg(OP, name, format!("{v:?} must be at least 1")));
            }
        }
        if kh == 0 || kw == 0 {
            return Err(Error::shape(OP, "a kernel of at least 1x1", weight));
        }
        let g = args.groups;
        if cin % g != 0 || cout % g != 0 {
            return Err(Error::arg(
                OP,
                "groups",
                format!("{g} must divide input channels {cin} and output channels {cout}"),
            ));
        }
        if cin_g * g != cin {
            return Err(Error::shape(
                OP,
                format!(
                    "weight with Cin/groups = {}/{g} = {} input channels (input {x})",
                    cin,
                    cin / g
                ),
                weight,
            ));
        }
        let oh = window_out(OP, h, kh, args.stride[0], args.padding[0], args.dilation[0])?;
        let ow = window_out(OP, w, kw, args.stride[1], args.padding[1], args.dilation[1])?;
        Ok(Conv2dGeom {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            oh,
            ow,
            args,
        })
    }

    pub fn out_shape(&self) -> Shape {
        Shape::new(&[self.n, self.cout, self.oh, self.ow])
    }

    /// Multiply-adds times two: 2 * N * Cout * OH * OW * (Cin/groups) * KH * KW.
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.cout * self.oh * self.ow * (self.cin / self.args.groups) * self.kh * self.kw) as f64
    }
}
