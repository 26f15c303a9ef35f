//! Fovea model files (`.safetensors` with an architecture): header, tensors, and the model the
//! architecture describes, built under a parameter budget.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fovea_core::io::read_safetensors(data, fovea_core::Device::Cpu);
    let path = std::env::temp_dir().join(format!("fovea-fuzz-model-{}.safetensors", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = fovea_nn::budget::with_param_budget(1 << 20, "fuzz", || fovea_nn::model::io::load_model(&path));
        let _ = fovea_nn::budget::with_param_budget(1 << 20, "fuzz", || fovea_nn::model::io::load_functional(&path));
    }
});
