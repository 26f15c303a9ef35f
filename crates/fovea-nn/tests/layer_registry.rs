//! The layer-class registry: classes from other crates (registered at run time) rebuild through
//! `from_config`, Sequential configs and model files like built-in ones; built-in classes cannot
//! be overridden; an unknown class says how to register one.

use fovea_core::{Device, Tensor};
use fovea_nn::layer::{single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use fovea_nn::layers::Dense;
use fovea_nn::model::io::{load_model, save_model};
use fovea_nn::model::registry::{self, is_registered_layer_class, layer_from_config, register_layer_class, BUILTIN_CLASSES};
use fovea_nn::model::{Model, Sequential};
use fovea_nn::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

/// A layer defined outside fovea-nn: `x · factor`.
struct Scale {
    base: LayerBase,
    factor: f32,
}

impl Scale {
    fn new(factor: f32) -> Self {
        Scale { base: LayerBase::new("TestScale"), factor }
    }

    fn from_config(c: &Value) -> Result<LayerRef> {
        let factor = c["factor"]
            .as_f64()
            .ok_or_else(|| Error::Config(format!("TestScale config: expected a number \"factor\", got {}", c["factor"])))?;
        Ok(Arc::new(Scale::new(factor as f32)))
    }
}

impl Layer for Scale {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "TestScale"
    }

    fn compute_output_shape(&self, shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        Ok(single_shape(&self.base, shapes)?.clone())
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        Ok(single_input(&self.base, inputs)?.mul_scalar(self.factor)?)
    }

    fn config(&self) -> Value {
        json!({"name": self.name(), "trainable": self.trainable(), "factor": self.factor})
    }
}

fn other_factory(_: &Value) -> Result<LayerRef> {
    Ok(Arc::new(Scale::new(-1.0)))
}

#[test]
fn registered_classes_rebuild_and_save_like_built_in_ones() {
    let unknown = layer_from_config("TestScale", &json!({"factor": 2.0})).map(|_| ()).unwrap_err().to_string();
    assert!(unknown.contains("unknown layer type \"TestScale\"") && unknown.contains("register_layer_class"), "{unknown}");

    // Registering twice is harmless; the last factory wins.
    register_layer_class("TestScale", other_factory).unwrap();
    register_layer_class("TestScale", Scale::from_config).unwrap();
    assert!(is_registered_layer_class("TestScale"));

    // The registry applies name and trainable, as for built-in classes.
    let l = layer_from_config("TestScale", &json!({"factor": 3.0, "name": "triple", "trainable": false})).unwrap();
    assert_eq!((l.name(), l.trainable()), ("triple", false));
    let x = Tensor::from_vec(vec![1.0f32, -2.0], vec![1, 2], Device::Cpu).unwrap();
    assert_eq!(l.apply(std::slice::from_ref(&x), false).unwrap().to_vec::<f32>().unwrap(), vec![3.0, -6.0]);
    // The factory's own errors come through.
    let e = layer_from_config("TestScale", &json!({"factor": "big"})).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("TestScale config") && e.contains("\"big\""), "{e}");

    // In a Sequential, through a model file.
    let model = Sequential::with_input_shape(&[2]);
    model.add(Scale::new(0.5)).unwrap();
    model.add(Dense::new(3)).unwrap();
    model.build_for(&[2]).unwrap();
    let dir = std::env::temp_dir().join(format!("fovea-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    save_model(&model, &path).unwrap();
    let back = load_model(&path).unwrap();
    assert_eq!(back.layers()[0].class_name(), "TestScale");
    assert_eq!(back.layers()[0].config(), model.layers()[0].config());
    assert_eq!(model.predict(&x, 1).unwrap().to_vec::<f32>().unwrap(), back.predict(&x, 1).unwrap().to_vec::<f32>().unwrap());
    let seq = registry::sequential_from_config(&model.config(), Some(&[2])).unwrap();
    assert_eq!(seq.layers()[0].config(), model.layers()[0].config());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn built_in_classes_cannot_be_registered_over() {
    for class in ["Dense", "Conv2D", "Sequential", ""] {
        let e = register_layer_class(class, other_factory).unwrap_err().to_string();
        assert!(e.contains(&format!("cannot register layer class {class:?}")) && e.contains("built-in"), "{e}");
    }
    // Every name on the built-in list is one `layer_from_config` handles itself: none of them
    // reaches the "unknown layer type" branch (their errors here are about the empty config).
    for class in BUILTIN_CLASSES {
        if let Err(e) = layer_from_config(class, &json!({})) {
            assert!(!e.to_string().contains("unknown layer type"), "{class}: {e}");
        }
    }
}
