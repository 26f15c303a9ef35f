//! The zoo's VGG, ResNet, AlexNet, CIFAR-ResNet and SE-ResNet models against Keras, layer by
//! layer, plus `preprocess_input`, forward passes, a training step and the error cases.
//!
//! Fixtures: `tools/fixtures/gen_zoo_fixtures_a.py`. The models Keras ships come from
//! `keras.applications` (`weights=None`); AlexNet, ResNet-18/34/20/32/56 and SE-ResNet-50 from
//! Keras functional re-implementations in that script with the same layer names.

use fovea_core::{testing::rand, DType, Device, Tensor};
use fovea_nn::layer::Layer;
use fovea_nn::losses::LossKind;
use fovea_nn::model::functional::Functional;
use fovea_nn::model::Model;
use fovea_nn::optimizers::Optimizer;
use fovea_vision::applications::*;
use serde_json::Value;
use std::collections::HashMap;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/zoo/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

/// The options a fixture was generated with (Keras defaults otherwise).
fn options(f: &Value) -> AppOptions {
    let o = &f["options"];
    let mut opts = AppOptions::default();
    if let Some(top) = o["include_top"].as_bool() {
        opts.include_top = top;
    }
    opts.pooling = match o["pooling"].as_str() {
        Some("avg") => Pooling::Avg,
        Some("max") => Pooling::Max,
        _ => Pooling::None,
    };
    if let Some(c) = o["classes"].as_u64() {
        opts.classes = c as usize;
    }
    if let Some(s) = o["input_shape"].as_array() {
        let d: Vec<usize> = s.iter().map(|v| v.as_u64().unwrap() as usize).collect();
        opts.input_shape = Some((d[0], d[1], d[2]));
    }
    opts
}

/// Keras's `(None, 7, 7, 2048)` from the fixture's `[null, 7, 7, 2048]`.
fn keras_shape(s: &Value) -> String {
    let dims: Vec<String> = s.as_array().unwrap().iter().map(|d| d.as_u64().map_or("None".into(), |v| v.to_string())).collect();
    if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    }
}

/// A summary row: class, output shape and parameter count.
type Row = (String, String, usize);

/// The summary's rows in order and by name, inputs left out, and the whole table.
fn summary_rows(m: &Functional) -> (Vec<String>, HashMap<String, Row>, String) {
    let table = m.summary().unwrap();
    let mut order = Vec::new();
    let mut rows = HashMap::new();
    for line in table.lines().filter(|l| l.starts_with('│')) {
        let cells: Vec<&str> = line.split('│').map(str::trim).collect();
        let (name, class) = cells[1].trim_end_matches(')').split_once(" (").unwrap();
        if class == "InputLayer" {
            continue;
        }
        let params = cells[3].replace(',', "").parse().unwrap();
        order.push(name.to_string());
        rows.insert(name.to_string(), (class.to_string(), cells[2].to_string(), params));
    }
    (order, rows, table)
}

fn total_line(table: &str, what: &str) -> usize {
    let line = table.lines().find(|l| l.trim_start().starts_with(what)).unwrap_or_else(|| panic!("no {what} in summary"));
    line.split(':').nth(1).unwrap().split('(').next().unwrap().trim().replace(',', "").parse().unwrap()
}

/// Every layer of `model` (built as the fixture says) has Keras's name, class, output shape and
/// parameter count, and the summary's totals are Keras's. Returns the total for literal checks.
fn check_against_keras(model: &str, fixture_name: &str) -> usize {
    fovea_nn::names::clear_session();
    let f = fixture(fixture_name);
    let m = build_by_name(model, &options(&f)).unwrap();
    let (order, rows, table) = summary_rows(&m);
    let keras = f["layers"].as_array().unwrap();
    assert_eq!(order.len(), keras.len(), "{fixture_name}: layer count");
    // The summary lists the layers in Keras's order (by depth, then by first visit).
    let keras_order: Vec<&str> = keras.iter().map(|l| l[0].as_str().unwrap()).collect();
    assert_eq!(order, keras_order, "{fixture_name}: summary order");
    for l in keras {
        let name = l[0].as_str().unwrap();
        let (class, shape, params) = rows.get(name).unwrap_or_else(|| panic!("{fixture_name}: no layer {name:?}"));
        // AlexNet's LRN is a Lambda in Keras, which has no LRN layer.
        let keras_class = match (l[1].as_str().unwrap(), class.as_str()) {
            ("Lambda", "LocalResponseNormalization") => "LocalResponseNormalization",
            (k, _) => k,
        };
        assert_eq!(class, keras_class, "{fixture_name}: class of {name}");
        assert_eq!(shape, &keras_shape(&l[2]), "{fixture_name}: output shape of {name}");
        assert_eq!(*params as u64, l[3].as_u64().unwrap(), "{fixture_name}: parameters of {name}");
    }
    let total = total_line(&table, "Total params");
    assert_eq!(total as u64, f["total"].as_u64().unwrap(), "{fixture_name}: total");
    assert_eq!(total_line(&table, "Trainable params") as u64, f["trainable"].as_u64().unwrap(), "{fixture_name}: trainable");
    assert_eq!(total_line(&table, "Non-trainable params") as u64, f["non_trainable"].as_u64().unwrap(), "{fixture_name}: non-trainable");
    total
}

