//! `Gpu`: picks an adapter, opens a device with the limits and features convoy uses, and owns the
//! pipeline cache. Cheap to clone (a handle); tensors keep one to read themselves back.

use super::cooperative::{coop_mode_from_env, cooperative_f16_fits, CoopMode};
use super::env::{backends_from_env, build_threads_from_env, tune_from_env};
use super::info::GpuInfo;
use super::pipeline::PipelineCache;
use super::serial::{Held, SerialGuard};
use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;

const NO_ADAPTER_HINT: &str = "convoy needs a GPU driver with Vulkan, Metal or DX12 \
(or WebGPU in a browser). On a machine without a GPU install the software Vulkan driver: \
`apt-get install -y mesa-vulkan-drivers libvulkan1` (Debian/Ubuntu). \
CONVOY_BACKEND (vulkan, metal, dx12, gl) and CONVOY_ADAPTER (index or part of the name) pick one.";

pub(crate) struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: GpuInfo,
    pub pipelines: PipelineCache,
    /// Bound where a kernel declares an optional input it will not read (a missing bias).
    pub dummy: wgpu::Buffer,
    /// The writable twin of `dummy` (one buffer may not be bound both read-only and writable).
    pub dummy_rw: wgpu::Buffer,
    pub poison: bool,
    /// Present when kernel tuning is on.
    pub tuner: Option<super::Tuner>,
    /// Which kernels run on this device.
    pub policy: super::KernelPolicy,
    /// Scratch operand textures by size (see `device::texture`).
    pub operand_textures: std::sync::Mutex<std::collections::HashMap<(u32, u32, u32), Arc<super::OperandTexture>>>,
    /// The scratch buffers kernel launchers share, one per kind (`shared_scratch`).
    pub shared_scratch: std::sync::Mutex<std::collections::HashMap<super::Scratch, wgpu::Buffer>>,
    /// Their staging buffers by size, shared by every texture of that size, pooled or kept.
    pub operand_staging: std::sync::Mutex<std::collections::HashMap<(u32, u32), super::texture::Staging>>,
    /// The first error the device reported outside an error scope (out of memory, validation)
    /// or its loss: recorded instead of wgpu's default panic, returned by the next `sync` or
    /// readback.
    pub fault: Arc<std::sync::Mutex<Option<String>>>,
    /// Serialises convoy's calls into the device on wgpu's GL backend (`device::serial`).
    pub serial: super::serial::Serial,
    /// Pipelines building at once on worker threads (CONVOY_BUILD_THREADS, else the machine's
    /// cores; 1 builds each in place, as the GL backend and the browser always do).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub build_threads: usize,
    /// The driver's pipeline cache and its file, where the adapter keeps one and it is on.
    pub disk_cache: Option<super::disk_cache::DiskPipelineCache>,
}

/// A handle to one GPU device and its queue. Clone it freely.
#[derive(Clone)]
pub struct Gpu {
    pub(crate) inner: Arc<GpuInner>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gpu({})", self.inner.info.name)
    }
}

/// Chooses how to open a `Gpu`. `GpuBuilder::default()` reads CONVOY_BACKEND / CONVOY_ADAPTER.
#[derive(Clone, Debug, Default)]
pub struct GpuBuilder {
    backends: Option<wgpu::Backends>,
    adapter: Option<String>,
    want_f16: Option<bool>,
    coop_emulated: Option<bool>,
    poison: bool,
    tune: Option<bool>,
    tune_cache: Option<std::path::PathBuf>,
    local_rank: Option<usize>,
    kernels: Option<super::KernelFamily>,
    max_texture_side: Option<u32>,
    max_staging_bytes: Option<u64>,
    subgroup_reductions: Option<bool>,
    subgroup_operands: Option<bool>,
    trusted_modules: Option<bool>,
    shape_in_params: Option<bool>,
    pipeline_cache: Option<super::PipelineCacheFile>,
}

