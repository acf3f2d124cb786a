//! The channel-layout family, in one place: concatenation along channels (DenseNet, SqueezeNet,
//! ShuffleNet, Inception), channel slices (`torch.chunk` / `split` along channels) and
//! ShuffleNet's channel shuffle. Shape rules, backward rules (a concat's gradient is the slices
//! of dy; a slice's is dy placed in zeros; a shuffle's is the inverse shuffle), lowering,
//! launchers; kernels `shaders/copy_channels.wgsl` and `shaders/channel_shuffle.wgsl`; tests in
//! `tests/kernels/channels.rs` and `tests/grad.rs`.

use crate::device::{grid_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::shaders::{CHANNEL_SHUFFLE, COPY_CHANNELS};
use crate::kernels::{groups_for, u32_of};
use crate::ops::lowering::LowerCtx;
use crate::shape::Shape;
use crate::tensor::DType;

const WG: usize = 256;

impl Graph {
    /// `torch.cat(xs, dim=1)` of (N, C_i, H, W) tensors that agree in N, H and W.
    pub fn concat(&mut self, xs: &[ValueId]) -> Result<ValueId> {
        let Some(&first) = xs.first() else {
            return Err(Error::arg("concat", "inputs", "needs at least one tensor"));
        };
        let [n, _, h, w] = self.shape(first).nchw("concat", "input")?;
        let mut c = 0;
        for &x in xs {
            let [xn, xc, xh, xw] = self.shape(x).nchw("concat", "input")?;
            if (xn, xh, xw) != (n, h, w) {
                return Err(Error::shape(
                    "concat",
                    format!("tensors of shape [{n}, _, {h}, {w}]"),
                    self.shape(x),
                ));
            }
            c += xc;
        }
        if xs.len() == 1 {
            return Ok(first);
        }
        Ok(self.add_node(Op::Concat, xs.to_vec(), vec![(Shape::new(&[n, c, h, w]), DType::F32)])[0])
    }

    /// Channels [start, start + len) of x (N, C, H, W).
    pub fn slice_channels(&mut self, x: ValueId, start: usize, len: usize) -> Result<ValueId> {
        let [n, c, h, w] = self.shape(x).nchw("slice_channels", "input")?;
        if len == 0 || start + len > c {
            return Err(Error::arg(
                "slice_channels",
                "range",
                format!("channels {start}..{} of a tensor with {c}", start + len),
            ));
        }
        if len == c {
            return Ok(x);
        }
        let shape = Shape::new(&[n, len, h, w]);
        Ok(self.add_node(Op::SliceChannels { start }, vec![x], vec![(shape, DType::F32)])[0])
    }

    /// `x.chunk(k, dim=1)`: k slices of ceil(C / k) channels (the last may be shorter, and
    /// fewer than k come back when C is small, as in PyTorch).
    pub fn chunk(&mut self, x: ValueId, k: usize) -> Result<Vec<ValueId>> {
        let [_, c, _, _] = self.shape(x).nchw("chunk", "input")?;
        if k == 0 {
            return Err(Error::arg("chunk", "chunks", "must be at least 1"));
        }
        let size = c.div_ceil(k);
        (0..c)
            .step_by(size)
            .map(|start| self.slice_channels(x, start, size.min(c - start)))
            .collect()
    }

    /// ShuffleNet's channel shuffle: (N, C, H, W) viewed as (N, groups, C / groups, H, W),
    /// the two channel axes transposed.
    pub fn channel_shuffle(&mut self, x: ValueId, groups: usize) -> Result<ValueId> {
        let [_, c, _, _] = self.shape(x).nchw("channel_shuffle", "input")?;
        if groups == 0 || c % groups != 0 {
            return Err(Error::arg(
                "channel_shuffle",
                "groups",
                format!("{groups} does not divide the {c} channels"),
            ));
        }
        let shape = self.shape(x).clone();
        Ok(self.add_node(Op::ChannelShuffle { groups }, vec![x], vec![(shape, DType::F32)])[0])
    }
}

/// Gradients of the inputs of a Concat, SliceChannels or ChannelShuffle node, from dy.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId, want: &[bool]) -> Result<Vec<Option<ValueId>>> {
    Ok(match n.op {
        Op::Concat => {
            let mut start = 0;
            let mut grads = Vec::new();
            for (k, &x) in n.inputs.iter().enumerate() {
                let c = g.shape(x).dims()[1];
                grads.push(if want[k] {
                    Some(g.slice_channels(dy, start, c)?)
                } else {
                    None
                });
                start += c;
            }
            grads
        }
        Op::SliceChannels { start } => {
            let shape = g.shape(n.inputs[0]).clone();
            vec![Some(
                g.add_node(Op::PadChannels { start }, vec![dy], vec![(shape, DType::F32)])[0],
            )]
        }
        Op::ChannelShuffle { groups } => {
            let c = g.shape(n.inputs[0]).dims()[1];
            vec![Some(g.channel_shuffle(dy, c / groups)?)]
        }
        ref other => unreachable!("channels::backward called on {}", other.name()),
    })
}

