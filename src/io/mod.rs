//! Files: the one place convoy touches the file system (the web build has none), so every
//! parser elsewhere takes bytes.

pub mod chunks;
pub mod host;
pub mod image;
pub mod npy;
pub mod safetensors;

use crate::error::{Error, Result};
use std::path::Path;

/// Read a whole file, naming it in the error.
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| Error::io(path.display(), e))
}

/// Write a whole file atomically, creating its parent folders: the bytes go to a temporary file
/// beside it, are synced to disk, and the temporary is renamed over the target, so a crash
/// mid-write leaves either the old file or the new one, never a torn one.
pub fn write_file(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // make the rename itself durable
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path.display(), e)
    })
}

/// Does a file exist at this path?
pub fn exists(path: impl AsRef<Path>) -> bool {
    path.as_ref().is_file()
}

/// The entries of a folder, sorted by name: (name, is a folder). Names that are not UTF-8 are
/// skipped (convoy's data layouts name classes and files in UTF-8).
pub fn list_dir(path: impl AsRef<Path>) -> Result<Vec<(String, bool)>> {
    let path = path.as_ref();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path.display(), e))? {
        let entry = entry.map_err(|e| Error::io(path.display(), e))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if let Ok(name) = entry.file_name().into_string() {
            out.push((name, is_dir));
        }
    }
    out.sort();
    Ok(out)
}

/// `length` bytes at `offset` of the file `relative` inside the folder `dir`, for data a file
/// refers to by a path of its own (ONNX external data). The path must stay inside `dir`: no
/// absolute path, no `..`, and no link that leads out of it; the range must lie inside the
/// file, so a hostile reference costs at most the referenced file's size.
pub fn read_range_inside(dir: &Path, relative: &str, offset: u64, length: Option<u64>) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Component;
    let rel = Path::new(relative);
    let outside = || {
        Error::format(
            relative,
            format!("refers to a file outside the model's folder {}", dir.display()),
        )
    };
    if relative.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(outside());
    }
    let root = dir.canonicalize().map_err(|e| Error::io(dir.display(), e))?;
    let path = root.join(rel);
    let real = path.canonicalize().map_err(|e| Error::io(path.display(), e))?;
    if !real.starts_with(&root) {
        return Err(outside());
    }
    let mut f = std::fs::File::open(&real).map_err(|e| Error::io(path.display(), e))?;
    let size = f.metadata().map_err(|e| Error::io(path.display(), e))?.len();
    let length = length.unwrap_or(size.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(Error::format(
            path.display(),
            format!("{length} bytes at offset {offset} run past the end of the file ({size} bytes)"),
        ));
    }
    let mut buf = vec![0u8; length as usize];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| Error::io(path.display(), e))?;
    Ok(buf)
}