impl GpuBuilder {
    /// Where the driver's compiled pipelines persist between processes (default:
    /// CONVOY_PIPELINE_CACHE, a file or 0 to turn it off, else a file per adapter and driver
    /// beside the tuner's cache). Only backends with a pipeline cache (Vulkan) use it.
    pub fn pipeline_cache(mut self, file: super::PipelineCacheFile) -> Self {
        self.pipeline_cache = Some(file);
        self
    }

    /// One process per GPU: the process with this node-local rank takes adapter
    /// `local_rank % k` among the k best adapters of the same kind (e.g. the node's discrete
    /// GPUs). An explicit `adapter` or CONVOY_ADAPTER overrides it.
    pub fn local_rank(mut self, rank: usize) -> Self {
        self.local_rank = Some(rank);
        self
    }
    /// Restrict to these backends (default: all native ones, or CONVOY_BACKEND).
    pub fn backends(mut self, b: wgpu::Backends) -> Self {
        self.backends = Some(b);
        self
    }
    /// Pick the adapter by index in the ranked list or by a case-insensitive part of its name.
    pub fn adapter(mut self, which: impl Into<String>) -> Self {
        self.adapter = Some(which.into());
        self
    }
    /// Ask for shader-f16 (default: whenever the adapter has it).
    pub fn f16(mut self, on: bool) -> Self {
        self.want_f16 = Some(on);
        self
    }

    /// Run the cooperative-matrix kernels with emulated fragments where the device has no
    /// matrix units convoy can use (default: CONVOY_COOP_MATRIX=emulate): their staging,
    /// hand-off and epilogues run for real, each fragment product in plain f32 arithmetic, so a
    /// CPU driver tests them. Needs shader-f16; slow, and meant for tests.
    pub fn emulate_cooperative_matrix(mut self, on: bool) -> Self {
        self.coop_emulated = Some(on);
        self
    }

    /// Fill every new output tensor with NaN, so an element a kernel forgets to write shows up
    /// (for tests; costs an upload per allocation).
    pub fn poison_outputs(mut self, on: bool) -> Self {
        self.poison = on;
        self
    }

    /// Time the candidate tile configurations of each new kernel shape and keep the fastest
    /// (default: CONVOY_TUNE=1 or 0, else on for GPUs and off for CPU drivers as the kernel
    /// policy says; off, every kernel uses its deterministic default).
    pub fn tune(mut self, on: bool) -> Self {
        self.tune = Some(on);
        self
    }

    /// Where tuning choices persist (default: CONVOY_TUNE_CACHE, else the user's cache folder).
    pub fn tune_cache(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tune_cache = Some(path.into());
        self
    }

    /// Force a kernel family (default: CONVOY_KERNELS, else the policy's choice from the
    /// adapter: see `KernelPolicy`).
    pub fn kernels(mut self, family: super::KernelFamily) -> Self {
        self.kernels = Some(family);
        self
    }

    /// Cap the side of operand textures below the device's limit (tests use it to reach the
    /// layouts a small device needs).
    pub fn max_texture_side(mut self, side: u32) -> Self {
        self.max_texture_side = Some(side);
        self
    }

    /// Cap the staging buffer an operand texture is packed through below the storage-binding
    /// limit (tests use it to make the packing run in bands of rows).
    pub fn max_staging_bytes(mut self, bytes: u64) -> Self {
        self.max_staging_bytes = Some(bytes);
        self
    }

    /// Reduce over workgroups through subgroup operations where the adapter has them (true) or
    /// through workgroup-memory trees (false); default: CONVOY_SUBGROUPS, else the policy's
    /// choice (subgroups on GPUs, trees on CPU drivers). Tests run both.
    pub fn subgroup_reductions(mut self, on: bool) -> Self {
        self.subgroup_reductions = Some(on);
        self
    }

    /// Share the texels every lane of a texture kernel fetches alike across subgroups where the
    /// adapter can (true) or fetch them in every lane (false); default: the policy's choice (on
    /// where textures and subgroups of 8+ lanes are), off with CONVOY_SUBGROUPS=0. Tests run both.
    pub fn subgroup_operands(mut self, on: bool) -> Self {
        self.subgroup_operands = Some(on);
        self
    }

