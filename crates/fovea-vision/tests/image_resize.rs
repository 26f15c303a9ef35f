//! `resize` and `crop_and_resize` against TensorFlow 2 (fixtures from
//! `tools/fixtures/gen_image_fixtures.py`): values and input gradients, every method, up- and
//! down-scaling at odd sizes, plus the 427×640 image with the SPEC boxes. Max abs error ≤ 1e-4.

use fovea_core::{backend_test, io::load_safetensors, testing::gradcheck, Device, Tensor};
use fovea_vision::image::{crop_and_resize, resize, CropMethod, ResizeMethod};
use std::collections::HashMap;

fn fixtures(dev: Device) -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/image_ops.safetensors", env!("CARGO_MANIFEST_DIR")), dev).unwrap()
}

fn max_err(what: &str, got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let e = max_err(what, got, want);
    assert!(e <= tol, "{what}: max abs error {e} > {tol}");
}

/// The 427×640×3 test image: an integer hash the fixture script computes identically.
fn hash_image(h: usize, w: usize, c: usize, dev: Device) -> Tensor {
    let mut v = Vec::with_capacity(h * w * c);
    for y in 0..h as u64 {
        for x in 0..w as u64 {
            for ch in 0..c as u64 {
                let mut k = ((y * 7919 + x * 104729 + ch * 1299709 + 12345) * 2654435761) & 0xffff_ffff;
                k ^= k >> 15;
                k = (k * 2246822519) & 0xffff_ffff;
                k ^= k >> 13;
                v.push((k >> 24) as f32 / 255.0);
            }
        }
    }
    Tensor::from_vec(v, vec![h, w, c], dev).unwrap()
}

const METHODS: [(&str, ResizeMethod, bool); 12] = [
    ("bilinear", ResizeMethod::Bilinear, false),
    ("nearest", ResizeMethod::Nearest, false),
    ("bicubic", ResizeMethod::Bicubic, false),
    ("area", ResizeMethod::Area, false),
    ("lanczos3", ResizeMethod::Lanczos3, false),
    ("bilinear_aa", ResizeMethod::Bilinear, true),
    ("bicubic_aa", ResizeMethod::Bicubic, true),
    ("lanczos3_aa", ResizeMethod::Lanczos3, true),
    ("area_aa", ResizeMethod::Area, true),
    ("lanczos5", ResizeMethod::Lanczos5, false),
    ("lanczos5_aa", ResizeMethod::Lanczos5, true),
    ("nearest_aa", ResizeMethod::Nearest, true),
];
const SIZES: [(usize, usize); 5] = [(12, 17), (4, 5), (3, 11), (7, 9), (1, 1)];

backend_test!(resize_matches_tf_values_and_gradients, |dev| {
    let f = fixtures(dev);
    let x = f["small"].clone();
    for (name, m, aa) in METHODS {
        for (h, w) in SIZES {
            let key = format!("resize/{name}/{h}x{w}");
            let xg = x.with_requires_grad(true).unwrap();
            let y = resize(&xg, (h, w), m, aa).unwrap();
            check(&key, &y, &f[&key], 1e-4);
            // TF has no ResizeArea gradient; every other method's input gradient is compared.
            if let Some(want) = f.get(&format!("{key}/grad")) {
                let loss = y.mul(&f[&format!("{key}/r")]).unwrap().sum_all().unwrap();
                let g = loss.backward().unwrap();
                check(&format!("{key}/grad"), g.get(&xg).unwrap(), want, 1e-4);
            }
        }
    }
});

backend_test!(resize_uint8_as_tf, |dev| {
    let f = fixtures(dev);
    let u = &f["resize_u8/in"];
    let y = resize(u, (4, 5), ResizeMethod::Bilinear, false).unwrap();
    check("resize_u8/bilinear", &y, &f["resize_u8/bilinear"], 1e-3);
    let y = resize(u, (4, 5), ResizeMethod::Nearest, false).unwrap();
    assert_eq!(y.dtype(), fovea_core::DType::U8);
    assert_eq!(y.to_vec::<u8>().unwrap(), f["resize_u8/nearest"].to_vec::<u8>().unwrap());
});

backend_test!(resize_single_image_keeps_rank, |dev| {
    let f = fixtures(dev);
    let one = f["small"].narrow(0, 1, 1).unwrap().squeeze(&[0]).unwrap();
    let y = resize(&one, (4, 5), ResizeMethod::Bicubic, false).unwrap();
    let want = f["resize/bicubic/4x5"].narrow(0, 1, 1).unwrap().squeeze(&[0]).unwrap();
    check("single image", &y, &want, 1e-4);
});

