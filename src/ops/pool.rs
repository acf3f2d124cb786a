//! Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d. Arguments, shape rules, entry points.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{window_out, Shape};
use crate::tensor::{DType, Tensor};

/// Window arguments of max_pool2d and avg_pool2d (square windows; `ceil_mode=False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dArgs {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// max_pool2d only; must be 1 for avg_pool2d.
    pub dilation: usize,
    /// avg_pool2d only: divide by the padded window (PyTorch's default, true).
    pub count_include_pad: bool,
    /// Round the output size up, so a last partial window counts (PyTorch's ceil_mode).
    pub ceil_mode: bool,
}

impl Pool2dArgs {
    /// A `kernel` x `kernel` window with stride = kernel, no padding (PyTorch's defaults).
    pub fn new(kernel: usize) -> Self {
        Pool2dArgs {
            kernel,
            stride: kernel,
            padding: 0,
            dilation: 1,
            count_include_pad: true,
            ceil_mode: false,
        }
    }
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
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
            if v == 0 {
                return Err(Error::arg(op, name, "must be at least 1"));
            }
        }
        if op == "avg_pool2d" && args.dilation != 1 {
            return Err(Error::arg(op, "dilation", "avg_pool2d has no dilation; use 1"));
        }
        if args.padding * 2 > args.kernel {
            return Err(Error::arg(
                op,
                "padding",
                format!("{} is more than half the kernel size {}", args.padding, args.kernel),
            ));
        }
        let mut oh = window_out(op, h, args.kernel, args.stride, args.padding, args.dilation)?;
        let mut ow = window_out(op, w, args.kernel, args.stride, args.padding, args.dilation)?;
        if args.ceil_mode {
            // PyTorch: one more window if it starts inside the input or its left padding
            let span = args.dilation * (args.kernel - 1) + 1;
            let more = |input: usize, out: usize| {
                let rem = (input + 2 * args.padding - span) % args.stride;
                if rem != 0 && out * args.stride < input + args.padding {
                    out + 1
                } else {
                    out
                }
            };
            oh = more(h, oh);
            ow = more(w, ow);
        }
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

/// The launcher of one pooling kernel: geometry, input and output buffers.
type PoolKernel = fn(&Gpu, &Pool2dGeom, DType, &wgpu::Buffer, &wgpu::Buffer) -> Result<crate::device::Dispatch>;

fn pool(op: &str, gpu: &Gpu, x: &Tensor, geom: Pool2dGeom, kernel: PoolKernel) -> Result<Tensor> {
    let storage = x.expect_activation(op)?;
    let y = Tensor::empty_of(gpu, geom.out_shape(), storage)?;
    gpu.run(&[kernel(gpu, &geom, storage, x.buffer(), y.buffer())?]);
    Ok(y)
}

/// `torch.nn.functional.max_pool2d`. x: (N, C, H, W).
pub fn max_pool2d(gpu: &Gpu, x: &Tensor, args: Pool2dArgs) -> Result<Tensor> {
    pool(
        "max_pool2d",
        gpu,
        x,
        Pool2dGeom::new("max_pool2d", x.shape(), args)?,
        kernels::pool::max_forward,
    )
}

/// `torch.nn.functional.avg_pool2d`. x: (N, C, H, W).
pub fn avg_pool2d(gpu: &Gpu, x: &Tensor, args: Pool2dArgs) -> Result<Tensor> {
    pool(
        "avg_pool2d",
        gpu,
        x,
        Pool2dGeom::new("avg_pool2d", x.shape(), args)?,
        kernels::pool::avg_forward,
    )
}

/// `torch.nn.functional.adaptive_avg_pool2d`. x: (N, C, H, W) -> (N, C, out[0], out[1]).
pub fn adaptive_avg_pool2d(gpu: &Gpu, x: &Tensor, out: [usize; 2]) -> Result<Tensor> {
    let geom = Pool2dGeom::adaptive(x.shape(), out)?;
    pool("adaptive_avg_pool2d", gpu, x, geom, kernels::pool::adaptive_avg_forward)
}
