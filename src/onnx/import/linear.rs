//! Gemm and MatMul as linear layers, with the bias of an Add after them (`patterns`), a
//! MatMul by a transposed initializer, a weight past one storage binding, and the new head of
//! a fine-tune.

use super::host::transpose;
use super::{Importer, Val};
use crate::error::Result;
use crate::graph::ValueId;
use crate::io::safetensors::{HostData, HostTensor};
use crate::nn::Init;
use crate::onnx::graph::OnnxNode;
use std::sync::Arc;

impl Importer<'_> {
    /// Gemm (transA 0, alpha and beta 1) and MatMul with a constant right-hand side: a linear
    /// layer. A weight stored (in, out) is transposed into convoy's (out, in) at import.
    pub(super) fn linear(&mut self, index: usize, n: &OnnxNode) -> Result<Val> {
        let x = self.tensor(n, 0)?;
        let d = self.dims(x);
        if d.len() != 2 {
            return self.fail(
                n,
                format!("input of shape {d:?}: convoy's linear layer takes (N, features)"),
            );
        }
        let gemm = n.op_type == "Gemm";
        if gemm && (n.int("transA", 0) != 0 || n.float("alpha", 1.0) != 1.0 || n.float("beta", 1.0) != 1.0) {
            return self.fail(n, "transA, alpha or beta other than 0, 1, 1");
        }
        let Some(w_name) = n.input(1).map(str::to_string) else {
            return self.fail(n, "the weight (input 1) is missing");
        };
        // the bias: Gemm's C, or the constant of an Add after it (`find_bias_adds`)
        let bias_add = self.bias_adds.get(&index).map(|&a| &self.g.nodes[a]);
        let b_name = match bias_add {
            Some(add) => add.inputs.iter().find(|v| Some(*v) != n.outputs.first()).cloned(),
            None if gemm => n.input(2).map(str::to_string),
            None => None,
        };
        let y = self.linear_layer(index, n, x, &d, w_name, b_name)?;
        if let Some(out) = bias_add.and_then(|a| a.outputs.first()) {
            self.vals.insert(out.clone(), y.clone());
        }
        Ok(y)
    }

    /// `linear`'s layer: weight `w_name`, bias `b_name`, for input x of dims `d`.
    fn linear_layer(
        &mut self,
        index: usize,
        n: &OnnxNode,
        x: ValueId,
        d: &[usize],
        w_name: String,
        b_name: Option<String>,
    ) -> Result<Val> {
        let gemm = n.op_type == "Gemm";
        let trans_b = gemm && n.int("transB", 0) != 0;
        if let Some(head) = self.head.filter(|h| h.node == index) {
            // a new classifier with nn.Linear's initialisation, under the old names
            let bound = 1.0 / (d[1] as f32).sqrt();
            let w = self.declare(&head.names[0], vec![head.classes, d[1]], Init::Uniform(bound), false);
            let b = head
                .names
                .get(1)
                .map(|b| self.declare(b, vec![head.classes], Init::Uniform(bound), false));
            return Ok(Val::Tensor(self.net.graph.linear(x, w, b)?));
        }
        // a weight past one storage binding (VGG's classifier): row chunks, through Net
        if trans_b && !self.declared.contains_key(&w_name) {
            if let Some(HostTensor {
                shape,
                data: HostData::F32(wd),
            }) = self.constant(n, 1).cloned()
            {
                if let (&[rows, cols], Some(_)) = (&shape[..], crate::io::chunks::row_chunks(&shape)) {
                    let bias = match &b_name {
                        Some(name) => match self.constant_named(name) {
                            Some(HostTensor {
                                data: HostData::F32(bd),
                                ..
                            }) => Some((name.as_str(), Init::Data(Arc::new(bd.clone())))),
                            _ => return self.fail(n, format!("bias '{name}' must be a float initializer")),
                        },
                        None => None,
                    };
                    let y = self
                        .net
                        .linear_named(x, &w_name, bias, [rows, cols], Init::Data(Arc::new(wd)))?;
                    return Ok(Val::Tensor(y));
                }
            }
        }
        let w = if trans_b {
            self.weight(n, 1, false)?.0
        } else if let Some(source) = self.transposes.get(&w_name).cloned() {
            // MatMul(x, Transpose(W)): W is already (out, in)
            self.weight_named(n, &source, false)?.0
        } else if let Some(&v) = self.declared.get(&w_name) {
            v
        } else {
            let Some(HostTensor {
                shape,
                data: HostData::F32(data),
            }) = self.constant(n, 1).cloned()
            else {
                return self.fail(n, format!("weight '{w_name}' must be a float initializer"));
            };
            let [rows, cols] = shape[..] else {
                return self.fail(n, format!("weight '{w_name}' of shape {shape:?}: expected 2-D"));
            };
            let t = transpose(&data, rows, cols);
            self.declare(&w_name, vec![cols, rows], Init::Data(Arc::new(t)), false)
        };
        let b = match &b_name {
            Some(name) => {
                if let Some(&v) = self.declared.get(name) {
                    Some(v)
                } else {
                    let Some(HostTensor {
                        data: HostData::F32(data),
                        shape,
                    }) = self.constant_named(name).cloned()
                    else {
                        return self.fail(n, format!("bias '{name}' must be a float initializer"));
                    };
                    let len = data.len();
                    if shape.iter().rev().skip(1).any(|&s| s != 1) {
                        return self.fail(n, format!("bias '{name}' of shape {shape:?}: expected (out)"));
                    }
                    Some(self.declare(name, vec![len], Init::Data(Arc::new(data)), false))
                }
            }
            None => None,
        };
        Ok(Val::Tensor(self.net.graph.linear(x, w, b)?))
    }
}
