//! safetensors checkpoints with torchvision tensor names. Floating tensors of any width load as
//! f32 on the GPU; integer scalars (`num_batches_tracked`) become host counters. Parsing is done
//! by the `safetensors` crate, which checks the header, offsets and sizes of untrusted files.

pub use super::host::{HostData, HostTensor};
use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::store::ParamStore;
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// Parse safetensors bytes into host tensors by name; `name` labels errors.
pub fn parse_safetensors(bytes: &[u8], name: &str) -> Result<BTreeMap<String, HostTensor>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::format(name, format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (tname, view) in st.tensors() {
        let b = view.data();
        let data = match view.dtype() {
            Dtype::F32 => HostData::F32(bytemuck::pod_collect_to_vec(b)),
            Dtype::F16 => HostData::F32(
                bytemuck::pod_collect_to_vec::<u8, half::f16>(b)
                    .iter()
                    .map(|h| h.to_f32())
                    .collect(),
            ),
            Dtype::BF16 => HostData::F32(
                bytemuck::pod_collect_to_vec::<u8, half::bf16>(b)
                    .iter()
                    .map(|h| h.to_f32())
                    .collect(),
            ),
            Dtype::F64 => HostData::F32(
                bytemuck::pod_collect_to_vec::<u8, f64>(b)
                    .iter()
                    .map(|&v| v as f32)
                    .collect(),
            ),
            Dtype::I64 => HostData::I64(bytemuck::pod_collect_to_vec(b)),
            Dtype::I32 => HostData::I64(
                bytemuck::pod_collect_to_vec::<u8, i32>(b)
                    .iter()
                    .map(|&v| v as i64)
                    .collect(),
            ),
            other => {
                return Err(Error::format(
                    name,
                    format!("tensor '{tname}' has dtype {other:?}; convoy reads float and integer tensors"),
                ))
            }
        };
        out.insert(
            tname,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Refuse tensors holding NaN or infinity, naming the first such tensor and element.
pub fn reject_non_finite(tensors: &BTreeMap<String, HostTensor>, name: &str) -> Result<()> {
    for (t, v) in tensors {
        if let HostData::F32(d) = &v.data {
            if let Some(i) = d.iter().position(|x| !x.is_finite()) {
                return Err(Error::format(
                    name,
                    format!("tensor '{t}' holds {} at element {i}", d[i]),
                ));
            }
        }
    }
    Ok(())
}

/// Encode host tensors as safetensors bytes (f32 and i64).
pub fn encode_safetensors(tensors: &BTreeMap<String, HostTensor>) -> Result<Vec<u8>> {
    encode_safetensors_with(tensors, None)
}

/// The string map of a safetensors header (`__metadata__`), empty when the file has none.
pub fn parse_metadata(bytes: &[u8], name: &str) -> Result<std::collections::HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::format(name, format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// `encode_safetensors` with a `__metadata__` string map in the header.
pub fn encode_safetensors_with(
    tensors: &BTreeMap<String, HostTensor>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (dtype, bytes): (Dtype, &[u8]) = match &t.data {
                HostData::F32(v) => (Dtype::F32, bytemuck::cast_slice(v)),
                HostData::I64(v) => (Dtype::I64, bytemuck::cast_slice(v)),
            };
            safetensors::tensor::TensorView::new(dtype, t.shape.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::format(n, format!("cannot encode: {e}")))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, metadata).map_err(|e| Error::format("safetensors", e.to_string()))
}

/// Upload host tensors into a store: floats as GPU tensors, integers as counters.
/// Tensors past one storage binding are split into the row chunks the models hold them as
/// (`io::chunks`).
pub fn store_from_host(gpu: &Gpu, tensors: BTreeMap<String, HostTensor>) -> Result<ParamStore> {
    let mut store = ParamStore::new();
    for (name, t) in super::chunks::split_tensors(tensors) {
        match t.data {
            HostData::F32(v) => {
                // a tensor past a device limit: say which one
                let tensor = Tensor::from_slice(gpu, &v, t.shape).map_err(|e| match e {
                    Error::Limit { what, need, max } => Error::Limit {
                        what: format!("checkpoint tensor '{name}': {what}"),
                        need,
                        max,
                    },
                    other => other,
                })?;
                store.insert(name, tensor)
            }
            HostData::I64(v) if v.len() == 1 => store.set_counter(name, v[0]),
            HostData::I64(_) => {
                return Err(Error::format(
                    &name,
                    "integer tensors other than scalars (num_batches_tracked) are not supported",
                ))
            }
        }
    }
    Ok(store)
}

/// Read the tensors called `names` (all when None) back from the GPU, counters included; row
/// chunks (`io::chunks`) are joined into the tensors they are part of.
#[cfg(not(target_arch = "wasm32"))]
pub fn store_to_host(store: &ParamStore, names: Option<&[String]>) -> Result<BTreeMap<String, HostTensor>> {
    let mut out = BTreeMap::new();
    let wanted = |n: &str| names.is_none_or(|ns| ns.iter().any(|x| x == n));
    for (name, t) in store.iter().filter(|(n, _)| wanted(n)) {
        out.insert(
            name.clone(),
            HostTensor {
                shape: t.dims().to_vec(),
                data: HostData::F32(t.to_vec()?),
            },
        );
    }
    for (name, v) in crate::device::lock(store.counters()).iter().filter(|(n, _)| wanted(n)) {
        out.insert(
            name.clone(),
            HostTensor {
                shape: vec![],
                data: HostData::I64(vec![*v]),
            },
        );
    }
    Ok(super::chunks::join_tensors(out))
}

/// Load a safetensors checkpoint into a new store.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_safetensors(gpu: &Gpu, path: impl AsRef<std::path::Path>) -> Result<ParamStore> {
    let path = path.as_ref();
    let bytes = super::read_file(path)?;
    store_from_host(gpu, parse_safetensors(&bytes, &path.display().to_string())?)
}

/// Save the tensors called `names` (all when None) to a safetensors file, atomically.
#[cfg(not(target_arch = "wasm32"))]
pub fn save_safetensors(path: impl AsRef<std::path::Path>, store: &ParamStore, names: Option<&[String]>) -> Result<()> {
    super::write_file(path, &encode_safetensors(&store_to_host(store, names)?)?)
}
