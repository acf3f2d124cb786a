//! Image bytes (JPEG / PNG in image folders), decoded under convoy's size limits.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = convoy::data::folder::decode_image(data, "fuzz");
});
