//! .npy bytes (images and labels for `convoy infer` / `train-step`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = convoy::io::npy::parse_npy(data, "fuzz");
});
