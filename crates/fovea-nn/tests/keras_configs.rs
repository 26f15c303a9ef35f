//! Configs as Keras 3 writes them parse through the layer registry directly (the path `fovea
//! train --spec` takes): the whole `model.to_json()` document with its `InputLayer`, `"silu"`,
//! `"output_padding": null`, initializers and regularizers in `{"class_name", "config"}` form,
//! and `DepthwiseConv2D`'s `depthwise_*` arguments.

use fovea_core::{Device, Tensor};
use fovea_nn::activations::Activation;
use fovea_nn::import::keras_config::{model_from_keras_config, KerasModel};
use fovea_nn::layer::Layer;
use fovea_nn::model::registry::{layer_from_config, sequential_from_config};
use serde_json::{json, Value};

/// `GlorotUniform` as Keras 3's `get_config` writes it.
fn glorot() -> Value {
    json!({"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null})
}

fn zeros() -> Value {
    json!({"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null})
}

fn dtype() -> Value {
    json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})
}

/// One Keras 3 layer entry of a Sequential config.
fn entry(class: &str, config: Value) -> Value {
    json!({"module": "keras.layers", "class_name": class, "config": config, "registered_name": null})
}

/// A Keras 3 `model.to_json()` document exercising every Keras-only spelling at once.
fn keras3_document() -> Value {
    let input = entry(
        "InputLayer",
        json!({"batch_shape": [null, 6, 6, 2], "dtype": "float32", "sparse": false, "ragged": false, "name": "input_layer"}),
    );
    let conv = entry(
        "Conv2D",
        json!({"name": "conv", "trainable": true, "dtype": dtype(), "filters": 3, "kernel_size": [3, 3], "strides": [1, 1],
               "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "silu",
               "use_bias": true, "kernel_initializer": glorot(), "bias_initializer": zeros(),
               "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}, "registered_name": null},
               "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}),
    );
    let depthwise = entry(
        "DepthwiseConv2D",
        json!({"name": "dw", "trainable": true, "dtype": dtype(), "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
               "depth_multiplier": 2, "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
               "use_bias": true, "depthwise_initializer": glorot(), "bias_initializer": zeros(), "depthwise_regularizer": null,
               "bias_regularizer": null, "activity_regularizer": null, "depthwise_constraint": null, "bias_constraint": null}),
    );
    let transpose = entry(
        "Conv2DTranspose",
        json!({"name": "up", "trainable": true, "dtype": dtype(), "filters": 2, "kernel_size": [2, 2], "strides": [2, 2],
               "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "silu",
               "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": 3}},
               "bias_initializer": {"class_name": "Constant", "config": {"value": 0.5}}, "kernel_regularizer": null,
               "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null,
               "output_padding": null}),
    );
    let flatten = entry("Flatten", json!({"name": "flatten", "trainable": true, "dtype": dtype(), "data_format": "channels_last"}));
    let dense = entry(
        "Dense",
        json!({"name": "out", "trainable": true, "dtype": dtype(), "units": 4, "activation": "softmax", "use_bias": true,
               "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in", "distribution": "uniform", "seed": null}},
               "bias_initializer": zeros(), "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
               "kernel_constraint": null, "bias_constraint": null}),
    );
    json!({"module": "keras", "class_name": "Sequential",
           "config": {"name": "keras3", "trainable": true, "dtype": dtype(), "layers": [input, conv, depthwise, transpose, flatten, dense]},
           "registered_name": null, "build_config": {"input_shape": [null, 6, 6, 2]}})
}

#[test]
fn keras3_document_builds_through_the_registry() {
    let doc = keras3_document();
    let model = sequential_from_config(&doc, None).expect("Keras 3 document");
    // conv 3·3·2·3+3 = 57; depthwise 3·3·3·2+6 = 60 (out 4×4×6); transpose 2·2·2·6+2 = 50
    // (out 8×8×2); dense 128·4+4 = 516.
    let counts: Vec<usize> = model.layers().iter().map(|l| l.weights().iter().map(|w| w.value().shape().numel()).sum()).collect();
    assert_eq!(counts, vec![57, 60, 50, 0, 516]);
    let names: Vec<String> = model.layers().iter().map(|l| l.name().to_string()).collect();
    assert_eq!(names, ["conv", "dw", "up", "flatten", "out"]);
    assert_eq!(model.layers()[0].losses().unwrap().len(), 1, "the Keras-form L2 regularizer on conv's kernel");
    // The transposed convolution's bias comes from the Keras-form Constant initializer.
    let bias = model.layers()[2].weights()[1].value().to_vec::<f32>().unwrap();
    assert_eq!(bias, vec![0.5, 0.5]);
    let y = model.call(&[Tensor::ones([1, 6, 6, 2], fovea_core::DType::F32, Device::Cpu).unwrap()], false).unwrap();
    assert_eq!(y.shape().dims(), &[1, 4]);
    // The same document through the Keras importer gives the same architecture.
    let KerasModel::Sequential(imported) = model_from_keras_config(&doc).unwrap() else { panic!("a Sequential") };
    let shapes = |m: &fovea_nn::model::Sequential| m.weights().iter().map(|w| w.value().shape().dims().to_vec()).collect::<Vec<_>>();
    assert_eq!(shapes(&model), shapes(&imported));
}

