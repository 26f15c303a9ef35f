//! IDX files (MNIST, Fashion-MNIST).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fovea_data::idx::parse_idx(data, "fuzz.idx");
});
