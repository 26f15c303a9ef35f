//! The preprocessing layers' Keras configs and the options added with them: every layer
//! round-trips through its config; configs carry Keras 3's keys and defaults; a Sequential
//! written by Keras (`tools/fixtures/gen_preprocessing_configs.py`) loads and gives Keras's
//! output; models holding the layers save and load through fovea-nn's model files;
//! `Resizing(pad_to_aspect_ratio / crop_to_aspect_ratio)` and per-channel `Rescaling` match Keras.

use fovea_core::{io::load_safetensors, set_seed, DType, Device, Tensor};
use fovea_nn::import::keras_config::{model_from_keras_config, KerasModel};
use fovea_nn::layer::{Layer, LayerRef};
use fovea_nn::layers::{Conv2D, Dense, Flatten};
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::io::{load_functional, load_model, save_model};
use fovea_nn::model::registry;
use fovea_nn::model::{Model, Sequential};
use fovea_vision::preprocessing::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> HashMap<String, Tensor> {
    load_safetensors(fixture_path("preprocessing_options.safetensors"), Device::Cpu).unwrap()
}

fn keras_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path(name)).unwrap()).unwrap()
}

fn max_err(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shape");
    let (g, w) = (got.cast(DType::F32).unwrap().to_vec::<f32>().unwrap(), want.cast(DType::F32).unwrap().to_vec::<f32>().unwrap());
    g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// JSON equality with numbers compared as f64 within `1e-6` relative: Fovea keeps factors in
/// f32 and Keras writes integers where it was given them (`[0, 255]`).
fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w))),
        _ => a == b,
    }
}

/// One of each layer with non-default options (seeded where random).
fn all_layers() -> Vec<LayerRef> {
    vec![
        Arc::new(Rescaling::per_channel(vec![0.5, 1.0, 2.0], 0.25).unwrap()),
        Arc::new(Normalization::new(&[-1]).with_stats(&[1.0, 2.0, 3.0], &[1.0, 4.0, 9.0]).unwrap().invert(true)),
        Arc::new(Resizing::new(6, 4).unwrap().interpolation("bicubic").unwrap().pad_to_aspect_ratio(true).fill_value(0.5)),
        Arc::new(CenterCrop::new(5, 6).unwrap()),
        Arc::new(RandomCrop::new(5, 6).unwrap().seed(3)),
        Arc::new(RandomFlip::new("vertical").unwrap().seed(4)),
        Arc::new(RandomRotation::new((0.3, -0.1)).unwrap().fill_mode("wrap").unwrap().fill_value(0.5).seed(5)),
        Arc::new(RandomZoom::new(0.2, Some(Factor::Range(-0.1, 0.4))).unwrap().interpolation("nearest").unwrap().seed(6)),
        Arc::new(RandomTranslation::new(0.1, (-0.2, 0.1)).unwrap().fill_mode("constant").unwrap().fill_value(2.0).seed(7)),
        Arc::new(RandomContrast::new((0.1, 0.4)).unwrap().value_range((0.0, 1.0)).unwrap().seed(8)),
        Arc::new(RandomBrightness::new(0.3).unwrap().value_range((-1.0, 2.0)).unwrap().seed(9)),
    ]
}

#[test]
fn every_layer_round_trips_through_its_config() {
    let x = fovea_core::testing::rand(&[2, 7, 9, 3], 0.0, 1.0, 1, Device::Cpu);
    let layers = all_layers();
    let classes: Vec<&str> = layers.iter().map(|l| l.class_name()).collect();
    assert_eq!(classes, CLASS_NAMES);
    for l in &layers {
        let c = l.config();
        // Through fovea-nn's registry, as model files and Keras imports go.
        let back = registry::layer_from_config(l.class_name(), &c).unwrap();
        assert_eq!(back.class_name(), l.class_name());
        assert_eq!(back.config(), c, "{}", l.class_name());
        // Same config and seed: the same output, in inference and in training.
        for training in [false, true] {
            let (a, b) = (l.apply(std::slice::from_ref(&x), training).unwrap(), back.apply(std::slice::from_ref(&x), training).unwrap());
            assert_eq!(a.dims(), b.dims(), "{} training={training}", l.class_name());
            assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{} training={training}", l.class_name());
        }
    }
    // `trainable: false` survives too.
    let mut c = layers[3].config();
    c["trainable"] = json!(false);
    c["name"] = json!("frozen_crop");
    let back = registry::layer_from_config("CenterCrop", &c).unwrap();
    assert!(!back.trainable());
    assert_eq!(back.name(), "frozen_crop");
}

