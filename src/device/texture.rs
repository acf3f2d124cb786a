//! Operand textures: rgba32float 2D textures a packing kernel fills from an activation buffer
//! for the kernels that read their operand with `textureLoad` (the CPU family of
//! `KernelPolicy`). They are scratch: filled right before the dispatch that reads them, in the
//! same compute pass, so one texture per size serves every conv of every plan on the device.

use super::gpu::Gpu;
use super::lock;
use crate::error::{Error, Result};
use std::sync::Arc;

/// Four f32 values per texel: four channels of one pixel.
pub const OPERAND_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// Sides are allocated in steps of this many texels, so shapes close in size share a texture.
const SIDE_STEP: u32 = 64;

/// A pooled operand texture of at least the requested size.
pub struct OperandTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
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
        let key = (slot, round(width), round(height));
        let mut pool = lock(&self.inner.operand_textures);
        let t = pool.entry(key).or_insert_with(|| {
            let texture = self.device().create_texture(&wgpu::TextureDescriptor {
                label: Some("convoy operand texture"),
                size: wgpu::Extent3d {
                    width: key.1,
                    height: key.2,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: OPERAND_FORMAT,
                usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            Arc::new(OperandTexture { texture, view })
        });
        Ok(t.clone())
    }
}
