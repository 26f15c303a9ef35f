//! Tests of the fixture loader in `common/`: a round trip through a safetensors buffer written
//! here, parameter decoding, and a structural check of every generated fixture file.

mod common;

use std::collections::HashMap;

use common::{check_case, Fixture};
use fovea_core::backend::PadMode;
use fovea_core::ops::padding::Padding;
use fovea_core::Device;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

/// Serializes f32 tensors (name, shape, values) and i64 tensors with `meta` as `__metadata__`.
fn write_buffer(f32s: &[(&str, Vec<usize>, Vec<f32>)], i64s: &[(&str, Vec<usize>, Vec<i64>)], meta: &[(&str, &str)]) -> Vec<u8> {
    let f32_bytes: Vec<Vec<u8>> = f32s.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let i64_bytes: Vec<Vec<u8>> = i64s.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let mut views = Vec::new();
    for ((name, shape, _), bytes) in f32s.iter().zip(&f32_bytes) {
        views.push((name.to_string(), TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap()));
    }
    for ((name, shape, _), bytes) in i64s.iter().zip(&i64_bytes) {
        views.push((name.to_string(), TensorView::new(Dtype::I64, shape.clone(), bytes).unwrap()));
    }
    let meta: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// A one-case "mul" fixture: y = x ⊙ w, so dx = dy ⊙ w and dw = dy ⊙ x (values worked out by hand).
fn mul_fixture(y_error: f32) -> Vec<u8> {
    let x = vec![1.0, -2.0, 0.5, 4.0];
    let w = vec![3.0, 0.25, -1.0, 2.0];
    let y = vec![3.0 + y_error, -0.5, -0.5, 8.0];
    let dy = vec![1.0, 2.0, -1.0, 0.5];
    let dx = vec![3.0, 0.5, 1.0, 1.0];
    let dw = vec![1.0, -4.0, -0.5, 2.0];
    let s = vec![2, 2];
    write_buffer(
        &[
            ("m.x", s.clone(), x),
            ("m.w", s.clone(), w),
            ("m.y", s.clone(), y),
            ("m.dy", s.clone(), dy),
            ("m.dx", s.clone(), dx),
            ("m.dw", s, dw),
        ],
        &[("m.idx", vec![3], vec![7, -1, 1 << 40])],
        &[
            ("cases", "m"),
            ("m.strides", "2,1"),
            ("m.padding", "explicit"),
            ("m.explicit", "1,2,0,3"),
            ("m.axis", "-1"),
            ("m.alpha", "2e-05"),
        ],
    )
}

fovea_core::backend_test!(round_trip_values_and_metadata, |dev| {
    let fx = Fixture::from_bytes("mul.safetensors", &mul_fixture(0.0), dev);
    assert_eq!(fx.tensors.len(), 7);
    let cases = fx.cases();
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case.label(), "mul.safetensors/m");
    let x = case.tensor("x");
    assert_eq!(x.dims(), &[2, 2]);
    assert_eq!(x.device(), dev);
    assert_eq!(x.to_vec::<f32>().unwrap(), vec![1.0, -2.0, 0.5, 4.0]);
    assert_eq!(case.tensor("idx").to_vec::<i64>().unwrap(), vec![7, -1, 1 << 40]);
    assert_eq!(case.pair("strides"), (2, 1));
    assert_eq!(case.padding(), Padding::Explicit(vec![(1, 2), (0, 3)]));
    assert_eq!(case.isize("axis"), -1);
    assert_eq!(case.f32("alpha"), 2e-5);
    assert_eq!(case.grad_inputs(), vec!["w".to_string(), "x".to_string()]);
    // The checker itself, on an op that exists on every branch.
    check_case(case, &["x", "w"], |t| t[0].mul(&t[1]));
});

#[test]
#[should_panic(expected = "mul.safetensors/m.y: element 0 is 3, expected 3.0001")]
fn check_case_reports_a_wrong_output() {
    let fx = Fixture::from_bytes("mul.safetensors", &mul_fixture(1e-4), Device::Reference);
    check_case(&fx.cases()[0], &["x", "w"], |t| t[0].mul(&t[1]));
}

