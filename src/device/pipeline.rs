//! Shaders and the pipeline cache. A pipeline is built once per (shader, override constants) and
//! reused by every dispatch, in the functional API and in compiled plans alike.

use super::gpu::Gpu;
use super::lock;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How a kernel sees one of its bindings. Binding i of group 0 is the i-th entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Uniform,
    Read,
    ReadWrite,
    /// `texture_2d<f32>` read with `textureLoad` (an rgba32float operand; CPU drivers fetch
    /// texels vectorised where they loop over the lanes of a storage-buffer load).
    Texture,
}

/// A WGSL kernel: its source (one file in shaders/) and the layout of its bind group 0.
#[derive(Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub bindings: &'static [Binding],
    /// Audited: every index the kernel makes is within its array once its launcher has
    /// validated the shapes, so a device whose policy says so (`KernelPolicy::trusted_modules`)
    /// builds it without naga's runtime checks.
    pub trusted: bool,
}

/// A compute pipeline with the explicit bind-group layout it was built with. The layout is
/// there at once (bind groups need it); the pipeline may still be building on a worker
/// (`compute` waits for it).
#[derive(Debug)]
pub struct Pipeline {
    pub shader: &'static Shader,
    pub layout: wgpu::BindGroupLayout,
    built: OnceLock<std::result::Result<wgpu::ComputePipeline, String>>,
    worker: Mutex<Option<std::thread::JoinHandle<std::result::Result<wgpu::ComputePipeline, String>>>>,
}

impl Pipeline {
    /// The compute pipeline, after its build where a worker runs it; or the build's error.
    pub fn compute(&self) -> Result<&wgpu::ComputePipeline> {
        if self.built.get().is_none() {
            // the worker's handle under its lock: a second caller waits for the first's join
            let mut worker = lock(&self.worker);
            if let Some(handle) = worker.take() {
                let built = handle.join().unwrap_or_else(|_| Err("its build panicked".to_string()));
                let _ = self.built.set(built);
            }
        }
        match self.built.get() {
            Some(Ok(p)) => Ok(p),
            Some(Err(reason)) => Err(crate::error::Error::Shader {
                shader: self.shader.name.to_string(),
                reason: reason.clone(),
            }),
            None => Err(crate::error::Error::Shader {
                shader: self.shader.name.to_string(),
                reason: "its pipeline was never built".to_string(),
            }),
        }
    }
}

/// One of the workers' build slots: as many pipelines build at once as the device's
/// `build_threads` (the machine's cores by default: more would only share them and hold more
/// compilers' memory).
#[cfg(not(target_arch = "wasm32"))]
struct BuildSlot;

#[cfg(not(target_arch = "wasm32"))]
static BUILD_SLOTS: (Mutex<usize>, std::sync::Condvar) = (Mutex::new(0), std::sync::Condvar::new());

#[cfg(not(target_arch = "wasm32"))]
impl BuildSlot {
    fn take(most: usize) -> BuildSlot {
        let (busy, freed) = &BUILD_SLOTS;
        let mut n = lock(busy);
        while *n >= most {
            n = freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        BuildSlot
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for BuildSlot {
    fn drop(&mut self) {
        let (busy, freed) = &BUILD_SLOTS;
        *lock(busy) -= 1;
        freed.notify_one();
    }
}

type Key = (&'static str, Vec<(&'static str, u64)>);

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Key, Arc<Pipeline>>>,
    /// The kernels whose modules were built without runtime checks.
    unchecked: Mutex<Vec<&'static str>>,
    built: Mutex<BuildTime>,
    /// Pipelines building on workers, until `finish_pipelines`.
    pending: Mutex<Vec<Arc<Pipeline>>>,
}

/// What building shader modules and pipelines has cost this device so far: how many, and the
/// seconds spent in wgpu's calls (naga's parse, validation and translation, the driver's
/// compile); 0 seconds in a browser, which has no clock for it. `CONVOY_DEBUG` prints what a
/// plan's compile added.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BuildTime {
    pub modules: usize,
    pub module_secs: f64,
    pub pipelines: usize,
    pub pipeline_secs: f64,
}

