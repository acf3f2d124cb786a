//! Tensors on the host, as read from or written to a file (safetensors, ONNX initializers) before
//! they are uploaded: the common currency of io's parsers, the chunking of large parameters and
//! the ONNX importer.

/// A tensor on the host, as read from or written to a file.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: HostData,
}
