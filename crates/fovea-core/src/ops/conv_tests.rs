//! Tests of [`Tensor::conv2d`] and its backend primitives: hand-computed values, gradient
//! checks over stride/padding/dilation/group combinations, error messages, and agreement of
//! the CPU backend with the reference on random shapes.

use super::*;
use crate::testing::{assert_close, assert_tensor_close, gradcheck, rand};
use crate::DType;
use crate::{backend_test, Device};

fn t(v: Vec<f32>, shape: &[usize], dev: Device) -> Tensor {
    Tensor::from_vec(v, shape.to_vec(), dev).unwrap()
}

fn same() -> Conv2dOptions {
    Conv2dOptions::default().with_padding(Padding::Same)
}

backend_test!(blur_and_laplacian_with_same_padding, |dev| {
    // Image 0 is a constant 16, image 1 the ramp x[i, j] = 4i + j. Output channel 0 is the
    // Gaussian blur [[1,2,1],[2,4,2],[1,2,1]]/16, channel 1 the Laplacian [[0,1,0],[1,-4,1],[0,1,0]].
    let mut x = vec![16f32; 16];
    x.extend((0..16).map(|v| v as f32));
    let x = t(x, &[2, 4, 4, 1], dev);
    let blur = [1., 2., 1., 2., 4., 2., 1., 2., 1.].map(|v: f32| v / 16.0);
    let lap = [0., 1., 0., 1., -4., 1., 0., 1., 0.];
    let w: Vec<f32> = (0..9).flat_map(|k| [blur[k], lap[k]]).collect();
    let y = x.conv2d(&t(w, &[3, 3, 1, 2], dev), &same()).unwrap();
    assert_eq!(y.dims(), &[2, 4, 4, 2]);
    let y = y.to_vec::<f32>().unwrap();
    let channel = |img: usize, c: usize| -> Vec<f32> { (0..16).map(|p| y[(img * 16 + p) * 2 + c]).collect() };
    // Zero padding: a corner keeps weights 4+2+2+1 of 16, an edge 4+2+2+2+1+1.
    #[rustfmt::skip]
    let blur_const = vec![9., 12., 12., 9., 12., 16., 16., 12., 12., 16., 16., 12., 9., 12., 12., 9.];
    assert_close("blur of constant", &channel(0, 0), &blur_const, 1e-6, 1e-6);
    // The Laplacian of a linear ramp vanishes inside; each border value is
    // up + down + left + right − 4·centre with zeros outside, e.g. (3,3): 11 + 14 − 60.
    #[rustfmt::skip]
    let lap_ramp = vec![5., 3., 2., -3., -3., 0., 0., -8., -7., 0., 0., -12., -27., -17., -18., -35.];
    assert_close("laplacian of ramp", &channel(1, 1), &lap_ramp, 1e-6, 1e-6);
    // Laplacian of a constant: zero inside, −16 per missing neighbour on the border.
    assert_eq!(channel(0, 1)[5], 0.0);
    assert_eq!(channel(0, 1)[0], -32.0);
});

backend_test!(dilation_spreads_the_kernel, |dev| {
    // [1, 2, 3] at rate 4 acts like [1,0,0,0,2,0,0,0,3]: y[t] = x[t] + 2x[t+4] + 3x[t+8] = 6t + 32.
    let x = t((0..12).map(|v| v as f32).collect(), &[1, 1, 12, 1], dev);
    let dilated = x.conv2d(&t(vec![1., 2., 3.], &[1, 3, 1, 1], dev), &Conv2dOptions::default().with_dilation((1, 4))).unwrap();
    let spread = x.conv2d(&t(vec![1., 0., 0., 0., 2., 0., 0., 0., 3.], &[1, 9, 1, 1], dev), &Conv2dOptions::default()).unwrap();
    assert_eq!(dilated.dims(), &[1, 1, 4, 1]);
    assert_eq!(dilated.to_vec::<f32>().unwrap(), vec![32., 38., 44., 50.]);
    assert_eq!(spread.to_vec::<f32>().unwrap(), vec![32., 38., 44., 50.]);
});

