//! PyTorch weights: `torch.save` archives and safetensors files read by Fovea's safe pickle
//! reader, re-laid-out to Keras layouts, and the outputs matched against PyTorch's.
//!
//! Fixtures: `tools/fixtures/gen_torch_fixtures.py`. The small ones are committed; the
//! torchvision ResNet-18/50 and VGG-16 files are hundreds of MB, so
//! `torchvision_full_models_match` reads them from `$FOVEA_TORCHVISION_FIXTURES` (the script's
//! `--full DIR`) and is skipped, saying so, when the variable is unset.

use fovea_core::io::load_safetensors;
use fovea_core::{Device, Tensor};
use fovea_nn::import::torch::{apply_rules, read_state_dict, state_dict_from_bytes, Rule, Transform};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{Activation, BatchNormalization, Conv2D, Dense, Flatten, ZeroPadding2D};
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::io::assign_by_name;
use fovea_nn::model::Model;
use fovea_vision::applications::*;
use std::collections::HashMap;

fn dir() -> String {
    format!("{}/tests/fixtures/torch", env!("CARGO_MANIFEST_DIR"))
}

fn io(path: &str) -> HashMap<String, Tensor> {
    load_safetensors(path, Device::Cpu).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// max |a − b| over max |b|: the error relative to the output's scale.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn rule(torch: &str, fovea: &str, transform: Transform) -> Rule {
    Rule { torch: torch.into(), fovea: fovea.into(), transform }
}

/// The fixture's Conv(stride 2, pad 1) → BN → ReLU → NCHW Flatten → Linear, in Keras layers.
fn tiny_model() -> Functional {
    let x = Input::new(&[8, 8, 3]);
    let y = ZeroPadding2D::new((1, 1), (1, 1)).on(&x).unwrap();
    let y = Conv2D::new(4, (3, 3)).strides((2, 2)).use_bias(false).named("t_conv").unwrap().on(&y).unwrap();
    let y = BatchNormalization::new().epsilon(1e-5).named("t_bn").unwrap().on(&y).unwrap();
    let y = Activation::new(fovea_nn::activations::Activation::Relu).on(&y).unwrap();
    let y = Flatten::new().on(&y).unwrap();
    let y = Dense::new(5).named("t_fc").unwrap().on(&y).unwrap();
    Functional::new(&[&x], &[&y]).unwrap()
}

fn tiny_rules() -> Vec<Rule> {
    vec![
        rule("0.weight", "t_conv/kernel", Transform::Conv),
        rule("1.weight", "t_bn/gamma", Transform::Identity),
        rule("1.bias", "t_bn/beta", Transform::Identity),
        rule("1.running_mean", "t_bn/moving_mean", Transform::Identity),
        rule("1.running_var", "t_bn/moving_variance", Transform::Identity),
        rule("4.weight", "t_fc/kernel", Transform::LinearFromChw(4, 4, 4)),
        rule("4.bias", "t_fc/bias", Transform::Identity),
    ]
}

#[test]
fn tiny_pt_and_safetensors_match_pytorch() {
    let want = io(&format!("{}/tiny_io.safetensors", dir()));
    for file in ["tiny.pt", "tiny.safetensors"] {
        let state = read_state_dict(format!("{}/{file}", dir())).unwrap();
        let mut keys: Vec<&str> = state.iter().map(|(k, _)| k.as_str()).collect();
        if file.ends_with("safetensors") {
            // safetensors stores tensors in its own order; torch.save keeps the module order.
            keys.sort_by_key(|k| {
                ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias"]
                    .iter()
                    .position(|x| x == k)
            });
        }
        assert_eq!(
            keys,
            ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias"]
        );
        let conv = state.iter().find(|(k, _)| k == "0.weight").unwrap();
        assert_eq!(conv.1.dims(), &[4, 3, 3, 3], "OIHW as saved");
        let weights = apply_rules(&state, &tiny_rules(), "tiny").unwrap();
        let model = tiny_model();
        let report = assign_by_name(&model, &weights, false, file).unwrap();
        assert_eq!(report.loaded.len(), 7);
        let y = model.predict(&want["x"], 8).unwrap();
        let e = rel_err(&y, &want["y"]);
        assert!(e < 1e-4, "{file}: relative error {e}");
    }
}

