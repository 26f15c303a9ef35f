//! `fovea serve` from the command line: with the `serve` feature its options and a missing
//! base path; without it, the error that says how to rebuild. The server itself is tested in
//! crates/fovea-serve and by tools/check_serving.py against this binary.

use std::process::Command;

fn fovea(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fovea")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[cfg(not(feature = "serve"))]
#[test]
fn serve_without_the_feature_says_how_to_rebuild() {
    let (ok, _, err) = fovea(&["serve", "--model-base-path", "models"]);
    assert!(!ok);
    assert!(err.contains("without the `serve` feature") && err.contains("--features serve"), "{err}");
}

#[cfg(feature = "serve")]
#[test]
fn serve_lists_its_options_and_refuses_a_missing_base_path() {
    let (ok, out, err) = fovea(&["serve", "--help"]);
    assert!(ok, "{err}");
    for flag in ["--model-base-path", "--model-name", "--port", "--max-batch-size", "--batching-timeout-micros", "--max-queue"] {
        assert!(out.contains(flag), "{flag} missing from\n{out}");
    }
    let (ok, _, err) = fovea(&["serve", "--model-base-path", "/nonexistent/fovea-models", "--port", "0"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/fovea-models: no such directory"), "{err}");
}