#[test]
#[should_panic(expected = "mul.safetensors/m.dw: element 0 is 0, expected 1")]
fn check_case_reports_a_wrong_gradient() {
    let fx = Fixture::from_bytes("mul.safetensors", &mul_fixture(0.0), Device::Reference);
    // Right forward and right dx, but w's gradient is cut off: dw = 0.
    check_case(&fx.cases()[0], &["x", "w"], |t| {
        let xd = t[0].detach();
        t[0].mul(&t[1].detach())?.add(&t[1].mul(&xd)?.mul_scalar(0.0)?)
    });
}

#[test]
fn padding_modes_and_output_padding_decode() {
    let bytes = write_buffer(
        &[("a.x", vec![1], vec![0.0]), ("b.x", vec![1], vec![0.0]), ("c.x", vec![1], vec![0.0])],
        &[],
        &[
            ("cases", "a,b,c"),
            ("a.padding", "same"),
            ("a.mode", "constant"),
            ("a.constant", "-1.5"),
            ("a.output_padding", "none"),
            ("a.pads", "1,0,0,1,2,2"),
            ("b.padding", "valid"),
            ("b.mode", "reflect"),
            ("b.output_padding", "2,1"),
            ("c.mode", "symmetric"),
        ],
    );
    let fx = Fixture::from_bytes("p.safetensors", &bytes, Device::Reference);
    let cases = fx.cases();
    assert_eq!(cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    assert_eq!(cases[0].padding(), Padding::Same);
    assert_eq!(cases[1].padding(), Padding::Valid);
    assert_eq!(cases[0].pad_mode(), PadMode::Constant(-1.5));
    assert_eq!(cases[1].pad_mode(), PadMode::Reflect);
    assert_eq!(cases[2].pad_mode(), PadMode::Symmetric);
    assert_eq!(cases[0].output_padding(), None);
    assert_eq!(cases[1].output_padding(), Some((2, 1)));
    assert_eq!(cases[0].pads(), vec![(1, 0), (0, 1), (2, 2)]);
}

/// Every generated file: each listed case has `y` and a same-shaped `dy`, and each gradient
/// `d<k>` has the shape of its input `k`. Guards against a generator change that the op tests
/// would only report as a confusing mismatch.
#[test]
fn generated_fixtures_are_complete() {
    let files = [
        "conv2d.safetensors",
        "depthwise_conv2d.safetensors",
        "separable_conv2d.safetensors",
        "conv2d_transpose.safetensors",
        "max_pool2d.safetensors",
        "avg_pool2d.safetensors",
        "max_pool_with_argmax.safetensors",
        "max_pool_depth.safetensors",
        "local_response_normalization.safetensors",
        "pad.safetensors",
        "softmax.safetensors",
        "log_softmax.safetensors",
    ];
    let mut n_cases = 0;
    for file in files {
        let fx = Fixture::open(file, Device::Reference);
        for case in fx.cases() {
            n_cases += 1;
            let y = case.tensor("y");
            assert_eq!(case.tensor("dy").dims(), y.dims(), "{}: dy vs y", case.label());
            let inputs = case.grad_inputs();
            assert!(!inputs.is_empty(), "{}: no differentiable inputs", case.label());
            for k in &inputs {
                assert_eq!(case.tensor(&format!("d{k}")).dims(), case.tensor(k).dims(), "{}: d{k} vs {k}", case.label());
            }
            assert!(matches!(case.param("precision"), "float32" | "float64"), "{}", case.label());
        }
    }
    // Counted from gen_core_fixtures.py; update both together.
    assert_eq!(n_cases, 54);
    // Spot values pinned so a silently changed generator is noticed: the first x of conv2d.
    let conv = Fixture::open("conv2d.safetensors", Device::Reference);
    let case = &conv.cases()[0];
    assert_eq!(case.name, "valid_s1");
    assert_eq!(case.tensor("x").dims(), &[2, 6, 6, 3]);
    assert_eq!(case.tensor("w").dims(), &[3, 3, 3, 4]);
    assert_eq!(case.tensor("y").dims(), &[2, 4, 4, 4]);
    let argmax = Fixture::open("max_pool_with_argmax.safetensors", Device::Reference);
    let a = argmax.cases()[0].tensor("argmax");
    assert_eq!(a.dtype(), fovea_core::DType::I64);
}