#[test]
fn configs_have_keras_keys_and_defaults() {
    let keras = keras_json("keras_preprocessing_defaults.json");
    // The same required arguments as the script's.
    let ours: Vec<Box<dyn Layer>> = vec![
        Box::new(Rescaling::new(0.5, 0.0).unwrap()),
        Box::new(Normalization::new(&[-1])),
        Box::new(Resizing::new(4, 6).unwrap()),
        Box::new(CenterCrop::new(4, 6).unwrap()),
        Box::new(RandomCrop::new(4, 6).unwrap()),
        Box::new(RandomFlip::new("horizontal_and_vertical").unwrap()),
        Box::new(RandomRotation::new(0.1).unwrap()),
        Box::new(RandomZoom::new(0.2, None).unwrap()),
        Box::new(RandomTranslation::new(0.1, 0.2).unwrap()),
        Box::new(RandomContrast::new(0.2).unwrap()),
        Box::new(RandomBrightness::new(0.2).unwrap()),
    ];
    for l in &ours {
        let (mut a, mut k) = (l.config(), keras[l.class_name()].clone());
        let keys = |v: &Value| {
            let mut ks: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            ks.sort();
            ks
        };
        assert_eq!(keys(&a), keys(&k), "{}: config keys", l.class_name());
        // Names are per-process counters; RandomCrop draws its seed (Keras too: an integer).
        for v in [&mut a, &mut k] {
            v["name"] = Value::Null;
            if l.class_name() == "RandomCrop" {
                assert!(v["seed"].is_u64(), "RandomCrop records a drawn seed: {}", v["seed"]);
                v["seed"] = Value::Null;
            }
        }
        if l.class_name() == "RandomContrast" {
            // Keras 3.15 writes its clamped range `[0, f]`; Fovea keeps the documented `f`
            // (see `RandomContrast`), which Keras reads back as the same layer.
            assert_eq!(a["factor"], json!(0.2f32));
            assert!(json_close(&k["factor"], &json!([0.0, 0.2])));
            a["factor"] = k["factor"].clone();
        }
        assert!(json_close(&a, &k), "{}: ours {a}\nKeras {k}", l.class_name());
    }
}

/// The Sequential the script built, loaded through fovea-nn's Keras import.
fn keras_sequential() -> Sequential {
    match model_from_keras_config(&keras_json("keras_preprocessing_model.json")).unwrap() {
        KerasModel::Sequential(s) => s,
        _ => panic!("expected a Sequential"),
    }
}

#[test]
fn keras_written_model_config_loads_and_matches_keras() {
    let model = keras_sequential();
    let layers = model.layers();
    assert_eq!(layers.iter().map(|l| l.class_name()).collect::<Vec<_>>(), CLASS_NAMES);
    // Each rebuilt layer writes back the config Keras wrote for it.
    let keras = keras_json("keras_preprocessing_model.json");
    let keras_layers: Vec<&Value> =
        keras["config"]["layers"].as_array().unwrap().iter().filter(|e| e["class_name"] != "InputLayer").map(|e| &e["config"]).collect();
    for (l, k) in layers.iter().zip(keras_layers) {
        assert!(json_close(&l.config(), k), "{}: ours {}\nKeras {k}", l.class_name(), l.config());
    }
    // In inference the random layers pass through; the rest is Keras's arithmetic.
    let f = fixtures();
    let y = model.predict(&f["model/input"], 2).unwrap();
    let e = max_err(&y, &f["model/output"]);
    assert!(e <= 1e-5, "max abs error {e}");
}

