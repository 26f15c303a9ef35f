//! bf16 and f16 as real dtypes: storage, casts that round to nearest even, movement and
//! reductions on every backend, printing, and safetensors files.

use crate::backend_test;
use crate::io::{read_safetensors, write_safetensors};
use crate::{DType, Device, Tensor};
use half::{bf16, f16};

backend_test!(casts_to_half_round_to_nearest_even, |dev| {
    // bf16 keeps 8 significand bits: near 1 its step is 2^-7. 1 + 2^-8 lies halfway between 1 and
    // 1 + 2^-7 and goes to the even one (1); 1 + 3·2^-8 lies halfway between 1 + 2^-7 and
    // 1 + 2^-6 and goes to 1 + 2^-6. f16 keeps 11 bits: 2049 lies between 2048 and 2050 → 2048.
    let x = Tensor::from_vec(vec![1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8), -0.0, f32::INFINITY, 65520.0], [5], dev).unwrap();
    let b = x.cast(DType::BF16).unwrap();
    assert_eq!(b.dtype(), DType::BF16);
    let got: Vec<f32> = b.to_vec::<bf16>().unwrap().into_iter().map(bf16::to_f32).collect();
    assert_eq!(got, vec![1.0, 1.0 + 2f32.powi(-6), -0.0, f32::INFINITY, 65536.0]);
    let h = Tensor::from_vec(vec![2049.0f32, 65520.0, 1e-8], [3], dev).unwrap().cast(DType::F16).unwrap();
    let got: Vec<f32> = h.to_vec::<f16>().unwrap().into_iter().map(f16::to_f32).collect();
    // 65520 is halfway between f16's largest finite value (65504) and the next step: infinity.
    assert_eq!(got, vec![2048.0, f32::INFINITY, 0.0]);
    // Widening back is exact, and integers convert with one rounding.
    assert_eq!(b.cast(DType::F32).unwrap().to_vec::<f32>().unwrap()[1], 1.0 + 2f32.powi(-6));
    let i = Tensor::from_vec(vec![257i64, -3], [2], dev).unwrap().cast(DType::BF16).unwrap();
    assert_eq!(i.cast(DType::I64).unwrap().to_vec::<i64>().unwrap(), vec![256, -3]);
});

backend_test!(half_tensors_move_reduce_and_fill, |dev| {
    let v: Vec<bf16> = (0..6).map(|i| bf16::from_f32(i as f32 * 0.5)).collect();
    let x = Tensor::from_vec(v, [2, 3], dev).unwrap();
    let t = x.transpose(0, 1).unwrap();
    assert_eq!(t.to_vec::<bf16>().unwrap().iter().map(|v| v.to_f32()).collect::<Vec<_>>(), vec![0.0, 1.5, 0.5, 2.0, 1.0, 2.5]);
    let c = Tensor::concat(&[&x, &x], 0).unwrap();
    assert_eq!(c.dims(), &[4, 3]);
    // Sums accumulate in f64 on the reference path and round once.
    assert_eq!(x.sum(&[1], false).unwrap().to_vec::<bf16>().unwrap(), vec![bf16::from_f32(1.5), bf16::from_f32(6.0)]);
    let z = Tensor::full([2], 0.1, DType::F16, dev).unwrap();
    assert_eq!(z.to_vec::<f16>().unwrap(), vec![f16::from_f64(0.1); 2]);
    assert_eq!(Tensor::zeros([3], DType::BF16, dev).unwrap().to_vec::<bf16>().unwrap(), vec![bf16::ZERO; 3]);
});

#[test]
fn half_tensors_print_and_round_trip_through_safetensors() {
    let b = Tensor::from_vec(vec![bf16::from_f32(1.5), bf16::from_f32(-2.0)], [2], Device::Cpu).unwrap();
    assert_eq!(b.to_string(), "tensor([1.5, -2.], shape=[2], dtype=bfloat16)");
    let h = Tensor::from_vec(vec![f16::from_f32(0.25); 3], [3, 1], Device::Cpu).unwrap();
    let bytes = write_safetensors(&[("b".into(), b.clone()), ("h".into(), h.clone())], &Default::default()).unwrap();
    let (back, _) = read_safetensors(&bytes, Device::Cpu).unwrap();
    assert_eq!(back[0].1.dtype(), DType::BF16);
    assert_eq!(back[0].1.to_vec::<bf16>().unwrap(), b.to_vec::<bf16>().unwrap());
    assert_eq!((back[1].1.dtype(), back[1].1.dims()), (DType::F16, &[3usize, 1][..]));
    assert_eq!(back[1].1.to_vec::<f16>().unwrap(), h.to_vec::<f16>().unwrap());
}