backend_test!(stride_two_same_counts_real_taps, |dev| {
    // 5×5 ones, 3×3 ones kernel, stride 2 SAME: out 3×3, one pixel of padding each side, so
    // each output counts the real inputs under its window.
    let x = Tensor::ones([1, 5, 5, 1], DType::F32, dev).unwrap();
    let w = Tensor::ones([3, 3, 1, 1], DType::F32, dev).unwrap();
    let y = x.conv2d(&w, &same().with_strides((2, 2))).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![4., 6., 4., 6., 9., 6., 4., 6., 4.]);
    // Explicit asymmetric padding: 2 on top only → rows -2..=2 for the first window.
    let y = x.conv2d(&w, &Conv2dOptions::default().with_padding(Padding::Explicit(vec![(2, 0), (0, 1)]))).unwrap();
    assert_eq!(y.dims(), &[1, 5, 4, 1]);
    assert_eq!(&y.to_vec::<f32>().unwrap()[..4], &[3., 3., 3., 2.]);
});

backend_test!(groups_split_channels, |dev| {
    // Channels [1, 2 | 3, 4] in two groups; w[ci, oc] = [[1,10,100,1000],[2,20,200,2000]].
    let x = t(vec![1., 2., 3., 4.], &[1, 1, 1, 4], dev);
    let w = t(vec![1., 10., 100., 1000., 2., 20., 200., 2000.], &[1, 1, 2, 4], dev);
    let y = x.conv2d(&w, &Conv2dOptions::default().with_groups(2)).unwrap();
    // Group 0 (outs 0, 1) sees channels 1, 2; group 1 (outs 2, 3) sees 3, 4.
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1. + 4., 10. + 40., 300. + 800., 3000. + 8000.]);
});

backend_test!(gradients_of_the_filter_and_input_are_exact, |dev| {
    // Σ conv(x, w) with a 1×1 kernel w = 1 and x = 1 over 2×2: dL/dw = Σ x = 4, dL/dx = w = 1.
    let x = Tensor::ones([1, 2, 2, 1], DType::F32, dev).unwrap().with_requires_grad(true).unwrap();
    let w = Tensor::ones([1, 1, 1, 1], DType::F32, dev).unwrap().with_requires_grad(true).unwrap();
    let g = x.conv2d(&w, &Conv2dOptions::default()).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&w).unwrap().to_vec::<f32>().unwrap(), vec![4.]);
    assert_eq!(g.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![1.; 4]);
});

/// The option combinations every gradient check covers: (input dims, filter dims, options).
fn grad_cases() -> Vec<([usize; 4], [usize; 4], Conv2dOptions)> {
    vec![
        ([2, 5, 4, 3], [3, 2, 3, 2], Conv2dOptions::default()),
        ([1, 5, 5, 2], [3, 3, 2, 3], same().with_strides((2, 2))),
        ([1, 6, 5, 2], [2, 3, 2, 2], same().with_strides((2, 1)).with_dilation((1, 2))),
        ([1, 4, 5, 2], [3, 2, 2, 2], Conv2dOptions::default().with_padding(Padding::Explicit(vec![(2, 0), (1, 3)]))),
        ([1, 7, 7, 1], [3, 3, 1, 2], Conv2dOptions::default().with_strides((3, 2)).with_dilation((2, 2))),
        ([2, 4, 4, 4], [3, 3, 2, 4], same().with_groups(2)),
        ([1, 5, 5, 3], [3, 3, 1, 6], same().with_groups(3).with_strides((2, 2))), // depthwise, multiplier 2
        ([2, 3, 3, 4], [1, 1, 4, 3], Conv2dOptions::default()),                   // 1×1 fast path
        ([1, 4, 5, 16], [3, 3, 16, 16], same()),                                  // Winograd on the CPU backend
        ([1, 5, 3, 16], [3, 3, 16, 16], Conv2dOptions::default()),                // Winograd, valid padding
    ]
}

