//! `fovea export`: a Sequential and a functional model file become ONNX files that decode,
//! and bad flags or files fail with one clear line.

use fovea::nn::export::onnx::decode_onnx;
use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn export_writes_onnx_that_decodes_and_names_bad_input() {
    let dir = std::env::temp_dir().join(format!("fovea-cli-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    for (model, extra, first_op) in [("lenet5", vec![], "Transpose"), ("resnet20", vec!["--classes", "3"], "Transpose")] {
        let file = p(&format!("{model}.safetensors"));
        let mut args = vec!["create", model, "-o", &file];
        args.extend(extra);
        let (ok, out, err) = fovea(&args);
        assert!(ok, "{out}{err}");
        let onnx = p(&format!("{model}.onnx"));
        let (ok, out, err) = fovea(&["export", &file, "--format", "onnx", "-o", &onnx]);
        assert!(ok && out.contains("ONNX opset 17"), "{out}{err}");
        let m = decode_onnx(&std::fs::read(&onnx).unwrap()).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.node[0].op_type, first_op);
        assert!(g.node.iter().any(|n| n.op_type == "Conv") && g.node.last().unwrap().op_type == "Softmax", "{model}");
        assert!(!g.initializer.is_empty());
    }
    let lenet = p("lenet5.safetensors");
    let (ok, _, err) = fovea(&["export", &lenet, "--format", "tflite", "-o", &p("x.onnx")]);
    assert!(!ok && err.contains("invalid value 'tflite'") && err.contains("onnx"), "{err}");
    let (ok, _, err) = fovea(&["export", &p("missing.safetensors"), "--format", "onnx", "-o", &p("x.onnx")]);
    assert!(!ok && err.contains("missing.safetensors: no such model file"), "{err}");
    let (ok, _, err) = fovea(&["export", &lenet, "--format", "onnx", "-o", "/nonexistent-dir/m.onnx"]);
    assert!(!ok && err.contains("/nonexistent-dir"), "{err}");
    let (ok, _, err) = fovea(&["export", &lenet, "-o", &p("x.onnx")]);
    assert!(!ok && err.contains("--format"), "{err}");
    assert!(!dir.join("x.onnx").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