macro_rules! keras_layer_tests {
    ($($test:ident: $model:literal, $fixture:literal => $total:expr;)*) => {$(
        #[test]
        fn $test() {
            assert_eq!(check_against_keras($model, $fixture), $total);
        }
    )*};
}

keras_layer_tests! {
    // keras.applications itself.
    vgg16_matches_keras_layer_by_layer: "vgg16", "vgg16" => 138_357_544;
    vgg16_headless_avg_matches_keras: "vgg16", "vgg16_avg" => 14_714_688;
    vgg19_matches_keras_layer_by_layer: "vgg19", "vgg19" => 143_667_240;
    resnet50_matches_keras_layer_by_layer: "resnet50", "resnet50" => 25_636_712;
    resnet50_headless_avg_matches_keras: "resnet50", "resnet50_avg" => 23_587_712;
    resnet50_headless_max_at_96x128_matches_keras: "resnet50", "resnet50_max_96" => 23_587_712;
    resnet101_matches_keras_layer_by_layer: "resnet101", "resnet101" => 44_707_176;
    resnet152_matches_keras_layer_by_layer: "resnet152", "resnet152" => 60_419_944;
    // Keras re-implementations; the hand derivations are in each module's doc.
    alexnet_matches_its_keras_reimplementation: "alexnet", "alexnet" => 62_378_344;
    resnet18_matches_its_keras_reimplementation: "resnet18", "resnet18" => 11_699_112;
    resnet34_matches_its_keras_reimplementation: "resnet34", "resnet34" => 21_814_696;
    resnet20_matches_its_keras_reimplementation: "resnet20", "resnet20" => 271_098;
    resnet32_matches_its_keras_reimplementation: "resnet32", "resnet32" => 466_426;
    resnet56_matches_its_keras_reimplementation: "resnet56", "resnet56" => 857_082;
    se_resnet50_matches_its_keras_reimplementation: "se_resnet50", "se_resnet50" => 25_636_712 + 2_530_992;
}

#[test]
fn hand_derived_counts_agree_with_the_fixtures() {
    // AlexNet: conv1 11·11·3·96+96, conv2 5·5·96·256+256, conv3 3·3·256·384+384,
    // conv4 3·3·384·384+384, conv5 3·3·384·256+256, fc6 6·6·256·4096+4096, fc7 4096²+4096,
    // predictions 4096·1000+1000.
    let alexnet = 34_944 + 614_656 + 885_120 + 1_327_488 + 884_992 + 37_752_832 + 16_781_312 + 4_097_000;
    assert_eq!(fixture("alexnet")["total"], alexnet);
    // SE adds C²/8 + C/16 + C per unit (two dense layers with biases, ratio 16).
    let se: usize = [(3, 256), (4, 512), (6, 1024), (3, 2048)].iter().map(|&(n, c)| n * (c * c / 8 + c / 16 + c)).sum();
    assert_eq!(se, 2_530_992);
    // ResNet-20: convolutions, 19 batch norms over 688 channels (4 values each), the classifier.
    let r20 = 432 + 6 * 2_304 + 4_608 + 5 * 9_216 + 18_432 + 5 * 36_864 + 4 * 688 + 650;
    assert_eq!(fixture("resnet20")["total"], r20);
    assert_eq!(fixture("resnet20")["non_trainable"], 2 * 688);
    // torchvision's trainable counts for the basic-unit ResNets.
    assert_eq!(fixture("resnet18")["trainable"], 11_689_512);
    assert_eq!(fixture("resnet34")["trainable"], 21_797_672);
}

/// A forward pass of a batch of `n` at `shape`: the output shape, and rows that sum to 1.
fn forward_softmax(m: &Functional, n: usize, shape: (usize, usize, usize), classes: usize) {
    let x = rand(&[n, shape.0, shape.1, shape.2], 0.0, 1.0, 3, Device::Cpu);
    let y = m.apply(&[x], false).unwrap();
    assert_eq!(y.dims(), &[n, classes], "{}", m.name());
    for s in y.sum(&[1], false).unwrap().to_vec::<f32>().unwrap() {
        assert!((s - 1.0).abs() < 1e-5, "{}: softmax row sums to {s}", m.name());
    }
}

