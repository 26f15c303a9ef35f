//! Data parallelism under a real `mpirun`: the outer tests launch this test binary as MPI
//! ranks (each running one `#[ignore]`d worker test) and check what the ranks left behind.
#![cfg(feature = "mpi")]

use fovea_core::{Device, Tensor};
use fovea_data::pipeline::{Dataset, Element};
use fovea_distributed::MultiWorkerMirroredStrategy;
use fovea_nn::activations::Activation;
use fovea_nn::callbacks::{Callback, CallbackContext};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{BatchNormalization, Conv2D, Dense, Flatten};
use fovea_nn::losses::Loss;
use fovea_nn::model::replicas::PerReplica;
use fovea_nn::model::{FitOptions, Logs, Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SAMPLES: usize = 20 * 64;

/// Deterministic images and labels: the same on every rank and in the single process.
fn data() -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..SAMPLES * 8 * 8).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let y: Vec<f32> = (0..SAMPLES).map(|i| (i * 31 % 10) as f32).collect();
    (Tensor::from_vec(x, [SAMPLES, 8, 8, 1], Device::Cpu).unwrap(), Tensor::from_vec(y, [SAMPLES], Device::Cpu).unwrap())
}

fn model(seed: u64) -> Sequential {
    fovea_core::set_seed(seed);
    let net = Sequential::with_input_shape(&[8, 8, 1]);
    net.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu)).unwrap();
    net.add(Flatten::new()).unwrap();
    net.add(Dense::new(10).activation(Activation::Softmax)).unwrap();
    net.compile(Optimizer::sgd(0.05, 0.9, false), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    net
}

fn options(batch_size: usize) -> FitOptions {
    FitOptions { epochs: 1, batch_size, seed: Some(7), verbose: 0, ..Default::default() }
}

fn flat_weights(net: &Sequential) -> Vec<f32> {
    net.weights().iter().flat_map(|v| v.value().to_vec::<f32>().unwrap()).collect()
}

fn mpirun(worker: &str, out: &Path) -> (Output, Duration) {
    mpirun_with(worker, out, &[])
}

fn mpirun_with(worker: &str, out: &Path, env: &[(&str, &str)]) -> (Output, Duration) {
    let started = Instant::now();
    let output = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", worker, "--ignored", "--nocapture", "--test-threads", "1"])
        .env("FOVEA_MPI_OUT", out)
        .env("RAYON_NUM_THREADS", "1")
        .envs(env.iter().copied())
        .output()
        .expect("mpirun runs (OpenMPI: apt-get install openmpi-bin libopenmpi-dev)");
    (output, started.elapsed())
}

