//! Operand textures: rgba32float 2D textures a packing kernel fills from an activation buffer
//! for the kernels that read their operand with `textureLoad` (the CPU family of
//! `KernelPolicy`). The packing kernel writes the texels into the texture's staging buffer and a
//! copy moves them in: on lavapipe an rgba32float `textureStore` costs ~11 ns a texel, a vec4
//! storage-buffer store ~2.5 and the copy ~1.4 (`cargo run --release --example memory_paths`,
//! Xeon). Most are scratch: filled right before the dispatch that reads them, in the same
//! command buffer, so one texture per size serves every conv of every plan on the device. A
//! training plan keeps some packed for a later kernel (`kept_operand_texture`; see
//! `kernels::conv::texture::KeptOperands`).

use super::gpu::Gpu;
use super::lock;
use crate::error::{Error, Result};
use std::sync::Arc;

/// Four f32 values per texel: four channels of one pixel.
pub const OPERAND_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// Sides are allocated in steps of this many texels, so shapes close in size share a texture.
const SIDE_STEP: u32 = 64;

/// A pooled operand texture of at least the requested size, with its staging buffer.
pub struct OperandTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    /// Texels laid out row by row, `staging_stride` apart, for `copy_buffer_to_texture`.
    pub staging: wgpu::Buffer,
    /// Texels from one staging row to the next: the texture's width rounded up to the 256
    /// bytes a buffer-to-texture copy needs between rows.
    pub staging_stride: u32,
    /// Rows the staging buffer holds: every row of the texture unless that passes
    /// `KernelPolicy::max_staging_bytes` (the storage-binding limit); then the texture is filled
    /// in bands of this many rows.
    pub staging_rows: u32,
}

/// Bytes of one rgba32float texel.
pub(crate) const TEXEL_BYTES: u32 = 16;

/// A staging buffer for textures of one size class, with its row layout.
#[derive(Clone)]
pub struct Staging {
    buffer: wgpu::Buffer,
    stride: u32,
    rows: u32,
}

impl Gpu {
    /// A scratch operand texture of at least `width` x `height` texels for `what`, shared with
    /// every other user of the same size class; refused (naming `what`) beyond the policy's
    /// largest side.
    pub(crate) fn operand_texture(
        &self,
        what: &str,
        slot: u32,
        width: u32,
        height: u32,
    ) -> Result<Arc<OperandTexture>> {
        let (w, h) = self.operand_size(what, width, height)?;
        let mut pool = lock(&self.inner.operand_textures);
        if let Some(t) = pool.get(&(slot, w, h)) {
            return Ok(t.clone());
        }
        let t = self.new_operand_texture(w, h);
        pool.insert((slot, w, h), t.clone());
        Ok(t)
    }

    /// An operand texture of its own, not pooled: for an operand that must stay packed past
    /// the next conv (a conv's input that its weight gradient reads again). It lives as long
    /// as its holder keeps it.
    pub(crate) fn kept_operand_texture(&self, what: &str, width: u32, height: u32) -> Result<Arc<OperandTexture>> {
        let (w, h) = self.operand_size(what, width, height)?;
        Ok(self.new_operand_texture(w, h))
    }

    /// The size class of a `width` x `height` operand texture, or an error naming `what` and
    /// the limit.
    fn operand_size(&self, what: &str, width: u32, height: u32) -> Result<(u32, u32)> {
        let max = self.policy().max_texture_side;
        for (side, v) in [("width", width), ("height", height)] {
            if v > max {
                return Err(Error::Limit {
                    what: format!("{what}: operand texture {side} of {width}x{height} texels"),
                    need: v as u64,
                    max: max as u64,
                });
            }
        }
        let round = |v: u32| v.max(1).div_ceil(SIDE_STEP).saturating_mul(SIDE_STEP).min(max);
        Ok((round(width), round(height)))
    }

    /// A texture of size class `w` x `h` with the staging buffer of its class. A staging
    /// buffer only holds texels from a packing dispatch to the copy right after it, so one per
    /// size class serves every texture of that size.
    fn new_operand_texture(&self, w: u32, h: u32) -> Arc<OperandTexture> {
        let texture = self.device().create_texture(&wgpu::TextureDescriptor {
            label: Some("convoy operand texture"),
            size: wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: OPERAND_FORMAT,
            usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let staging = lock(&self.inner.operand_staging)
            .entry((w, h))
            .or_insert_with(|| {
                let stride = w.next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT / TEXEL_BYTES);
                let row_bytes = u64::from(stride * TEXEL_BYTES);
                let most = self.policy().max_staging_bytes;
                let rows = (most / row_bytes).clamp(1, u64::from(h)) as u32;
                let buffer = self.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("convoy operand staging"),
                    size: u64::from(rows) * row_bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                Staging { buffer, stride, rows }
            })
            .clone();
        Arc::new(OperandTexture {
            texture,
            view,
            staging: staging.buffer,
            staging_stride: staging.stride,
            staging_rows: staging.rows,
        })
    }
}
