//! An ONNX `TensorProto` (an initializer, a Constant node's value) to a host tensor: floating
//! types to f32, integer and bool types to i64. Every size is checked against the bytes actually
//! present before anything is allocated, so a hostile file's declared shape (10^12 elements, or
//! a product that overflows) costs nothing.

use super::proto::TensorProto;
use crate::error::{Error, Result};
use crate::io::safetensors::{HostData, HostTensor};

/// Where external tensor data comes from: the model's folder for a file, nothing for bytes.
pub trait ExternalData {
    /// `length` bytes (all to the end when None) at `offset` of the file `location`, relative to
    /// the model's folder.
    fn read(&self, location: &str, offset: u64, length: Option<u64>) -> Result<Vec<u8>>;
}

/// A model read from bytes alone: external data is an error.
pub struct NoExternalData;

impl ExternalData for NoExternalData {
    fn read(&self, location: &str, _: u64, _: Option<u64>) -> Result<Vec<u8>> {
        Err(Error::format(
            location,
            "the model's tensors are stored outside it (external data); load it from its file",
        ))
    }
}

/// ONNX TensorProto.DataType values convoy reads.
mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
    pub const BFLOAT16: i32 = 16;
}

/// The name ONNX gives a data type, for errors.
fn dtype_name(t: i32) -> String {
    let names = [
        "UNDEFINED",
        "FLOAT",
        "UINT8",
        "INT8",
        "UINT16",
        "INT16",
        "INT32",
        "INT64",
        "STRING",
        "BOOL",
        "FLOAT16",
        "DOUBLE",
        "UINT32",
        "UINT64",
        "COMPLEX64",
        "COMPLEX128",
        "BFLOAT16",
    ];
    names
        .get(t as usize)
        .map_or_else(|| format!("data type {t}"), |n| n.to_string())
}

/// The shape of `t`, with its element count, refusing negative dimensions and overflow.
pub(super) fn dims_of(t: &TensorProto, what: &str) -> Result<(Vec<usize>, usize)> {
    let mut numel: usize = 1;
    let mut shape = Vec::with_capacity(t.dims.len().min(16));
    for &d in &t.dims {
        // even an empty tensor may not declare an absurd dimension: shapes computed from it
        // downstream must not overflow
        if !(0..=1 << 31).contains(&d) {
            return Err(Error::format(what, format!("dimension {d} of shape {:?}", t.dims)));
        }
        let d = d as usize;
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| Error::format(what, format!("shape {:?} has more elements than fit in memory", t.dims)))?;
        shape.push(d);
    }
    Ok((shape, numel))
}

/// Decode `t` (named `what` in errors) to a host tensor.
pub(super) fn to_host(t: &TensorProto, what: &str, external: &dyn ExternalData) -> Result<HostTensor> {
    let (shape, numel) = dims_of(t, what)?;
    let width = match t.data_type {
        dtype::FLOAT | dtype::INT32 => 4,
        dtype::INT64 | dtype::DOUBLE => 8,
        dtype::FLOAT16 | dtype::BFLOAT16 => 2,
        dtype::UINT8 | dtype::INT8 | dtype::BOOL => 1,
        other => {
            return Err(Error::format(
                what,
                format!("tensors of type {} are not supported", dtype_name(other)),
            ))
        }
    };
    let external_bytes;
    let raw: Option<&[u8]> = if t.data_location == 1 {
        external_bytes = read_external(t, what, numel, width, external)?;
        Some(&external_bytes)
    } else if !t.raw_data.is_empty() || numel == 0 {
        Some(&t.raw_data)
    } else {
        None
    };
    let data = match raw {
        Some(b) => {
            if Some(b.len()) != numel.checked_mul(width) {
                return Err(Error::format(
                    what,
                    format!(
                        "shape {:?} of {} needs {} bytes, the file holds {}",
                        t.dims,
                        dtype_name(t.data_type),
                        numel.saturating_mul(width),
                        b.len()
                    ),
                ));
            }
            from_raw(b, t.data_type)
        }
        None => from_typed_fields(t, what, numel)?,
    };
    Ok(HostTensor { shape, data })
}

/// Little-endian packed values of type `t`.
fn from_raw(b: &[u8], t: i32) -> HostData {
    let f32s = |w: usize, f: &dyn Fn(&[u8]) -> f32| HostData::F32(b.chunks_exact(w).map(f).collect());
    let i64s = |w: usize, f: &dyn Fn(&[u8]) -> i64| HostData::I64(b.chunks_exact(w).map(f).collect());
    match t {
        dtype::FLOAT => f32s(4, &|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
        dtype::DOUBLE => f32s(8, &|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32),
        dtype::FLOAT16 => f32s(2, &|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        dtype::BFLOAT16 => f32s(2, &|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        dtype::INT64 => i64s(8, &|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))),
        dtype::INT32 => i64s(4, &|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64),
        dtype::INT8 => i64s(1, &|c| c[0] as i8 as i64),
        _ => i64s(1, &|c| c[0] as i64), // UINT8, BOOL
    }
}

/// Values in the typed repeated fields (float_data, int32_data, ...), which must hold exactly
/// `numel` of them.
fn from_typed_fields(t: &TensorProto, what: &str, numel: usize) -> Result<HostData> {
    let (held, data) = match t.data_type {
        dtype::FLOAT => (t.float_data.len(), HostData::F32(t.float_data.clone())),
        dtype::DOUBLE => (
            t.double_data.len(),
            HostData::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        ),
        dtype::INT64 => (t.int64_data.len(), HostData::I64(t.int64_data.clone())),
        dtype::FLOAT16 | dtype::BFLOAT16 => {
            let bits = |v: i32| v as u16;
            let f: Vec<f32> = if t.data_type == dtype::FLOAT16 {
                t.int32_data
                    .iter()
                    .map(|&v| half::f16::from_bits(bits(v)).to_f32())
                    .collect()
            } else {
                t.int32_data
                    .iter()
                    .map(|&v| half::bf16::from_bits(bits(v)).to_f32())
                    .collect()
            };
            (t.int32_data.len(), HostData::F32(f))
        }
        _ => (
            t.int32_data.len(),
            HostData::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
        ),
    };
    if held != numel {
        return Err(Error::format(
            what,
            format!("shape {:?} needs {numel} values, the file holds {held}", t.dims),
        ));
    }
    Ok(data)
}

/// The bytes of an external tensor: "location" relative to the model's folder, optional
/// "offset" and "length", which must match the shape.
fn read_external(
    t: &TensorProto,
    what: &str,
    numel: usize,
    width: usize,
    external: &dyn ExternalData,
) -> Result<Vec<u8>> {
    let field = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    let number = |k: &str| -> Result<Option<u64>> {
        field(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| Error::format(what, format!("external data {k} '{v}' is not a number")))
            })
            .transpose()
    };
    let location = field("location").ok_or_else(|| Error::format(what, "external data without a location"))?;
    let offset = number("offset")?.unwrap_or(0);
    let need = numel
        .checked_mul(width)
        .ok_or_else(|| Error::format(what, "external tensor larger than memory"))? as u64;
    let length = number("length")?;
    if length.is_some_and(|l| l != need) {
        return Err(Error::format(
            what,
            format!(
                "external data length {} does not match shape {:?} ({need} bytes)",
                length.unwrap_or(0),
                t.dims
            ),
        ));
    }
    external
        .read(location, offset, Some(need))
        .map_err(|e| Error::format(what, format!("external data: {e}")))
}