backend_test!(resize_427x640_matches_tf, |dev| {
    let f = fixtures(dev);
    let img = hash_image(427, 640, 3, dev);
    for (name, m, aa) in [
        ("bilinear", ResizeMethod::Bilinear, false),
        ("nearest", ResizeMethod::Nearest, false),
        ("bicubic", ResizeMethod::Bicubic, false),
        ("area", ResizeMethod::Area, false),
        ("bilinear_aa", ResizeMethod::Bilinear, true),
        ("lanczos3", ResizeMethod::Lanczos3, false),
    ] {
        let y = resize(&img, (33, 47), m, aa).unwrap();
        check(&format!("big/resize/{name}"), &y, &f[&format!("big/resize/{name}")], 1e-4);
    }
    let corner = img.narrow(0, 0, 5).unwrap().narrow(1, 0, 6).unwrap();
    let y = resize(&corner, (13, 11), ResizeMethod::Bicubic, false).unwrap();
    check("big/resize/bicubic_up", &y, &f["big/resize/bicubic_up"], 1e-4);
});

backend_test!(crop_and_resize_spec_boxes_match_tf, |dev| {
    let f = fixtures(dev);
    let img = hash_image(427, 640, 3, dev).expand_dims(0).unwrap();
    let boxes = Tensor::from_vec(vec![0.0f32, 0.03, 1.0, 0.68, 0.19, 0.26, 0.86, 0.7], vec![2, 4], dev).unwrap();
    let ind = Tensor::from_vec(vec![0i64, 0], vec![2], dev).unwrap();
    for (name, m) in [("bilinear", CropMethod::Bilinear), ("nearest", CropMethod::Nearest)] {
        let y = crop_and_resize(&img, &boxes, &ind, (32, 32), m, 0.0).unwrap();
        check(&format!("big/crop_and_resize/{name}"), &y, &f[&format!("big/crop_and_resize/{name}")], 1e-4);
    }
});

backend_test!(crop_and_resize_flipped_and_outside_boxes_match_tf, |dev| {
    let f = fixtures(dev);
    for (name, m) in [("bilinear", CropMethod::Bilinear), ("nearest", CropMethod::Nearest)] {
        for (h, w) in [(5, 6), (1, 1), (1, 4)] {
            let key = format!("car/{name}/{h}x{w}");
            let x = f["small"].with_requires_grad(true).unwrap();
            let boxes = f["car/boxes"].with_requires_grad(true).unwrap();
            let y = crop_and_resize(&x, &boxes, &f["car/box_ind"], (h, w), m, 0.25).unwrap();
            check(&key, &y, &f[&key], 1e-4);
            let g = y.mul(&f[&format!("{key}/r")]).unwrap().sum_all().unwrap().backward().unwrap();
            // TF differentiates bilinear crops only, with respect to both images and boxes.
            if let Some(want) = f.get(&format!("{key}/grad")) {
                check(&format!("{key}/grad"), g.get(&x).unwrap(), want, 1e-4);
                check(&format!("{key}/grad_boxes"), g.get(&boxes).unwrap(), &f[&format!("{key}/grad_boxes")], 1e-4);
            }
        }
    }
});

backend_test!(crop_and_resize_edge_cases, |dev| {
    let img = Tensor::from_vec((0..16).map(|v| v as f32).collect::<Vec<_>>(), vec![1, 4, 4, 1], dev).unwrap();
    // No boxes: an empty batch of crops, as TF.
    let none = Tensor::zeros(vec![0, 4], fovea_core::DType::F32, dev).unwrap();
    let ind = Tensor::zeros(vec![0], fovea_core::DType::I64, dev).unwrap();
    let y = crop_and_resize(&img, &none, &ind, (2, 3), CropMethod::Bilinear, 0.0).unwrap();
    assert_eq!(y.dims(), &[0, 2, 3, 1]);
    // A NaN coordinate (y1 here, so every row) samples outside: the extrapolation value.
    let nan = Tensor::from_vec(vec![f32::NAN, 0.0, 1.0, 1.0], vec![1, 4], dev).unwrap();
    let one = Tensor::from_vec(vec![0i64], vec![1], dev).unwrap();
    let y = crop_and_resize(&img, &nan, &one, (2, 2), CropMethod::Bilinear, -1.0).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![-1.0; 4]);
});

#[test]
fn resize_gradcheck_every_method() {
    let dev = Device::Reference;
    let x = fovea_core::testing::rand(&[1, 4, 5, 2], 0.0, 1.0, 3, dev);
    for (_, m, aa) in METHODS {
        for size in [(3, 7), (2, 2)] {
            gradcheck(|t| resize(&t[0], size, m, aa), std::slice::from_ref(&x), 1e-2, 2e-2).unwrap();
        }
    }
}

