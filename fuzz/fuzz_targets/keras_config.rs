//! Keras model configs (`model.to_json()`, a `.keras` file's config.json): Sequential and
//! functional graphs, built under a parameter budget.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = fovea_nn::budget::with_param_budget(1 << 20, "fuzz", || fovea_nn::import::keras_config::model_from_keras_config(&json));
});
