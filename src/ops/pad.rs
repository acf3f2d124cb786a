//! The spatial padding family, in one place: `F.pad(x, (left, right, top, bottom), value=v)` of
//! (N, C, H, W) (ONNX Pad, and the asymmetric padding of a conv or pool whose sides differ).
//! Its backward is the crop of the gradient, the same kernel with the offsets negated. Shape
//! rule, backward rule, lowering, launcher, functional API; kernel `shaders/pad2d.wgsl`; tests
//! in `tests/kernels/pad.rs` and `tests/grad.rs`.

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::shaders::PAD2D;
use crate::kernels::{groups_for, u32_of};
use crate::ops::lowering::LowerCtx;
pub use crate::shape::Pad2dArgs;
use crate::shape::Shape;
use crate::tensor::{DType, Tensor};

const WG: usize = 256;

impl Graph {
    /// x (N, C, H, W) -> (N, C, top + H + bottom, left + W + right).
    pub fn pad2d(&mut self, x: ValueId, args: Pad2dArgs) -> Result<ValueId> {
        let [n, c, h, w] = self.shape(x).nchw("pad2d", "input")?;
        if !args.value.is_finite() {
            return Err(Error::arg("pad2d", "value", format!("{} is not finite", args.value)));
        }
        if args.pads == [0; 4] {
            return Ok(x);
        }
        let [oh, ow] = args.out_hw(h, w);
        Ok(self.add_f32(Op::Pad2d(args), vec![x], Shape::new(&[n, c, oh, ow])))
    }
}

/// The gradient of a pad is the crop of dy to the input's window.
pub(crate) fn backward(g: &mut Graph, n: &Node, args: Pad2dArgs, dy: ValueId) -> ValueId {
    let shape = g.shape(n.inputs[0]).clone();
    g.add_f32(Op::Pad2dBwd(args), vec![dy], shape)
}

/// The launch of a Pad2d ([x] -> [y]) or Pad2dBwd ([dy] -> [dx]) node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let (args, sign) = match n.op {
        Op::Pad2d(a) => (a, 1),
        Op::Pad2dBwd(a) => (a, -1),
        ref other => unreachable!("pad::lower called on {}", other.name()),
    };
    let [b, c, ih, iw] = g.shape(n.inputs[0]).nchw("pad2d", "input")?;
    let [_, _, oh, ow] = g.shape(n.outputs[0]).nchw("pad2d", "output")?;
    let off = [sign * args.pads[0] as i64, sign * args.pads[1] as i64];
    let (src, dst) = (ctx.input(n, 0), ctx.output(n, 0));
    let bufs = PadBuffers { src: &src, dst: &dst };
    Ok(vec![launch(gpu, b * c, [ih, iw], [oh, ow], off, args.value, &bufs)?])
}

/// The buffers of a pad or its crop: src (planes, IH, IW) in, dst (planes, OH, OW) out (x and y
/// of a Pad2d, dy and dx of a Pad2dBwd).
#[derive(Clone, Copy)]
pub struct PadBuffers<'a> {
    pub src: &'a wgpu::Buffer,
    pub dst: &'a wgpu::Buffer,
}

/// dst (planes, OH, OW)[y, x] = src (planes, IH, IW)[y - off_y, x - off_x], `value` outside.
pub fn launch(
    gpu: &Gpu,
    planes: usize,
    [ih, iw]: [usize; 2],
    [oh, ow]: [usize; 2],
    [off_y, off_x]: [i64; 2],
    value: f32,
    b: &PadBuffers<'_>,
) -> Result<Dispatch> {
    let total = planes * oh * ow;
    u32_of("pad2d elements", total.max(planes * ih * iw))?;
    let offset = |o: i64| -> Result<u32> {
        i32::try_from(o)
            .map(|o| o as u32)
            .map_err(|_| Error::arg("pad2d", "pads", format!("{o} is out of range")))
    };
    let params = [
        planes as u32,
        ih as u32,
        iw as u32,
        oh as u32,
        ow as u32,
        offset(off_y)?,
        offset(off_x)?,
        value.to_bits(),
    ];
    let pipeline = gpu.pipeline(&PAD2D, &[("WG", WG as f64)])?;
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[b.src, b.dst],
        grid_1d(groups_for("pad2d", total, WG)?),
    )
}

/// `F.pad(x, (left, right, top, bottom), value=args.value)` for x (N, C, H, W).
pub fn pad2d(gpu: &Gpu, x: &Tensor, args: Pad2dArgs) -> Result<Tensor> {
    x.expect_dtype("pad2d", DType::F32)?;
    let [n, c, h, w] = x.shape().nchw("pad2d", "input")?;
    let [oh, ow] = args.out_hw(h, w);
    let y = Tensor::empty(gpu, [n, c, oh, ow])?;
    let off = [args.pads[0] as i64, args.pads[1] as i64];
    let bufs = PadBuffers {
        src: x.buffer(),
        dst: y.buffer(),
    };
    gpu.run(&[launch(gpu, n * c, [h, w], [oh, ow], off, args.value, &bufs)?]);
    Ok(y)
}
