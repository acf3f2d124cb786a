//! safetensors bytes: parse (header, offsets, dtypes, sizes) and read the metadata; any input
//! must give Ok or an error, never a panic or an unbounded allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = convoy::io::safetensors::parse_safetensors(data, "fuzz");
    let _ = convoy::io::safetensors::parse_metadata(data, "fuzz");
});
