//! linear: y = x W^T + b.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels::{self, linear::GemmGeom};
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
