//! `Tensor`: a GPU buffer with a shape and an element type. Reshapes share the buffer.

use crate::device::{read_buffer, Gpu};
use crate::error::{Error, Result};
pub use crate::shape::DType;
use crate::shape::Shape;
use std::sync::Arc;
use wgpu::util::DeviceExt;

#[derive(Clone)]
pub struct Tensor {
    gpu: Gpu,
    buffer: Arc<wgpu::Buffer>,
    shape: Shape,
    dtype: DType,
}

impl Drop for Tensor {
    fn drop(&mut self) {
        // on wgpu's GL backend freeing the buffer enters the driver's context: the device's
        // next holder frees it (`device::serial`)
        if self.gpu.is_serialised() {
            self.gpu.bury(Arc::clone(&self.buffer));
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {})", self.dtype, self.shape)
    }
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Tensor {
    /// Upload f32 data with the given shape; the length must equal the shape's element count.
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_slice", data.len(), &shape)?;
        Self::from_bytes(gpu, bytemuck::cast_slice(data), shape, DType::F32)
    }

    /// Upload f32 data stored as f16 (rounded to nearest). Needs the adapter's shader-f16.
    pub fn from_slice_f16(gpu: &Gpu, data: &[f32], shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_slice_f16", data.len(), &shape)?;
        gpu.require_f16("an f16 tensor")?;
        let halves: Vec<half::f16> = data.iter().map(|&x| half::f16::from_f32(x)).collect();
        Self::from_bytes(gpu, bytemuck::cast_slice(&halves), shape, DType::F16)
    }

    /// Upload i32 data (class labels, indices).
    pub fn from_i32(gpu: &Gpu, data: &[i32], shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        check_len("Tensor::from_i32", data.len(), &shape)?;
        Self::from_bytes(gpu, bytemuck::cast_slice(data), shape, DType::I32)
    }

