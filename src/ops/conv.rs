//! conv2d: arguments, the shape rule, and the functional entry point.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{window_out, Shape};
use crate::tensor::{DType, Tensor};

/// Arguments of a 2-D convolution, as in `torch.nn.functional.conv2d` (square stride, padding and
/// dilation; the kernel may be rectangular: its size comes from the weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dArgs {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl Default for Conv2dArgs {
    fn default() -> Self {
        Conv2dArgs {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
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
            ("groups", args.groups),
        ] {
            if v == 0 {
                return Err(Error::arg(OP, name, "must be at least 1"));
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
        let oh = window_out(OP, h, kh, args.stride, args.padding, args.dilation)?;
        let ow = window_out(OP, w, kw, args.stride, args.padding, args.dilation)?;
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

/// y = conv2d(x, weight) + bias, as `torch.nn.functional.conv2d`.
/// x: (N, Cin, H, W); weight: (Cout, Cin/groups, KH, KW); bias: (Cout).
pub fn conv2d(gpu: &Gpu, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, args: Conv2dArgs) -> Result<Tensor> {
    let storage = x.expect_activation("conv2d input")?;
    weight.expect_dtype("conv2d weight", DType::F32)?;
    let geom = Conv2dGeom::new(x.shape(), weight.shape(), args)?;
    if let Some(b) = bias {
        b.expect_dtype("conv2d bias", DType::F32)?;
        if b.dims() != [geom.cout] {
            return Err(Error::shape(
                "conv2d",
                format!("bias of shape [{}]", geom.cout),
                b.shape(),
            ));
        }
    }
    let y = Tensor::empty_of(gpu, geom.out_shape(), storage)?;
    let ds = kernels::conv::forward(
        gpu,
        &geom,
        Default::default(),
        storage,
        &kernels::conv::ForwardBuffers {
            x: x.buffer(),
            w: weight.buffer(),
            bias: bias.map(|b| b.buffer()),
            residual: None,
            y: y.buffer(),
            stats: None,
        },
    )?;
    gpu.run(&ds);
    Ok(y)
}
