//! `affine_transform`, the Keras layers' transform matrices and `extract_patches` against
//! TensorFlow/Keras (fixtures from `tools/fixtures/gen_image_aug_fixtures.py`), plus error messages.

use fovea_core::{io::load_safetensors, Device, Tensor};
use fovea_vision::image::*;
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/image_aug.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    let e = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(e <= tol, "{what}: max abs error {e} > {tol}");
}

fn matrices(t: &Tensor) -> Vec<[f32; 8]> {
    t.to_vec::<f32>().unwrap().chunks(8).map(|c| c.try_into().unwrap()).collect()
}

fn max_diff(a: &[f32; 8], b: &[f32; 8]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn affine_transform_matches_tf_in_every_mode() {
    let f = fixtures();
    let img = &f["img"];
    for case in ["rotation", "general", "zoom", "translation", "projective"] {
        let m = matrices(&f[&format!("matrix/{case}")]);
        for (interp, iname) in [(Interpolation::Nearest, "nearest"), (Interpolation::Bilinear, "bilinear")] {
            for fill in [FillMode::Reflect, FillMode::Wrap, FillMode::Constant, FillMode::Nearest] {
                let key = format!("affine/{case}/{iname}/{}", fill.as_str());
                check(&key, &affine_transform(img, &m, interp, fill, 0.25).unwrap(), &f[&key], 1e-4);
            }
        }
    }
    // A single HWC image with one transform keeps its rank.
    let one = img.narrow(0, 0, 1).unwrap().squeeze(&[0]).unwrap();
    let m = matrices(&f["matrix/general"]);
    check("single", &affine_transform(&one, &m[..1], Interpolation::Bilinear, FillMode::Reflect, 0.0).unwrap(), &f["affine/single"], 1e-4);
}

#[test]
fn layer_matrices_match_keras() {
    let f = fixtures();
    let (h, w) = (7, 9);
    let angles = f["matrix/rotation/angle"].to_vec::<f32>().unwrap();
    for (i, want) in matrices(&f["matrix/rotation"]).iter().enumerate() {
        let got = affine_matrix(&AffineParams { angle: angles[i], ..Default::default() }, h, w);
        assert!(max_diff(&got, want) < 1e-5, "rotation {i}: {got:?} vs {want:?}");
    }
    let g = |k: &str| f[&format!("matrix/general/{k}")].to_vec::<f32>().unwrap();
    let (a, tx, ty, s, shx, shy) = (g("angle"), g("tx"), g("ty"), g("scale"), g("shx"), g("shy"));
    for (i, want) in matrices(&f["matrix/general"]).iter().enumerate() {
        let p = AffineParams { angle: a[i], translate_x: tx[i], translate_y: ty[i], scale: s[i], shear_x: shx[i], shear_y: shy[i] };
        let got = affine_matrix(&p, h, w);
        assert!(max_diff(&got, want) < 1e-5, "general {i}: {got:?} vs {want:?}");
    }
    let zooms = f["matrix/zoom/zooms"].to_vec::<f32>().unwrap();
    for (i, want) in matrices(&f["matrix/zoom"]).iter().enumerate() {
        let got = zoom_matrix(zooms[2 * i], zooms[2 * i + 1], h, w);
        assert!(max_diff(&got, want) < 1e-6, "zoom {i}: {got:?} vs {want:?}");
    }
    let shifts = f["matrix/translation/shifts"].to_vec::<f32>().unwrap();
    for (i, want) in matrices(&f["matrix/translation"]).iter().enumerate() {
        assert_eq!(&translation_matrix(shifts[2 * i], shifts[2 * i + 1]), want, "translation {i}");
    }
}

#[test]
fn identity_and_hand_computed_shifts() {
    let x = Tensor::from_vec((0..12).map(|v| v as f32).collect::<Vec<_>>(), vec![1, 3, 4, 1], Device::Cpu).unwrap();
    let id = affine_matrix(&AffineParams::default(), 3, 4);
    let same = affine_transform(&x, &[id], Interpolation::Bilinear, FillMode::Constant, 0.0).unwrap();
    assert_eq!(same.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    // Moving the picture one pixel right: column 0 comes from x = −1, which each mode fills
    // its own way (row 0 is 0 1 2 3).
    let right = translation_matrix(1.0, 0.0);
    let row0 = |mode| affine_transform(&x, &[right], Interpolation::Nearest, mode, 9.0).unwrap().to_vec::<f32>().unwrap()[..4].to_vec();
    assert_eq!(row0(FillMode::Constant), vec![9.0, 0.0, 1.0, 2.0]);
    assert_eq!(row0(FillMode::Nearest), vec![0.0, 0.0, 1.0, 2.0]);
    assert_eq!(row0(FillMode::Reflect), vec![0.0, 0.0, 1.0, 2.0]);
    assert_eq!(row0(FillMode::Wrap), vec![3.0, 0.0, 1.0, 2.0]);
    // Half a pixel, bilinear, constant fill 0: each value is the mean of two neighbours.
    let half = affine_transform(&x, &[translation_matrix(0.5, 0.0)], Interpolation::Bilinear, FillMode::Constant, 0.0).unwrap();
    assert_eq!(half.to_vec::<f32>().unwrap()[..4].to_vec(), vec![0.0, 0.5, 1.5, 2.5]);
}

#[test]
fn affine_errors_name_the_op() {
    let x = Tensor::zeros(vec![2, 3, 4, 1], fovea_core::DType::F32, Device::Cpu).unwrap();
    let id = translation_matrix(0.0, 0.0);
    let bl = Interpolation::Bilinear;
    let e = affine_transform(&x, &[id, id, id], bl, FillMode::Constant, 0.0).unwrap_err().to_string();
    assert!(e.contains("affine_transform") && e.contains("one per image (2)") && e.contains("got 3"), "{e}");
    let e = affine_transform(&x, &[[f32::NAN, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]], bl, FillMode::Constant, 0.0).unwrap_err().to_string();
    assert!(e.contains("affine_transform") && e.contains("finite"), "{e}");
    let e = affine_transform(&x.reshape(&[2, 12]).unwrap(), &[id], bl, FillMode::Constant, 0.0).unwrap_err().to_string();
    assert!(e.contains("affine_transform") && e.contains("[2, 12]"), "{e}");
    let bytes = Tensor::zeros(vec![1, 2, 2, 1], fovea_core::DType::U8, Device::Cpu).unwrap();
    let e = affine_transform(&bytes, &[id], bl, FillMode::Constant, 0.0).unwrap_err().to_string();
    assert!(e.contains("affine_transform") && e.contains("float32") && e.contains("uint8"), "{e}");
    let e = FillMode::parse("op", "mirror").unwrap_err().to_string();
    assert!(e.contains("op") && e.contains("\"mirror\"") && e.contains("reflect"), "{e}");
    let e = Interpolation::parse("op", "cubic").unwrap_err().to_string();
    assert!(e.contains("\"cubic\"") && e.contains("bilinear"), "{e}");
}

#[test]
fn extract_patches_matches_tf() {
    use fovea_core::ops::padding::Padding;
    let f = fixtures();
    let img = &f["img"];
    for (name, sizes, strides, rates, pad) in [
        ("a", (3, 2), (2, 3), (1, 2), Padding::Valid),
        ("b", (3, 2), (2, 3), (1, 2), Padding::Same),
        ("c", (2, 2), (1, 1), (2, 1), Padding::Same),
        ("d", (4, 4), (3, 5), (1, 1), Padding::Valid),
    ] {
        check(&format!("patches/{name}"), &extract_patches(img, sizes, strides, rates, &pad).unwrap(), &f[&format!("patches/{name}")], 0.0);
    }
    // Hand-computed: 1×2 patches of a 2×3 grey image, stride 1.
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], vec![2, 3, 1], Device::Cpu).unwrap();
    let p = extract_patches(&x, (1, 2), (1, 1), (1, 1), &Padding::Valid).unwrap();
    assert_eq!(p.dims(), &[2, 2, 2]);
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0]);
    // Gradient: each pixel receives the sum of the upstream values of the patches holding it.
    let xg = x.with_requires_grad(true).unwrap();
    let g = extract_patches(&xg, (1, 2), (1, 1), (1, 1), &Padding::Valid).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&xg).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 1.0, 1.0, 2.0, 1.0]);
    let e = |r: fovea_core::Result<Tensor>| r.unwrap_err().to_string();
    let m = e(extract_patches(img, (8, 2), (1, 1), (1, 1), &Padding::Valid));
    assert!(m.contains("extract_patches") && m.contains("window (8)") && m.contains("height (7)"), "{m}");
    let m = e(extract_patches(img, (2, 2), (0, 1), (1, 1), &Padding::Same));
    assert!(m.contains("positive strides") && m.contains("(0, 1)"), "{m}");
    let m = e(extract_patches(img, (2, 2), (1, 1), (1, 1), &Padding::Explicit(vec![(1, 1), (1, 1)])));
    assert!(m.contains("VALID or SAME"), "{m}");
}

#[test]
fn positive_angles_turn_the_picture_counter_clockwise() {
    // A 5×5 image with one bright pixel right of the centre: a quarter turn counter-clockwise
    // moves it above the centre (rows grow downwards).
    let mut v = vec![0.0f32; 25];
    v[2 * 5 + 4] = 1.0;
    let x = Tensor::from_vec(v, vec![5, 5, 1], Device::Cpu).unwrap();
    let m = affine_matrix(&AffineParams { angle: 90.0, ..Default::default() }, 5, 5);
    let y = affine_transform(&x, &[m], Interpolation::Nearest, FillMode::Constant, 0.0).unwrap().to_vec::<f32>().unwrap();
    let lit: Vec<usize> = (0..25).filter(|&i| y[i] > 0.5).collect();
    assert_eq!(lit, vec![2], "expected only row 0, column 2 lit");
}
