//! `fovea train --spec` documents: Fovea's Sequential configs (and Keras's to_json() form).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = fovea_nn::budget::with_param_budget(1 << 20, "fuzz", || {
        fovea_nn::model::registry::sequential_from_config(&json, Some(&[8, 8, 3]))
    });
});
