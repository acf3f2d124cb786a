//! Element types of tensor storage: what the graph's values, the tensors and the kernels' f32/f16
//! variants are stored as.

/// Element type of a tensor's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// Half-precision storage (needs the adapter's shader-f16 to be used by kernels).
    F16,
    /// Class labels and indices.
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
        }
    }
}
