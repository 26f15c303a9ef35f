//! Throughput of the CPU convolution on the LeNet-5 and small-ResNet layer shapes. Ignored by
//! default; run with
//! `cargo test -p fovea-core --release conv_throughput -- --ignored --nocapture`.

use crate::ops::conv::Conv2dOptions;
use crate::ops::padding::Padding;
use crate::testing::rand;
use crate::{Device, Tensor};
use std::time::Instant;

/// Best-of-`reps` seconds of `f`, after one warm-up call.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "timing; run in release"]
fn conv_throughput() {
    let same = Conv2dOptions::default().with_padding(Padding::Same);
    let cases: [(&str, [usize; 4], [usize; 4], Conv2dOptions); 6] = [
        ("lenet c1 28x28x1->6 k5 same", [128, 28, 28, 1], [5, 5, 1, 6], same.clone()),
        ("lenet c3 14x14x6->16 k5 valid", [128, 14, 14, 6], [5, 5, 6, 16], Conv2dOptions::default()),
        ("resnet 32x32x16->16 k3", [128, 32, 32, 16], [3, 3, 16, 16], same.clone()),
        ("resnet 16x16x32->32 k3", [128, 16, 16, 32], [3, 3, 32, 32], same.clone()),
        ("resnet 8x8x64->64 k3", [128, 8, 8, 64], [3, 3, 64, 64], same.clone()),
        ("depthwise 16x16x64 k3", [128, 16, 16, 64], [3, 3, 1, 64], same.with_groups(64)),
    ];
    // Calibration: a large square gemm shows what this machine (and its load) allows.
    let (a, b) = (rand(&[1024, 1024], -1.0, 1.0, 3, Device::Cpu), rand(&[1024, 1024], -1.0, 1.0, 4, Device::Cpu));
    let mm = best_of(5, || {
        a.matmul(&b).unwrap();
    });
    println!("threads: {}, 1024³ matmul {:.1} GFLOP/s", rayon::current_num_threads(), 2.0 * 1024f64.powi(3) / mm / 1e9);
    for (name, xd, wd, opts) in cases {
        let x = rand(&xd, -1.0, 1.0, 1, Device::Cpu).with_requires_grad(true).unwrap();
        let w = rand(&wd, -1.0, 1.0, 2, Device::Cpu).with_requires_grad(true).unwrap();
        let y = x.conv2d(&w, &opts).unwrap();
        let d = y.dims();
        let flops = 2.0 * (d[0] * d[1] * d[2] * d[3] * wd[0] * wd[1] * wd[2]) as f64;
        let fwd = best_of(10, || {
            crate::no_grad(|| x.conv2d(&w, &opts).unwrap());
        });
        let r = Tensor::ones(y.dims().to_vec(), crate::DType::F32, Device::Cpu).unwrap();
        // Seeding backward with dy directly keeps element-wise loss ops out of the timing.
        let both = best_of(10, || {
            let g = x.conv2d(&w, &opts).unwrap().backward_with(&r).unwrap();
            assert!(g.get(&w).is_some());
        });
        let spec = crate::ops::conv::conv2d_spec("conv2d", &x, &w, &opts).unwrap();
        let be = crate::backend::backend(Device::Cpu);
        let gi = best_of(10, || {
            be.conv2d_grad_input(r.storage(), w.storage(), &spec).unwrap();
        });
        let gf = best_of(10, || {
            be.conv2d_grad_filter(x.storage(), r.storage(), &spec).unwrap();
        });
        println!(
            "{name:32} grad_input {:7.2} ms {:6.1} GFLOP/s | grad_filter {:7.2} ms {:6.1} GFLOP/s",
            gi * 1e3,
            flops / gi / 1e9,
            gf * 1e3,
            flops / gf / 1e9
        );
        println!(
            "{name:32} fwd {:7.2} ms {:6.1} GFLOP/s | fwd+bwd {:7.2} ms {:6.1} GFLOP/s",
            fwd * 1e3,
            flops / fwd / 1e9,
            both * 1e3,
            3.0 * flops / both / 1e9
        );
    }
}
