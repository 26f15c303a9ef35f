//! `fovea convert` and `fovea predict` on ImageNet classifiers, end to end: a torchvision-layout
//! ResNet-18 checkpoint (written here from a Fovea model by inverting the layout transforms)
//! converts back to a model with the source's outputs, and predict prints Keras-style top-5s.

use fovea::core::io::save_safetensors;
use fovea::core::{testing::rand, Device, Tensor};
use fovea::nn::import::torch::Transform;
use fovea::nn::layer::Layer;
use fovea::nn::model::io::load_functional;
use fovea::nn::model::Model;
use fovea::vision::applications::{torchvision_model, torchvision_rules, AppOptions};
use std::collections::HashMap;
use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Fovea's layout back to PyTorch's: HWIO → OIHW, `[in, out]` → `[out, in]`.
fn to_torch(x: &Tensor, t: Transform) -> Tensor {
    match t {
        Transform::Conv => x.permute(&[3, 2, 0, 1]).unwrap(),
        Transform::Linear => x.transpose(0, 1).unwrap(),
        _ => x.clone(),
    }
}

#[test]
fn convert_round_trips_a_torchvision_resnet18_and_predict_prints_top5() {
    let dir = std::env::temp_dir().join(format!("fovea-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    fovea::nn::names::clear_session();
    let source = torchvision_model("resnet18", &AppOptions { input_shape: Some((64, 64, 3)), ..AppOptions::default() }).unwrap();
    let values: HashMap<String, Tensor> = source.weights().iter().map(|v| (v.name().to_string(), v.value())).collect();
    let mut state: Vec<(String, Tensor)> =
        torchvision_rules("resnet18").unwrap().iter().map(|r| (r.torch.clone(), to_torch(&values[&r.fovea], r.transform))).collect();
    state.push(("bn1.num_batches_tracked".into(), Tensor::from_vec(vec![0i64], Vec::<usize>::new(), Device::Cpu).unwrap()));
    let pt = dir.join("resnet18_torch.safetensors");
    save_safetensors(&pt, &state, &HashMap::new()).unwrap();

    let out_path = dir.join("resnet18.safetensors");
    let (ok, out, err) = fovea(&["convert", pt.to_str().unwrap(), "--arch", "resnet18", "-o", out_path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("torchvision resnet18, 1000 classes, 102 weights"), "{out}");

    // The converted model (built at 224×224) computes what the source computes; the global
    // average pooling makes both accept any size, so compare on the source's 64×64.
    let converted = load_functional(&out_path).unwrap();
    let x = rand(&[2, 64, 64, 3], -1.0, 1.0, 3, Device::Cpu);
    let a = source.predict(&x, 2).unwrap().to_vec::<f32>().unwrap();
    let small = torchvision_model("resnet18", &AppOptions { input_shape: Some((64, 64, 3)), ..AppOptions::default() }).unwrap();
    for (v, w) in small.weights().iter().zip(converted.weights()) {
        v.assign(&w.value()).unwrap();
    }
    let b = small.predict(&x, 2).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a, b, "the round trip is exact");

    let img = format!("{}/../fovea-vision/tests/fixtures/smooth24x32.jpg", env!("CARGO_MANIFEST_DIR"));
    let (ok, out, err) = fovea(&["predict", "--model", out_path.to_str().unwrap(), &img]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 5, "{out}");
    let pct: Vec<f64> = lines
        .iter()
        .map(|l| {
            let (id, rest) = l.trim().split_once(" - ").unwrap_or_else(|| panic!("{l}"));
            assert!(id.starts_with('n') && id.len() == 9, "{l}");
            rest.rsplit_once(' ').unwrap().1.trim_end_matches('%').parse().unwrap()
        })
        .collect();
    assert!(pct.windows(2).all(|w| w[0] >= w[1]), "{out}");

    // Errors: an unknown architecture, and a ResNet-18 file converted as a VGG-16.
    let (ok, _, err) = fovea(&["convert", pt.to_str().unwrap(), "--arch", "alexnet", "-o", "x.safetensors"]);
    assert!(!ok && err.contains("unknown --arch \"alexnet\", expected one of resnet18, resnet34, resnet50, vgg16"), "{err}");
    let (ok, _, err) = fovea(&["convert", pt.to_str().unwrap(), "--arch", "vgg16", "-o", "x.safetensors"]);
    assert!(!ok && err.contains("not a torchvision vgg16 state_dict: missing keys [features.0.weight"), "{err}");
    let (ok, _, err) = fovea(&["predict", out_path.to_str().unwrap(), &img, "--top-k", "0"]);
    assert!(!ok && err.contains("--top-k must be at least 1"), "{err}");
    let (ok, _, err) = fovea(&["predict"]);
    assert!(!ok && err.contains("give the model file (first path, or --model FILE)"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
