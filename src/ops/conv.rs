//! conv2d: arguments, the shape rule, and the functional entry point.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels;
use crate::kernels::conv::texture::KeptOperands;
pub use crate::shape::{Conv2dArgs, Conv2dGeom};
use crate::tensor::{DType, Tensor};

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
            kept: None,
            placement: None,
            x_packed: None,
            w_transposed: None,
        },
    )?;
    gpu.run(&ds);
    Ok(y)
}

impl Graph {
    pub fn conv2d(&mut self, x: ValueId, w: ValueId, bias: Option<ValueId>, args: Conv2dArgs) -> Result<ValueId> {
        let g = Conv2dGeom::new(self.shape(x), self.shape(w), args)?;
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            self.expect_vector("conv2d", "bias", b, g.cout)?;
            inputs.push(b);
        }
        let op = Op::Conv2d {
            args,
            bias: bias.is_some(),
            epi: Default::default(),
            stats: false,
        };
        Ok(self.add_f32(op, inputs, g.out_shape()))
    }
}

/// Gradients of [x, w, bias]: the input gradient, the weight gradient and the bias's channel
/// sums of dy, where wanted.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId, want: &[bool]) -> Result<Vec<Option<ValueId>>> {
    let Op::Conv2d { args, bias, epi, .. } = n.op else {
        unreachable!("conv::backward called on {}", n.op.name())
    };
    if !epi.is_none() {
        return Err(Error::arg(
            "autodiff",
            n.op.name(),
            "a conv with a fused epilogue is inference-only",
        ));
    }
    let s = |g: &Graph, i: usize| g.shape(n.inputs[i]).clone();
    let dx = want[0].then(|| g.add_f32(Op::Conv2dBwdData { args }, vec![dy, n.inputs[1]], s(g, 0)));
    let dw = want[1].then(|| g.add_f32(Op::Conv2dBwdWeight { args }, vec![dy, n.inputs[0]], s(g, 1)));
    let db = (bias && want[2]).then(|| g.add_f32(Op::ChannelSum, vec![dy], s(g, 2)));
    Ok(vec![dx, dw, db])
}

/// The launches of a conv node; `kept` is the plan's record of activations kept packed for a
/// weight gradient.
pub(crate) fn lower(
    gpu: &Gpu,
    g: &Graph,
    n: &Node,
    buf: &dyn Fn(usize) -> wgpu::Buffer,
    kept: Option<&KeptOperands>,
) -> Result<Vec<Dispatch>> {
    let i = |k: usize| buf(n.inputs[k].0);
    let o = |k: usize| buf(n.outputs[k].0);
    let ishape = |k: usize| g.shape(n.inputs[k]);
    let oshape = |k: usize| g.shape(n.outputs[k]);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = n.outputs.first().map_or(DType::F32, |&v| g.value(v).dtype);
    Ok(match &n.op {
        Op::Conv2d { args, bias, epi, stats } => {
            let geom = Conv2dGeom::new(ishape(0), ishape(1), *args)?;
            let b = bias.then(|| i(2));
            let r = epi.residual.then(|| i(2 + usize::from(*bias)));
            let partials = stats.then(|| o(1));
            kernels::conv::forward(
                gpu,
                &geom,
                *epi,
                storage,
                &kernels::conv::ForwardBuffers {
                    x: &i(0),
                    w: &i(1),
                    bias: b.as_ref(),
                    residual: r.as_ref(),
                    y: &o(0),
                    stats: partials.as_ref(),
                    kept,
                    placement: None,
                    x_packed: None,
                    w_transposed: None,
                },
            )?
        }
        Op::Conv2dBwdData { args } => {
            let geom = Conv2dGeom::new(oshape(0), ishape(1), *args)?;
            kernels::conv::backward_data(gpu, &geom, &i(0), &i(1), &o(0), kept)?
        }
        Op::Conv2dBwdWeight { args } => {
            let geom = Conv2dGeom::new(ishape(1), oshape(0), *args)?;
            kernels::conv::backward_weight(gpu, &geom, &i(0), &i(1), &o(0), kept)?
        }
        Op::ChannelSum => vec![kernels::norm::channel_sum(
            gpu,
            crate::shape::batch_channels_spatial(ishape(0).dims()),
            &i(0),
            &o(0),
        )?],
        other => unreachable!("conv::lower called on {}", other.name()),
    })
}

/// The plan's record of activations to keep packed: the operands (dy, x) of every weight
/// gradient node that reads them as packed textures.
pub(crate) fn kept_operands(gpu: &Gpu, g: &Graph, buf: &dyn Fn(usize) -> wgpu::Buffer) -> Result<KeptOperands> {
    let mut kept = KeptOperands::default();
    for n in &g.nodes {
        if let Op::Conv2dBwdWeight { args } = &n.op {
            let geom = Conv2dGeom::new(g.shape(n.inputs[1]), g.shape(n.outputs[0]), *args)?;
            kept.want(gpu, &geom, &buf(n.inputs[0].0), &buf(n.inputs[1].0));
        }
    }
    Ok(kept)
}
