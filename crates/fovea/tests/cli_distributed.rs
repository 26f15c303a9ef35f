//! `mpirun -np 2 fovea train ... --distributed`: two replicas train one model; the chief alone
//! prints and saves, and what it saved evaluates to the accuracy it printed.

use std::process::Command;

#[test]
fn two_replicas_train_and_the_chief_alone_reports_and_saves() {
    let dir = std::env::temp_dir().join(format!("fovea-cli-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("lenet5.safetensors");
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2", env!("CARGO_BIN_EXE_fovea")])
        .args(["train", "lenet5", "--distributed", "--epochs", "1", "--limit", "3000", "--batch-size", "64", "--verbose", "2", "-o"])
        .arg(&model)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("mpirun runs (OpenMPI: apt-get install openmpi-bin libopenmpi-dev)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("with 2 replicas").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("Epoch 1/1").count(), 1, "only the chief prints progress:\n{stdout}");
    let printed = stdout.lines().filter(|l| l.starts_with("Test loss")).collect::<Vec<_>>();
    assert_eq!(printed.len(), 1, "{stdout}");
    let eval = Command::new(env!("CARGO_BIN_EXE_fovea")).arg("evaluate").arg(&model).output().unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let evaluated = String::from_utf8_lossy(&eval.stdout);
    assert!(evaluated.contains(printed[0]), "the saved model evaluates as the chief printed: {} vs {evaluated}", printed[0]);
    // Two replicas of 32 make the same updates as one process on batches of 64 (gradients
    // averaged by sample share), so the same run in one process reports the same numbers
    // (0.7218 measured), up to floating-point reordering.
    let single = Command::new(env!("CARGO_BIN_EXE_fovea"))
        .args(["train", "lenet5", "--epochs", "1", "--limit", "3000", "--batch-size", "64", "--verbose", "0"])
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let single_out = String::from_utf8_lossy(&single.stdout);
    let single_line = single_out.lines().find(|l| l.starts_with("Test loss")).unwrap_or_else(|| panic!("{single_out}"));
    let numbers = |line: &str| -> Vec<f64> { line.split(' ').filter_map(|w| w.parse().ok()).collect() };
    let (distributed, one) = (numbers(printed[0]), numbers(single_line));
    assert_eq!(distributed.len(), 2, "loss and accuracy in {}", printed[0]);
    for (d, o) in distributed.iter().zip(&one) {
        assert!((d - o).abs() <= 2e-3, "2 replicas: {} vs 1 process: {single_line}", printed[0]);
    }
    assert!(distributed[1] > 0.6, "LeNet-5 after one epoch on 3,000 images: {}", printed[0]);
    std::fs::remove_dir_all(dir).ok();
}
