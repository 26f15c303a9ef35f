//! Part B of the zoo (Inception v3, GoogLeNet, Xception, MobileNet v1/v2) against Keras:
//! every layer's name, class, output shape and parameter count, and the model totals, from
//! `tools/fixtures/gen_zoo_fixtures_b.py`; logits equal to Keras's under the same (formula)
//! weights; forward passes at reduced inputs; training steps; save/load; the error cases.
#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better in tests

use fovea_core::{set_seed, Device, Tensor};
use fovea_nn::layer::{Layer, ShapeSpec};
use fovea_nn::layers::ReLU;
use fovea_nn::losses::Loss;
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::Model;
use fovea_nn::optimizers::Optimizer;
use fovea_vision::applications::registry::{build_by_name, MODEL_NAMES};
use fovea_vision::applications::{
    googlenet, googlenet_inference, googlenet_with_aux, inception_v3, mobilenet, mobilenet_v2, xception, AppOptions, Pooling,
    GOOGLENET_LOSS_WEIGHTS,
};
use serde_json::Value;
use std::collections::HashMap;

/// One row of a Keras layer table: name, class, output shape (batch `None`), parameters.
type Row = (String, String, ShapeSpec, usize);

fn fixture(file: &str) -> Value {
    let path = format!("{}/tests/fixtures/zoo/{file}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("fixture JSON")
}

fn params(vs: &[fovea_core::Variable]) -> usize {
    vs.iter().map(|v| v.value().numel()).sum()
}

/// The model's layers in Keras's `model.layers` order, with their output shapes.
///
/// Keras 3 lists layers by decreasing depth (the longest path to an output), ties in the
/// pre-order of a depth-first walk from the outputs; fovea keeps the walk's post-order. Both
/// orders are recomputed here from the graph in the model's config.
fn keras_rows(model: &Functional) -> Vec<Row> {
    let config = model.config();
    let nodes = config["nodes"].as_array().expect("nodes");
    let parse = |r: &Value| -> (char, usize) {
        let s = r.as_str().expect("node reference");
        (s.chars().next().expect("kind"), s[1..].parse().expect("index"))
    };
    let parents: Vec<Vec<(char, usize)>> =
        nodes.iter().map(|n| n["inputs"].as_array().expect("inputs").iter().map(parse).collect()).collect();
    let layer_of: Vec<usize> = nodes.iter().map(|n| n["layer"].as_u64().expect("layer") as usize).collect();
    let layers = model.layers();

    // Output shapes, node by node (nodes are stored after their parents).
    let mut shapes: Vec<ShapeSpec> = Vec::new();
    for (j, ps) in parents.iter().enumerate() {
        let ins: Vec<ShapeSpec> =
            ps.iter().map(|&(k, i)| if k == 'i' { model.inputs()[i].shape().clone() } else { shapes[i].clone() }).collect();
        shapes.push(layers[layer_of[j]].compute_output_shape(&ins).expect("output shape"));
    }
    // Depth: outputs 0, a parent one more than its deepest child.
    let mut depth = vec![0usize; nodes.len()];
    for j in (0..nodes.len()).rev() {
        for &(k, p) in &parents[j] {
            if k == 'n' {
                depth[p] = depth[p].max(depth[j] + 1);
            }
        }
    }
    // Pre-order of the walk from the outputs.
    let mut pre: HashMap<usize, usize> = HashMap::new();
    let mut finished = vec![false; nodes.len()];
    fn walk(j: usize, parents: &[Vec<(char, usize)>], pre: &mut HashMap<usize, usize>, finished: &mut [bool]) {
        if finished[j] {
            return;
        }
        let next = pre.len();
        pre.entry(j).or_insert(next);
        for &(k, p) in &parents[j] {
            if k == 'n' {
                walk(p, parents, pre, finished);
            }
        }
        finished[j] = true;
    }
    for o in config["outputs"].as_array().expect("outputs") {
        walk(parse(o).1, &parents, &mut pre, &mut finished);
    }
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&j| (std::cmp::Reverse(depth[j]), pre[&j]));
    order
        .into_iter()
        .map(|j| {
            let l = &layers[layer_of[j]];
            (l.name().to_string(), l.class_name().to_string(), shapes[j].clone(), params(&l.weights()))
        })
        .collect()
}