impl std::ops::Sub for BuildTime {
    type Output = BuildTime;
    fn sub(self, o: BuildTime) -> BuildTime {
        BuildTime {
            modules: self.modules - o.modules,
            module_secs: self.module_secs - o.module_secs,
            pipelines: self.pipelines - o.pipelines,
            pipeline_secs: self.pipeline_secs - o.pipeline_secs,
        }
    }
}

/// Seconds since a start, in native builds (a browser has no `Instant::now`: 0 there).
#[derive(Clone, Copy)]
pub struct Since(Option<std::time::Instant>);

impl Since {
    pub fn now() -> Since {
        Since((!cfg!(target_arch = "wasm32")).then(std::time::Instant::now))
    }

    pub fn secs(&self) -> f64 {
        self.0.map_or(0.0, |t| t.elapsed().as_secs_f64())
    }
}

impl Gpu {
    /// The pipeline of `shader` specialised by `constants` (WGSL `override`s), built on first use.
    pub fn pipeline(&self, shader: &'static Shader, constants: &[(&'static str, f64)]) -> Result<Arc<Pipeline>> {
        let mut sorted: Vec<(&'static str, f64)> = constants.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let key: Key = (shader.name, sorted.iter().map(|(k, v)| (*k, v.to_bits())).collect());
        let cache = &self.inner.pipelines;
        if let Some(p) = lock(&cache.pipelines).get(&key) {
            return Ok(p.clone());
        }
        let device = self.device();
        // Catch validation errors of the module and the pipeline as an Error, not a panic.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let started = Since::now();
        let module = {
            let mut modules = lock(&cache.modules);
            modules
                .entry(shader.name)
                .or_insert_with(|| {
                    lock(&cache.built).modules += 1;
                    let desc = wgpu::ShaderModuleDescriptor {
                        label: Some(shader.name),
                        source: wgpu::ShaderSource::Wgsl(shader.source.into()),
                    };
                    if shader.trusted && self.policy().trusted_modules {
                        lock(&cache.unchecked).push(shader.name);
                        // SAFETY: `Shader::trusted` kernels are audited to index only within
                        // their arrays for every shape their launchers accept, and their loops
                        // all end; the tests run each both ways and compare the bits
                        unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
                    } else {
                        device.create_shader_module(desc)
                    }
                })
                .clone()
        };
        let module_secs = started.secs();
        let entries: Vec<wgpu::BindGroupLayoutEntry> = shader
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match b {
                    Binding::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Binding::Read | Binding::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *b == Binding::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Binding::Texture => wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(shader.name),
            entries: &entries,
        });
        check_scope(scope, shader.name)?;
        lock(&cache.built).module_secs += module_secs;
        drop(device);
        // the pipeline (naga's specialisation and translation, the driver's compile: the
        // expensive part) on a worker where this device allows threads, so that a plan's
        // lowering goes on while its pipelines build side by side; waited for where a dispatch
        // is encoded or a plan finishes compiling (`finish_pipelines`)
        let build = {
            let (gpu, layout) = (self.clone(), layout.clone());
            move || gpu.build_compute(shader, &module, &layout, &sorted)
        };
        let p = Arc::new(Pipeline {
            shader,
            layout,
            built: OnceLock::new(),
            worker: Mutex::new(None),
        });
        #[cfg(not(target_arch = "wasm32"))]
        if self.builds_in_parallel() {
            let most = self.inner.build_threads;
            *lock(&p.worker) = Some(std::thread::spawn(move || {
                let _slot = BuildSlot::take(most);
                build()
            }));
            lock(&cache.pending).push(p.clone());
            lock(&cache.pipelines).insert(key, p.clone());
            return Ok(p);
        }
        let built = build();
        if let Err(reason) = &built {
            return Err(crate::error::Error::Shader {
                shader: shader.name.to_string(),
                reason: reason.clone(),
            });
        }
        let _ = p.built.set(built);
        lock(&cache.pipelines).insert(key, p.clone());
        Ok(p)
    }

    /// Whether pipelines build on worker threads: natively, off the GL backend (whose calls
    /// are serialised on one thread at a time, `device::serial`), unless CONVOY_BUILD_THREADS=1.
    #[cfg(not(target_arch = "wasm32"))]
    fn builds_in_parallel(&self) -> bool {
        !self.inner.serial.is_on() && self.inner.build_threads > 1
    }

    /// Build the compute pipeline of `module` with `layout` and the constants `sorted`: the
    /// pipeline, or the validation error's message.
    fn build_compute(
        &self,
        shader: &'static Shader,
        module: &wgpu::ShaderModule,
        layout: &wgpu::BindGroupLayout,
        sorted: &[(&'static str, f64)],
    ) -> std::result::Result<wgpu::ComputePipeline, String> {
        let started = Since::now();
        let device = self.device();
        // error scopes are the calling thread's own
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(shader.name),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.name),
            layout: Some(&pl),
            module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: sorted,
                // Kernels write workgroup memory before reading it; zero-filling only costs time.
                zero_initialize_workgroup_memory: false,
            },
            cache: self.inner.disk_cache.as_ref().map(|c| &c.cache),
        });
        let checked = check_scope(scope, shader.name);
        drop(device);
        {
            let mut built = lock(&self.inner.pipelines.built);
            built.pipelines += 1;
            built.pipeline_secs += started.secs();
        }
        if super::debug_level() >= 2 {
            let constants: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!(
                "convoy: pipeline {} built in {:.1} ms: {}",
                shader.name,
                started.secs() * 1e3,
                constants.join(" ")
            );
        }
        match checked {
            Ok(()) => Ok(pipeline),
            Err(crate::error::Error::Shader { reason, .. }) => Err(reason),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Wait for every pipeline building on a worker: the first build's error, if any (a plan
    /// calls it at the end of its compile, so its errors surface there and its first run waits
    /// for nothing).
    pub fn finish_pipelines(&self) -> Result<()> {
        let pending = std::mem::take(&mut *lock(&self.inner.pipelines.pending));
        let mut first = Ok(());
        for p in pending {
            if let Err(e) = p.compute() {
                first = first.and(Err(e));
            }
        }
        // what the driver compiled, for the next process
        if let Some(c) = &self.inner.disk_cache {
            c.save(self.build_time().pipelines);
        }
        first
    }

    /// The file the driver's compiled pipelines persist in, where the adapter keeps a pipeline
    /// cache and it is on (`GpuBuilder::pipeline_cache`).
    pub fn pipeline_cache_file(&self) -> Option<&std::path::Path> {
        self.inner.disk_cache.as_ref().map(|c| c.path())
    }

    /// Compile `shader` (its `override`s at their defaults) into a pipeline outside the cache and
    /// wait for the driver's verdict: the error message, or None. The browser's WGSL compiler is
    /// stricter than naga in places (e.g. no infinities in constant expressions), so the web
    /// build checks every kernel this way.
    pub async fn shader_error(&self, shader: &'static Shader) -> Option<String> {
        let device = self.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(shader.source.into()),
        });
        let _pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.name),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        scope.pop().await.map(|e| e.to_string())
    }

    /// The kernels built so far without naga's runtime checks (`Shader::trusted` on a device
    /// whose policy says so), in the order they were first built.
    pub fn unchecked_modules(&self) -> Vec<&'static str> {
        lock(&self.inner.pipelines.unchecked).clone()
    }

    /// What building modules and pipelines has cost this device so far.
    pub fn build_time(&self) -> BuildTime {
        *lock(&self.inner.pipelines.built)
    }

    /// Number of distinct pipelines built so far (for tests and `CONVOY_DEBUG`).
    pub fn pipeline_count(&self) -> usize {
        lock(&self.inner.pipelines.pipelines).len()
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn check_scope(scope: wgpu::ErrorScopeGuard, shader: &str) -> Result<()> {
    match pollster::block_on(scope.pop()) {
        None => Ok(()),
        Some(e) => Err(crate::error::Error::Shader {
            shader: shader.to_string(),
            reason: e.to_string(),
        }),
    }
}

// In the browser, errors of pipeline creation surface through the device's uncaptured-error
// handler; every shader is validated by naga in the native tests.
#[cfg(target_arch = "wasm32")]
fn check_scope(scope: wgpu::ErrorScopeGuard, _shader: &str) -> Result<()> {
    drop(scope.pop());
    Ok(())
}