fn read_weights(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn out_dir() -> PathBuf {
    PathBuf::from(std::env::var("FOVEA_MPI_OUT").expect("this worker runs under mpirun, started by the outer test"))
}

#[test]
fn two_ranks_of_32_end_where_one_process_of_64_does() {
    let dir = std::env::temp_dir().join(format!("fovea-mpi-eq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for worker in ["worker_trains_its_shard", "worker_trains_its_dataset_shard"] {
        let (output, _) = mpirun(worker, &dir);
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{worker}:\n{stdout}\n{stderr}");
    }
    // The same model, data, seed and 20 steps of 64 in one process (a different initial
    // seed: the ranks start from rank 0's weights, which came from seed 1), shuffled as the
    // tensors were and in order as the dataset shards were.
    let (x, y) = data();
    let mut expected = Vec::new();
    for (shuffle, files) in [(true, ["rank0", "rank1"]), (false, ["dataset_rank0", "dataset_rank1"])] {
        let single = model(1);
        single.fit(&x, &y, FitOptions { shuffle, ..options(64) }).unwrap();
        expected = flat_weights(&single);
        for file in files {
            let got = read_weights(&dir.join(format!("{file}.f32")));
            assert_eq!(got.len(), expected.len());
            let worst = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-5, "{file}: largest weight difference from the single process {worst}");
        }
    }
    // The weights moved: the comparison is not between two untouched initializations.
    let untrained = model(1);
    untrained.predict(&x.narrow(0, 0, 1).unwrap(), 1).unwrap();
    let initial = flat_weights(&untrained);
    assert_eq!(initial.len(), expected.len());
    assert!(initial.iter().zip(&expected).any(|(a, b)| (a - b).abs() > 1e-3));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "an MPI rank: run by two_ranks_of_32_end_where_one_process_of_64_does under mpirun"]
fn worker_trains_its_shard() {
    let out = out_dir();
    let strategy = MultiWorkerMirroredStrategy::new().unwrap();
    // Small buckets: the gradients of each step go out in several reductions, started while
    // the backward pass still runs.
    fovea_nn::model::replicas::set_bucket_capacity(100);
    assert_eq!(strategy.num_replicas_in_sync(), 2);
    // One strategy per process: a second is refused, and the first keeps working.
    let Err(second) = MultiWorkerMirroredStrategy::new() else { panic!("a second strategy in one process") };
    assert!(second.to_string().contains("already initialized"), "{second}");
    // Each rank starts from different weights; fit copies rank 0's (seed 1) to both.
    let net = model(1 + strategy.rank() as u64 * 100);
    strategy.distribute(&net).unwrap();
    let (x, y) = data();
    let history = net.fit(&x, &y, options(64)).unwrap();
    assert!(history.history["loss"][0].is_finite());
    let bytes: Vec<u8> = flat_weights(&net).iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(out.join(format!("rank{}.f32", strategy.rank())), bytes).unwrap();
}

#[test]
#[ignore = "an MPI rank: run by two_ranks_of_32_end_where_one_process_of_64_does under mpirun"]
fn worker_trains_its_dataset_shard() {
    // Each worker reads only its shard (elements rank, rank + 2, ...) in per-replica batches
    // of 32: the two batches of step k are together rows 64k..64k+63, one process's batch k.
    let out = out_dir();
    let strategy = MultiWorkerMirroredStrategy::new().unwrap();
    let net = model(1 + strategy.rank() as u64 * 100);
    strategy.distribute(&net).unwrap();
    let (x, y) = data();
    let shard = Dataset::from_tensor_slices(Element::from((x, y))).unwrap().shard(2, strategy.rank() as u64).unwrap().batch(32, false);
    let options = FitOptions { shuffle: false, ..options(64) };
    net.fit_source(&PerReplica(shard), None, &options, &mut []).unwrap();
    let bytes: Vec<u8> = flat_weights(&net).iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(out.join(format!("dataset_rank{}.f32", strategy.rank())), bytes).unwrap();
}

/// Kills its own process at the fifth step of rank 1.
struct DieAtStep5 {
    rank: usize,
}

impl Callback for DieAtStep5 {
    fn on_batch_end(&mut self, step: usize, _logs: &Logs, _ctx: &mut CallbackContext) -> fovea_nn::Result<()> {
        if self.rank == 1 && step == 5 {
            std::process::abort();
        }
        Ok(())
    }
}

#[test]
fn a_lost_rank_ends_the_whole_job_quickly() {
    let dir = std::env::temp_dir().join(format!("fovea-mpi-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (output, took) = mpirun("worker_dies_mid_epoch", &dir);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "the job should fail when a rank dies:\n{text}");
    assert!(took < Duration::from_secs(30), "the surviving rank took {took:?} to stop");
    // OpenMPI names the lost process as [[job,1],...] or "rank 1".
    assert!(text.contains("rank 1") || text.contains(",1]"), "the lost rank is not named:\n{text}");
    // Rank 0 never finished training.
    assert!(!dir.join("rank0.done").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "an MPI rank: run by a_lost_rank_ends_the_whole_job_quickly under mpirun"]
fn worker_dies_mid_epoch() {
    let out = out_dir();
    let strategy = MultiWorkerMirroredStrategy::new().unwrap();
    let net = model(1);
    strategy.distribute(&net).unwrap();
    let (x, y) = data();
    let mut die = DieAtStep5 { rank: strategy.rank() };
    net.fit_with_callbacks(&x, &y, options(64), &mut [&mut die]).unwrap();
    std::fs::write(out.join(format!("rank{}.done", strategy.rank())), b"").unwrap();
}

/// Kills rank 1 in the middle of the second epoch when asked to, and records the epochs run.
struct DieInEpoch2 {
    rank: usize,
    epoch: usize,
    armed: bool,
    began: Vec<usize>,
}

impl Callback for DieInEpoch2 {
    fn on_epoch_begin(&mut self, epoch: usize, _ctx: &mut CallbackContext) -> fovea_nn::Result<()> {
        self.epoch = epoch;
        self.began.push(epoch);
        Ok(())
    }
    fn on_batch_end(&mut self, step: usize, _logs: &Logs, _ctx: &mut CallbackContext) -> fovea_nn::Result<()> {
        if self.armed && self.rank == 1 && self.epoch == 1 && step == 7 {
            std::process::abort();
        }
        Ok(())
    }
}

#[test]
fn a_restarted_job_resumes_to_the_weights_of_an_uninterrupted_one() {
    let dir = std::env::temp_dir().join(format!("fovea-mpi-resume-{}", std::process::id()));
    let (whole, interrupted) = (dir.join("whole"), dir.join("interrupted"));
    for d in [&whole, &interrupted] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (output, _) = mpirun_with("worker_backs_up_and_resumes", &whole, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (output, _) = mpirun_with("worker_backs_up_and_resumes", &interrupted, &[("FOVEA_MPI_DIE", "1")]);
    assert!(!output.status.success(), "rank 1 should have died in epoch 2");
    assert!(interrupted.join("backup/backup.safetensors").is_file(), "the chief's backup of epoch 1 survives the crash");
    assert!(!interrupted.join("rank0.f32").exists());
    let (output, _) = mpirun_with("worker_backs_up_and_resumes", &interrupted, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Both replicas of the restarted job began at the second epoch, the first one not backed up.
    for rank in 0..2 {
        assert_eq!(std::fs::read_to_string(interrupted.join(format!("epochs{rank}.txt"))).unwrap(), "[1, 2]");
    }
    let (a, b) = (read_weights(&whole.join("rank0.f32")), read_weights(&interrupted.join("rank0.f32")));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(a.len() == b.len() && worst <= 1e-6, "resumed weights differ from the uninterrupted run's by {worst}");
    assert!(!interrupted.join("backup/backup.safetensors").exists(), "a completed run removes its backup");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "an MPI rank: run by a_restarted_job_resumes_to_the_weights_of_an_uninterrupted_one under mpirun"]
fn worker_backs_up_and_resumes() {
    let out = out_dir();
    let strategy = MultiWorkerMirroredStrategy::new().unwrap();
    let net = model(1);
    strategy.distribute(&net).unwrap();
    let (x, y) = data();
    let mut backup = fovea_nn::callbacks::BackupAndRestore::new(out.join("backup"));
    let mut die = DieInEpoch2 { rank: strategy.rank(), epoch: 0, armed: std::env::var("FOVEA_MPI_DIE").is_ok(), began: Vec::new() };
    let opts = FitOptions { epochs: 3, shuffle: true, ..options(64) };
    net.fit_with_callbacks(&x, &y, opts, &mut [&mut backup, &mut die]).unwrap();
    std::fs::write(out.join(format!("epochs{}.txt", strategy.rank())), format!("{:?}", die.began)).unwrap();
    let bytes: Vec<u8> = flat_weights(&net).iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(out.join(format!("rank{}.f32", strategy.rank())), bytes).unwrap();
}

fn model_with_batch_norm(seed: u64, synchronized: bool) -> Sequential {
    fovea_core::set_seed(seed);
    let net = Sequential::with_input_shape(&[8, 8, 1]);
    net.add(Conv2D::new(4, (3, 3))).unwrap();
    net.add(BatchNormalization::new().momentum(0.9).synchronized(synchronized)).unwrap();
    net.add(Flatten::new()).unwrap();
    net.add(Dense::new(10).activation(Activation::Softmax)).unwrap();
    net.compile(Optimizer::sgd(0.05, 0.9, false), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &["accuracy"]).unwrap();
    net
}

#[test]
fn a_synchronized_batch_norm_makes_two_replicas_one_process() {
    let dir = std::env::temp_dir().join(format!("fovea-mpi-bn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for sync in ["1", "0"] {
        let (output, _) = mpirun_with("worker_trains_with_batch_norm", &dir, &[("FOVEA_MPI_SYNC", sync)]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let (x, y) = data();
    let single = model_with_batch_norm(1, false);
    single.fit(&x, &y, options(64)).unwrap();
    // Every weight, the moving mean and variance included.
    let expected = flat_weights(&single);
    let worst = |file: &str| {
        let got = read_weights(&dir.join(file));
        assert_eq!(got.len(), expected.len());
        got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
    };
    for rank in 0..2 {
        let synced = worst(&format!("bn_sync1_rank{rank}.f32"));
        assert!(synced <= 1e-5, "synchronized, rank {rank}: {synced}");
    }
    // Per-replica statistics (Keras's default) are a different computation.
    let local = worst("bn_sync0_rank0.f32");
    assert!(local > 1e-4, "per-replica batch norm should differ from one process: {local}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "an MPI rank: run by a_synchronized_batch_norm_makes_two_replicas_one_process under mpirun"]
fn worker_trains_with_batch_norm() {
    let out = out_dir();
    let sync = std::env::var("FOVEA_MPI_SYNC").expect("FOVEA_MPI_SYNC") == "1";
    let strategy = MultiWorkerMirroredStrategy::new().unwrap();
    let net = model_with_batch_norm(1, sync);
    strategy.distribute(&net).unwrap();
    let (x, y) = data();
    net.fit(&x, &y, options(64)).unwrap();
    let bytes: Vec<u8> = flat_weights(&net).iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(out.join(format!("bn_sync{}_rank{}.f32", u8::from(sync), strategy.rank())), bytes).unwrap();
}