    /// Build the audited kernels without naga's runtime checks (true) or keep every module
    /// checked (false); default: CONVOY_TRUSTED, else the policy's choice (unchecked on GPUs,
    /// checked on CPU drivers; always checked in the browser). Tests compare both bit for bit.
    pub fn trusted_modules(mut self, on: bool) -> Self {
        self.trusted_modules = Some(on);
        self
    }

    /// Give the texture forward its conv's shape in its Params, one pipeline for many shapes
    /// (true), or as override constants, a pipeline per shape (false); default: the policy's
    /// choice (Params wherever the texture kernels run). Tests run both.
    pub fn shape_in_params(mut self, on: bool) -> Self {
        self.shape_in_params = Some(on);
        self
    }

    /// Open the device (blocking). Native only; on the web use `build_async`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn build(self) -> Result<Gpu> {
        pollster::block_on(self.build_async())
    }

    pub async fn build_async(self) -> Result<Gpu> {
        let started = super::Since::now();
        let gpu = self.open().await?;
        if super::debug_level() >= 1 {
            eprintln!("convoy: adapter and device opened in {:.0} ms", started.secs() * 1e3);
        }
        Ok(gpu)
    }

    async fn open(self) -> Result<Gpu> {
        let backends = match self.backends {
            Some(b) => b,
            None => backends_from_env()?,
        };
        let which = self.adapter.or_else(|| std::env::var("CONVOY_ADAPTER").ok());
        #[cfg(all(unix, not(target_arch = "wasm32")))]
        quiet_runtime_dir();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let adapter = pick_adapter(&instance, backends, which.as_deref(), self.local_rank).await?;
        let tune = match self.tune {
            Some(on) => Some(on),
            None => tune_from_env()?,
        };
        let tune_cache = self.tune_cache.or_else(super::Tuner::default_path);
        let kernels = match self.kernels {
            Some(f) => Some(f),
            None => super::KernelFamily::from_env()?,
        };
        let subgroups = match self.subgroup_reductions {
            Some(on) => Some(on),
            None => super::policy::subgroups_from_env()?,
        };
        // asked for by name, subgroup reductions are refused where the adapter has none (wgpu's
        // GL backend, the browser); left to the policy, they are used where they exist
        if subgroups == Some(true) && !super::policy::has_subgroups(&adapter.features()) {
            return Err(Error::Feature {
                what: "subgroup reductions (GpuBuilder::subgroup_reductions(true) or CONVOY_SUBGROUPS=1)".into(),
                feature: "subgroups".into(),
                adapter: adapter.get_info().name,
            });
        }
        let overrides = super::policy::Overrides {
            family: kernels,
            subgroups,
            subgroup_operands: self.subgroup_operands,
            max_texture_side: self.max_texture_side,
            max_staging_bytes: self.max_staging_bytes,
            trusted_modules: match self.trusted_modules {
                Some(on) => Some(on),
                None => super::policy::trusted_from_env()?,
            },
            shape_in_params: self.shape_in_params,
        };
        let policy = |info: &GpuInfo| super::KernelPolicy::choose(info, &overrides);
        let build_threads = build_threads_from_env()?;
        // the driver's pipeline cache: a file per adapter and driver, where the backend has one
        let pipeline_cache = super::disk_cache::cache_key(&adapter.get_info()).and_then(|key| {
            let file = self
                .pipeline_cache
                .clone()
                .unwrap_or_else(|| super::disk_cache::default_file(&key, tune_cache.as_deref()));
            match file {
                super::PipelineCacheFile::At(path) => Some((path, key)),
                super::PipelineCacheFile::Off => None,
            }
        });
        let coop = match self.coop_emulated {
            Some(true) => CoopMode::Emulate,
            Some(false) => CoopMode::On,
            None => coop_mode_from_env()?,
        };
        open(
            adapter,
            (self.want_f16, coop),
            self.poison,
            (tune, tune_cache),
            (build_threads, pipeline_cache),
            policy,
        )
        .await
    }
}

