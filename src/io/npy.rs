//! NumPy `.npy` files (format 1.0-3.0): float32, float64 and int64 arrays, little-endian, C order.
//! Reads untrusted bytes: the header is bounded and the data length must match the shape.

use crate::error::{Error, Result};

/// An array read from or written to `.npy`.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyArray {
    F32 { shape: Vec<usize>, data: Vec<f32> },
    F64 { shape: Vec<usize>, data: Vec<f64> },
    I64 { shape: Vec<usize>, data: Vec<i64> },
}

impl NpyArray {
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::F32 { shape, .. } | NpyArray::F64 { shape, .. } | NpyArray::I64 { shape, .. } => shape,
        }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";
const MAX_HEADER: usize = 1 << 16;

/// Parse `.npy` bytes; `name` labels errors.
pub fn parse_npy(b: &[u8], name: &str) -> Result<NpyArray> {
    let bad = |why: String| Error::format(name, why);
    if b.len() < 10 || !b.starts_with(MAGIC) {
        return Err(bad("not a .npy file (missing the \\x93NUMPY magic)".into()));
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(bad(format!(".npy format version {v} is not supported"))),
    };
    if hlen > MAX_HEADER || start + hlen > b.len() {
        return Err(bad(format!(
            "header of {hlen} bytes does not fit the file ({} bytes)",
            b.len()
        )));
    }
    let header = std::str::from_utf8(&b[start..start + hlen]).map_err(|_| bad("header is not text".into()))?;
    let descr = dict_str(header, "descr").ok_or_else(|| bad(format!("no 'descr' in header {header:?}")))?;
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran-order arrays are not supported; save with C order".into()));
    }
    let shape = dict_shape(header).ok_or_else(|| bad(format!("no valid 'shape' in header {header:?}")))?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let body = &b[start + hlen..];
    let width = match descr {
        "<f4" => 4,
        "<f8" | "<i8" => 8,
        other => {
            return Err(bad(format!(
                "dtype '{other}' is not supported: use float32 ('<f4'), float64 ('<f8') or int64 ('<i8')"
            )))
        }
    };
    if count.checked_mul(width) != Some(body.len()) {
        return Err(bad(format!(
            "shape {shape:?} of '{descr}' needs {} data bytes, the file has {}",
            count.saturating_mul(width),
            body.len()
        )));
    }
    Ok(match descr {
        "<f4" => NpyArray::F32 {
            shape,
            data: bytemuck::pod_collect_to_vec(body),
        },
        "<f8" => NpyArray::F64 {
            shape,
            data: bytemuck::pod_collect_to_vec(body),
        },
        _ => NpyArray::I64 {
            shape,
            data: bytemuck::pod_collect_to_vec(body),
        },
    })
}

fn dict_str<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let rest = &h[h.find(&format!("'{key}'"))? + key.len() + 2..];
    let rest = &rest[rest.find('\'')? + 1..];
    Some(&rest[..rest.find('\'')?])
}

fn dict_shape(h: &str) -> Option<Vec<usize>> {
    let rest = &h[h.find("'shape'")?..];
    // the closing parenthesis after the opening one (a ')' before it is malformed)
    let open = rest.find('(')? + 1;
    let close = open + rest[open..].find(')')?;
    let inner = &rest[open..close];
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

/// Encode an array as `.npy` (version 1.0).
pub fn encode_npy(a: &NpyArray) -> Vec<u8> {
    let (descr, shape, body): (&str, &[usize], &[u8]) = match a {
        NpyArray::F32 { shape, data } => ("<f4", shape, bytemuck::cast_slice(data)),
        NpyArray::F64 { shape, data } => ("<f8", shape, bytemuck::cast_slice(data)),
        NpyArray::I64 { shape, data } => ("<i8", shape, bytemuck::cast_slice(data)),
    };
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    // pad with spaces so the data starts on a 64-byte boundary, ending in a newline
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Read a `.npy` file.
pub fn read_npy(path: impl AsRef<std::path::Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    parse_npy(&super::read_file(path)?, &path.display().to_string())
}

/// Write a `.npy` file.
pub fn write_npy(path: impl AsRef<std::path::Path>, a: &NpyArray) -> Result<()> {
    super::write_file(path, &encode_npy(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// float64 round-trips, and reads what numpy writes (`np.save` of
    /// `np.array([[1.5, -2.0], [1e-300, 3.0]])`, its header as numpy pads it).
    #[test]
    fn float64_round_trips_and_reads_numpy() {
        let a = NpyArray::F64 {
            shape: vec![2, 2],
            data: vec![1.5, -2.0, 1e-300, 3.0],
        };
        assert_eq!(parse_npy(&encode_npy(&a), "t").unwrap(), a);
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let mut b = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        b.extend_from_slice(header.as_bytes());
        b.resize(10 + 0x75, b' ');
        b.push(b'\n');
        for v in [1.5f64, -2.0, 1e-300, 3.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(parse_npy(&b, "numpy").unwrap(), a);
        // a float64 header over float32-sized data is refused
        assert!(parse_npy(&b[..b.len() - 16], "short").is_err());
    }
}
