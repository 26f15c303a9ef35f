//! Kernel benchmark: GFLOP/s of sgemm and of conv2d forward and forward+backward on the
//! LeNet-5 and ResNet shapes of the core issue, for the fast CPU backend.
//!
//! Run with `cargo bench -p fovea-core --bench kernels` (2 threads unless `RAYON_NUM_THREADS`
//! says otherwise). The table (median and best of the timed windows after a warm-up) goes to
//! stderr; JSON lines in `bench/kernels/torch_kernels.py`'s format go to stdout, so
//! `bench/kernels/run.sh` can set PyTorch's numbers beside these. `FOVEA_BENCH_ONLY=resnet`
//! runs only the workloads whose name contains `resnet`.

use fovea_core::ops::conv::Conv2dOptions;
use fovea_core::ops::padding::Padding;
use fovea_core::{Device, Tensor};
use std::time::{Duration, Instant};

const WINDOWS: usize = 7;
const WINDOW: Duration = Duration::from_millis(400);

/// Runs `f` repeatedly for one window and returns seconds per call.
fn window(f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < WINDOW || calls == 0 {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / calls as f64
}

/// Median and best GFLOP/s over the windows, after a warm-up window.
fn gflops(flops: f64, f: &mut dyn FnMut()) -> (f64, f64) {
    window(f); // warm-up: page faults, scratch buffers, thread pool
    let mut rates: Vec<f64> = (0..WINDOWS).map(|_| flops / window(f) / 1e9).collect();
    rates.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    (rates[WINDOWS / 2], rates[WINDOWS - 1])
}

struct ConvCase {
    name: &'static str,
    n: usize,
    hw: usize,
    c_in: usize,
    c_out: usize,
    k: usize,
    padding: Padding,
}

fn main() {
    if std::env::var("RAYON_NUM_THREADS").is_err() {
        rayon::ThreadPoolBuilder::new().num_threads(2).build_global().expect("thread pool");
    }
    let dev = Device::Cpu;
    let only = std::env::var("FOVEA_BENCH_ONLY").unwrap_or_default();
    let mut results: Vec<(String, (f64, f64))> = Vec::new();

    for n in [1024usize, 2048].into_iter().filter(|n| format!("sgemm_{n}").contains(&only)) {
        let a = Tensor::random_uniform([n, n], -1.0, 1.0, Some(1), dev).expect("a");
        let b = Tensor::random_uniform([n, n], -1.0, 1.0, Some(2), dev).expect("b");
        let flops = 2.0 * (n * n * n) as f64;
        let g = gflops(flops, &mut || {
            std::hint::black_box(a.matmul(&b).expect("matmul"));
        });
        results.push((format!("sgemm_{n}"), g));
    }

    let cases = [
        ConvCase { name: "lenet_c1_28x28x1_6_k5_same", n: 128, hw: 28, c_in: 1, c_out: 6, k: 5, padding: Padding::Same },
        ConvCase { name: "lenet_c3_14x14x6_16_k5_valid", n: 128, hw: 14, c_in: 6, c_out: 16, k: 5, padding: Padding::Valid },
        ConvCase { name: "resnet_32x32x16_16_k3_same", n: 128, hw: 32, c_in: 16, c_out: 16, k: 3, padding: Padding::Same },
        ConvCase { name: "resnet_16x16x32_32_k3_same", n: 128, hw: 16, c_in: 32, c_out: 32, k: 3, padding: Padding::Same },
        ConvCase { name: "resnet_8x8x64_64_k3_same", n: 128, hw: 8, c_in: 64, c_out: 64, k: 3, padding: Padding::Same },
        // The Fashion-MNIST CNN's wide convolutions, and ResNet-50's 3×3 stages at batch 8.
        ConvCase { name: "fashion_14x14x128_128_k3_same", n: 128, hw: 14, c_in: 128, c_out: 128, k: 3, padding: Padding::Same },
        ConvCase { name: "fashion_7x7x256_256_k3_same", n: 128, hw: 7, c_in: 256, c_out: 256, k: 3, padding: Padding::Same },
        ConvCase { name: "resnet50_56x56x64_64_k3_same", n: 8, hw: 56, c_in: 64, c_out: 64, k: 3, padding: Padding::Same },
        ConvCase { name: "resnet50_28x28x128_128_k3_same", n: 8, hw: 28, c_in: 128, c_out: 128, k: 3, padding: Padding::Same },
        ConvCase { name: "resnet50_14x14x256_256_k3_same", n: 8, hw: 14, c_in: 256, c_out: 256, k: 3, padding: Padding::Same },
        ConvCase { name: "resnet50_7x7x512_512_k3_same", n: 8, hw: 7, c_in: 512, c_out: 512, k: 3, padding: Padding::Same },
    ];
    for c in cases.iter().filter(|c| c.name.contains(&only)) {
        let x = Tensor::random_uniform([c.n, c.hw, c.hw, c.c_in], -1.0, 1.0, Some(3), dev).expect("x");
        let w = Tensor::random_uniform([c.k, c.k, c.c_in, c.c_out], -0.1, 0.1, Some(4), dev).expect("w");
        let opts = Conv2dOptions { padding: c.padding.clone(), ..Default::default() };
        let y = x.conv2d(&w, &opts).expect("conv2d");
        let (oh, ow) = (y.dims()[1], y.dims()[2]);
        let fwd_flops = 2.0 * (c.n * oh * ow * c.c_out * c.k * c.k * c.c_in) as f64;
        let fwd = gflops(fwd_flops, &mut || {
            std::hint::black_box(fovea_core::no_grad(|| x.conv2d(&w, &opts).expect("conv2d")));
        });
        results.push((format!("conv2d_fwd_{}", c.name), fwd));
        let xg = x.with_requires_grad(true).expect("x");
        let wg = w.with_requires_grad(true).expect("w");
        let dy = Tensor::random_uniform(y.dims().to_vec(), -1.0, 1.0, Some(5), dev).expect("dy");
        // Forward + input gradient + filter gradient: three products of the forward's size.
        let fb = gflops(3.0 * fwd_flops, &mut || {
            let y = xg.conv2d(&wg, &opts).expect("conv2d");
            std::hint::black_box(y.backward_with(&dy).expect("backward"));
        });
        results.push((format!("conv2d_fwd_bwd_{}", c.name), fb));
    }

    eprintln!("{:<48} {:>12} {:>12}", "workload (fovea cpu, 2 threads)", "GFLOP/s med", "best");
    for (name, (med, best)) in &results {
        eprintln!("{name:<48} {med:>12.1} {best:>12.1}");
    }
    // JSON lines on stdout in the format of bench/kernels/torch_kernels.py.
    println!("{{\"kind\": \"meta\", \"bench\": \"fovea\", \"threads\": 2, \"windows\": {WINDOWS}}}");
    for (name, (med, best)) in &results {
        println!("{{\"kind\": \"result\", \"name\": \"{name}\", \"gflops\": {med:.2}, \"gflops_best\": {best:.2}}}");
    }
}
