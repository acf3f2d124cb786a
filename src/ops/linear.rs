//! The linear family, in one place: y = x W^T + b. Graph builder with its shape rule, backward
//! rule (two GEMMs and a column sum), the choice of kernel for each product (`gemm`: the tile
//! GEMM of `kernels/gemm.rs`, or a 1x1 conv), lowering and the functional API; tests in
//! `tests/kernels/linear.rs`.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::conv::texture::KeptOperands;
use crate::kernels::{self, gemm::GemmGeom};
use crate::ops::lowering::LowerCtx;
use crate::shape::{Conv2dArgs, Conv2dGeom, Epilogue, Shape};
use crate::tensor::{DType, Tensor};

/// `torch.nn.functional.linear`. x: (N, in); weight: (out, in); bias: (out) -> (N, out).
pub fn linear(gpu: &Gpu, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    let storage = x.expect_activation(OP)?;
    weight.expect_dtype(OP, DType::F32)?;
    let [n, fin] = x.shape().matrix(OP, "input (N, in_features)")?;
    let [fout, win] = weight.shape().matrix(OP, "weight (out_features, in_features)")?;
    if win != fin {
        return Err(Error::shape(
            OP,
            format!("weight with {fin} in_features (input {})", x.shape()),
            weight.shape(),
        ));
    }
    if let Some(b) = bias {
        b.expect_dtype(OP, DType::F32)?;
        if b.dims() != [fout] {
            return Err(Error::shape(OP, format!("bias of shape [{fout}]"), b.shape()));
        }
    }
    let y = Tensor::empty_of(gpu, [n, fout], storage)?;
    let g = GemmGeom {
        m: n,
        n: fout,
        k: fin,
        trans_a: false,
        trans_b: true,
    };
    let bufs = kernels::gemm::GemmBuffers {
        bias: bias.map(|b| b.buffer()),
        ..kernels::gemm::GemmBuffers::new(x.buffer(), weight.buffer(), y.buffer())
    };
    gpu.run(&gemm(gpu, &g, (storage, storage), &bufs, None)?);
    Ok(y)
}

impl Graph {
    pub fn linear(&mut self, x: ValueId, w: ValueId, bias: Option<ValueId>) -> Result<ValueId> {
        let [n, fin] = self.shape(x).matrix("linear", "input (N, in_features)")?;
        let [fout, win] = self.shape(w).matrix("linear", "weight (out_features, in_features)")?;
        if win != fin {
            return Err(Error::shape(
                "linear",
                format!("weight with {fin} in_features (input {})", self.shape(x)),
                self.shape(w),
            ));
        }
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            self.expect_vector("linear", "bias", b, fout)?;
            inputs.push(b);
        }
        Ok(self.add_f32(Op::Linear, inputs, Shape::new(&[n, fout])))
    }
}

/// y (N,out) = x (N,in) W^T: dx = dy W, dW = dy^T x, db = column sums of dy, where wanted.
pub(crate) fn backward(g: &mut Graph, n: &Node, dy: ValueId, want: &[bool]) -> Vec<Option<ValueId>> {
    let s = |g: &Graph, i: usize| g.shape(n.inputs[i]).clone();
    let gemm = |trans_a| Op::Gemm {
        trans_a,
        trans_b: false,
    };
    let dx = want[0].then(|| g.add_f32(gemm(false), vec![dy, n.inputs[1]], s(g, 0)));
    let dw = want[1].then(|| g.add_f32(gemm(true), vec![dy, n.inputs[0]], s(g, 1)));
    let db = (want.len() > 2 && want[2]).then(|| g.add_f32(Op::ChannelSum, vec![dy], s(g, 2)));
    vec![dx, dw, db]
}

/// The launches of a linear node.
pub(crate) fn lower(ctx: &LowerCtx, n: &Node) -> Result<Vec<Dispatch>> {
    let gpu = ctx.gpu;
    let i = |k: usize| ctx.input(n, k);
    let o = |k: usize| ctx.output(n, k);
    let ishape = |k: usize| ctx.in_shape(n, k);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = ctx.storage(n);
    Ok(match &n.op {
        Op::Linear => {
            let [m, k] = ishape(0).matrix("linear", "input")?;
            let [nn, _] = ishape(1).matrix("linear", "weight")?;
            let geom = GemmGeom {
                m,
                n: nn,
                k,
                trans_a: false,
                trans_b: true,
            };
            let bias = (n.inputs.len() > 2).then(|| i(2));
            // f16 activations: the product may run on cooperative matrices, the weights rounded
            // to f16 as the conv forward's are
            let (a, b, c) = (i(0), i(1), o(0));
            let bufs = kernels::gemm::GemmBuffers {
                bias: bias.as_ref(),
                ..kernels::gemm::GemmBuffers::new(&a, &b, &c)
            };
            gemm(gpu, &geom, (storage, storage), &bufs, ctx.kept.as_deref())?
        }
        Op::Gemm { trans_a, trans_b } => {
            let [ar, ac] = ishape(0).matrix("gemm", "a")?;
            let [br, bc] = ishape(1).matrix("gemm", "b")?;
            let (m, k) = if *trans_a { (ac, ar) } else { (ar, ac) };
            let nn = if *trans_b { br } else { bc };
            let geom = GemmGeom {
                m,
                n: nn,
                k,
                trans_a: *trans_a,
                trans_b: *trans_b,
            };
            let (a, b, c) = (i(0), i(1), o(0));
            let bufs = kernels::gemm::GemmBuffers::new(&a, &b, &c);
            gemm(gpu, &geom, (DType::F32, ctx.operands(n)), &bufs, None)?
        }
        other => unreachable!("linear::lower called on {}", other.name()),
    })
}