/// `xs` rounded to bf16, and the f32 values those bf16s hold.
fn bf16_pair(xs: &[f32]) -> (Vec<bf16>, Vec<f32>) {
    let b: Vec<bf16> = xs.iter().map(|&v| bf16::from_f32(v)).collect();
    let f = b.iter().map(|v| v.to_f32()).collect();
    (b, f)
}

fn host_values(t: &Tensor) -> Vec<f32> {
    match t.dtype() {
        DType::BF16 => t.to_vec::<bf16>().unwrap().into_iter().map(bf16::to_f32).collect(),
        DType::F16 => t.to_vec::<f16>().unwrap().into_iter().map(f16::to_f32).collect(),
        _ => t.to_vec::<f32>().unwrap(),
    }
}

backend_test!(half_elementwise_ops_round_the_f32_result_once, |dev| {
    // The definition of half arithmetic: the exact operands, an f32 result, one rounding to
    // nearest even. Checked element by element against the `half` crate's rounding.
    let xs: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37 - 7.0) * 1.013).collect();
    let ys: Vec<f32> = (0..40).map(|i| (i as f32 * 0.11 + 0.5) / 3.0).collect();
    let ((xb, xf), (yb, yf)) = (bf16_pair(&xs), bf16_pair(&ys));
    let x = Tensor::from_vec(xb, [40], dev).unwrap();
    let y = Tensor::from_vec(yb, [40], dev).unwrap();
    let round = |v: f32| bf16::from_f32(v).to_f32();
    let cases: Vec<(&str, Tensor, Vec<f32>)> = vec![
        ("mul", x.mul(&y).unwrap(), xf.iter().zip(&yf).map(|(a, b)| round(a * b)).collect()),
        ("div", x.div(&y).unwrap(), xf.iter().zip(&yf).map(|(a, b)| round(a / b)).collect()),
        ("add", x.add(&y).unwrap(), xf.iter().zip(&yf).map(|(a, b)| round(a + b)).collect()),
        ("relu", x.relu().unwrap(), xf.iter().map(|a| round(a.max(0.0))).collect()),
        ("exp", y.exp().unwrap(), yf.iter().map(|a| round(a.exp())).collect()),
        // The scalar becomes a bf16 constant first, as TensorFlow's constants take the tensor's dtype.
        ("mul_scalar", x.mul_scalar(0.3).unwrap(), xf.iter().map(|a| round(a * round(0.3))).collect()),
    ];
    for (name, got, want) in cases {
        assert_eq!(got.dtype(), DType::BF16, "{name}");
        assert_eq!(host_values(&got), want, "{name}");
    }
    // f16 keeps its own range: 300 · 300 overflows its largest finite value, 65504.
    let h = Tensor::from_vec(vec![f16::from_f32(300.0), f16::from_f32(0.5)], [2], dev).unwrap();
    assert_eq!(host_values(&h.mul(&h).unwrap()), vec![f32::INFINITY, 0.25]);
    // Comparisons give bools; mixing dtypes is an error that names both.
    assert_eq!(x.gt(&y).unwrap().dtype(), DType::Bool);
    let e = x.add(&x.cast(DType::F32).unwrap()).unwrap_err().to_string();
    assert!(e.contains("bfloat16") && e.contains("float32"), "{e}");
});

