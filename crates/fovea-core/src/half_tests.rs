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

#[test]
fn arithmetic_on_halves_is_a_clear_error_for_now() {
    let x = Tensor::zeros([2], DType::BF16, Device::Cpu).unwrap();
    let e = x.relu().unwrap_err().to_string();
    assert!(e.contains("float32") && e.contains("bfloat16"), "{e}");
}
