//! Parameters larger than one storage binding. WebGPU guarantees a kernel 128 MiB per storage
//! binding (lavapipe allows exactly that), and some weights are larger: VGG's first classifier
//! layer is 4096 x 25088 floats, 392 MiB. Such a weight is held as row chunks, each a parameter
//! of its own (`classifier.0.weight#0`, `#1`, ...; the bias of the same layer is split by the
//! same rows), so every kernel, gradient and optimizer buffer stays within one binding. The
//! chunks exist only inside convoy: checkpoints hold the whole tensor under its own name, split
//! on load (`split_tensors`) and joined on save (`join_tensors`). The rule depends on the shape
//! alone, never on the device, so every device chunks the same tensors the same way.

use super::host::{HostData, HostTensor};
use std::collections::BTreeMap;

/// The largest parameter held whole, in bytes: WebGPU's default (and guaranteed)
/// `max_storage_buffer_binding_size`.
pub const CHUNK_BYTES: usize = 128 << 20;

/// The row ranges a 2-D+ float tensor of `shape` is held as: None when it fits one binding,
/// or when one row alone would not (then the device refuses it by name).
pub fn row_chunks(shape: &[usize]) -> Option<Vec<(usize, usize)>> {
    let rows = *shape.first()?;
    let row_bytes = shape[1..].iter().product::<usize>().checked_mul(4)?;
    let bytes = rows.checked_mul(row_bytes)?;
    if shape.len() < 2 || bytes <= CHUNK_BYTES || row_bytes == 0 || row_bytes > CHUNK_BYTES {
        return None;
    }
    // as few chunks as fit, as even as possible
    let per = CHUNK_BYTES / row_bytes;
    let count = rows.div_ceil(per);
    let size = rows.div_ceil(count);
    Some((0..count).map(|i| (i * size, ((i + 1) * size).min(rows))).collect())
}

/// The name of chunk `i` of tensor `name`.
pub fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}#{i}")
}

/// The whole tensor's name and chunk index of a chunk's name.
fn parse_chunk(name: &str) -> Option<(&str, usize)> {
    let (base, i) = name.rsplit_once('#')?;
    Some((base, i.parse().ok()?))
}

/// The bias that goes with a weight (`fc.weight` -> `fc.bias`): the one split with it.
pub fn bias_of(weight: &str) -> Option<String> {
    weight.strip_suffix("weight").map(|p| format!("{p}bias"))
}

/// Split every float tensor too large for one binding into its row chunks (and its layer's
/// bias, a vector as long as its rows, by the same rows).
pub fn split_tensors(tensors: BTreeMap<String, HostTensor>) -> BTreeMap<String, HostTensor> {
    let plans: Vec<(String, Vec<(usize, usize)>)> = tensors
        .iter()
        .filter(|(_, t)| matches!(t.data, HostData::F32(_)))
        .filter_map(|(n, t)| row_chunks(&t.shape).map(|c| (n.clone(), c)))
        .collect();
    let mut out = tensors;
    for (name, chunks) in plans {
        let rows = chunks.last().map_or(0, |c| c.1);
        split_one(&mut out, &name, &chunks);
        if let Some(bias) = bias_of(&name).filter(|b| out.get(b).is_some_and(|t| t.shape == [rows])) {
            split_one(&mut out, &bias, &chunks);
        }
    }
    out
}

/// Replace the float tensor `name` of `out` by its row chunks.
fn split_one(out: &mut BTreeMap<String, HostTensor>, name: &str, chunks: &[(usize, usize)]) {
    let Some(t) = out.remove(name) else { return };
    let HostData::F32(data) = &t.data else {
        out.insert(name.to_string(), t);
        return;
    };
    let row: usize = t.shape[1..].iter().product();
    for (i, &(a, b)) in chunks.iter().enumerate() {
        let mut shape = t.shape.clone();
        shape[0] = b - a;
        let part = HostTensor {
            shape,
            data: HostData::F32(data[a * row..b * row].to_vec()),
        };
        out.insert(chunk_name(name, i), part);
    }
}

/// Join chunks (`name#0`, `name#1`, ...) back into the tensor `name`, rows in order.
pub fn join_tensors(tensors: BTreeMap<String, HostTensor>) -> BTreeMap<String, HostTensor> {
    let mut out = BTreeMap::new();
    let mut parts: BTreeMap<String, Vec<(usize, HostTensor)>> = BTreeMap::new();
    for (name, t) in tensors {
        match parse_chunk(&name) {
            Some((base, i)) => parts.entry(base.to_string()).or_default().push((i, t)),
            None => {
                out.insert(name, t);
            }
        }
    }
    for (name, mut chunks) in parts {
        chunks.sort_by_key(|c| c.0);
        let mut shape = chunks[0].1.shape.clone();
        shape[0] = chunks.iter().map(|c| c.1.shape[0]).sum();
        let data = chunks
            .into_iter()
            .flat_map(|(_, t)| match t.data {
                HostData::F32(v) => v,
                HostData::I64(v) => v.into_iter().map(|x| x as f32).collect(),
            })
            .collect();
        out.insert(
            name,
            HostTensor {
                shape,
                data: HostData::F32(data),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize]) -> HostTensor {
        let n: usize = shape.iter().product();
        HostTensor {
            shape: shape.to_vec(),
            data: HostData::F32((0..n).map(|i| i as f32).collect()),
        }
    }

    #[test]
    fn only_tensors_past_a_binding_are_chunked_evenly() {
        assert_eq!(row_chunks(&[4096, 4096]), None); // 64 MiB
        assert_eq!(row_chunks(&[8192, 4096]), None); // exactly 128 MiB
                                                     // VGG's classifier.0: 392 MiB in 4 chunks of 1024 rows (98 MiB each)
        let c = row_chunks(&[4096, 25088]).unwrap();
        assert_eq!(c, [(0, 1024), (1024, 2048), (2048, 3072), (3072, 4096)]);
        let c = row_chunks(&[8193, 4096]).unwrap();
        assert_eq!(c, [(0, 4097), (4097, 8193)]);
        assert!(c.iter().all(|(a, b)| (b - a) * 4096 * 4 <= CHUNK_BYTES));
        // one row past a binding cannot be chunked by rows
        assert_eq!(row_chunks(&[2, CHUNK_BYTES / 4 + 1]), None);
        assert_eq!(row_chunks(&[CHUNK_BYTES]), None); // a vector
    }

    #[test]
    fn split_and_join_round_trip_with_the_bias() {
        let mut m = BTreeMap::new();
        m.insert("fc.weight".to_string(), t(&[8193, 4096]));
        m.insert("fc.bias".to_string(), t(&[8193]));
        m.insert("other.bias".to_string(), t(&[8193]));
        let split = split_tensors(m.clone());
        let names: Vec<&str> = split.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["fc.bias#0", "fc.bias#1", "fc.weight#0", "fc.weight#1", "other.bias"]
        );
        assert_eq!(split["fc.weight#1"].shape, [4096, 4096]);
        assert_eq!(split["fc.bias#0"].shape, [4097]);
        assert_eq!(join_tensors(split), m);
    }
}