backend_test!(half_products_and_reductions_match_f32_within_one_rounding, |dev| {
    let a32 = crate::testing::rand(&[5, 7], -1.0, 1.0, 3, dev).cast(DType::BF16).unwrap().cast(DType::F32).unwrap();
    let b32 = crate::testing::rand(&[7, 4], -1.0, 1.0, 4, dev).cast(DType::BF16).unwrap().cast(DType::F32).unwrap();
    let (a, b) = (a32.cast(DType::BF16).unwrap(), b32.cast(DType::BF16).unwrap());
    let got = a.matmul(&b).unwrap();
    assert_eq!(got.dtype(), DType::BF16);
    // Products of bf16 operands are exact in f32; what differs from the f32 product is the
    // final rounding, at most half a bf16 step (2^-9 relative).
    let want = a32.matmul(&b32).unwrap().to_vec::<f32>().unwrap();
    for (g, w) in host_values(&got).iter().zip(&want) {
        assert!((g - w).abs() <= w.abs() * 2f32.powi(-8) + 1e-6, "matmul: {g} vs {w}");
    }
    let x32 = crate::testing::rand(&[2, 6, 6, 3], -1.0, 1.0, 5, dev).cast(DType::BF16).unwrap().cast(DType::F32).unwrap();
    let w32 = crate::testing::rand(&[3, 3, 3, 4], -1.0, 1.0, 6, dev).cast(DType::BF16).unwrap().cast(DType::F32).unwrap();
    let opts = crate::ops::conv::Conv2dOptions::default();
    let got = x32.cast(DType::BF16).unwrap().conv2d(&w32.cast(DType::BF16).unwrap(), &opts).unwrap();
    let want = x32.conv2d(&w32, &opts).unwrap().to_vec::<f32>().unwrap();
    for (g, w) in host_values(&got).iter().zip(&want) {
        assert!((g - w).abs() <= w.abs() * 2f32.powi(-8) + 1e-5, "conv2d: {g} vs {w}");
    }
    let pooled = got.max_pool2d((2, 2), (2, 2), crate::ops::padding::Padding::Valid).unwrap();
    assert_eq!(pooled.dtype(), DType::BF16);
    let softmax = got.reshape(&[-1, 4]).unwrap().softmax(-1).unwrap();
    let sums = host_values(&softmax.sum(&[-1], false).unwrap());
    assert!(sums.iter().all(|s| (s - 1.0).abs() <= 2f32.powi(-7)), "{sums:?}");
});

backend_test!(gradients_flow_through_a_bf16_computation_to_f32_variables, |dev| {
    // The mixed-precision pattern: f32 weights cast to bf16 for the forward pass; the gradient
    // comes back through the cast as f32, close to the all-f32 gradient.
    let w = crate::testing::rand(&[3, 3, 2, 4], -0.5, 0.5, 7, dev).with_requires_grad(true).unwrap();
    let x = crate::testing::rand(&[2, 5, 5, 2], -1.0, 1.0, 8, dev);
    let opts = crate::ops::conv::Conv2dOptions::default();
    let loss = |x: &Tensor, w: &Tensor| x.conv2d(w, &opts).unwrap().relu().unwrap().square().unwrap().mean_all().unwrap();
    let lo = loss(&x.cast(DType::BF16).unwrap(), &w.cast(DType::BF16).unwrap());
    assert_eq!(lo.dtype(), DType::BF16);
    let g_low = lo.cast(DType::F32).unwrap().backward().unwrap().get(&w).unwrap().clone();
    assert_eq!(g_low.dtype(), DType::F32);
    let g_full = loss(&x, &w).backward().unwrap().get(&w).unwrap().clone();
    crate::testing::assert_tensor_close("bf16 gradient", &g_low, &g_full, 0.05, 0.01);
    // Batch norm normalizes a half input in f32 (as Keras) and returns the input's dtype.
    let (y, mean, _) = x.cast(DType::BF16).unwrap().batch_norm_train(None, None, 1e-3).unwrap();
    assert_eq!((y.dtype(), mean.dtype()), (DType::BF16, DType::F32));
});