#[test]
fn crop_and_resize_gradcheck() {
    let dev = Device::Reference;
    let x = fovea_core::testing::rand(&[2, 4, 5, 2], 0.0, 1.0, 5, dev);
    let boxes = Tensor::from_vec(vec![0.1f32, 0.2, 0.9, 0.7, 0.8, 0.9, -0.1, 0.3], vec![2, 4], dev).unwrap();
    let ind = Tensor::from_vec(vec![1i64, 0], vec![2], dev).unwrap();
    for m in [CropMethod::Bilinear, CropMethod::Nearest] {
        gradcheck(|t| crop_and_resize(&t[0], &boxes, &ind, (3, 4), m, 0.5), std::slice::from_ref(&x), 1e-2, 2e-2).unwrap();
    }
    // Box gradients (bilinear): coordinates kept away from pixel centres so the finite
    // differences stay on one linear piece.
    let boxes = Tensor::from_vec(vec![0.13f32, 0.21, 0.87, 0.69, 0.81, 0.93, 0.07, 0.32], vec![2, 4], dev).unwrap();
    for crop in [(3, 4), (1, 2)] {
        gradcheck(|t| crop_and_resize(&t[0], &t[1], &ind, crop, CropMethod::Bilinear, 0.5), &[x.clone(), boxes.clone()], 1e-3, 2e-2)
            .unwrap();
    }
}

#[test]
fn resize_rejects_bad_input() {
    let dev = Device::Cpu;
    let x = Tensor::zeros(vec![4, 5], fovea_core::DType::F32, dev).unwrap();
    let e = resize(&x, (2, 2), ResizeMethod::Bilinear, false).unwrap_err().to_string();
    assert!(e.contains("resize") && e.contains("rank 3 (H, W, C) or 4 (N, H, W, C)") && e.contains("[4, 5]"), "{e}");
    let x = Tensor::zeros(vec![4, 5, 3], fovea_core::DType::F32, dev).unwrap();
    let e = resize(&x, (0, 2), ResizeMethod::Area, false).unwrap_err().to_string();
    assert!(e.contains("positive target size") && e.contains("(0, 2)"), "{e}");
    let u = Tensor::zeros(vec![4, 5, 3], fovea_core::DType::I64, dev).unwrap();
    let e = resize(&u, (2, 2), ResizeMethod::Area, false).unwrap_err().to_string();
    assert!(e.contains("resize: expected dtype float32 or uint8, got int64"), "{e}");
}

#[test]
fn crop_and_resize_rejects_bad_input() {
    let dev = Device::Cpu;
    let img = Tensor::zeros(vec![2, 4, 4, 1], fovea_core::DType::F32, dev).unwrap();
    let ind = Tensor::from_vec(vec![0i64], vec![1], dev).unwrap();
    let good = Tensor::from_vec(vec![0.0f32, 0.0, 1.0, 1.0], vec![1, 4], dev).unwrap();
    let bad_boxes = Tensor::from_vec(vec![0.0f32, 0.0, 1.0], vec![1, 3], dev).unwrap();
    let e = crop_and_resize(&img, &bad_boxes, &ind, (2, 2), CropMethod::Bilinear, 0.0).unwrap_err().to_string();
    assert!(e.contains("crop_and_resize") && e.contains("[num_boxes, 4]") && e.contains("[1, 3]"), "{e}");
    let two = Tensor::from_vec(vec![0i64, 1], vec![2], dev).unwrap();
    let e = crop_and_resize(&img, &good, &two, (2, 2), CropMethod::Bilinear, 0.0).unwrap_err().to_string();
    assert!(e.contains("box_indices of shape [1]") && e.contains("[2]"), "{e}");
    let far = Tensor::from_vec(vec![2i64], vec![1], dev).unwrap();
    let e = crop_and_resize(&img, &good, &far, (2, 2), CropMethod::Bilinear, 0.0).unwrap_err().to_string();
    assert!(e.contains("box index 2 is outside the batch of 2"), "{e}");
    let e = crop_and_resize(&img, &good, &ind, (2, 0), CropMethod::Nearest, 0.0).unwrap_err().to_string();
    assert!(e.contains("positive crop size") && e.contains("(2, 0)"), "{e}");
    let fi = Tensor::from_vec(vec![0.0f32], vec![1], dev).unwrap();
    let e = crop_and_resize(&img, &good, &fi, (2, 2), CropMethod::Nearest, 0.0).unwrap_err().to_string();
    assert!(e.contains("int64 or int32 box_indices, got float32"), "{e}");
    let e = crop_and_resize(&img.squeeze(&[3]).unwrap(), &good, &ind, (2, 2), CropMethod::Nearest, 0.0).unwrap_err().to_string();
    assert!(e.contains("rank 4") && e.contains("[2, 4, 4]"), "{e}");
}

#[test]
fn keras_bilinear_upsampling_equals_tf_bilinear_resize() {
    use fovea_nn::layer::Layer;
    // UpSampling2D(interpolation="bilinear") is tf.image.resize(bilinear) at integer factors;
    // resize is checked against TensorFlow above, so the layer is too.
    let x = fovea_core::testing::rand(&[2, 5, 4, 3], 0.0, 1.0, 7, fovea_core::Device::Cpu);
    let layer = fovea_nn::layers::UpSampling2D::bilinear((2, 3));
    let y = layer.apply(std::slice::from_ref(&x), false).unwrap();
    let r = fovea_vision::image::resize(&x, (10, 12), fovea_vision::image::ResizeMethod::Bilinear, false).unwrap();
    fovea_core::testing::assert_tensor_close("upsampling vs resize", &y, &r, 1e-5, 1e-6);
}
