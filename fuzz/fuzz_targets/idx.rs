//! IDX bytes (MNIST / Fashion-MNIST), raw or gzip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = convoy::data::idx::parse_idx(data, "fuzz");
});
