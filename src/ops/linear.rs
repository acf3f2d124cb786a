//! The linear family, in one place: y = x W^T + b. Graph builder with its shape rule, backward
//! rule (two GEMMs and a column sum), lowering and the functional API; launchers in
//! `kernels/linear.rs`, tests in `tests/kernels/linear.rs`.

use crate::device::{Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, ValueId};
use crate::kernels::{self, linear::GemmGeom};
use crate::shape::Shape;
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
    gpu.run(&kernels::linear::gemm(
        gpu,
        &g,
        storage,
        x.buffer(),
        weight.buffer(),
        bias.map(|b| b.buffer()),
        y.buffer(),
    )?);
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
pub(crate) fn lower(gpu: &Gpu, g: &Graph, n: &Node, buf: &dyn Fn(usize) -> wgpu::Buffer) -> Result<Vec<Dispatch>> {
    let i = |k: usize| buf(n.inputs[k].0);
    let o = |k: usize| buf(n.outputs[k].0);
    let ishape = |k: usize| g.shape(n.inputs[k]);
    // how the node's activations are stored (f32, or f16 after `passes::precision`)
    let storage = n.outputs.first().map_or(DType::F32, |&v| g.value(v).dtype);
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
            kernels::linear::gemm(gpu, &geom, storage, &i(0), &i(1), bias.as_ref(), &o(0))?
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
            kernels::linear::gemm(gpu, &geom, DType::F32, &i(0), &i(1), None, &o(0))?
        }
        other => unreachable!("linear::lower called on {}", other.name()),
    })
}
