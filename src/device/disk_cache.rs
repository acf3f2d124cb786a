//! The driver's pipeline cache kept on disk (wgpu's `PipelineCache`, Vulkan's `VkPipelineCache`):
//! a process that builds the pipelines an earlier one built hands the driver its compiled code
//! back instead of compiling again. One file per adapter and driver, beside the tuner's cache,
//! written whole to a temporary file and renamed over the old one (a reader never sees half a
//! file); a file that is damaged, or from another adapter or driver, is ignored with a warning.
//!
//! The file: `MAGIC`, then the key (u32 length, UTF-8), then the driver's data (u64 length) and
//! its FNV-1a 64 checksum, all little-endian. wgpu checks its own header inside the data too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MAGIC: &[u8; 16] = b"convoy-pipelines";
const VERSION: u32 = 1;

/// Where the pipeline cache lives: off, or this file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineCacheFile {
    Off,
    At(PathBuf),
}

pub(crate) struct DiskPipelineCache {
    pub cache: wgpu::PipelineCache,
    path: PathBuf,
    key: String,
    /// Pipelines built when the file was last written (0: never written by this process).
    saved_at: Mutex<usize>,
}

/// What identifies the adapter and driver a cache is valid for: wgpu's own key (None where the
/// backend keeps no cache: only Vulkan does) with the driver's name and version, so an updated
/// driver starts a new file instead of rejecting the old one on each start.
pub fn cache_key(info: &wgpu::AdapterInfo) -> Option<String> {
    let base = wgpu::util::pipeline_cache_key(info)?;
    let driver = format!("{}|{}|{}", info.name, info.driver, info.driver_info);
    Some(format!("{base}_{:016x}", fnv1a(driver.as_bytes())))
}

/// The default file for `key`: CONVOY_PIPELINE_CACHE (a path, or 0 / off), else beside the
/// tuner's cache (`tune_cache`'s folder), else none.
pub fn default_file(key: &str, tune_cache: Option<&Path>) -> PipelineCacheFile {
    match std::env::var("CONVOY_PIPELINE_CACHE").as_deref() {
        Ok("0") | Ok("off") => return PipelineCacheFile::Off,
        Ok("1") | Ok("on") | Ok("") | Err(_) => {}
        Ok(path) => return PipelineCacheFile::At(PathBuf::from(path)),
    }
    tune_cache.and_then(Path::parent).map_or(PipelineCacheFile::Off, |dir| {
        PipelineCacheFile::At(dir.join(format!("{key}.bin")))
    })
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The driver's data in `file`, checked against `key`: Ok(None) where there is no file yet,
/// Err(why) where it cannot be used.
fn read(path: &Path, key: &str) -> Result<Option<Vec<u8>>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut at = 0usize;
    let mut take = |n: usize, what: &str| -> Result<&[u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| format!("the file ends inside its {what} ({} bytes)", bytes.len()))?;
        let s = &bytes[at..end];
        at = end;
        Ok(s)
    };
    if take(16, "header")? != MAGIC {
        return Err("not a convoy pipeline cache (bad magic)".into());
    }
    let version = u32::from_le_bytes(take(4, "header")?.try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("format version {version}, this convoy writes {VERSION}"));
    }
    let key_len = u32::from_le_bytes(take(4, "key")?.try_into().expect("4 bytes")) as usize;
    let stored = std::str::from_utf8(take(key_len, "key")?).map_err(|_| "its key is not UTF-8".to_string())?;
    if stored != key {
        return Err(format!("made for adapter and driver '{stored}', this one is '{key}'"));
    }
    let len = u64::from_le_bytes(take(8, "data length")?.try_into().expect("8 bytes"));
    let sum = u64::from_le_bytes(take(8, "checksum")?.try_into().expect("8 bytes"));
    let data = take(
        usize::try_from(len).map_err(|_| "data length past memory".to_string())?,
        "data",
    )?;
    if fnv1a(data) != sum {
        return Err("its checksum does not match its data (a damaged file)".into());
    }
    if at != bytes.len() {
        return Err(format!("{} bytes past the end of its data", bytes.len() - at));
    }
    Ok(Some(data.to_vec()))
}

/// The file's bytes for `data`.
fn encode(key: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + key.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a(data).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// Write `bytes` to `path` through a temporary file in the same folder and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // unique to this process and call: two devices of one process may write at once
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

impl DiskPipelineCache {
    /// The cache of `device` (which has `Features::PIPELINE_CACHE`) from `path`: its data where
    /// the file is good, else empty, with a warning for a file that could not be used.
    pub fn open(device: &wgpu::Device, path: PathBuf, key: String) -> DiskPipelineCache {
        let data = read(&path, &key).unwrap_or_else(|why| {
            eprintln!(
                "convoy: warning: ignoring the pipeline cache {}: {why}; pipelines will be compiled and the file rewritten",
                path.display()
            );
            None
        });
        // SAFETY: the data is what `get_data` returned on an adapter and driver with this key
        // (checked above, with its checksum); wgpu checks its own header inside it as well and,
        // with `fallback`, starts an empty cache where the driver refuses it
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("convoy pipelines"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        DiskPipelineCache {
            cache,
            path,
            key,
            saved_at: Mutex::new(0),
        }
    }

    /// Write the cache out if pipelines were built since it was last written (`built`: the
    /// device's pipeline count). A failure to write is a warning: the cache only saves time.
    pub fn save(&self, built: usize) {
        let mut saved = super::lock(&self.saved_at);
        if *saved == built {
            return;
        }
        *saved = built;
        let Some(data) = self.cache.get_data() else {
            return;
        };
        if let Err(e) = write_atomically(&self.path, &encode(&self.key, &data)) {
            eprintln!(
                "convoy: warning: could not write the pipeline cache {}: {e}",
                self.path.display()
            );
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_damage_is_named() {
        let dir = std::env::temp_dir().join(format!("convoy-pc-test-{}", std::process::id()));
        let path = dir.join("sub/cache.bin");
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        write_atomically(&path, &encode("k1", &data)).unwrap();
        assert_eq!(read(&path, "k1").unwrap(), Some(data.clone()));
        assert!(read(&path, "k2").unwrap_err().contains("'k1'"));
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read(&path, "k1").unwrap_err().contains("checksum"));
        std::fs::write(&path, &bytes[..40]).unwrap();
        assert!(read(&path, "k1").unwrap_err().contains("ends inside"));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(read(&path, "k1").unwrap_err().contains("ends inside"));
        std::fs::write(&path, [b'x'; 64]).unwrap();
        assert!(read(&path, "k1").unwrap_err().contains("magic"));
        assert_eq!(read(&dir.join("none.bin"), "k1").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