    fn from_bytes(gpu: &Gpu, bytes: &[u8], shape: Shape, dtype: DType) -> Result<Tensor> {
        let padded = padded_size(bytes.len() as u64);
        check_size(gpu, "tensor upload", &shape, padded)?;
        let buffer = if padded as usize == bytes.len() {
            gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage: USAGE,
            })
        } else {
            let mut v = bytes.to_vec();
            v.resize(padded as usize, 0);
            gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &v,
                usage: USAGE,
            })
        };
        Ok(Tensor {
            gpu: gpu.clone(),
            buffer: Arc::new(buffer),
            shape,
            dtype,
        })
    }

    /// A zero-filled f32 tensor.
    pub fn zeros(gpu: &Gpu, shape: impl Into<Shape>) -> Result<Tensor> {
        Self::alloc(gpu, shape.into(), DType::F32, false)
    }

    /// An f32 tensor that a kernel is about to overwrite completely. On a Gpu opened with
    /// `poison_outputs` (the tests) it is filled with NaN so an unwritten element shows.
    pub fn empty(gpu: &Gpu, shape: impl Into<Shape>) -> Result<Tensor> {
        Self::empty_of(gpu, shape, DType::F32)
    }

    /// `empty` with elements of `dtype`.
    pub fn empty_of(gpu: &Gpu, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        Self::alloc(gpu, shape.into(), dtype, gpu.poisons_outputs())
    }

    fn alloc(gpu: &Gpu, shape: Shape, dtype: DType, poison: bool) -> Result<Tensor> {
        if dtype == DType::F16 {
            gpu.require_f16("an f16 tensor")?;
        }
        let bytes = padded_size((shape.numel() * dtype.size()) as u64);
        check_size(gpu, "tensor", &shape, bytes)?;
        let buffer = gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: USAGE,
            mapped_at_creation: false,
        });
        if poison {
            // NaN in every element: f32 NaN bits, or two f16 NaNs per word
            let word = if dtype == DType::F16 {
                0x7e00_7e00
            } else {
                f32::NAN.to_bits()
            };
            let nan = vec![word; bytes as usize / 4];
            gpu.queue().write_buffer(&buffer, 0, bytemuck::cast_slice(&nan));
        }
        Ok(Tensor {
            gpu: gpu.clone(),
            buffer: Arc::new(buffer),
            shape,
            dtype,
        })
    }

    /// A tensor over an existing buffer (a plan's value); the buffer must hold the shape.
    pub(crate) fn from_buffer(gpu: &Gpu, buffer: wgpu::Buffer, shape: Shape, dtype: DType) -> Tensor {
        Tensor {
            gpu: gpu.clone(),
            buffer: Arc::new(buffer),
            shape,
            dtype,
        }
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// Size of the data in bytes (without the padding to 4 bytes).
    pub fn byte_len(&self) -> u64 {
        (self.numel() * self.dtype.size()) as u64
    }

    /// The same data with another shape of equal element count (no copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("a shape with {} elements (from {})", self.numel(), self.shape),
                &shape,
            ));
        }
        let mut t = self.clone();
        t.shape = shape;
        Ok(t)
    }

    /// Write new f32 data into this tensor (same element count).
    pub fn write(&self, data: &[f32]) -> Result<()> {
        self.expect_dtype("Tensor::write", DType::F32)?;
        check_len("Tensor::write", data.len(), &self.shape)?;
        self.gpu
            .queue()
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Read the data back as f32 (f16 storage is widened).
    pub async fn to_vec_async(&self) -> Result<Vec<f32>> {
        let bytes = read_buffer(&self.gpu, &self.buffer, self.byte_len()).await?;
        match self.dtype {
            DType::F32 => Ok(bytemuck::pod_collect_to_vec(&bytes)),
            DType::F16 => Ok(bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes)
                .iter()
                .map(|h| h.to_f32())
                .collect()),
            DType::I32 => Ok(bytemuck::pod_collect_to_vec::<u8, i32>(&bytes)
                .iter()
                .map(|&i| i as f32)
                .collect()),
        }
    }

    /// Read the data back as f32 (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        pollster::block_on(self.to_vec_async())
    }

    /// Read i32 data back (blocking; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_i32_vec(&self) -> Result<Vec<i32>> {
        self.expect_dtype("Tensor::to_i32_vec", DType::I32)?;
        let bytes = pollster::block_on(read_buffer(&self.gpu, &self.buffer, self.byte_len()))?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// The storage type of an activation input: f32, or f16 (kernels accumulate in f32).
    pub(crate) fn expect_activation(&self, op: &str) -> Result<DType> {
        match self.dtype {
            DType::F32 | DType::F16 => Ok(self.dtype),
            DType::I32 => Err(Error::shape(op, "an F32 or F16 tensor", format!("I32 {}", self.shape))),
        }
    }

    pub(crate) fn expect_dtype(&self, op: &str, dtype: DType) -> Result<()> {
        if self.dtype != dtype {
            return Err(Error::shape(
                op,
                format!("a {dtype:?} tensor"),
                format!("{:?} {}", self.dtype, self.shape),
            ));
        }
        Ok(())
    }
}

fn padded_size(bytes: u64) -> u64 {
    bytes.div_ceil(4).max(1) * 4
}

fn check_len(op: &str, len: usize, shape: &Shape) -> Result<()> {
    if len != shape.numel() {
        return Err(Error::shape(
            op,
            format!("{} values for shape {shape}", shape.numel()),
            format!("{len} values"),
        ));
    }
    Ok(())
}

fn check_size(gpu: &Gpu, what: &str, shape: &Shape, bytes: u64) -> Result<()> {
    let max = gpu.limits().max_buffer_size;
    if bytes > max {
        return Err(Error::Limit {
            what: format!("{what} of shape {shape}"),
            need: bytes,
            max,
        });
    }
    gpu.check_binding(&format!("{what} of shape {shape}"), bytes)
}
