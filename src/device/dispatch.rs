//! `Dispatch`: one kernel launch with its bind group and grid, made once and encoded as often as
//! needed. The functional API runs a few; a compiled plan records hundreds into one submit.

use super::gpu::Gpu;
use super::pipeline::{Binding, Pipeline};
use crate::error::{Error, Result};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// WebGPU's guaranteed minimum; kernels fold a linear workgroup id over x and y beyond it.
pub const MAX_WORKGROUPS_PER_DIM: u32 = 65_535;

/// A grid of `groups` workgroups folded into (x, y) so that x stays within the device limit.
/// Kernels recover the linear id as `wid.x + wid.y * nwg.x` and skip ids past their work.
pub fn grid_1d(groups: u32) -> [u32; 3] {
    let groups = groups.max(1);
    if groups <= MAX_WORKGROUPS_PER_DIM {
        [groups, 1, 1]
    } else {
        let y = groups.div_ceil(MAX_WORKGROUPS_PER_DIM);
        [groups.div_ceil(y), y, 1]
    }
}

/// What a kernel binding is bound to: a buffer, or a view of an operand texture.
#[derive(Clone, Copy)]
pub enum Resource<'a> {
    Buffer(&'a wgpu::Buffer),
    Texture(&'a wgpu::TextureView),
}

pub struct Dispatch {
    pub pipeline: Arc<Pipeline>,
    pub bind_group: wgpu::BindGroup,
    pub grid: [u32; 3],
    /// A copy this kernel's output takes into a texture once it has run (between passes).
    pub fill: Option<TextureFill>,
    /// The bytes a memory-bound kernel reads and writes at the least (each tensor once), for
    /// its bandwidth in `Plan::profile`; 0 where not stated (the compute-bound kernels).
    pub bytes: u64,
    /// Derives a value from the parameters alone (weights packed into a texture of their own):
    /// a plan runs it in its prologue, again only when the parameters change.
    pub derived: bool,
    /// The device, for freeing the bind group under its lock on GL (`device::serial`).
    gpu: Gpu,
}

impl Drop for Dispatch {
    fn drop(&mut self) {
        if self.gpu.is_serialised() {
            self.gpu.bury(self.bind_group.clone());
            if let Some(f) = &self.fill {
                self.gpu.bury((f.staging.clone(), f.texture.clone()));
            }
        }
    }
}

/// `rows` rows of `width` texels, `bytes_per_row` apart in a staging buffer, copied into a
/// texture from row `y0` on.
pub struct TextureFill {
    pub staging: wgpu::Buffer,
    pub bytes_per_row: u32,
    pub texture: wgpu::Texture,
    pub y0: u32,
    pub width: u32,
    pub rows: u32,
}

impl TextureFill {
    fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: &self.staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(self.bytes_per_row),
                    rows_per_image: None,
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d { x: 0, y: self.y0, z: 0 },
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d {
                width: self.width,
                height: self.rows,
                depth_or_array_layers: 1,
            },
        );
    }
}

/// Record `ds` in order: compute passes, one ending after each dispatch that fills a texture,
/// whose copy then runs before the next pass. With `timestamps` (a query set and an index i),
/// query i is written at the start of the first pass and query i + 1 at the end of the last.
pub fn encode_dispatches(
    encoder: &mut wgpu::CommandEncoder,
    label: &str,
    timestamps: Option<(&wgpu::QuerySet, u32)>,
    ds: &[&Dispatch],
) {
    let mut rest = ds;
    let mut first = true;
    loop {
        let end = rest.iter().position(|d| d.fill.is_some()).map_or(rest.len(), |i| i + 1);
        let (run, tail) = rest.split_at(end);
        let fill = run.last().and_then(|d| d.fill.as_ref());
        // a run that ends in a copy is followed by one more pass (empty if nothing is left), so
        // the last timestamp comes after the copy
        let last = tail.is_empty() && fill.is_none();
        let writes = timestamps.map(|(query_set, at)| wgpu::ComputePassTimestampWrites {
            query_set,
            beginning_of_pass_write_index: first.then_some(at),
            end_of_pass_write_index: last.then_some(at + 1),
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: writes.filter(|_| first || last),
            });
            for d in run {
                d.encode(&mut pass);
            }
        }
        if let Some(f) = fill {
            f.encode(encoder);
        }
        if last {
            return;
        }
        first = false;
        rest = tail;
    }
}