#[test]
fn odd_dtypes_strides_and_offsets_are_read_exactly() {
    let state: HashMap<String, Tensor> = read_state_dict(format!("{}/odd.pt", dir())).unwrap().into_iter().collect();
    let want = io(&format!("{}/odd_values.safetensors", dir()));
    for (name, w) in &want {
        let got = &state[name];
        assert_eq!(got.dims(), w.dims(), "{name}");
        assert_eq!(got.dtype(), w.dtype(), "{name}");
        if name == "int" {
            assert_eq!(got.to_vec::<i64>().unwrap(), [-7, 0, 2_147_483_647]);
        } else {
            assert_eq!(got.to_vec::<f32>().unwrap(), w.to_vec::<f32>().unwrap(), "{name}");
        }
    }
    // `base.t()` of arange(24)/8 in a 4×6: element [i][j] is (6j + i) / 8.
    assert_eq!(state["transposed"].to_vec::<f32>().unwrap()[..3], [0.0, 0.75, 1.5]);
    // `base[1:3, 2:5]`: rows 1–2, columns 2–4.
    assert_eq!(state["offset"].to_vec::<f32>().unwrap(), [1.0, 1.125, 1.25, 1.75, 1.875, 2.0]);
}

#[test]
fn a_pickle_that_calls_os_system_is_refused() {
    let mut bytes = std::fs::read(format!("{}/tiny.pt", dir())).unwrap();
    // The first entry is data.pkl (stored); overwrite its start with a pickle whose REDUCE
    // would run `os.system("touch pwned")`. Anything after STOP is never read.
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
    assert!(std::str::from_utf8(&bytes[30..30 + name_len]).unwrap().ends_with("data.pkl"));
    let evil = b"\x80\x02cos\nsystem\nX\x0b\x00\x00\x00touch pwnedq\x00\x85R.";
    let start = 30 + name_len + extra_len;
    bytes[start..start + evil.len()].copy_from_slice(evil);
    let e = state_dict_from_bytes(&bytes, "evil.pt").unwrap_err().to_string();
    assert!(e.contains("evil.pt") && e.contains("refusing global os.system"), "{e}");
}

