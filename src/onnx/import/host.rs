//! Host tensors for the constants evaluated at import: building, converting, folding and
//! slicing them. No importer state, so every family file can use them.

use crate::io::safetensors::{HostData, HostTensor};

pub(super) fn ints(shape: Vec<usize>, v: Vec<i64>) -> HostTensor {
    HostTensor {
        shape,
        data: HostData::I64(v),
    }
}

pub(super) fn floats(shape: Vec<usize>, v: Vec<f32>) -> HostTensor {
    HostTensor {
        shape,
        data: HostData::F32(v),
    }
}

pub(super) fn as_i64(t: &HostTensor) -> Vec<i64> {
    match &t.data {
        HostData::I64(v) => v.clone(),
        HostData::F32(v) => v.iter().map(|&f| f as i64).collect(),
    }
}

pub(super) fn as_f32(t: &HostTensor) -> Vec<f32> {
    match &t.data {
        HostData::I64(v) => v.iter().map(|&i| i as f32).collect(),
        HostData::F32(v) => v.clone(),
    }
}

/// Elementwise arithmetic of two constants of one shape (or one a scalar); None when the shapes
/// do not broadcast that simply or an integer division is by zero.
pub(super) fn fold_arithmetic(op: &str, a: &HostTensor, b: &HostTensor) -> Option<HostTensor> {
    let (la, lb) = (a.shape.iter().product::<usize>(), b.shape.iter().product::<usize>());
    let shape = if a.shape == b.shape || lb == 1 {
        a.shape.clone()
    } else if la == 1 {
        b.shape.clone()
    } else {
        return None;
    };
    let len = la.max(lb);
    let at = |v: &[i64], i: usize| v[if v.len() == 1 { 0 } else { i }];
    let atf = |v: &[f32], i: usize| v[if v.len() == 1 { 0 } else { i }];
    match (&a.data, &b.data) {
        (HostData::I64(x), HostData::I64(y)) => {
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                let (p, q) = (at(x, i), at(y, i));
                out.push(match op {
                    "Add" => p.checked_add(q)?,
                    "Sub" => p.checked_sub(q)?,
                    "Mul" => p.checked_mul(q)?,
                    _ => p.checked_div(q)?,
                });
            }
            Some(ints(shape, out))
        }
        _ => {
            let (x, y) = (as_f32(a), as_f32(b));
            let out = (0..len)
                .map(|i| {
                    let (p, q) = (atf(&x, i), atf(&y, i));
                    match op {
                        "Add" => p + q,
                        "Sub" => p - q,
                        "Mul" => p * q,
                        _ => p / q,
                    }
                })
                .collect();
            Some(floats(shape, out))
        }
    }
}

/// The elements of `t` at the per-axis (start, step, count) `ranges`, in order.
pub(super) fn slice_const(t: &HostTensor, ranges: &[(i64, i64, usize)]) -> HostTensor {
    let shape: Vec<usize> = ranges.iter().map(|r| r.2).collect();
    let numel: usize = shape.iter().product();
    let mut strides = vec![1usize; t.shape.len()];
    for a in (0..t.shape.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * t.shape[a + 1];
    }
    let source = |mut i: usize| -> usize {
        let mut at = 0;
        for a in (0..shape.len()).rev() {
            let k = (i % shape[a]) as i64;
            i /= shape[a];
            at += (ranges[a].0 + k * ranges[a].1) as usize * strides[a];
        }
        at
    };
    let data = match &t.data {
        HostData::I64(v) => HostData::I64((0..numel).map(|i| v[source(i)]).collect()),
        HostData::F32(v) => HostData::F32((0..numel).map(|i| v[source(i)]).collect()),
    };
    HostTensor { shape, data }
}

/// (rows, cols) row-major to (cols, rows).
pub(crate) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = data[r * cols + c];
        }
    }
    t
}
