//! Files: the one place convoy touches the file system (the web build has none), so every
//! parser elsewhere takes bytes.

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