#[test]
fn real_keras3_file_config_builds_through_the_registry() {
    // config.json of a `.keras` file written by Keras 3 (tools/fixtures/gen_keras_h5_fixtures.py).
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/seq_cnn.keras")).unwrap();
    let entries = fovea_nn::import::zip::read_entries(&bytes, 1 << 20).unwrap();
    let (_, text) = entries.iter().find(|(name, _)| name == "config.json").expect("config.json in the .keras file");
    let config: Value = serde_json::from_slice(text).unwrap();
    let model = sequential_from_config(&config, None).expect("the config of a real Keras 3 file");
    let KerasModel::Sequential(imported) = model_from_keras_config(&config).unwrap() else { panic!("a Sequential") };
    assert_eq!(model.weights().len(), imported.weights().len());
    for (a, b) in model.weights().iter().zip(imported.weights()) {
        assert_eq!(a.value().shape(), b.value().shape(), "{}", a.name());
    }
}

#[test]
fn input_layer_must_agree_with_the_data() {
    let doc = keras3_document();
    assert!(sequential_from_config(&doc, Some(&[6, 6, 2])).is_ok());
    let e = sequential_from_config(&doc, Some(&[28, 28, 1])).err().expect("an error").to_string();
    assert!(e.contains("InputLayer \"input_layer\" declares input shape [6, 6, 2] but the data has shape [28, 28, 1]"), "{e}");
    let e = sequential_from_config(&json!({"class_name": "Functional", "config": {}}), None).err().expect("an error").to_string();
    assert!(e.contains("expected a Sequential model config") && e.contains("\"Functional\""), "{e}");
}

#[test]
fn every_activation_layer_accepts_silu() {
    let dense = json!({"units": 2, "activation": "silu", "use_bias": true, "kernel_initializer": "glorot_uniform",
                       "bias_initializer": "zeros", "kernel_regularizer": null, "bias_regularizer": null});
    let layer = layer_from_config("Dense", &dense).expect("silu in Dense");
    assert_eq!(layer.config()["activation"], json!(serde_json::to_value(Activation::Swish).unwrap()));
    layer_from_config("Activation", &json!({"activation": "silu"})).expect("silu in Activation");
    let e = layer_from_config("Activation", &json!({"activation": "relu7"})).err().expect("an error").to_string();
    assert!(e.contains("unknown activation \"relu7\""), "{e}");
}

#[test]
fn keras_options_fovea_lacks_are_errors_in_specs_too() {
    // The path `fovea train --spec` takes: a Keras option Fovea's layer lacks is refused, not
    // dropped (see keras_config's unit test for the full list).
    let e = layer_from_config("LayerNormalization", &json!({"name": "ln", "epsilon": 0.001, "center": false}))
        .err()
        .expect("an error")
        .to_string();
    assert!(e.contains("layer \"ln\" (LayerNormalization): center false is not supported"), "{e}");
    let dense = json!({"name": "d", "units": 2, "activation": "relu", "use_bias": true, "kernel_initializer": "glorot_uniform",
                       "bias_initializer": "zeros", "kernel_regularizer": null, "bias_regularizer": null,
                       "activity_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}});
    let e = layer_from_config("Dense", &dense).err().expect("an error").to_string();
    assert!(e.contains("layer \"d\" (Dense): activity_regularizer") && e.contains("not supported"), "{e}");
    // Fovea's own configs (which write these keys with their defaults) still load.
    let fovea: [std::sync::Arc<dyn Layer>; 4] = [
        std::sync::Arc::new(fovea_nn::layers::LayerNormalization::new()),
        std::sync::Arc::new(fovea_nn::layers::ReLU::with_max_value(6.0)),
        std::sync::Arc::new(fovea_nn::layers::UpSampling2D::bilinear((2, 2))),
        std::sync::Arc::new(fovea_nn::layers::GlobalAveragePooling2D::new()),
    ];
    for layer in fovea {
        layer_from_config(layer.class_name(), &layer.config()).unwrap_or_else(|e| panic!("{}: {e}", layer.class_name()));
    }
}