impl Dispatch {
    /// Bind `params` (a uniform struct, as plain u32/f32 words) and `buffers` in binding order.
    /// The shader's binding list decides which is the uniform: it must be binding 0 if present.
    pub fn new(
        gpu: &Gpu,
        pipeline: Arc<Pipeline>,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        grid: [u32; 3],
    ) -> Result<Dispatch> {
        let resources: Vec<Resource> = buffers.iter().map(|b| Resource::Buffer(b)).collect();
        Dispatch::with_resources(gpu, pipeline, params, &resources, grid)
    }

    /// `new` for kernels that also bind textures: `resources` in binding order, each of the
    /// kind its binding declares.
    pub fn with_resources(
        gpu: &Gpu,
        pipeline: Arc<Pipeline>,
        params: &[u32],
        resources: &[Resource],
        grid: [u32; 3],
    ) -> Result<Dispatch> {
        let shader = pipeline.shader;
        let has_uniform = shader.bindings.first() == Some(&Binding::Uniform);
        let expected = shader.bindings.len() - usize::from(has_uniform);
        if resources.len() != expected {
            return Err(Error::Shader {
                shader: shader.name.into(),
                reason: format!("{} resources bound, the kernel declares {expected}", resources.len()),
            });
        }
        for (i, r) in resources.iter().enumerate() {
            let declared = shader.bindings[i + usize::from(has_uniform)];
            let is_texture = declared == Binding::Texture;
            if is_texture != matches!(r, Resource::Texture(_)) {
                return Err(Error::Shader {
                    shader: shader.name.into(),
                    reason: format!("resource {i} does not match its binding ({declared:?})"),
                });
            }
        }
        if grid
            .iter()
            .any(|&g| g > gpu.limits().max_compute_workgroups_per_dimension)
        {
            return Err(Error::Limit {
                what: format!("dispatch of {} with grid {grid:?}", shader.name),
                need: *grid.iter().max().unwrap_or(&0) as u64,
                max: gpu.limits().max_compute_workgroups_per_dimension as u64,
            });
        }
        let device = gpu.device();
        let uniform = has_uniform.then(|| {
            // Uniform buffers need 16-byte sizes; pad with zeros.
            let mut words = params.to_vec();
            words.resize(params.len().div_ceil(4).max(1) * 4, 0);
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(shader.name),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::UNIFORM,
            })
        });
        let mut entries = Vec::with_capacity(shader.bindings.len());
        if let Some(u) = &uniform {
            entries.push(wgpu::BindGroupEntry {
                binding: 0,
                resource: u.as_entire_binding(),
            });
        }
        for (i, r) in resources.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: (i + usize::from(has_uniform)) as u32,
                resource: match r {
                    Resource::Buffer(b) => b.as_entire_binding(),
                    Resource::Texture(v) => wgpu::BindingResource::TextureView(v),
                },
            });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.name),
            layout: &pipeline.layout,
            entries: &entries,
        });
        Ok(Dispatch {
            pipeline,
            bind_group,
            grid,
            fill: None,
            bytes: 0,
            derived: false,
            gpu: gpu.clone(),
        })
    }

    /// This dispatch, stated to move `bytes` (see `bytes`).
    pub fn moving(mut self, bytes: usize) -> Dispatch {
        self.bytes = bytes as u64;
        self
    }

    /// This dispatch, stated to derive its output from the parameters alone (see `derived`).
    pub fn deriving(mut self) -> Dispatch {
        self.derived = true;
        self
    }

    /// This dispatch followed by `fill`'s copy.
    pub fn then_fill(mut self, fill: TextureFill) -> Dispatch {
        self.fill = Some(fill);
        self
    }

    /// Record this dispatch into `pass`, after its pipeline's build where a worker runs it. A
    /// pipeline whose build failed records nothing and becomes the device's fault, which the
    /// next `sync` or readback returns (`Gpu::check_fault`): what an encoder cannot return.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        match self.pipeline.compute() {
            Ok(pipeline) => {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &self.bind_group, &[]);
                pass.dispatch_workgroups(self.grid[0], self.grid[1], self.grid[2]);
            }
            Err(e) => self.gpu.record_fault(e.to_string()),
        }
    }
}

impl Gpu {
    /// Record `dispatches` in order into one command buffer and submit once.
    pub fn run(&self, dispatches: &[Dispatch]) {
        let mut encoder = self
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("convoy") });
        let ds: Vec<&Dispatch> = dispatches.iter().collect();
        encode_dispatches(&mut encoder, "convoy", None, &ds);
        self.queue().submit([encoder.finish()]);
    }
}
