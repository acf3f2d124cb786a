//! The dropout family, in one place: dropout (PyTorch's `nn.Dropout`: each element kept with
//! probability 1 - p and scaled by 1 / (1 - p)) and its per-sample form (torchvision's
//! `StochasticDepth(mode="row")`: whole images of a residual branch dropped). Shape rule,
//! backward rule, lowering, launcher; kernel `shaders/dropout.wgsl`; tests in
//! `tests/kernels/dropout.rs` and `tests/grad.rs`.
//!
//! Masks are not stored: each is a hash of (seed, step, layer, element), drawn again by the
//! backward. The graph's `SEED_INPUT` holds [seed, step]; a training step writes its seed and
//! update count there, so a run resumed from a checkpoint at step t draws the masks the
//! uninterrupted run drew at step t. Only training graphs hold dropout: in eval mode it is the
//! identity and builds no node.

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId, ValueKind};
use crate::kernels::shaders::DROPOUT;
use crate::kernels::{groups_for, u32_of};
use crate::ops::lowering::LowerCtx;
pub use crate::shape::DropoutArgs;
use crate::shape::Shape;
use crate::tensor::DType;

/// The graph input every dropout reads: [seed, step] as i32 bits.
pub const SEED_INPUT: &str = "dropout.seed";

const WG: usize = 256;

impl Graph {
    /// Dropout of x (any shape, N first) with probability `p` in [0, 1): training only (a
    /// graph for eval should not call it; `nn::Net::dropout` skips it there). p = 0 is the
    /// identity and builds no node.
    pub fn dropout(&mut self, x: ValueId, p: f32, per_sample: bool) -> Result<ValueId> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::arg("dropout", "p", format!("{p} is not in [0, 1)")));
        }
        if self.shape(x).dims().is_empty() {
            return Err(Error::shape("dropout", "a tensor of rank >= 1", self.shape(x)));
        }
        if p == 0.0 {
            return Ok(x);
        }
        let seed = self.dropout_seed();
        let salt = self.nodes.iter().filter(|n| matches!(n.op, Op::Dropout(_))).count() as u32;
        let args = DropoutArgs { p, per_sample, salt };
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::Dropout(args), vec![x, seed], vec![(shape, DType::F32)])[0])
    }

    /// The [seed, step] input, created by the first dropout.
    fn dropout_seed(&mut self) -> ValueId {
        match self
            .find(SEED_INPUT)
            .filter(|&v| self.value(v).kind == ValueKind::Input)
        {
            Some(v) => v,
            None => self.add_value(SEED_INPUT, Shape::new(&[2]), DType::I32, ValueKind::Input),
        }
    }
}

/// dx = dy * mask / (1 - p): the same kernel on dy, drawing the same mask.
pub(crate) fn backward(g: &mut Graph, n: &Node, args: DropoutArgs, dy: ValueId) -> ValueId {
    let shape = g.shape(n.inputs[0]).clone();
    g.add_node(Op::Dropout(args), vec![dy, n.inputs[1]], vec![(shape, DType::F32)])[0]
}

/// The launch of a `Dropout` node: [x or dy, seed] -> [y or dx].
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let Op::Dropout(args) = n.op else {
        unreachable!("dropout::lower called on {}", n.op.name())
    };
    let dims = g.shape(n.inputs[0]).dims();
    let total = dims.iter().product::<usize>();
    let sample = total / dims[0].max(1);
    let (x, seed, y) = (ctx.input(n, 0), ctx.input(n, 1), ctx.output(n, 0));
    Ok(vec![launch(gpu, args, total, sample, &x, &seed, &y)?])
}

/// out = inp * keep / (1 - p) over `total` elements, images of `sample` elements each.
pub fn launch(
    gpu: &Gpu,
    args: DropoutArgs,
    total: usize,
    sample: usize,
    inp: &wgpu::Buffer,
    seed: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let constants = [
        ("WG", WG as f64),
        ("P", f64::from(args.p)),
        ("SALT", f64::from(args.salt)),
        ("PER_SAMPLE", f64::from(u8::from(args.per_sample))),
    ];
    let pipeline = gpu.pipeline(&DROPOUT, &constants)?;
    let params = [u32_of("dropout elements", total)?, sample.max(1) as u32];
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[inp, seed, out],
        grid_1d(groups_for("dropout", total, WG)?),
    )
}

/// The kernel's hash (`hash32` in `shaders/dropout.wgsl`), for references.
pub fn hash32(v: u32) -> u32 {
    let mut x = v;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Whether element `i` (of images of `sample` elements) survives the dropout `args` at
/// [seed, step]: the mask the kernel draws.
pub fn keeps(args: DropoutArgs, [seed, step]: [u32; 2], i: usize, sample: usize) -> bool {
    let unit = if args.per_sample { i / sample.max(1) } else { i } as u32;
    let stream = hash32(hash32(hash32(seed) ^ step) ^ args.salt);
    let u = (hash32(hash32(unit) ^ stream) >> 8) as f32 * (1.0 / 16_777_216.0);
    u >= args.p
}