/// Mesa's Vulkan drivers (lavapipe among them) print "error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment." twice when the variable is unset, as on a server or in a
/// container, which reads like a failure. Where it is unset, point it at a private folder of
/// this user's (made 0700, as the XDG spec asks) before the first instance enumerates adapters.
/// Once per process, before convoy starts threads of its own; a runtime folder the user set is
/// left alone.
#[cfg(all(unix, not(target_arch = "wasm32")))]
fn quiet_runtime_dir() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| !d.is_empty()) {
            return;
        }
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("convoy-runtime-{uid}"));
        let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
        if (made.is_ok() || dir.exists()) && ours {
            // once, before this process opens a GPU: no driver thread reads the environment yet
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    });
}

/// Higher is better: discrete > integrated > virtual > CPU; native APIs before GL.
#[cfg(not(target_arch = "wasm32"))]
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let api = match info.backend {
        wgpu::Backend::Gl => 0,
        _ => 1,
    };
    (ty, api)
}

#[cfg(not(target_arch = "wasm32"))]
async fn pick_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    which: Option<&str>,
    local_rank: Option<usize>,
) -> Result<wgpu::Adapter> {
    let mut adapters = instance.enumerate_adapters(backends).await;
    // Stable sort, best first, so indices in CONVOY_ADAPTER are predictable.
    adapters.sort_by_key(|a| std::cmp::Reverse(rank(&a.get_info())));
    let names: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    if adapters.is_empty() {
        return Err(Error::NoAdapter {
            detail: format!(" for backends {backends:?}"),
            hint: NO_ADAPTER_HINT,
        });
    }
    let Some(which) = which else {
        // the best tier (same device type and API class as the best adapter), round robin
        let best = rank(&adapters[0].get_info());
        let tier = adapters.iter().take_while(|a| rank(&a.get_info()) == best).count();
        return Ok(adapters.swap_remove(local_rank.unwrap_or(0) % tier));
    };
    let pos = match which.parse::<usize>() {
        Ok(i) if i < adapters.len() => Some(i),
        Ok(_) => None,
        Err(_) => {
            let w = which.to_ascii_lowercase();
            names.iter().position(|n| n.to_ascii_lowercase().contains(&w))
        }
    };
    match pos {
        Some(i) => Ok(adapters.swap_remove(i)),
        None => Err(Error::NoAdapter {
            detail: format!(" matching CONVOY_ADAPTER='{which}' among [{}]", names.join(", ")),
            hint: NO_ADAPTER_HINT,
        }),
    }
}

#[cfg(target_arch = "wasm32")]
async fn pick_adapter(
    instance: &wgpu::Instance,
    _backends: wgpu::Backends,
    _which: Option<&str>,
    _local_rank: Option<usize>,
) -> Result<wgpu::Adapter> {
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            // the adapter's real limits (the page reads them), not the privacy buckets
            apply_limit_buckets: false,
        })
        .await
        .map_err(|e| Error::NoAdapter {
            detail: format!(" ({e})"),
            hint: NO_ADAPTER_HINT,
        })
}