/// Builds with a fresh name counter (as the fixture script does) and compares every layer and
/// the totals with the Keras table `file`.
fn check_against_keras(file: &str, build: impl FnOnce() -> fovea_nn::Result<Functional>) -> Functional {
    fovea_nn::names::clear_session();
    let model = build().unwrap_or_else(|e| panic!("{file}: {e}"));
    let keras = fixture(file);
    let want: Vec<Row> = keras["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|r| {
            let shape = r[2].as_array().expect("shape").iter().map(|d| d.as_u64().map(|d| d as usize)).collect();
            (r[0].as_str().expect("name").into(), r[1].as_str().expect("class").into(), shape, r[3].as_u64().expect("params") as usize)
        })
        .collect();
    let got = keras_rows(&model);
    assert_eq!(got.len(), want.len(), "{file}: layer count");
    // summary() itself lists the layers in Keras's order.
    let table = model.summary().unwrap();
    let listed: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with('│'))
        .filter_map(|l| l.split('│').nth(1)?.trim().split_once(" (").filter(|(_, class)| *class != "InputLayer)").map(|(name, _)| name))
        .collect();
    assert_eq!(listed, want.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(), "{file}: summary order");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{file}: layer {i} (fovea, Keras)");
    }
    assert_eq!(model.name(), keras["model"].as_str().expect("model name"), "{file}: model name");
    assert_eq!(
        model.inputs()[0].shape()[1..],
        keras["input"].as_array().expect("input").iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Vec<_>>()[..]
    );
    let total = params(&model.weights());
    let trainable = params(&model.trainable_weights());
    assert_eq!(
        (total, trainable, total - trainable),
        (
            keras["total"].as_u64().unwrap() as usize,
            keras["trainable"].as_u64().unwrap() as usize,
            keras["non_trainable"].as_u64().unwrap() as usize
        ),
        "{file}: total / trainable / non-trainable"
    );
    model
}

fn opts(shape: (usize, usize, usize)) -> AppOptions {
    AppOptions { input_shape: Some(shape), ..AppOptions::default() }
}

fn headless(shape: (usize, usize, usize), pooling: Pooling) -> AppOptions {
    AppOptions { input_shape: Some(shape), include_top: false, pooling, ..AppOptions::default() }
}

#[test]
fn inception_v3_matches_keras_layer_by_layer() {
    let m = check_against_keras("inception_v3_top", || inception_v3(&AppOptions::default()));
    assert_eq!(params(&m.weights()), 23_851_784);
    check_against_keras("inception_v3_avg_75", || inception_v3(&headless((75, 75, 3), Pooling::Avg)));
}

#[test]
fn xception_matches_keras_layer_by_layer() {
    let m = check_against_keras("xception_top", || xception(&AppOptions::default()));
    assert_eq!(params(&m.weights()), 22_910_480);
    check_against_keras("xception_max_71", || xception(&headless((71, 71, 3), Pooling::Max)));
}

#[test]
fn mobilenets_match_keras_layer_by_layer() {
    let m = check_against_keras("mobilenet_1.0_top", || mobilenet(&AppOptions::default(), 1.0, 1, 1e-3));
    assert_eq!(params(&m.weights()), 4_253_864);
    check_against_keras("mobilenet_0.5_avg_128", || mobilenet(&headless((128, 128, 3), Pooling::Avg), 0.5, 1, 1e-3));
    check_against_keras("mobilenet_0.25_dm2_max_32", || mobilenet(&headless((32, 32, 3), Pooling::Max), 0.25, 2, 1e-3));
    let m = check_against_keras("mobilenet_v2_1.0_top", || mobilenet_v2(&AppOptions::default(), 1.0));
    assert_eq!(params(&m.weights()), 3_538_984);
    let small = AppOptions { classes: 10, ..opts((100, 100, 3)) };
    check_against_keras("mobilenet_v2_0.35_top_100", || mobilenet_v2(&small, 0.35));
    check_against_keras("mobilenet_v2_1.4_none_96", || mobilenet_v2(&headless((96, 96, 3), Pooling::None), 1.4));
}

#[test]
fn googlenet_matches_its_keras_functional_twin() {
    let m = check_against_keras("googlenet_top", || googlenet(&AppOptions::default()));
    assert_eq!(params(&m.weights()), 6_998_552);
    let m = check_against_keras("googlenet_aux", || googlenet_with_aux(&AppOptions::default()));
    assert_eq!(m.output_names(), ["loss3_classifier", "loss1_classifier", "loss2_classifier"]);
    // Dropping the heads keeps exactly the inference network's weights.
    assert_eq!(params(&googlenet_inference(&m).unwrap().weights()), 6_998_552);
}

