//! The upsampling family, in one place: `nn.Upsample(scale_factor=s, mode="nearest" |
//! "bilinear")` with align_corners=False for an integer s (the 2x of FPN and U-Net decoders).
//! Shape rule, backward rule (the same kernel's gather form), lowering, launcher, functional
//! API; kernel `shaders/upsample.wgsl`; tests in `tests/kernels/upsample.rs` and
//! `tests/grad.rs`.

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::shaders::UPSAMPLE;
use crate::kernels::{groups_for, u32_of};
use crate::ops::lowering::LowerCtx;
use crate::shape::Shape;
pub use crate::shape::UpsampleArgs;
use crate::tensor::{DType, Tensor};

const WG: usize = 256;

impl Graph {
    /// x (N, C, H, W) -> (N, C, H * scale, W * scale).
    pub fn upsample(&mut self, x: ValueId, args: UpsampleArgs) -> Result<ValueId> {
        let [n, c, h, w] = self.shape(x).nchw("upsample", "input")?;
        if !(1..=16).contains(&args.scale) {
            return Err(Error::arg(
                "upsample",
                "scale_factor",
                format!("{} is not an integer in 1..=16", args.scale),
            ));
        }
        let shape = Shape::new(&[n, c, h * args.scale, w * args.scale]);
        Ok(self.add_node(Op::Upsample(args), vec![x], vec![(shape, DType::F32)])[0])
    }
}

pub(crate) fn backward(g: &mut Graph, n: &Node, args: UpsampleArgs, dy: ValueId) -> ValueId {
    let shape = g.shape(n.inputs[0]).clone();
    g.add_node(Op::UpsampleBwd(args), vec![dy], vec![(shape, DType::F32)])[0]
}

/// The launch of an Upsample ([x] -> [y]) or UpsampleBwd ([dy] -> [dx]) node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let (args, backward, small) = match n.op {
        Op::Upsample(a) => (a, false, n.inputs[0]),
        Op::UpsampleBwd(a) => (a, true, n.outputs[0]),
        ref other => unreachable!("upsample::lower called on {}", other.name()),
    };
    let [b, c, h, w] = g.shape(small).nchw("upsample", "input")?;
    Ok(vec![launch(
        gpu,
        args,
        [b * c, h, w],
        backward,
        &ctx.input(n, 0),
        &ctx.output(n, 0),
    )?])
}

/// Forward: dst (planes, H*s, W*s) from src (planes, H, W); `backward`: dst (planes, H, W),
/// the gradient, from src (planes, H*s, W*s).
pub fn launch(
    gpu: &Gpu,
    args: UpsampleArgs,
    [planes, h, w]: [usize; 3],
    backward: bool,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<Dispatch> {
    let big = planes * h * w * args.scale * args.scale;
    u32_of("upsample output elements", big)?;
    let total = if backward { planes * h * w } else { big };
    let constants = [
        ("WG", WG as f64),
        ("SCALE", args.scale as f64),
        ("BILINEAR", f64::from(u8::from(args.bilinear))),
        ("BACKWARD", f64::from(u8::from(backward))),
    ];
    let pipeline = gpu.pipeline(&UPSAMPLE, &constants)?;
    let params = [planes as u32, h as u32, w as u32];
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[src, dst],
        grid_1d(groups_for("upsample", total, WG)?),
    )
}

/// `F.interpolate(x, scale_factor=s, mode=...)` for x (N, C, H, W).
pub fn upsample(gpu: &Gpu, x: &Tensor, args: UpsampleArgs) -> Result<Tensor> {
    x.expect_dtype("upsample", DType::F32)?;
    let [n, c, h, w] = x.shape().nchw("upsample", "input")?;
    let y = Tensor::empty(gpu, [n, c, h * args.scale, w * args.scale])?;
    gpu.run(&[launch(gpu, args, [n * c, h, w], false, x.buffer(), y.buffer())?]);
    Ok(y)
}