/// `tune`: tuning on or off (else the policy's default) and the cache file if any;
/// `build_threads`: pipelines built at once on workers; `pipeline_cache`: the driver's pipeline
/// cache file and its key, if kept; `policy`: the kernel policy for the device.
async fn open(
    adapter: wgpu::Adapter,
    (want_f16, coop): (Option<bool>, CoopMode),
    poison: bool,
    (tune, tune_cache): (Option<bool>, Option<std::path::PathBuf>),
    (build_threads, pipeline_cache): (usize, Option<(std::path::PathBuf, String)>),
    policy: impl FnOnce(&GpuInfo) -> super::KernelPolicy,
) -> Result<Gpu> {
    let ainfo = adapter.get_info();
    let have = adapter.features();
    // Only the features convoy uses: newer drivers refuse a request for every adapter feature.
    let mut wanted = wgpu::Features::SUBGROUP
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
    if want_f16.unwrap_or(true) {
        wanted |= wgpu::Features::SHADER_F16;
    }
    if pipeline_cache.is_some() {
        wanted |= wgpu::Features::PIPELINE_CACHE;
    }
    let cooperative_f16 = want_f16.unwrap_or(true) && cooperative_f16_fits(&adapter, coop)?;
    let mut experimental = wgpu::ExperimentalFeatures::disabled();
    if cooperative_f16 {
        wanted |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        // SAFETY: wgpu marks cooperative matrices experimental (its implementation may still
        // have bugs); convoy uses them in the cooperative variants of its large-tile conv
        // kernels, whose results the cooperative-matrix tests check against the f64 reference
        // on such a GPU, and CONVOY_COOP_MATRIX=0 keeps the feature off.
        experimental = unsafe { wgpu::ExperimentalFeatures::enabled() };
    }
    let features = have & wanted;
    // The adapter's own maxima: convoy's big tensors need the largest bindings the device has.
    let limits = adapter.limits();
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("convoy"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        })
        .await
        .map_err(|e| Error::Device {
            adapter: ainfo.name.clone(),
            reason: e.to_string(),
        })?;
    let emulated = coop == CoopMode::Emulate && !cooperative_f16;
    let info = GpuInfo::of(&adapter, &device, cooperative_f16, emulated);
    let dummy = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("convoy dummy"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let dummy_rw = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("convoy dummy rw"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let fault: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let record = |fault: &Arc<std::sync::Mutex<Option<String>>>, msg: String| {
        let mut f = super::lock(fault);
        if f.is_none() {
            *f = Some(msg);
        }
    };
    let f = fault.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&f, e.to_string())));
    let f = fault.clone();
    // the loss is the root cause of whatever failed around it: it replaces an earlier error
    device.set_device_lost_callback(move |reason, msg| {
        *super::lock(&f) = Some(format!("the device was lost ({reason:?}): {msg}"));
    });
    let policy = policy(&info);
    let info_backend = info.backend;
    let disk_cache = pipeline_cache
        .filter(|_| device.features().contains(wgpu::Features::PIPELINE_CACHE))
        .map(|(path, key)| super::disk_cache::DiskPipelineCache::open(&device, path, key));
    let tuner = tune.unwrap_or(policy.tune_by_default()).then(|| {
        let key = format!("{} ({:?}, {})", info.name, info.backend, info.driver).replace('\t', " ");
        super::Tuner::new(key, tune_cache)
    });
    Ok(Gpu {
        inner: Arc::new(GpuInner {
            policy,
            operand_textures: Default::default(),
            operand_staging: Default::default(),
            shared_scratch: Default::default(),
            dummy,
            dummy_rw,
            poison,
            device,
            queue,
            info,
            pipelines: PipelineCache::default(),
            tuner,
            fault,
            serial: super::serial::Serial::new(info_backend == wgpu::Backend::Gl),
            build_threads,
            disk_cache,
        }),
    })
}

/// What the device holds right now, from wgpu's internal counters: for finding growth over a
/// long run (a soak), not for accounting (the driver may round allocations up).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryCounts {
    pub buffers: isize,
    pub textures: isize,
    pub bind_groups: isize,
    pub compute_pipelines: isize,
    /// Bytes of the live buffers and textures where `bytes_counted`, else 0.
    pub buffer_bytes: isize,
    pub texture_bytes: isize,
    /// Whether the backend counts bytes: wgpu's Vulkan and DX12 backends do; its GL and Metal
    /// backends count the objects only, and the browser's WebGPU keeps no counters at all.
    pub bytes_counted: bool,
}

impl Gpu {
    /// Live buffers, textures, bind groups and pipelines of this device and, where the backend
    /// counts them (`MemoryCounts::bytes_counted`), their bytes.
    pub fn memory_counts(&self) -> MemoryCounts {
        let hal = self.device().get_internal_counters().hal;
        MemoryCounts {
            buffers: hal.buffers.read(),
            textures: hal.textures.read(),
            bind_groups: hal.bind_groups.read(),
            compute_pipelines: hal.compute_pipelines.read(),
            buffer_bytes: hal.buffer_memory.read(),
            texture_bytes: hal.texture_memory.read(),
            bytes_counted: matches!(self.info().backend, wgpu::Backend::Vulkan | wgpu::Backend::Dx12),
        }
    }
}

