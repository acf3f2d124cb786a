//! add and flatten.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels;
use crate::tensor::Tensor;

/// a + b for tensors of the same shape (the residual connection).
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let storage = a.expect_activation("add")?;
    b.expect_dtype("add", storage)?;
    if a.shape() != b.shape() {
        return Err(Error::shape(
            "add",
            format!("two tensors of shape {}", a.shape()),
            b.shape(),
        ));
    }
    let y = Tensor::empty_of(gpu, a.shape().clone(), storage)?;
    gpu.run(&[kernels::elementwise::add(
        gpu,
        a.numel(),
        storage,
        a.buffer(),
        b.buffer(),
        y.buffer(),
    )?]);
    Ok(y)
}

/// `torch.flatten(x, 1)`: (N, ...) -> (N, prod(...)). A view: no copy, no kernel.
pub fn flatten(x: &Tensor) -> Result<Tensor> {
    let d = x.dims();
    if d.is_empty() {
        return Err(Error::shape("flatten", "a tensor of rank >= 1", x.shape()));
    }
    x.reshape([d[0], d[1..].iter().product()])
}
