//! Files: the one place convoy touches the file system (the web build has none), so every
//! parser elsewhere takes bytes.

pub mod image;
pub mod npy;

use crate::error::{Error, Result};
use std::path::Path;

/// Read a whole file, naming it in the error.
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| Error::io(path.display(), e))
}

/// Write a whole file, creating its parent folders.
pub fn write_file(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path.display(), e))
}

/// Does a file exist at this path?
pub fn exists(path: impl AsRef<Path>) -> bool {
    path.as_ref().is_file()
}