impl Gpu {
    /// Open the best adapter (blocking). Honours CONVOY_BACKEND and CONVOY_ADAPTER.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Gpu> {
        GpuBuilder::default().build()
    }

    pub fn builder() -> GpuBuilder {
        GpuBuilder::default()
    }

    pub fn info(&self) -> &GpuInfo {
        &self.inner.info
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.info.limits
    }
    /// The wgpu device, held for this thread while the handle lives (on the GL backend only:
    /// `device::serial` says why); other backends return at once.
    pub fn device(&self) -> Held<'_, wgpu::Device> {
        Held::new(self.inner.serial.hold(), &self.inner.device)
    }
    /// The wgpu queue, held as `device()` is.
    pub fn queue(&self) -> Held<'_, wgpu::Queue> {
        Held::new(self.inner.serial.hold(), &self.inner.queue)
    }
    /// Hold this device for the calling thread until the guard drops (a no-op off GL): for
    /// dropping wgpu objects, or for a run of calls that must not interleave with other threads'.
    pub fn hold(&self) -> SerialGuard<'_> {
        self.inner.serial.hold()
    }
    /// Keep a clone of a wgpu handle whose owner is being dropped until this thread or another
    /// next holds the device (on GL, where freeing it enters the context; elsewhere it is
    /// dropped at once).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn bury<T: Send + 'static>(&self, handle: T) {
        self.inner.serial.bury(handle);
    }
    /// In the browser there is no GL context and wgpu's handles are not `Send`: dropped at once.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn bury<T: 'static>(&self, handle: T) {
        self.inner.serial.bury(handle);
    }
    /// Whether convoy serialises its calls into this device (wgpu's GL backend).
    pub fn is_serialised(&self) -> bool {
        self.inner.serial.is_on()
    }
    /// Ok when the adapter has shader-f16; otherwise an error saying that `what` needs it.
    pub fn require_f16(&self, what: &str) -> Result<()> {
        if self.info().has_f16() {
            return Ok(());
        }
        Err(Error::Feature {
            what: what.into(),
            feature: "shader-f16".into(),
            adapter: self.info().name.clone(),
        })
    }
    pub(crate) fn poisons_outputs(&self) -> bool {
        self.inner.poison
    }
    /// Which kernel family and operand paths the launchers use on this device.
    pub fn policy(&self) -> &super::KernelPolicy {
        &self.inner.policy
    }
    /// The kernel tuner, when tuning is on.
    pub fn tuner(&self) -> Option<&super::Tuner> {
        self.inner.tuner.as_ref()
    }
    pub(crate) fn dummy(&self) -> &wgpu::Buffer {
        &self.inner.dummy
    }
    pub(crate) fn dummy_rw(&self) -> &wgpu::Buffer {
        &self.inner.dummy_rw
    }

    /// Block until all submitted work is done (native only); an error if the device reported
    /// one (out of memory, a lost device) since it was opened.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sync(&self) -> Result<()> {
        let polled = self.device().poll(wgpu::PollType::wait_indefinitely());
        self.check_fault("sync")?;
        polled.map(|_| ()).map_err(|e| Error::Gpu {
            during: "sync".into(),
            reason: e.to_string(),
        })
    }

    /// The device's recorded fault, if any, as an error naming what was being done.
    /// Record `reason` as the device's fault where it has none yet (the next `sync` or
    /// readback returns it).
    pub(crate) fn record_fault(&self, reason: String) {
        let mut f = super::lock(&self.inner.fault);
        if f.is_none() {
            *f = Some(reason);
        }
    }

    pub fn check_fault(&self, during: &str) -> Result<()> {
        match super::lock(&self.inner.fault).as_ref() {
            None => Ok(()),
            Some(reason) => Err(Error::Gpu {
                during: during.into(),
                reason: reason.clone(),
            }),
        }
    }

    /// Check that a storage binding of `bytes` fits this device; names `what` if not.
    pub fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let max = self.limits().max_storage_buffer_binding_size;
        if bytes > max {
            return Err(Error::Limit {
                what: format!("{what} ({bytes} bytes as one storage binding)"),
                need: bytes,
                max,
            });
        }
        Ok(())
    }
}