#[test]
fn truncated_corrupt_and_foreign_files_are_clear_errors() {
    let bytes = std::fs::read(format!("{}/tiny.pt", dir())).unwrap();
    let e = state_dict_from_bytes(&bytes[..bytes.len() - 100], "cut.pt").unwrap_err().to_string();
    assert!(e.contains("cut.pt: corrupt or truncated zip archive"), "{e}");
    let e = state_dict_from_bytes(&bytes[..bytes.len() / 2], "half.pt").unwrap_err().to_string();
    assert!(e.contains("half.pt: corrupt or truncated zip archive"), "{e}");
    let e = state_dict_from_bytes(b"hello world, not weights", "junk.bin").unwrap_err().to_string();
    assert!(e.contains("junk.bin: neither a torch.save zip archive nor a readable safetensors file"), "{e}");
    let e = state_dict_from_bytes(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", "old.pt").unwrap_err().to_string();
    assert!(e.contains("legacy (pre-1.6)"), "{e}");
    let e = read_state_dict(format!("{}/not_tensors.pt", dir())).unwrap_err().to_string();
    assert!(e.contains("not_tensors.pt: note holds a string, expected a tensor"), "{e}");
    // A training checkpoint is unwrapped to its state_dict.
    let wrapped = read_state_dict(format!("{}/checkpoint.pt", dir())).unwrap();
    let plain = read_state_dict(format!("{}/tiny.pt", dir())).unwrap();
    assert_eq!(wrapped.iter().map(|(k, _)| k).collect::<Vec<_>>(), plain.iter().map(|(k, _)| k).collect::<Vec<_>>());
    let e = read_state_dict(format!("{}/missing.pt", dir())).unwrap_err().to_string();
    assert!(e.contains("cannot read") && e.contains("missing.pt"), "{e}");
    // The tiny file is not a ResNet-18: every missing and unexpected key family is named.
    let state = read_state_dict(format!("{}/tiny.pt", dir())).unwrap();
    let e = convert_torchvision(&state, "resnet18").unwrap_err().to_string();
    assert!(e.contains("not a torchvision resnet18 state_dict: missing keys [conv1.weight, bn1.weight, bn1.bias, … (102 in all)]"), "{e}");
    assert!(e.contains("unexpected keys [0.weight, 1.weight, 1.bias, … (7 in all)]"), "{e}");
    let e = convert_torchvision(&state, "alexnet").unwrap_err().to_string();
    assert!(e.contains("unknown architecture \"alexnet\", expected one of resnet18, resnet34, resnet50, vgg16"), "{e}");
    // A tensor of the wrong rank for its transform names the key.
    let mut bad = tiny_rules();
    bad[0].transform = Transform::Linear;
    let e = apply_rules(&state, &bad, "tiny").unwrap_err().to_string();
    assert!(e.contains("tiny: 0.weight: Linear: expected a PyTorch weight of shape [out, in], received [4, 3, 3, 3]"), "{e}");
}

#[test]
fn torchvision_tables_cover_every_weight_of_the_models() {
    // Every Fovea weight has exactly one rule, and the counts are torchvision's tensor counts
    // without num_batches_tracked (ResNet-18: 102 = 122 − 20 counters).
    for (arch, count) in [("resnet18", 102), ("resnet34", 182), ("resnet50", 267), ("vgg16", 32)] {
        fovea_nn::names::clear_session();
        let rules = torchvision_rules(arch).unwrap();
        assert_eq!(rules.len(), count, "{arch}");
        let opts = AppOptions { input_shape: Some((224, 224, 3)), ..AppOptions::default() };
        let model = torchvision_model(arch, &opts).unwrap();
        let mut names: Vec<String> = model.weights().iter().map(|v| v.name().to_string()).collect();
        let mut mapped: Vec<String> = rules.iter().map(|r| r.fovea.clone()).collect();
        names.sort();
        mapped.sort();
        assert_eq!(names, mapped, "{arch}");
    }
    // torchvision's parameter counts (no bias before batch norm, v1.5 ResNet-50).
    let count = |arch: &str| {
        let m = torchvision_model(arch, &AppOptions::default()).unwrap();
        m.weights().iter().filter(|v| v.trainable()).map(|v| v.value().shape().numel()).sum::<usize>()
    };
    assert_eq!(count("resnet18"), 11_689_512);
    assert_eq!(count("resnet50"), 25_557_032);
}

// Ignored rather than passing when it cannot run, so a plain `cargo test` reports it as not
// run; `.ci/run` generates the fixtures and runs it with `-- --ignored`.
#[test]
#[ignore = "needs FOVEA_TORCHVISION_FIXTURES: the directory of tools/fixtures/gen_torch_fixtures.py --full; run with -- --ignored"]
fn torchvision_full_models_match() {
    let dir = std::env::var("FOVEA_TORCHVISION_FIXTURES")
        .expect("FOVEA_TORCHVISION_FIXTURES: the directory of tools/fixtures/gen_torch_fixtures.py --full");
    for arch in ["resnet18", "resnet50", "vgg16"] {
        let want = io(&format!("{dir}/{arch}_io.safetensors"));
        for ext in ["pt", "safetensors"] {
            fovea_nn::names::clear_session();
            let opts = AppOptions { classifier_activation: None, ..AppOptions::default() };
            let model = torchvision_model(arch, &opts).unwrap();
            load_torchvision(&model, format!("{dir}/{arch}.{ext}"), arch).unwrap();
            let y = model.predict(&want["x"], 1).unwrap();
            let e = rel_err(&y, &want["y"]);
            eprintln!("{arch}.{ext}: relative error {e:e}");
            assert!(e < 1e-4, "{arch}.{ext}: relative error {e}");
        }
    }
    // A VGG file into a ResNet, and a 1000-class file into a 10-class model.
    fovea_nn::names::clear_session();
    let resnet = torchvision_model("resnet18", &AppOptions::default()).unwrap();
    let e = load_torchvision(&resnet, format!("{dir}/vgg16.pt"), "resnet18").unwrap_err().to_string();
    assert!(e.contains("vgg16.pt: not a torchvision resnet18 state_dict: missing keys [conv1.weight"), "{e}");
    let ten = torchvision_model("resnet18", &AppOptions { classes: 10, ..AppOptions::default() }).unwrap();
    let e = load_torchvision(&ten, format!("{dir}/resnet18.pt"), "resnet18").unwrap_err().to_string();
    assert!(e.contains("weight predictions/kernel has shape [512, 1000]") && e.contains("but [512, 10]"), "{e}");
}
