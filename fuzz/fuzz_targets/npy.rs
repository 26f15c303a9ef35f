//! NumPy `.npy` and `.npz` files.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fovea_data::npy::parse_npy(data, "fuzz.npy", fovea_core::Device::Cpu);
    let _ = fovea_data::npy::parse_npz_with_limit(data, "fuzz.npz", fovea_core::Device::Cpu, 1 << 24);
});