fn small(shape: (usize, usize, usize), classes: usize) -> AppOptions {
    AppOptions { input_shape: Some(shape), classes, ..AppOptions::default() }
}

#[test]
fn big_models_run_forward_at_small_inputs() {
    for (name, shape) in [("vgg16", (32, 32, 3)), ("resnet50", (32, 32, 3)), ("resnet18", (32, 32, 3)), ("alexnet", (67, 67, 3))] {
        let m = build_by_name(name, &small(shape, 7)).unwrap();
        forward_softmax(&m, 1, shape, 7);
    }
}

#[test]
fn se_resnet50_and_headless_models_run_forward() {
    let m = se_resnet50(&small((32, 32, 3), 5)).unwrap();
    forward_softmax(&m, 1, (32, 32, 3), 5);
    // Headless with pooling=None: ResNet's 32× reduction gives a 2×3 map at 64×96.
    let opts = AppOptions { include_top: false, input_shape: Some((64, 96, 3)), ..AppOptions::default() };
    let y = resnet18(&opts).unwrap().apply(&[rand(&[1, 64, 96, 3], 0.0, 1.0, 4, Device::Cpu)], false).unwrap();
    assert_eq!(y.dims(), &[1, 2, 3, 512]);
    // Logits when the classifier activation is dropped: rows no longer sum to 1.
    let opts = AppOptions { classifier_activation: None, ..small((32, 32, 3), 10) };
    let y = resnet20(&opts).unwrap().apply(&[rand(&[2, 32, 32, 3], 0.0, 1.0, 5, Device::Cpu)], false).unwrap();
    let sums = y.sum(&[1], false).unwrap().to_vec::<f32>().unwrap();
    assert!(sums.iter().all(|s| (s - 1.0).abs() > 1e-3), "logits, not probabilities: {sums:?}");
}

#[test]
fn cifar_resnets_run_forward_at_32x32() {
    for m in [resnet20(&small((32, 32, 3), 10)).unwrap(), resnet32(&small((32, 32, 3), 10)).unwrap()] {
        forward_softmax(&m, 2, (32, 32, 3), 10);
    }
}

#[test]
fn a_training_step_lowers_resnet20_loss() {
    let m = resnet20(&small((32, 32, 3), 10)).unwrap();
    m.compile(Optimizer::sgd(0.05, 0.0, false), LossKind::SparseCategoricalCrossentropy { from_logits: false }.into(), &[]).unwrap();
    let x = rand(&[4, 32, 32, 3], -1.0, 1.0, 11, Device::Cpu);
    let y = Tensor::from_vec(vec![0i64, 3, 7, 9], vec![4], Device::Cpu).unwrap();
    // Reference: a training-mode forward pass outside train_on_batch, which reports the loss
    // before its update, so the second call sees exactly the first step's weights.
    let loss: fovea_nn::losses::Loss = LossKind::SparseCategoricalCrossentropy { from_logits: false }.into();
    let forward = || loss.compute(&y, &m.call(std::slice::from_ref(&x), true).unwrap(), None).unwrap().to_scalar::<f32>().unwrap() as f64;
    let expected_before = forward();
    let before = m.train_on_batch(&x, &y).unwrap()["loss"];
    assert!((before - expected_before).abs() < 1e-5, "train_on_batch reported {before}, the forward pass gives {expected_before}");
    let expected_after = forward();
    let after = m.train_on_batch(&x, &y).unwrap()["loss"];
    assert!((after - expected_after).abs() < 1e-5, "second step reported {after}, the forward pass gives {expected_after}");
    assert!(expected_after < expected_before - 1e-4, "loss {expected_before} -> {expected_after}");
}

