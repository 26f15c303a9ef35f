//! The `fovea` command end to end: summary, a short training run that saves weights,
//! evaluation of those weights, and clear failures for bad flags and files.

use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().expect("run fovea");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn summary_prints_the_keras_table() {
    let (ok, out, _) = fovea(&["summary", "lenet5"]);
    assert!(ok);
    assert!(out.contains("│ conv2d (Conv2D)") && out.contains("Total params: 61,706 (241.04 KB)"), "{out}");
}

#[test]
fn train_saves_weights_that_evaluate_reproduces() {
    let dir = std::env::temp_dir().join(format!("fovea-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("lenet5.safetensors");
    let w = weights.to_str().unwrap();
    let (ok, out, err) = fovea(&["train", "lenet5", "--epochs", "1", "--limit", "3000", "--verbose", "2", "-o", w]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Epoch 1/1") && out.contains("val_accuracy"), "{out}");
    let acc = |text: &str| -> f64 {
        let tail = text.split("Test accuracy: ").nth(1).unwrap_or_else(|| panic!("no test accuracy in {text}"));
        tail.split_whitespace().next().unwrap().parse().unwrap()
    };
    let trained = acc(&out);
    // 2,700 training images for one epoch already beat chance (10%) by far.
    assert!(trained > 0.7, "test accuracy {trained}");
    let (ok, eval_out, err) = fovea(&["evaluate", w]);
    assert!(ok, "{err}");
    assert_eq!(acc(&eval_out), trained, "evaluate must reproduce the accuracy of the saved weights");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let (ok, _, err) = fovea(&["train", "--epochs", "many"]);
    assert!(!ok && err.contains("invalid value 'many' for '--epochs"), "{err}");
    let (ok, _, err) = fovea(&["train", "--optimizer", "lion", "--limit", "10"]);
    assert!(!ok && err.contains("unknown optimizer \"lion\""), "{err}");
    let (ok, _, err) = fovea(&["evaluate", "/nonexistent/w.safetensors"]);
    assert!(!ok && err.starts_with("error: ") && err.contains("/nonexistent/w.safetensors"), "{err}");
    let (ok, _, err) = fovea(&["summary", "resnet999"]);
    assert!(!ok && err.contains("invalid value 'resnet999'"), "{err}");
}
