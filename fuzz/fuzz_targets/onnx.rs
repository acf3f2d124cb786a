//! ONNX model bytes (`convoy infer --onnx`, `Net::from_onnx`): the reader, the sort, and the
//! import into convoy's graph for a small input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = convoy::onnx::OnnxModel::from_bytes(data, "fuzz", &convoy::onnx::NoExternalData) {
        let _ = m.describe([1, 2, 6, 5], true);
    }
});