#[test]
fn squeeze_excite_keeps_the_shape_and_gates_channels() {
    use fovea_nn::model::functional::Input;
    let x = Input::new(&[4, 4, 32]);
    let y = squeeze_excite(&x, SE_RATIO, "unit").unwrap();
    assert_eq!(y.shape(), x.shape());
    let m = Functional::new(&[&x], &[&y]).unwrap();
    // 32·2 + 2 and 2·32 + 32 weights.
    assert_eq!(m.weights().iter().map(|v| v.value().numel()).sum::<usize>(), 66 + 96);
    // Reference on the host: a constant 2 pools to 2 in every channel, then
    // gate = sigmoid(relu(s·W1 + b1)·W2 + b2) scales each channel of every pixel.
    let w: Vec<Vec<f32>> = m.weights().iter().map(|v| v.value().to_vec::<f32>().unwrap()).collect();
    let (w1, b1, w2, b2) = (&w[0], &w[1], &w[2], &w[3]);
    let hidden: Vec<f64> = (0..2).map(|j| ((0..32).map(|c| 2.0 * w1[c * 2 + j] as f64).sum::<f64>() + b1[j] as f64).max(0.0)).collect();
    let gate: Vec<f64> =
        (0..32).map(|c| 1.0 / (1.0 + (-((0..2).map(|j| hidden[j] * w2[j * 32 + c] as f64).sum::<f64>() + b2[c] as f64)).exp())).collect();
    let input = Tensor::full(vec![1, 4, 4, 32], 2.0, DType::F32, Device::Cpu).unwrap();
    let out = m.apply(&[input], false).unwrap().to_vec::<f32>().unwrap();
    for (k, &v) in out.iter().enumerate() {
        assert!((v as f64 - 2.0 * gate[k % 32]).abs() < 1e-5, "element {k}: {v} vs {}", 2.0 * gate[k % 32]);
    }
    let bad = squeeze_excite(&x, 64, "unit").err().unwrap().to_string();
    assert!(bad.contains("unit") && bad.contains("channel count 32") && bad.contains("64"), "{bad}");
    let flat = Input::new(&[8]);
    let bad = squeeze_excite(&flat, 4, "fc").err().unwrap().to_string();
    assert!(bad.contains("feature map") && bad.contains("(None, 8)"), "{bad}");
}

