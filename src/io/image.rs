//! PNG output for examples and diagnostics.

use crate::error::{Error, Result};
use std::path::Path;

/// Encode an 8-bit image (`channels` 1 = gray, 3 = RGB) as PNG bytes.
pub fn encode_png(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        _ => {
            return Err(Error::arg(
                "encode_png",
                "channels",
                format!("{channels}: use 1 (gray) or 3 (RGB)"),
            ))
        }
    };
    if pixels.len() != width * height * channels {
        return Err(Error::shape(
            "encode_png",
            format!("{width}x{height}x{channels} bytes"),
            format!("{} bytes", pixels.len()),
        ));
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let err = |e: png::EncodingError| Error::format("png", e.to_string());
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(pixels).map_err(err)?;
    }
    Ok(out)
}

/// Write an 8-bit image as a PNG file.
pub fn write_png(path: impl AsRef<Path>, width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<()> {
    super::write_file(path, &encode_png(width, height, channels, pixels)?)
}
