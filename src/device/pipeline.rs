//! Shaders and the pipeline cache. A pipeline is built once per (shader, override constants) and
//! reused by every dispatch, in the functional API and in compiled plans alike.

use super::gpu::Gpu;
use super::lock;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// A compute pipeline with the explicit bind-group layout it was built with.
#[derive(Debug)]
pub struct Pipeline {
    pub shader: &'static Shader,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

type Key = (&'static str, Vec<(&'static str, u64)>);

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Key, Arc<Pipeline>>>,
    /// The kernels whose modules were built without runtime checks.
    unchecked: Mutex<Vec<&'static str>>,
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
        let module = {
            let mut modules = lock(&cache.modules);
            modules
                .entry(shader.name)
                .or_insert_with(|| {
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
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(shader.name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.name),
            layout: Some(&pl),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &sorted,
                // Kernels write workgroup memory before reading it; zero-filling only costs time.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        check_scope(scope, shader.name)?;
        let p = Arc::new(Pipeline {
            shader,
            pipeline,
            layout,
        });
        lock(&cache.pipelines).insert(key, p.clone());
        Ok(p)
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