#[test]
fn preprocess_input_matches_keras() {
    let f = fixture("preprocess");
    for key in ["nhwc", "hwc"] {
        let case = &f[key];
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let floats = |v: &Value| -> Vec<f32> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect() };
        let x = Tensor::from_vec(floats(&case["x"]), shape.clone(), Device::Cpu).unwrap();
        for (mode, label) in [(PreprocessMode::Caffe, "caffe"), (PreprocessMode::Tf, "tf"), (PreprocessMode::Torch, "torch")] {
            let y = preprocess_input(&x, mode).unwrap();
            assert_eq!(y.dims(), shape.as_slice());
            for (g, w) in y.to_vec::<f32>().unwrap().iter().zip(floats(&case[label])) {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{key}/{label}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn preprocess_input_rejects_bad_images() {
    let e = |x: Tensor, mode| preprocess_input(&x, mode).unwrap_err().to_string();
    let msg = e(Tensor::zeros(vec![4, 3], DType::F32, Device::Cpu).unwrap(), PreprocessMode::Tf);
    assert!(msg.contains("preprocess_input") && msg.contains("rank 3 (H, W, C) or 4") && msg.contains("[4, 3]"), "{msg}");
    let msg = e(Tensor::zeros(vec![2, 2, 4], DType::F32, Device::Cpu).unwrap(), PreprocessMode::Caffe);
    assert!(msg.contains("3 RGB channels") && msg.contains("[2, 2, 4]"), "{msg}");
    let msg = e(Tensor::zeros(vec![2, 2, 3], DType::U8, Device::Cpu).unwrap(), PreprocessMode::Torch);
    assert!(msg.contains("float32") && msg.contains("uint8"), "{msg}");
    // Tf mode has no per-channel constants, so any channel count works, as in Keras.
    let y = preprocess_input(&Tensor::full(vec![1, 1, 4], 255.0, DType::F32, Device::Cpu).unwrap(), PreprocessMode::Tf).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0; 4]);
}

#[test]
fn constructors_reject_small_inputs_and_zero_classes() {
    let err = |name: &str, opts: AppOptions| build_by_name(name, &opts).err().expect("an error").to_string();
    let too_small = |h, w| AppOptions { input_shape: Some((h, w, 3)), ..AppOptions::default() };
    for name in ["vgg16", "vgg19", "resnet18", "resnet50", "resnet152", "se_resnet50"] {
        let msg = err(name, too_small(31, 64));
        assert!(msg.contains(name) && msg.contains("at least 32×32") && msg.contains("31×64×3"), "{msg}");
    }
    let msg = err("alexnet", too_small(66, 66));
    assert!(msg.contains("alexnet") && msg.contains("67×67") && msg.contains("66×66×3"), "{msg}");
    let msg = err("resnet20", too_small(7, 32));
    assert!(msg.contains("resnet20") && msg.contains("8×8") && msg.contains("7×32×3"), "{msg}");
    for name in MODEL_NAMES {
        let msg = err(name, AppOptions { classes: 0, ..AppOptions::default() });
        // Keras's display names (InceptionV3, MobileNetV2) and ours (resnet50) both count.
        let key = name.trim_end_matches("_aux").replace('_', "");
        let named = msg.to_lowercase().replace('_', "").contains(&key);
        assert!(named && msg.contains("classes must be positive") && msg.contains("received 0"), "{msg}");
    }
    // Headless models need no classes.
    let opts = AppOptions { include_top: false, classes: 0, input_shape: Some((32, 32, 3)), ..AppOptions::default() };
    assert!(resnet20(&opts).is_ok());
}

#[test]
fn bad_depths_and_unknown_names_are_named() {
    let msg = resnet_cifar(21, &AppOptions::default()).err().unwrap().to_string();
    assert!(msg.contains("resnet21") && msg.contains("6n + 2") && msg.contains("received 21"), "{msg}");
    let msg = build_by_name("resnet51", &AppOptions::default()).err().unwrap().to_string();
    assert!(msg.contains("unknown model \"resnet51\"") && msg.contains("resnet50, resnet101"), "{msg}");
    // resnet44 is not registered by name but is a valid depth.
    let m = resnet_cifar(44, &AppOptions { classes: 10, ..AppOptions::default() }).unwrap();
    assert_eq!(m.name(), "resnet44");
    assert_eq!(m.layers().last().unwrap().name(), "predictions");
}

#[test]
fn option_a_shortcuts_lrn_and_se_blocks_save_and_reload() {
    use fovea_nn::model::io::{load_functional, save_model};
    let dir = std::env::temp_dir().join(format!("fovea_zoo_a_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let se_resnet20 = {
        // A CIFAR ResNet's last unit output with an SE block on top: the SE layers' configs too.
        let m = resnet20(&AppOptions { include_top: false, input_shape: Some((16, 16, 3)), ..AppOptions::default() }).unwrap();
        let out = squeeze_excite(&m.outputs()[0], SE_RATIO, "top").unwrap();
        Functional::new(&[&m.inputs()[0]], &[&out]).unwrap()
    };
    let alex = alexnet(&small((67, 67, 3), 3)).unwrap();
    for (m, shape) in [(se_resnet20, [1, 16, 16, 3]), (alex, [1, 67, 67, 3])] {
        let path = dir.join(format!("{}.safetensors", m.name()));
        save_model(&m, &path).unwrap();
        let back = load_functional(&path).unwrap();
        let strip = |t: String| t.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert_eq!(strip(back.summary().unwrap()), strip(m.summary().unwrap()), "{}", m.name());
        let x = rand(&shape, 0.0, 1.0, 9, Device::Cpu);
        let (a, b) = (m.apply(std::slice::from_ref(&x), false).unwrap(), back.apply(&[x], false).unwrap());
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{}", m.name());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resnet8_with_se_matches_keras_forward_with_keras_weights() {
    use fovea_nn::layers::{Dense, GlobalAveragePooling2D};
    use fovea_nn::model::functional::Connect;
    let path = format!("{}/tests/fixtures/zoo/resnet8_se_forward.safetensors", env!("CARGO_MANIFEST_DIR"));
    let f = fovea_core::io::load_safetensors(path, Device::Cpu).unwrap();
    let body = resnet_cifar(8, &AppOptions { include_top: false, input_shape: Some((8, 8, 3)), ..AppOptions::default() }).unwrap();
    let x = squeeze_excite(&body.outputs()[0], SE_RATIO, "top").unwrap();
    let x = GlobalAveragePooling2D::new().named("avg_pool").unwrap().on(&x).unwrap();
    let y = Dense::new(3).activation(fovea_nn::activations::Activation::Softmax).named("predictions").unwrap().on(&x).unwrap();
    let m = Functional::new(&[&body.inputs()[0]], &[&y]).unwrap();
    // Fovea's weight names are Keras's weight paths, so the weights map one to one.
    let weights = m.weights();
    assert_eq!(weights.len(), f.len() - 2);
    for v in &weights {
        let value = f.get(v.name()).unwrap_or_else(|| panic!("no Keras weight {}", v.name()));
        v.assign(value).unwrap();
    }
    let got = m.apply(&[f["x"].clone()], false).unwrap();
    assert_eq!(got.dims(), f["y"].dims());
    let (g, w) = (got.to_vec::<f32>().unwrap(), f["y"].to_vec::<f32>().unwrap());
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() < 1e-5, "{g:?} vs Keras {w:?}");
    }
    // Not a degenerate reference: the probabilities are far from uniform.
    assert!(w.iter().any(|p| (p - 1.0 / 3.0).abs() > 0.05), "{w:?}");
}
