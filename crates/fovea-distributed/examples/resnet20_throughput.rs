//! ResNet-20 training throughput of one replica per MPI process (weak scaling: every replica
//! trains on its own batch of `--batch` CIFAR-sized images per step). `bench/distributed/run.sh`
//! runs it under `mpirun -np 1` and `-np 2` beside PyTorch DDP; replica 0 prints one JSON line.
//!
//! `mpirun -np 2 target/release/examples/resnet20_throughput [--batch 64] [--steps 20]`

use fovea_core::{Device, Tensor};
use fovea_distributed::MultiWorkerMirroredStrategy;
use fovea_nn::layer::Layer;
use fovea_nn::losses::Loss;
use fovea_nn::model::Model;
use fovea_nn::optimizers::Optimizer;
use fovea_vision::applications::{resnet20, AppOptions};
use std::time::Instant;

fn flag(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} expects a positive integer")),
        None => Ok(default),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (batch, steps, warmup) = (flag("--batch", 64)?, flag("--steps", 20)?, 5);
    let strategy = MultiWorkerMirroredStrategy::new()?;
    fovea_core::set_seed(0);
    let model = resnet20(&AppOptions { classes: 10, ..AppOptions::default() })?;
    model.compile(Optimizer::from_name("sgd")?, Loss::from_name("sparse_categorical_crossentropy")?, &["accuracy"])?;
    strategy.distribute(&model)?;
    let x = Tensor::random_uniform([batch, 32, 32, 3], 0.0, 1.0, Some(1 + strategy.rank() as u64), Device::Cpu)?;
    let y = Tensor::from_vec((0..batch as i64).map(|i| i % 10).collect::<Vec<_>>(), [batch], Device::Cpu)?;
    let mut times = Vec::with_capacity(steps);
    fovea_core::on_pool(|| -> Result<(), fovea_nn::Error> {
        for step in 0..warmup + steps {
            let started = Instant::now();
            model.train_on_batch(&x, &y)?;
            if step >= warmup {
                times.push(started.elapsed().as_secs_f64());
            }
        }
        Ok(())
    })?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let replicas = strategy.num_replicas_in_sync();
    let gradient_bytes: usize = model.trainable_weights().iter().map(|v| v.value().numel() * 4).sum();
    // The wire alone: the all-reduce of one step's gradients (in the transport's buckets).
    let collective = strategy.collective();
    let mut reduce_times = Vec::new();
    for _ in 0..20 {
        let buckets = vec![
            vec![1f32; fovea_nn::model::replicas::BUCKET_VALUES.min(gradient_bytes / 4)];
            (gradient_bytes / 4).div_ceil(fovea_nn::model::replicas::BUCKET_VALUES)
        ];
        let started = Instant::now();
        collective.all_reduce_sum_f32(buckets)?;
        reduce_times.push(started.elapsed().as_secs_f64());
    }
    reduce_times.sort_by(f64::total_cmp);
    let reduce = reduce_times[reduce_times.len() / 2];
    if strategy.is_chief() {
        println!(
            "{{\"bench\": \"fovea\", \"workload\": \"resnet20_train\", \"replicas\": {replicas}, \"batch_per_replica\": {batch}, \"median_step_s\": {median:.4}, \"images_per_s\": {:.1}, \"allreduce_bytes_per_step\": {gradient_bytes}, \"allreduce_ms\": {:.3}, \"allreduce_gb_per_s\": {:.2}}}",
            (batch * replicas) as f64 / median,
            reduce * 1e3,
            gradient_bytes as f64 / reduce / 1e9
        );
    }
    Ok(())
}
