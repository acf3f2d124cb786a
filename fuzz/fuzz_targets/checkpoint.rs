//! Checkpoint bytes: safetensors plus convoy's metadata (epoch, step, schedule, model).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = convoy::train::checkpoint::parse_checkpoint(data, "fuzz");
});
