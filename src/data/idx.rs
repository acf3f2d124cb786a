//! The IDX format of MNIST and Fashion-MNIST (big-endian header, then unsigned bytes), plain or
//! gzip-compressed. Parses untrusted bytes: sizes are checked before anything is allocated.

use crate::error::{Error, Result};
use std::io::Read;

/// Decompressed IDX files are at most this big (the full MNIST training images are 47 MB).
const MAX_DECOMPRESSED: u64 = 1 << 30;

/// An IDX array of unsigned bytes: `dims` outermost first, `data` row-major.
#[derive(Clone, Debug)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parse IDX bytes (gzip is detected by its magic number). `name` labels errors.
pub fn parse_idx(bytes: &[u8], name: &str) -> Result<Idx> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_DECOMPRESSED + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::format(name, format!("bad gzip stream: {e}")))?;
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(Error::format(
                name,
                format!("decompresses to more than {MAX_DECOMPRESSED} bytes"),
            ));
        }
        return parse_raw(&out, name);
    }
    parse_raw(bytes, name)
}

fn parse_raw(b: &[u8], name: &str) -> Result<Idx> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(Error::format(
            name,
            "not an IDX file (magic must start with two zero bytes)",
        ));
    }
    if b[2] != 0x08 {
        return Err(Error::format(
            name,
            format!(
                "IDX element type 0x{:02x}; only unsigned bytes (0x08) are supported",
                b[2]
            ),
        ));
    }
    let ndim = b[3] as usize;
    if ndim == 0 {
        return Err(Error::format(name, "IDX file with zero dimensions"));
    }
    let header = 4 + 4 * ndim;
    if b.len() < header {
        return Err(Error::format(
            name,
            format!("truncated header: {} bytes, need {header}", b.len()),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes([b[4 + 4 * i], b[5 + 4 * i], b[6 + 4 * i], b[7 + 4 * i]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::format(name, format!("dimensions {dims:?} overflow")))?;
    let body = &b[header..];
    if body.len() != count {
        return Err(Error::format(
            name,
            format!(
                "dimensions {dims:?} need {count} bytes of data, the file has {}",
                body.len()
            ),
        ));
    }
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}