/// (N, C, H*W) of a rank-4 shape.
fn nchw(s: &Shape) -> [usize; 3] {
    let d = s.dims();
    [d[0], d[1], d[2] * d[3]]
}

/// The launches of a Concat, SliceChannels, PadChannels or ChannelShuffle node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let (gpu, g) = (ctx.gpu, ctx.graph);
    let [batch, out_c, hw] = nchw(g.shape(n.outputs[0]));
    let y = ctx.output(n, 0);
    Ok(match n.op {
        Op::Concat => {
            let mut at = 0;
            let mut d = Vec::new();
            for &x in &n.inputs {
                let c = g.shape(x).dims()[1];
                let r = Range {
                    src_c: c,
                    dst_c: out_c,
                    src_off: 0,
                    dst_off: at,
                    count: c,
                };
                d.push(copy(gpu, [batch, hw], r, false, &ctx.buffer(x), &y)?);
                at += c;
            }
            d
        }
        Op::SliceChannels { start } => {
            let c = g.shape(n.inputs[0]).dims()[1];
            let r = Range {
                src_c: c,
                dst_c: out_c,
                src_off: start,
                dst_off: 0,
                count: out_c,
            };
            vec![copy(gpu, [batch, hw], r, false, &ctx.input(n, 0), &y)?]
        }
        Op::PadChannels { start } => {
            let c = g.shape(n.inputs[0]).dims()[1];
            let r = Range {
                src_c: c,
                dst_c: out_c,
                src_off: 0,
                dst_off: start,
                count: c,
            };
            vec![copy(gpu, [batch, hw], r, true, &ctx.input(n, 0), &y)?]
        }
        Op::ChannelShuffle { groups } => vec![shuffle(gpu, [batch, out_c, hw], groups, &ctx.input(n, 0), &y)?],
        ref other => unreachable!("channels::lower called on {}", other.name()),
    })
}

/// A channel range copy: `count` channels from channel `src_off` of a `src_c`-channel tensor
/// to channel `dst_off` of a `dst_c`-channel one.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    pub src_c: usize,
    pub dst_c: usize,
    pub src_off: usize,
    pub dst_off: usize,
    pub count: usize,
}

/// Copy `r` for `batch` images of `hw` pixels; with `fill`, every channel of dst is written
/// (zeros outside the range).
pub fn copy(
    gpu: &Gpu,
    [batch, hw]: [usize; 2],
    r: Range,
    fill: bool,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Result<Dispatch> {
    let total = batch * if fill { r.dst_c } else { r.count } * hw;
    u32_of("channel copy source elements", batch * r.src_c * hw)?;
    u32_of("channel copy destination elements", batch * r.dst_c * hw)?;
    let pipeline = gpu.pipeline(
        &COPY_CHANNELS,
        &[("WG", WG as f64), ("FILL", f64::from(u8::from(fill)))],
    )?;
    let params = [total, hw, r.src_c, r.dst_c, r.src_off, r.dst_off, r.count].map(|v| v as u32);
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[src, dst],
        grid_1d(groups_for("channel copy", total, WG)?),
    )
}

/// y = the channel shuffle of x (N, C, HW) in `groups` groups.
pub fn shuffle(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    groups: usize,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
) -> Result<Dispatch> {
    let total = n * c * hw;
    let pipeline = gpu.pipeline(&CHANNEL_SHUFFLE, &[("WG", WG as f64), ("GROUPS", groups as f64)])?;
    let params = [u32_of("channel_shuffle elements", total)?, c as u32, hw as u32];
    Dispatch::new(
        gpu,
        pipeline,
        &params,
        &[x, y],
        grid_1d(groups_for("channel_shuffle", total, WG)?),
    )
}