/// The fixture script's hash noise in [0, 1): `frac(sin(12.9898·j + seed)·43758.5453)` with a
/// seed from the bytes of `path`, so both sides derive the same weights from the names alone.
fn uniform(n: usize, path: &str) -> Vec<f64> {
    let seed = path.bytes().enumerate().map(|(i, b)| (i + 1) * b as usize).sum::<usize>() % 10007;
    (0..n)
        .map(|j| {
            let v = (j as f64 * 12.9898 + seed as f64).sin() * 43758.5453;
            v - v.floor()
        })
        .collect()
}

/// Sets every weight as `formula_value` of the fixture script does.
fn set_formula_weights(model: &Functional) {
    for layer in model.layers() {
        for var in layer.weights() {
            let short = var.name().rsplit('/').next().expect("name").to_string();
            let dims = var.value().dims().to_vec();
            let u = uniform(dims.iter().product(), &format!("{}/{short}", layer.name()));
            let values: Vec<f32> = if short.ends_with("kernel") {
                let depthwise = short == "depthwise_kernel" || layer.class_name() == "DepthwiseConv2D";
                let fan_in: usize = if depthwise { dims[..2].iter().product() } else { dims[..dims.len() - 1].iter().product() };
                let a = (6.0 / fan_in as f64).sqrt();
                u.iter().map(|u| (a * (2.0 * u - 1.0)) as f32).collect()
            } else {
                match short.as_str() {
                    "gamma" => u.iter().map(|u| (1.0 + 0.2 * (u - 0.5)) as f32).collect(),
                    "moving_variance" => u.iter().map(|u| (1.0 + 0.5 * u) as f32).collect(),
                    _ => u.iter().map(|u| (0.2 * (u - 0.5)) as f32).collect(),
                }
            };
            var.assign(&Tensor::from_vec(values, dims, Device::Cpu).unwrap()).unwrap();
        }
    }
}

type Builder = fn(&AppOptions) -> fovea_nn::Result<Functional>;

#[test]
fn logits_equal_keras_with_the_same_weights() {
    let fixture = fixture("forward_b");
    let logits = AppOptions { classes: 10, classifier_activation: None, ..AppOptions::default() };
    let at = |side: usize| AppOptions { input_shape: Some((side, side, 3)), ..logits.clone() };
    let cases: [(&str, Builder, AppOptions); 5] = [
        ("inception_v3", inception_v3, at(75)),
        ("xception", xception, at(71)),
        ("mobilenet_0.25_dm2", |o| mobilenet(o, 0.25, 2, 1e-3), at(35)),
        ("mobilenet_v2_0.35", |o| mobilenet_v2(o, 0.35), at(35)),
        ("googlenet_aux", googlenet_with_aux, at(65)),
    ];
    for (name, build, o) in cases {
        fovea_nn::names::clear_session();
        let model = build(&o).unwrap();
        set_formula_weights(&model);
        let case = &fixture[name];
        let dims: Vec<usize> = serde_json::from_value(case["input"].clone()).unwrap();
        let x: Vec<f32> = uniform(dims.iter().product(), "input").iter().map(|u| (2.0 * u - 1.0) as f32).collect();
        let outs = model.call_all(&[Tensor::from_vec(x, dims, Device::Cpu).unwrap()], false).unwrap();
        let want = case["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), want.len(), "{name}");
        for (k, (y, w)) in outs.iter().zip(want).enumerate() {
            let y: Vec<f32> = y.to_vec().unwrap();
            let w: Vec<f32> = w.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = y.iter().zip(&w).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            // float32 with other summation orders: measured ≤ 1.6e-6 of the largest logit.
            assert!(err <= 1e-5 * scale, "{name} output {k}: max error {err} at scale {scale}\n{y:?}\n{w:?}");
        }
    }
}

fn assert_softmax_rows(y: &Tensor, classes: usize) {
    assert_eq!(y.dims()[1], classes);
    let v: Vec<f32> = y.to_vec().unwrap();
    for row in v.chunks(classes) {
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-4 && row.iter().all(|&p| p >= 0.0), "softmax row sums to {s}");
    }
}

fn image(batch: usize, side: usize, seed: u64) -> Tensor {
    Tensor::random_uniform([batch, side, side, 3], -1.0, 1.0, Some(seed), Device::Cpu).unwrap()
}