/// C = op(A) op(B) [+ bias] (`bufs`, no residual); A and C are stored as `storage` (a linear
/// layer's input and output activations), B and bias are f32; `operands` F16 where A and B hold
/// f16 values (mixed precision's); `kept` the plan's record of packings, which keeps a linear
/// layer's constant weights packed (the cpu family). The product runs on the tile GEMM, or as a 1x1 conv where that kernel suits the
/// shape or the policy better, or where f16 operands may take the conv's cooperative-matrix
/// kernels: the choice is the linear family's, made here.
pub fn gemm(
    gpu: &Gpu,
    g: &GemmGeom,
    (storage, operands): (DType, DType),
    bufs: &kernels::gemm::GemmBuffers<'_>,
    kept: Option<&KeptOperands>,
) -> Result<Vec<Dispatch>> {
    let kernels::gemm::GemmBuffers { a, b, bias, c, .. } = *bufs;
    // Few rows (a linear layer at a small batch): a tile would keep M of its 64 rows busy and
    // walk all of K in one workgroup (a 2 x 2048 x 10 classifier took 0.48 s on lavapipe), so
    // the product runs as a 1x1 conv over an M-pixel map, whose small-map workgroups cover the
    // M rows with uniform weight loads: the linear layer itself (B^T = W as (N, K, 1, 1)
    // weights), or its input gradient (B as (K, N, 1, 1) weights: the conv's input gradient,
    // which has no bias and is f32)
    // On the texture policy (the cpu family) every linear product runs as those 1x1 convs, and the
    // weight gradient as the 1x1 conv's weight gradient: their texture kernels read the large
    // operand with vectorised texel fetches where the tile GEMM loops over per-lane loads.
    let pointwise =
        |x: [usize; 4], w: [usize; 4]| Conv2dGeom::new(&Shape::new(&x), &Shape::new(&w), Conv2dArgs::default());
    let texture = gpu.policy().texture_operands;
    // mixed precision on cooperative matrices: the 1x1 conv's variant table offers them
    let coop = operands == DType::F16 && gpu.info().cooperative_kernels();
    if (g.m < kernels::gemm::TILE || texture || coop) && !g.trans_a && g.trans_b {
        let geom = pointwise([g.m, g.k, 1, 1], [g.n, g.k, 1, 1])?;
        let epi = Epilogue::default();
        return kernels::conv::forward(
            gpu,
            &geom,
            epi,
            storage,
            &kernels::conv::ForwardBuffers {
                x: a,
                w: b,
                bias,
                residual: None,
                y: c,
                stats: None,
                kept,
                placement: None,
                x_packed: None,
                w_transposed: None,
            },
        );
    }
    if (g.m < kernels::gemm::TILE || texture || coop)
        && !g.trans_a
        && !g.trans_b
        && bias.is_none()
        && storage == DType::F32
    {
        let geom = pointwise([g.m, g.n, 1, 1], [g.k, g.n, 1, 1])?;
        return kernels::conv::backward_data(gpu, &geom, a, b, c, operands, None);
    }
    // C (M, N) = A^T B with A (K, M), B (K, N): the weight gradient dW = dY^T X of a linear layer
    // (M outputs, N inputs, K rows of the batch), i.e. the 1x1 conv's over K one-pixel images
    if (texture || coop) && g.trans_a && !g.trans_b && bias.is_none() && storage == DType::F32 {
        let geom = pointwise([g.k, g.n, 1, 1], [g.m, g.n, 1, 1])?;
        let bufs = kernels::conv::WeightGradientBuffers { dy: a, x: b, dw: c };
        return kernels::conv::backward_weight(gpu, &geom, &bufs, operands, None);
    }
    kernels::gemm::gemm_tile(gpu, g, storage, bufs)
}