#[test]
fn models_holding_preprocessing_layers_save_and_load() {
    set_seed(31);
    let dir = std::env::temp_dir().join(format!("fovea-preprocessing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = fovea_core::testing::rand(&[3, 8, 8, 3], 0.0, 255.0, 2, Device::Cpu);

    // A Sequential: all eleven layers (Normalization adapted, so it has weights) and a head.
    let norm = Normalization::new(&[-1]);
    norm.adapt(&x).unwrap();
    let model = Sequential::with_input_shape(&[8, 8, 3]);
    model.add(Rescaling::per_channel(vec![1.0 / 255.0, 2.0 / 255.0, 0.5 / 255.0], vec![0.0, -1.0, 0.5]).unwrap()).unwrap();
    model.add(norm).unwrap();
    model.add(Resizing::new(8, 10).unwrap().pad_to_aspect_ratio(true).fill_value(-1.0)).unwrap();
    model.add(CenterCrop::new(6, 8).unwrap()).unwrap();
    model.add(RandomCrop::new(6, 8).unwrap()).unwrap();
    model.add(RandomFlip::new("horizontal").unwrap().seed(1)).unwrap();
    model.add(RandomRotation::new(0.1).unwrap().seed(2)).unwrap();
    model.add(RandomZoom::new(0.1, None).unwrap()).unwrap();
    model.add(RandomTranslation::new(0.1, 0.1).unwrap().seed(4)).unwrap();
    model.add(RandomContrast::new(0.2).unwrap().value_range((-5.0, 5.0)).unwrap().seed(5)).unwrap();
    model.add(RandomBrightness::new(0.1).unwrap().value_range((-5.0, 5.0)).unwrap().seed(6)).unwrap();
    model.add(Conv2D::new(2, (3, 3))).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(4)).unwrap();
    model.build_for(&[8, 8, 3]).unwrap();
    let path = dir.join("seq.safetensors");
    save_model(&model, &path).unwrap();
    let back = load_model(&path).unwrap();
    let (a, b) = (model.layers(), back.layers());
    assert_eq!(a.len(), b.len());
    for (l, m) in a.iter().zip(&b) {
        assert_eq!(l.config(), m.config(), "{}", l.class_name());
    }
    // The adapted statistics came back as weights.
    assert_eq!(b[1].weights().len(), 3);
    assert_eq!(b[1].weights()[0].value().to_vec::<f32>().unwrap(), a[1].weights()[0].value().to_vec::<f32>().unwrap());
    assert_eq!(model.predict(&x, 2).unwrap().to_vec::<f32>().unwrap(), back.predict(&x, 2).unwrap().to_vec::<f32>().unwrap());

    // A functional model with a preprocessing front end.
    let input = Input::new(&[8, 8, 3]);
    let h = Resizing::new(4, 4).unwrap().crop_to_aspect_ratio(true).on(&input).unwrap();
    let h = RandomFlip::new("horizontal").unwrap().seed(3).on(&h).unwrap();
    let h = Rescaling::per_channel(vec![0.1, 0.2, 0.3], 0.0).unwrap().on(&h).unwrap();
    let out = Dense::new(2).on(&Flatten::new().on(&h).unwrap()).unwrap();
    let f = Functional::new(&[&input], &[&out]).unwrap();
    let path = dir.join("functional.safetensors");
    save_model(&f, &path).unwrap();
    let back = load_functional(&path).unwrap();
    assert_eq!(f.predict(&x, 3).unwrap().to_vec::<f32>().unwrap(), back.predict(&x, 3).unwrap().to_vec::<f32>().unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resizing_to_the_aspect_ratio_matches_keras() {
    let f = fixtures();
    for src in ["wide", "tall"] {
        for (h, w) in [(4, 4), (6, 4), (4, 6), (3, 7)] {
            for mode in ["pad", "crop"] {
                let l = Resizing::new(h, w).unwrap();
                let l = if mode == "pad" { l.pad_to_aspect_ratio(true) } else { l.crop_to_aspect_ratio(true) };
                let y = l.apply(std::slice::from_ref(&f[src]), false).unwrap();
                let e = max_err(&y, &f[&format!("resizing/{mode}/{src}/{h}x{w}")]);
                assert!(e <= 1e-3, "{mode} {src} {h}x{w}: max abs error {e} (values in [0, 255])");
            }
        }
    }
    let run = |l: Resizing, x: &Tensor| l.apply(std::slice::from_ref(x), false).unwrap();
    let pad = || Resizing::new(6, 4).unwrap().pad_to_aspect_ratio(true);
    assert!(max_err(&run(pad().fill_value(0.5), &f["wide"]), &f["resizing/pad/wide/6x4_fill"]) <= 1e-3);
    assert_eq!(max_err(&run(pad().interpolation("nearest").unwrap(), &f["wide"]), &f["resizing/pad/wide/6x4_nearest"]), 0.0);
    // uint8 in, uint8 out, rounded half to even and saturated (the reference is Keras's float
    // result rounded so: Keras 3.15 itself raises on uint8 input that needs padding). One level
    // off at most, where the float result sits within rounding of a .5 tie.
    let y = run(Resizing::new(6, 6).unwrap().pad_to_aspect_ratio(true), &f["wide_u8"]);
    assert_eq!(y.dtype(), DType::U8);
    let want = &f["resizing/pad/wide/6x6_u8"];
    assert!(max_err(&y, want) <= 1.0);
    let (g, w) = (y.to_vec::<u8>().unwrap(), want.to_vec::<u8>().unwrap());
    let off = g.iter().zip(&w).filter(|(a, b)| a != b).count();
    assert!(off * 50 <= g.len(), "{off} of {} uint8 values differ from Keras's", g.len());
    // A single image (rank 3).
    let one = f["wide"].narrow(0, 0, 1).unwrap().squeeze(&[0]).unwrap();
    let y = run(Resizing::new(4, 4).unwrap().pad_to_aspect_ratio(true).fill_value(-1.0), &one);
    assert!(max_err(&y, &f["resizing/pad/single"]) <= 1e-3);
}

#[test]
fn per_channel_rescaling_matches_keras() {
    let f = fixtures();
    let (scale, offset) = (f["rescaling/scale"].to_vec::<f32>().unwrap(), f["rescaling/offset"].to_vec::<f32>().unwrap());
    let run = |l: Rescaling, x: &Tensor| l.apply(std::slice::from_ref(x), false).unwrap();
    let l = || Rescaling::per_channel(scale.clone(), offset.clone()).unwrap();
    assert!(max_err(&run(l(), &f["wide"]), &f["rescaling/per_channel"]) <= 1e-6);
    let y = run(l(), &f["wide_u8"]);
    assert_eq!(y.dtype(), DType::F32);
    assert!(max_err(&y, &f["rescaling/per_channel_u8"]) <= 1e-6);
    let y = run(Rescaling::per_channel(scale.clone(), 0.25).unwrap(), &f["wide"]);
    assert!(max_err(&y, &f["rescaling/scale_list_offset_scalar"]) <= 1e-6);
    // A one-entry list broadcasts like a number.
    let a = run(Rescaling::per_channel(vec![0.5], vec![1.0]).unwrap(), &f["wide"]);
    let b = run(Rescaling::new(0.5, 1.0).unwrap(), &f["wide"]);
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
}

#[test]
fn bad_configs_and_options_are_clear_errors() {
    let err = |class: &str, c: Value| registry::layer_from_config(class, &c).map(|_| ()).unwrap_err().to_string();
    let msg = err("RandomFlip", json!({"mode": "vertical", "bogus": 1}));
    assert!(msg.contains("RandomFlip config") && msg.contains("unknown key \"bogus\"") && msg.contains("\"mode\""), "{msg}");
    let msg = err("Resizing", json!({"height": 4}));
    assert!(msg.contains("Resizing config") && msg.contains("missing required key \"width\""), "{msg}");
    let msg = err("CenterCrop", json!({"height": -3, "width": 2}));
    assert!(
        msg.contains("CenterCrop config") && msg.contains("\"height\"") && msg.contains("positive integer") && msg.contains("-3"),
        "{msg}"
    );
    let msg = err("RandomRotation", json!({"factor": [0.1, 0.2, 0.3]}));
    assert!(msg.contains("RandomRotation config") && msg.contains("pair of numbers") && msg.contains("[0.1,0.2,0.3]"), "{msg}");
    let msg = err("RandomRotation", json!({"factor": 0.1, "seed": "seven"}));
    assert!(msg.contains("\"seed\"") && msg.contains("\"seven\""), "{msg}");
    let msg = err("Resizing", json!({"height": 4, "width": 4, "crop_to_aspect_ratio": true, "pad_to_aspect_ratio": true}));
    assert!(msg.contains("only one of") && msg.contains("got both"), "{msg}");
    let msg = err("Resizing", json!({"height": 4, "width": 4, "fill_mode": "reflect"}));
    assert!(msg.contains("fill_mode \"constant\"") && msg.contains("\"reflect\""), "{msg}");
    let msg = err("RandomCrop", json!({"height": 4, "width": 4, "data_format": "channels_first"}));
    assert!(msg.contains("\"data_format\"") && msg.contains("channels_last") && msg.contains("channels_first"), "{msg}");
    let msg = err("Rescaling", json!({"scale": 0.5, "dtype": "float16"}));
    assert!(msg.contains("Rescaling config") && msg.contains("\"dtype\"") && msg.contains("float16"), "{msg}");
    let msg = err("Rescaling", json!({"scale": 0.5, "data_format": "channels_last"}));
    assert!(msg.contains("unknown key \"data_format\""), "{msg}");
    let msg = err("Rescaling", json!({"scale": [[1.0], [2.0]]}));
    assert!(msg.contains("flat list of numbers"), "{msg}");
    let msg = err("Normalization", json!({"mean": [1.0]}));
    assert!(msg.contains("\"mean\" is given but \"variance\" is not"), "{msg}");
    let msg = err("RandomZoom", json!({"height_factor": 0.1, "fill_value": "zero"}));
    assert!(msg.contains("\"fill_value\"") && msg.contains("a number"), "{msg}");
    let msg = err("RandomContrast", json!("0.2"));
    assert!(msg.contains("RandomContrast config: expected a JSON object"), "{msg}");

    // Options given in code.
    let cfg = |r: fovea_nn::Result<Rescaling>| r.map(|_| ()).unwrap_err().to_string();
    let msg = cfg(Rescaling::per_channel(Vec::<f32>::new(), 0.0));
    assert!(msg.contains("Rescaling") && msg.contains("non-empty list"), "{msg}");
    let msg = cfg(Rescaling::per_channel(vec![1.0, 2.0], vec![1.0, 2.0, 3.0]));
    assert!(msg.contains("same length") && msg.contains("2 and 3"), "{msg}");
    let x = Tensor::zeros(vec![1, 2, 2, 4], DType::F32, Device::Cpu).unwrap();
    let msg = Rescaling::per_channel(vec![1.0, 2.0, 3.0], 0.0).unwrap().apply(std::slice::from_ref(&x), false).unwrap_err().to_string();
    assert!(msg.contains("rescaling") && msg.contains("last axis has 3 entries") && msg.contains("[1, 2, 2, 4]"), "{msg}");
    let both = Resizing::new(2, 2).unwrap().crop_to_aspect_ratio(true).pad_to_aspect_ratio(true);
    let msg = both.apply(std::slice::from_ref(&x), false).unwrap_err().to_string();
    assert!(msg.contains("resizing") && msg.contains("only one of crop_to_aspect_ratio and pad_to_aspect_ratio"), "{msg}");
    let msg = Resizing::new(2, 2).unwrap().fill_mode("wrap").map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains("Resizing") && msg.contains("\"wrap\""), "{msg}");
}