#[test]
fn forward_passes_at_the_smallest_inputs_give_distributions() {
    set_seed(3);
    for (name, side, model) in [
        ("InceptionV3", 75, inception_v3(&opts((75, 75, 3))).unwrap()),
        ("Xception", 71, xception(&opts((71, 71, 3))).unwrap()),
        ("MobileNet", 32, mobilenet(&opts((32, 32, 3)), 1.0, 1, 1e-3).unwrap()),
        ("MobileNetV2", 32, mobilenet_v2(&opts((32, 32, 3)), 1.0).unwrap()),
        ("GoogLeNet", 32, googlenet(&opts((32, 32, 3))).unwrap()),
    ] {
        let y = model.call(&[image(1, side, 1)], false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(y.dims(), &[1, 1000], "{name}");
        assert_softmax_rows(&y, 1000);
    }
    // Headless with no pooling: the last feature map (MobileNetV2 at 32×32: 1×1×1280).
    let y = mobilenet_v2(&headless((32, 32, 3), Pooling::None), 1.0).unwrap().call(&[image(1, 32, 2)], false).unwrap();
    assert_eq!(y.dims(), &[1, 1, 1, 1280]);
}

#[test]
fn googlenet_trains_with_weighted_aux_losses_and_infers_without_them() {
    set_seed(5);
    let o = AppOptions { classes: 4, ..opts((65, 65, 3)) };
    let train = googlenet_with_aux(&o).unwrap();
    let x = image(2, 65, 7);
    let outs = train.call_all(&[x.clone()], false).unwrap();
    assert_eq!(outs.len(), 3);
    for y in &outs {
        assert_softmax_rows(y, 4);
    }
    // The inference model shares the layers: same weights, same main output.
    let infer = googlenet_inference(&train).unwrap();
    assert_eq!(infer.call(&[x.clone()], false).unwrap().to_vec::<f32>().unwrap(), outs[0].to_vec::<f32>().unwrap());
    let loss = Loss::from_name("sparse_categorical_crossentropy").unwrap();
    train.compile_outputs(Optimizer::sgd(0.0, 0.0, false), &[loss, loss, loss], Some(&GOOGLENET_LOSS_WEIGHTS), &[]).unwrap();
    let y = Tensor::from_vec(vec![1i64, 3], [2], Device::Cpu).unwrap();
    let logs = train.evaluate_multi(&[x.clone()], &[y.clone(), y.clone(), y], 2).unwrap();
    let weighted = logs["loss3_classifier_loss"] + 0.3 * (logs["loss1_classifier_loss"] + logs["loss2_classifier_loss"]);
    assert!((logs["loss"] - weighted).abs() < 1e-5, "{logs:?}");
    let msg = googlenet_inference(&infer).err().expect("one output only").to_string();
    assert!(msg.contains("1 input and 3 outputs (main, aux1, aux2), received 1 inputs and 1 outputs"), "{msg}");
}

#[test]
fn one_training_step_lowers_the_loss_of_a_narrow_mobilenet() {
    set_seed(11);
    let o = AppOptions { classes: 3, ..opts((32, 32, 3)) };
    let m = mobilenet(&o, 0.25, 1, 0.0).unwrap();
    m.compile(Optimizer::adam(1e-3), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &[]).unwrap();
    let x = image(4, 32, 9);
    let y = Tensor::from_vec(vec![0i64, 1, 2, 1], [4], Device::Cpu).unwrap();
    let loss = Loss::from_name("sparse_categorical_crossentropy").unwrap();
    // Reference: the loss of a training-mode forward pass (batch statistics, as in the step),
    // computed outside `train_on_batch`, which must report the loss before its update.
    let forward = || loss.compute(&y, &m.call(std::slice::from_ref(&x), true).unwrap(), None).unwrap().to_scalar::<f32>().unwrap() as f64;
    let expected_before = forward();
    let before = m.train_on_batch(&x, &y).unwrap()["loss"];
    assert!((before - expected_before).abs() < 1e-5, "train_on_batch reported {before}, the forward pass gives {expected_before}");
    let expected_after = forward();
    let after = m.train_on_batch(&x, &y).unwrap()["loss"];
    assert!((after - expected_after).abs() < 1e-5, "second step reported {after}, the forward pass gives {expected_after}");
    // The update is what lowered it: the same batch through the updated weights.
    assert!(expected_after < expected_before - 1e-4, "loss {expected_before} → {expected_after}");
}

#[test]
fn registry_builds_every_listed_model() {
    for name in ["inception_v3", "googlenet", "googlenet_aux", "xception", "mobilenet", "mobilenet_v2"] {
        assert!(MODEL_NAMES.contains(&name), "{name}");
        fovea_nn::names::clear_session();
        let m = build_by_name(name, &AppOptions { classes: 5, ..opts((75, 75, 3)) }).unwrap();
        assert_eq!(m.outputs()[0].shape(), &vec![None, Some(5)], "{name}");
    }
    let err = build_by_name("resnet50_typo", &AppOptions::default()).err().expect("unknown").to_string();
    assert!(err.contains("resnet50_typo") && err.contains("mobilenet_v2"), "{err}");
}

#[test]
fn relu_with_max_value_clips_like_keras_relu6() {
    let x = Input::new(&[3]);
    let y = ReLU::with_max_value(6.0).on(&x).unwrap();
    let m = Functional::new(&[&x], &[&y]).unwrap();
    let out = m.call(&[Tensor::from_vec(vec![-1.0f32, 3.5, 7.0], [1, 3], Device::Cpu).unwrap()], false).unwrap();
    assert_eq!(out.to_vec::<f32>().unwrap(), [0.0, 3.5, 6.0]);
    assert_eq!(m.layers()[0].config()["max_value"], 6.0);
}

#[test]
fn errors_name_the_model_and_what_was_expected() {
    let err = |r: fovea_nn::Result<Functional>| r.err().expect("an error").to_string();
    for (msg, want) in [
        (err(inception_v3(&opts((74, 299, 3)))), ["InceptionV3", "at least 75×75", "received 74×299×3"]),
        (err(xception(&opts((70, 70, 3)))), ["Xception", "at least 71×71", "received 70×70×3"]),
        (err(mobilenet(&opts((31, 32, 3)), 1.0, 1, 1e-3)), ["MobileNet", "at least 32×32", "received 31×32×3"]),
        (err(mobilenet_v2(&opts((16, 16, 3)), 1.0)), ["MobileNetV2", "at least 32×32", "received 16×16×3"]),
        (err(googlenet(&opts((31, 31, 3)))), ["GoogLeNet", "at least 32×32", "received 31×31×3"]),
        (err(googlenet_with_aux(&opts((64, 64, 3)))), ["GoogLeNet", "at least 65×65", "received 64×64×3"]),
        (err(mobilenet(&AppOptions::default(), 0.0, 1, 1e-3)), ["MobileNet", "alpha", "received 0"]),
        (err(mobilenet(&AppOptions::default(), 0.03, 1, 1e-3)), ["MobileNet", "at least 0.03125", "received 0.03"]),
        (err(mobilenet_v2(&AppOptions::default(), -0.5)), ["MobileNetV2", "alpha must be a finite width multiplier > 0", "received -0.5"]),
        (err(mobilenet_v2(&AppOptions::default(), f64::NAN)), ["MobileNetV2", "alpha", "received NaN"]),
        (err(mobilenet(&AppOptions::default(), 1.0, 0, 1e-3)), ["MobileNet", "depth_multiplier must be at least 1", "received 0"]),
        (err(mobilenet(&AppOptions::default(), 1.0, 1, 1.0)), ["MobileNet", "dropout must be in [0, 1)", "received 1"]),
        (err(googlenet_with_aux(&headless((224, 224, 3), Pooling::Avg))), ["GoogLeNet", "include_top must be true", "received false"]),
        (err(xception(&AppOptions { classes: 0, ..AppOptions::default() })), ["Xception", "classes must be positive", "received 0"]),
    ] {
        for w in want {
            assert!(msg.contains(w), "{w:?} not in {msg:?}");
        }
    }
}

#[test]
fn mobilenets_survive_a_save_and_load() {
    use fovea_nn::model::io::{load_functional, save_model};
    set_seed(13);
    let o = AppOptions { classes: 3, ..opts((32, 32, 3)) };
    let dir = std::env::temp_dir().join(format!("fovea_zoo_b_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, model) in [("v1.safetensors", mobilenet(&o, 0.25, 2, 1e-3).unwrap()), ("v2.safetensors", mobilenet_v2(&o, 0.35).unwrap())] {
        let path = dir.join(file);
        save_model(&model, &path).unwrap();
        let back = load_functional(&path).unwrap();
        // The architecture (ReLU6 caps, kept-dims pooling, reshape, shortcut adds) and every
        // weight come back: same layer table, same predictions.
        assert_eq!(keras_rows(&back), keras_rows(&model), "{file}");
        assert_eq!(back.config(), model.config(), "{file}");
        let x = image(2, 32, 4);
        assert_eq!(
            back.call(&[x.clone()], false).unwrap().to_vec::<f32>().unwrap(),
            model.call(&[x], false).unwrap().to_vec::<f32>().unwrap()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