backend_test!(gradcheck_conv2d, |dev| {
    for (i, (xd, wd, opts)) in grad_cases().into_iter().enumerate() {
        let x = rand(&xd, -1.0, 1.0, 10 + i as u64, dev);
        let w = rand(&wd, -1.0, 1.0, 20 + i as u64, dev);
        // Convolution is linear in each argument, so a large step is exact up to f32 rounding;
        // a step of 0.1 keeps that rounding (larger through Winograd's F(4×4) transforms, about
        // 1e-6 of the output) well below the tolerance once divided by the step.
        gradcheck(|v| v[0].conv2d(&v[1], &opts), &[x, w], 1e-1, 2e-3).unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
});

backend_test!(gradcheck_backward_primitives, |dev| {
    // The input- and filter-gradient primitives are themselves differentiable (transposed
    // convolution runs the first forward).
    let (_, _, opts) = &grad_cases()[1];
    let x = rand(&[1, 5, 5, 2], -1.0, 1.0, 1, dev);
    let w = rand(&[3, 3, 2, 3], -1.0, 1.0, 2, dev);
    let spec = conv2d_spec("conv2d", &x, &w, opts).unwrap();
    let dy = rand(&[1, spec.out_h, spec.out_w, 3], -1.0, 1.0, 3, dev);
    let s = spec.clone();
    gradcheck(move |v| conv2d_input_grad(&v[0], &v[1], s.clone()), &[dy.clone(), w], 1e-2, 2e-3).unwrap();
    gradcheck(move |v| conv2d_filter_grad(&v[0], &v[1], spec.clone()), &[x, dy], 1e-2, 2e-3).unwrap();
});

backend_test!(conv2d_errors_say_expected_and_got, |dev| {
    let x = Tensor::zeros([1, 8, 8, 3], DType::F32, dev).unwrap();
    let w = Tensor::zeros([5, 5, 3, 6], DType::F32, dev).unwrap();
    let d = Conv2dOptions::default();
    let err = |x: &Tensor, w: &Tensor, o: &Conv2dOptions| x.conv2d(w, o).unwrap_err().to_string();

    let e = err(&Tensor::zeros([8, 8, 3], DType::F32, dev).unwrap(), &w, &d);
    assert!(e.contains("conv2d") && e.contains("rank 4 (N, H, W, C)") && e.contains("[8, 8, 3]"), "{e}");
    let e = err(&x, &Tensor::zeros([5, 3, 6], DType::F32, dev).unwrap(), &d);
    assert!(e.contains("rank 4 (kh, kw, c_in / groups, c_out)") && e.contains("[5, 3, 6]"), "{e}");
    let e = err(&x, &Tensor::zeros([5, 5, 2, 6], DType::F32, dev).unwrap(), &d);
    assert!(e.starts_with("conv2d:") && e.contains("expected a filter with 3 input channels") && e.contains("got [5, 5, 2, 6]"), "{e}");
    let e = err(&x, &w, &d.clone().with_groups(2));
    assert!(e.contains("input channels (3)") && e.contains("divisible by groups (2)"), "{e}");
    let x4 = Tensor::zeros([1, 8, 8, 4], DType::F32, dev).unwrap();
    let e = err(&x4, &Tensor::zeros([1, 1, 2, 3], DType::F32, dev).unwrap(), &d.clone().with_groups(2));
    assert!(e.contains("output channels (3)") && e.contains("divisible by groups (2)"), "{e}");
    let e = err(&x4, &Tensor::zeros([1, 1, 4, 4], DType::F32, dev).unwrap(), &d.clone().with_groups(2));
    assert!(e.contains("a filter with 2 input channels") && e.contains("split into 2 groups"), "{e}");
    let e = err(&x, &w, &d.clone().with_groups(0));
    assert!(e.contains("groups must be >= 1, got 0"), "{e}");
    let e = err(&x, &w, &d.clone().with_strides((1, 0)));
    assert!(e.contains("stride 0") && e.contains("spatial axis 1"), "{e}");
    let e = err(&x, &w, &d.clone().with_dilation((0, 1)));
    assert!(e.contains("dilation 0") && e.contains("spatial axis 0"), "{e}");
    let e = err(&x, &w, &d.clone().with_dilation((2, 1)));
    assert!(e.contains("kernel size 9 on spatial axis 0 is larger than the padded input size 8"), "{e}");
    let e = err(&x.cast(DType::I64).unwrap(), &w, &d);
    assert!(e.contains("conv2d: expected dtype float32, got i64") || e.contains("expected dtype float32"), "{e}");
    let e = err(&x, &Tensor::zeros([5, 5, 3, 6], DType::I64, dev).unwrap(), &d);
    assert!(e.contains("expected dtype float32"), "{e}");
});

/// Random shapes exercising every CPU code path: generic im2col, 1×1 without im2col, grouped,
/// depthwise with and without multiplier, strided/dilated/padded.
#[test]
fn cpu_matches_reference_on_random_shapes() {
    let cases: Vec<([usize; 4], [usize; 4], Conv2dOptions)> = vec![
        ([3, 9, 11, 5], [3, 3, 5, 7], same()),
        ([2, 10, 9, 3], [5, 4, 3, 8], Conv2dOptions::default().with_strides((2, 3)).with_dilation((1, 2))),
        ([4, 6, 6, 16], [1, 1, 16, 24], Conv2dOptions::default()),
        ([2, 7, 7, 8], [1, 1, 8, 4], same().with_strides((2, 2))),
        ([2, 8, 8, 12], [3, 3, 4, 6], same().with_groups(3)),
        ([3, 9, 8, 6], [3, 3, 1, 6], same().with_groups(6)),
        ([2, 9, 8, 5], [5, 3, 1, 15], same().with_groups(5).with_strides((2, 1)).with_dilation((1, 2))),
        ([2, 6, 7, 4], [2, 3, 4, 5], Conv2dOptions::default().with_padding(Padding::Explicit(vec![(3, 0), (1, 2)]))),
        ([17, 5, 5, 2], [3, 3, 2, 3], same()),  // more images than a filter-gradient chunk
        ([3, 40, 40, 4], [3, 3, 4, 4], same()), // chunks of 26 output lines split images
        // Stride 1 with at least 16 input channels per group: the rotated-kernel input gradient.
        ([2, 9, 9, 16], [3, 3, 16, 5], same().with_dilation((2, 2))),
        ([2, 7, 6, 32], [3, 2, 16, 4], Conv2dOptions::default().with_groups(2).with_padding(Padding::Explicit(vec![(2, 0), (0, 1)]))),
    ];
    for (i, (xd, wd, opts)) in cases.into_iter().enumerate() {
        let run = |dev: Device| {
            let x = rand(&xd, -1.0, 1.0, 100 + i as u64, dev).with_requires_grad(true).unwrap();
            let w = rand(&wd, -1.0, 1.0, 200 + i as u64, dev).with_requires_grad(true).unwrap();
            let y = x.conv2d(&w, &opts).unwrap();
            let r = rand(y.dims(), -1.0, 1.0, 300 + i as u64, dev);
            let g = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
            (y, g.get(&x).unwrap().clone(), g.get(&w).unwrap().clone())
        };
        let (reference, cpu) = (run(Device::Reference), run(Device::Cpu));
        assert_tensor_close(&format!("case {i} forward"), &cpu.0, &reference.0, 1e-4, 1e-5);
        assert_tensor_close(&format!("case {i} input grad"), &cpu.1, &reference.1, 1e-4, 1e-5);
        assert_tensor_close(&format!("case {i} filter grad"), &cpu.2, &reference.2, 1e-4, 1e-4);
    }
}

#[test]
fn cpu_results_do_not_depend_on_the_thread_count() {
    // Filter gradients sum over the batch: fixed chunks added in a fixed order make every
    // bit the same whether one thread or several compute them.
    let cases: Vec<([usize; 4], [usize; 4], Conv2dOptions)> = vec![
        ([37, 6, 6, 3], [3, 3, 3, 4], same()),
        ([40, 12, 12, 8], [3, 3, 1, 8], same().with_groups(8)),
        ([130, 4, 4, 8], [1, 1, 8, 8], Conv2dOptions::default()),
    ];
    for (xd, wd, opts) in cases {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let x = rand(&xd, -1.0, 1.0, 5, Device::Cpu).with_requires_grad(true).unwrap();
                let w = rand(&wd, -1.0, 1.0, 6, Device::Cpu).with_requires_grad(true).unwrap();
                let y = x.conv2d(&w, &opts).unwrap();
                let g = y.backward_with(&rand(y.dims(), -1.0, 1.0, 7, Device::Cpu)).unwrap();
                [y, g.get(&x).unwrap().clone(), g.get(&w).unwrap().clone()].map(|t| t.to_vec::<f32>().unwrap())
            })
        };
        assert_eq!(run(1), run(3), "{xd:?} {wd:?}");
    }
}
