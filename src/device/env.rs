//! The environment switches a `GpuBuilder` reads where its caller set nothing: each a clear
//! error naming the variable for a value it does not take.

use crate::error::{Error, Result};

/// CONVOY_BUILD_THREADS: how many pipelines build at once on worker threads (a positive
/// number; default the machine's cores).
pub(super) fn build_threads_from_env() -> Result<usize> {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("CONVOY_BUILD_THREADS").as_deref() {
        Err(_) | Ok("") => Ok(cores()),
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::arg(
                "Gpu",
                "CONVOY_BUILD_THREADS",
                format!("'{v}' is not a positive number of threads"),
            )),
        },
    }
}

/// `CONVOY_TUNE`: 1 turns the tuner on, 0 off; unset leaves it to the kernel policy.
pub(super) fn tune_from_env() -> Result<Option<bool>> {
    match std::env::var("CONVOY_TUNE").as_deref() {
        Err(_) | Ok("") => Ok(None),
        Ok("1") => Ok(Some(true)),
        Ok("0") => Ok(Some(false)),
        Ok(other) => Err(Error::arg("Gpu", "CONVOY_TUNE", format!("'{other}' is not 0 or 1"))),
    }
}

/// `CONVOY_BACKEND`: restrict wgpu to one backend (all native ones when unset).
pub(super) fn backends_from_env() -> Result<wgpu::Backends> {
    match std::env::var("CONVOY_BACKEND") {
        Err(_) => Ok(wgpu::Backends::all()),
        Ok(v) => match v.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
            "metal" => Ok(wgpu::Backends::METAL),
            "dx12" => Ok(wgpu::Backends::DX12),
            "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
            "webgpu" | "browser" => Ok(wgpu::Backends::BROWSER_WEBGPU),
            "all" | "" => Ok(wgpu::Backends::all()),
            other => Err(Error::arg(
                "Gpu",
                "CONVOY_BACKEND",
                format!("'{other}' is not one of vulkan, metal, dx12, gl, webgpu, all"),
            )),
        },
    }
}