backend_test!(autocast_runs_products_in_bf16_and_returns_f32_gradients, |dev| {
    let w = crate::testing::rand(&[4, 3], -0.5, 0.5, 9, dev).with_requires_grad(true).unwrap();
    let b = crate::testing::rand(&[3], -0.5, 0.5, 10, dev).with_requires_grad(true).unwrap();
    let x = crate::testing::rand(&[5, 4], -1.0, 1.0, 11, dev);
    let forward = || x.matmul(&w)?.add(&b)?.relu();
    let low = crate::autocast(Some(DType::BF16), forward).unwrap();
    assert_eq!(low.dtype(), DType::BF16);
    let full = forward().unwrap();
    assert_eq!(full.dtype(), DType::F32, "the scope ends with the call");
    crate::testing::assert_tensor_close("autocast forward", &low.cast(DType::F32).unwrap(), &full, 0.02, 0.01);
    let grads = low.cast(DType::F32).unwrap().sum_all().unwrap().backward().unwrap();
    let (gw, gb) = (grads.get(&w).unwrap(), grads.get(&b).unwrap());
    assert_eq!((gw.dtype(), gb.dtype()), (DType::F32, DType::F32));
    let full_grads = full.sum_all().unwrap().backward().unwrap();
    crate::testing::assert_tensor_close("autocast dW", gw, full_grads.get(&w).unwrap(), 0.02, 0.02);
    // A nested `None` scope is a float32 island; outside any scope dtypes never mix.
    let island = crate::autocast(Some(DType::BF16), || crate::autocast(None, forward)).unwrap();
    assert_eq!(island.dtype(), DType::F32);
    let e = low.add(&b).unwrap_err().to_string();
    assert!(e.contains("bfloat16") && e.contains("float32"), "{e}");
    let e = crate::autocast(Some(DType::F32), forward).unwrap_err().to_string();
    assert!(e.contains("bfloat16 or float16, got float32"), "{e}");
});

#[test]
fn cpu_bf16_convolutions_match_the_reference_on_strided_padded_and_pointwise_shapes() {
    use crate::ops::conv::Conv2dOptions;
    use crate::ops::padding::Padding;
    // (input, filter, strides, padding, dilation): 3×3 same, strided valid, dilated, 1×1
    // pointwise (read in place), odd k and more than one 32-column panel.
    type Case = ([usize; 4], [usize; 4], (usize, usize), Padding, (usize, usize));
    let cases: Vec<Case> = vec![
        ([2, 9, 9, 3], [3, 3, 3, 8], (1, 1), Padding::Same, (1, 1)),
        ([1, 10, 11, 5], [3, 3, 5, 40], (2, 2), Padding::Valid, (1, 1)),
        ([1, 9, 9, 4], [3, 3, 4, 6], (1, 1), Padding::Same, (2, 2)),
        ([3, 7, 7, 33], [1, 1, 33, 70], (1, 1), Padding::Valid, (1, 1)),
    ];
    for (i, (xs, ws, strides, padding, dilation)) in cases.into_iter().enumerate() {
        let opts = Conv2dOptions { strides, padding, dilation, ..Default::default() };
        let x = crate::testing::rand(&xs, -1.0, 1.0, 20 + i as u64, Device::Cpu).cast(DType::BF16).unwrap();
        let w = crate::testing::rand(&ws, -0.5, 0.5, 40 + i as u64, Device::Cpu).cast(DType::BF16).unwrap();
        let got = host_values(&x.conv2d(&w, &opts).unwrap());
        let (xr, wr) = (x.to(Device::Reference).unwrap(), w.to(Device::Reference).unwrap());
        let want = host_values(&xr.conv2d(&wr, &opts).unwrap());
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            // Different accumulation orders may round to neighbouring bf16 values.
            assert!((g - w).abs() <= w.abs() * 2f32.powi(-7) + 1e-3, "case {i}: {g} vs {w}");
        }
        // The fused inference chain (conv → per-channel affine → ReLU) agrees with the steps.
        let c = ws[3];
        let scale = crate::testing::rand(&[c], 0.5, 1.5, 60, Device::Cpu);
        let shift = crate::testing::rand(&[c], -0.2, 0.2, 61, Device::Cpu);
        let fused = host_values(&x.conv2d_affine(&w, &opts, &scale, &shift, true).unwrap());
        let steps = host_values(
            &xr.conv2d(&wr, &opts)
                .unwrap()
                .cast(DType::F32)
                .unwrap()
                .channel_affine_relu(&scale.to(Device::Reference).unwrap(), &shift.to(Device::Reference).unwrap())
                .unwrap(),
        );
        for (g, w) in fused.iter().zip(&steps) {
            assert!((g - w).abs() <= w.abs() * 2f32.powi(-6) + 2e-3, "case {i} fused: {g} vs {w}");
        }
    }
}
