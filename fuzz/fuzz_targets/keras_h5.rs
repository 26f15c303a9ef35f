//! Keras HDF5 files (`.weights.h5`, legacy `.h5`) and `.keras` zips, with the model their
//! config describes built under a parameter budget and the weights assigned to it.
#![no_main]
use fovea_nn::import::keras_config::model_from_keras_config;
use fovea_nn::import::keras_h5::{assign_keras_weights, parse_keras_weights_with_limit, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = parse_keras_weights_with_limit(data.to_vec(), "fuzz", 1 << 24) else { return };
    if let Some(config) = &file.config {
        if let Ok(model) = fovea_nn::budget::with_param_budget(1 << 20, "fuzz", || model_from_keras_config(config)) {
            let _ = assign_keras_weights(model.as_layer(), &file, "fuzz", LoadOptions::default());
        }
    }
});
