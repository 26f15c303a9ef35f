//! Crops, pads, flips, colour ops, dtype conversion and codecs against TensorFlow 2 (fixtures
//! from `tools/fixtures/gen_image_fixtures.py`), gradient checks and error messages.

use fovea_core::{backend_test, io::load_safetensors, testing::gradcheck, DType, Device, Tensor};
use fovea_vision::image::*;
use std::collections::HashMap;

fn fixtures(dev: Device) -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/image_ops.safetensors", env!("CARGO_MANIFEST_DIR")), dev).unwrap()
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    let e = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(e <= tol, "{what}: max abs error {e} > {tol}");
}

backend_test!(crops_and_pads_match_tf, |dev| {
    let f = fixtures(dev);
    let x = &f["small"];
    let bl = ResizeMethod::Bilinear;
    check("resize_with_pad/10x6", &resize_with_pad(x, 10, 6, bl, false).unwrap(), &f["resize_with_pad/10x6"], 1e-4);
    check("resize_with_pad/5x20", &resize_with_pad(x, 5, 20, bl, false).unwrap(), &f["resize_with_pad/5x20"], 1e-4);
    check(
        "resize_with_pad/5x20_nearest",
        &resize_with_pad(x, 5, 20, ResizeMethod::Nearest, false).unwrap(),
        &f["resize_with_pad/5x20_nearest"],
        1e-4,
    );
    check("rwcop/5x12", &resize_with_crop_or_pad(x, 5, 12).unwrap(), &f["resize_with_crop_or_pad/5x12"], 0.0);
    check("rwcop/10x4", &resize_with_crop_or_pad(x, 10, 4).unwrap(), &f["resize_with_crop_or_pad/10x4"], 0.0);
    check("central_crop/0.5", &central_crop(x, 0.5).unwrap(), &f["central_crop/0.5"], 0.0);
    check("central_crop/0.3", &central_crop(x, 0.3).unwrap(), &f["central_crop/0.3"], 0.0);
    check("crop_to_bounding_box", &crop_to_bounding_box(x, 1, 2, 4, 5).unwrap(), &f["crop_to_bounding_box"], 0.0);
    check("pad_to_bounding_box", &pad_to_bounding_box(x, 1, 2, 10, 12).unwrap(), &f["pad_to_bounding_box"], 0.0);
    // A single HWC image gives the first batch entry back, without the batch axis.
    let one = x.narrow(0, 0, 1).unwrap().squeeze(&[0]).unwrap();
    let want = f["pad_to_bounding_box"].narrow(0, 0, 1).unwrap().squeeze(&[0]).unwrap();
    check("pad single", &pad_to_bounding_box(&one, 1, 2, 10, 12).unwrap(), &want, 0.0);
});

backend_test!(flips_rotations_transpose_match_tf, |dev| {
    let f = fixtures(dev);
    let x = &f["small"];
    check("flip_left_right", &flip_left_right(x).unwrap(), &f["flip_left_right"], 0.0);
    check("flip_up_down", &flip_up_down(x).unwrap(), &f["flip_up_down"], 0.0);
    for k in 0..4 {
        check(&format!("rot90/{k}"), &rot90(x, k).unwrap(), &f[&format!("rot90/{k}")], 0.0);
    }
    check("rot90/-1", &rot90(x, -1).unwrap(), &f["rot90/3"], 0.0);
    check("transpose", &transpose(x).unwrap(), &f["transpose"], 0.0);
});

backend_test!(colour_ops_match_tf, |dev| {
    let f = fixtures(dev);
    let x = &f["small"];
    check("rgb_to_grayscale", &rgb_to_grayscale(x).unwrap(), &f["rgb_to_grayscale"], 1e-6);
    check("grayscale_to_rgb", &grayscale_to_rgb(&rgb_to_grayscale(x).unwrap()).unwrap(), &f["grayscale_to_rgb"], 1e-6);
    check("rgb_to_hsv", &rgb_to_hsv(x).unwrap(), &f["rgb_to_hsv"], 1e-6);
    check("hsv_to_rgb", &hsv_to_rgb(&f["hsv_in"]).unwrap(), &f["hsv_to_rgb"], 1e-6);
    let xg = x.with_requires_grad(true).unwrap();
    let g = rgb_to_hsv(&xg).unwrap().mul(&f["rgb_to_hsv/r"]).unwrap().sum_all().unwrap().backward().unwrap();
    check("rgb_to_hsv/grad", g.get(&xg).unwrap(), &f["rgb_to_hsv/grad"], 1e-4);
    check("adjust_brightness", &adjust_brightness(x, 0.1).unwrap(), &f["adjust_brightness/0.1"], 1e-6);
    check("adjust_contrast/1.7", &adjust_contrast(x, 1.7).unwrap(), &f["adjust_contrast/1.7"], 1e-5);
    check("adjust_contrast/0.3", &adjust_contrast(x, 0.3).unwrap(), &f["adjust_contrast/0.3"], 1e-5);
    check("adjust_saturation/0.4", &adjust_saturation(x, 0.4).unwrap(), &f["adjust_saturation/0.4"], 1e-5);
    check("adjust_saturation/2.5", &adjust_saturation(x, 2.5).unwrap(), &f["adjust_saturation/2.5"], 1e-5);
    check("adjust_hue/0.2", &adjust_hue(x, 0.2).unwrap(), &f["adjust_hue/0.2"], 1e-5);
    check("adjust_hue/-0.45", &adjust_hue(x, -0.45).unwrap(), &f["adjust_hue/-0.45"], 1e-5);
    check("adjust_gamma", &adjust_gamma(x, 1.5, 0.9).unwrap(), &f["adjust_gamma/1.5_0.9"], 1e-5);
    check("per_image_standardization", &per_image_standardization(x).unwrap(), &f["per_image_standardization"], 1e-5);
    let c = Tensor::full(vec![1, 3, 4, 2], 0.3, DType::F32, dev).unwrap();
    check("standardization const", &per_image_standardization(&c).unwrap(), &f["per_image_standardization/const"], 0.0);
});

backend_test!(convert_image_dtype_matches_tf, |dev| {
    let f = fixtures(dev);
    let u = f["u8"].clone();
    check("u8_to_f32", &convert_image_dtype(&u, DType::F32, false).unwrap(), &f["convert/u8_to_f32"], 1e-7);
    let x = &f["convert/f32_in"];
    for (key, sat) in [("convert/f32_to_u8", false), ("convert/f32_to_u8_sat", true)] {
        let got = convert_image_dtype(x, DType::U8, sat).unwrap().to_vec::<u8>().unwrap();
        assert_eq!(got, f[key].to_vec::<u8>().unwrap(), "{key}");
    }
    // A round trip through float is the identity on bytes.
    let back = convert_image_dtype(&convert_image_dtype(&u, DType::F32, false).unwrap(), DType::U8, true).unwrap();
    assert_eq!(back.to_vec::<u8>().unwrap(), u.to_vec::<u8>().unwrap());
    let e = convert_image_dtype(&u, DType::I64, false).unwrap_err().to_string();
    assert!(e.contains("convert_image_dtype") && e.contains("only uint8 <-> float32"), "{e}");
});

type ImageFn = dyn Fn(&Tensor) -> fovea_core::Result<Tensor>;

#[test]
fn differentiable_ops_pass_gradcheck() {
    let dev = Device::Reference;
    let x = fovea_core::testing::rand(&[2, 3, 4, 3], 0.1, 1.0, 9, dev);
    let one = |t: &[Tensor]| t[0].clone();
    let ops: Vec<(&str, Box<ImageFn>)> = vec![
        ("rgb_to_grayscale", Box::new(rgb_to_grayscale)),
        ("grayscale_to_rgb", Box::new(|t: &Tensor| grayscale_to_rgb(&t.narrow(3, 0, 1)?))),
        ("adjust_brightness", Box::new(|t: &Tensor| adjust_brightness(t, 0.2))),
        ("adjust_contrast", Box::new(|t: &Tensor| adjust_contrast(t, 1.7))),
        ("adjust_gamma", Box::new(|t: &Tensor| adjust_gamma(t, 1.5, 0.9))),
        ("per_image_standardization", Box::new(per_image_standardization)),
        ("crop_to_bounding_box", Box::new(|t: &Tensor| crop_to_bounding_box(t, 1, 1, 2, 2))),
        ("pad_to_bounding_box", Box::new(|t: &Tensor| pad_to_bounding_box(t, 1, 0, 5, 6))),
        ("resize_with_crop_or_pad", Box::new(|t: &Tensor| resize_with_crop_or_pad(t, 2, 6))),
        ("resize_with_pad", Box::new(|t: &Tensor| resize_with_pad(t, 5, 5, ResizeMethod::Bilinear, false))),
        ("central_crop", Box::new(|t: &Tensor| central_crop(t, 0.5))),
        ("rot90", Box::new(|t: &Tensor| rot90(t, 1))),
        ("transpose", Box::new(transpose)),
        ("flip_left_right", Box::new(flip_left_right)),
    ];
    for (name, op) in ops {
        gradcheck(|t| op(&one(t)), std::slice::from_ref(&x), 1e-2, 2e-2).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The HSV family is piecewise (which channel is max/min, hue sectors): channels kept well
    // apart and a small step keep the finite differences on one piece.
    let noise = fovea_core::testing::rand(&[2, 3, 4, 3], 0.0, 0.04, 9, dev).to_vec::<f32>().unwrap();
    let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let levels = [0.2f32, 0.5, 0.85];
    let sep: Vec<f32> = noise.iter().enumerate().map(|(i, n)| levels[perms[(i / 3) % 6][i % 3]] + n).collect();
    let x = Tensor::from_vec(sep, vec![2, 3, 4, 3], dev).unwrap();
    let hsv_ops: Vec<(&str, Box<ImageFn>)> = vec![
        ("rgb_to_hsv", Box::new(rgb_to_hsv)),
        ("hsv_to_rgb", Box::new(|t: &Tensor| hsv_to_rgb(&t.mul_scalar(0.9)?))),
        ("adjust_saturation", Box::new(|t: &Tensor| adjust_saturation(t, 0.6))),
        ("adjust_hue", Box::new(|t: &Tensor| adjust_hue(t, 0.13))),
    ];
    for (name, op) in hsv_ops {
        gradcheck(|t| op(&one(t)), std::slice::from_ref(&x), 1e-3, 2e-2).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn png_and_jpeg_decode_like_tf_and_round_trip() {
    let dev = Device::Cpu;
    let f = fixtures(dev);
    let png = decode_png(&fixture_bytes("hash24x32.png"), 0, dev).unwrap();
    assert_eq!(png.dims(), &[24, 32, 3]);
    assert_eq!(png.to_vec::<u8>().unwrap(), f["png/decoded"].to_vec::<u8>().unwrap());
    let gray = decode_png(&fixture_bytes("gray24x32.png"), 0, dev).unwrap();
    assert_eq!(gray.dims(), &[24, 32, 1]);
    let want_gray: Vec<u8> = f["png/decoded"].to_vec::<u8>().unwrap().chunks(3).map(|p| p[0]).collect();
    assert_eq!(gray.to_vec::<u8>().unwrap(), want_gray);
    // Asking for 3 channels replicates the grey one.
    let rgb = decode_image(&fixture_bytes("gray24x32.png"), 3, dev).unwrap();
    assert_eq!(rgb.to_vec::<u8>().unwrap()[..3], [want_gray[0]; 3]);
    // channels = 1 on an RGB PNG uses libpng's fixed-point luma, bit-exact with TF.
    let g1 = decode_png(&fixture_bytes("hash24x32.png"), 1, dev).unwrap();
    assert_eq!(g1.dims(), &[24, 32, 1]);
    assert_eq!(g1.to_vec::<u8>().unwrap(), f["png/decoded_gray"].to_vec::<u8>().unwrap());
    // PNG is lossless: encode then decode is the identity.
    let again = decode_png(&encode_png(&png).unwrap(), 0, dev).unwrap();
    assert_eq!(again.to_vec::<u8>().unwrap(), png.to_vec::<u8>().unwrap());

    // JPEG decoders differ from libjpeg-turbo in IDCT and colour-conversion rounding: the image
    // crate (zune-jpeg) is within 5 levels of TF here, 1.3 on average.
    let jpg = decode_jpeg(&fixture_bytes("smooth24x32.jpg"), 0, dev).unwrap();
    assert_eq!(jpg.dims(), &[24, 32, 3]);
    let (a, b) = (jpg.to_vec::<u8>().unwrap(), f["jpeg/decoded"].to_vec::<u8>().unwrap());
    let worst = a.iter().zip(&b).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
    let mean = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64;
    assert!(worst <= 6 && mean <= 2.0, "JPEG decode differs from TF by up to {worst} levels (mean {mean})");
    // libjpeg returns its decoded luma plane; converting the decoded RGB comes within a few levels.
    let g1 = decode_jpeg(&fixture_bytes("smooth24x32.jpg"), 1, dev).unwrap();
    let (a, b) = (g1.to_vec::<u8>().unwrap(), f["jpeg/decoded_gray"].to_vec::<u8>().unwrap());
    let worst = a.iter().zip(&b).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
    assert!(worst <= 6, "grey JPEG decode differs from TF by up to {worst} levels");
    let src = &f["jpeg/source"];
    let re = decode_jpeg(&encode_jpeg(src, 95).unwrap(), 0, dev).unwrap();
    let (a, b) = (re.to_vec::<u8>().unwrap(), src.to_vec::<u8>().unwrap());
    let mean = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum::<f64>() / a.len() as f64;
    assert!(mean < 3.0, "JPEG q95 round trip mean abs error {mean}");
}

#[test]
fn codecs_reject_corrupt_data_and_bad_images() {
    let dev = Device::Cpu;
    let mut png = fixture_bytes("hash24x32.png");
    png.truncate(png.len() / 2);
    let e = decode_png(&png, 0, dev).unwrap_err().to_string();
    assert!(e.contains("decode_png") && e.contains("cannot decode"), "{e}");
    let e = decode_jpeg(b"not a jpeg at all", 0, dev).unwrap_err().to_string();
    assert!(e.contains("decode_jpeg") && e.contains("cannot decode 17 bytes"), "{e}");
    let mut jpg = fixture_bytes("smooth24x32.jpg");
    jpg.truncate(100);
    assert!(decode_jpeg(&jpg, 0, dev).unwrap_err().to_string().contains("decode_jpeg"));
    // Cut inside the scan, where the decoder alone would pad the rest with grey (Pillow and
    // libjpeg refuse it), and through decode_image's format sniffing too.
    let full = fixture_bytes("smooth24x32.jpg");
    let cut = &full[..full.len() * 3 / 4];
    let e = decode_jpeg(cut, 0, dev).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains(&format!("{} bytes", cut.len())), "{e}");
    assert!(decode_image(cut, 3, dev).unwrap_err().to_string().contains("truncated"));
    let e = decode_png(&fixture_bytes("hash24x32.png"), 5, dev).unwrap_err().to_string();
    assert!(e.contains("channels 0, 1, 3 or 4, got 5"), "{e}");
    let e = decode_jpeg(&fixture_bytes("smooth24x32.jpg"), 2, dev).unwrap_err().to_string();
    assert!(e.contains("decode_jpeg") && e.contains("got 2"), "{e}");
    let fl = Tensor::zeros(vec![2, 2, 3], DType::F32, dev).unwrap();
    let e = encode_png(&fl).unwrap_err().to_string();
    assert!(e.contains("encode_png") && e.contains("uint8"), "{e}");
    let u = Tensor::zeros(vec![2, 2, 5], DType::U8, dev).unwrap();
    let e = encode_png(&u).unwrap_err().to_string();
    assert!(e.contains("channel axis") && e.contains("[2, 2, 5]"), "{e}");
    let u = Tensor::zeros(vec![2, 2, 3], DType::U8, dev).unwrap();
    let e = encode_jpeg(&u, 0).unwrap_err().to_string();
    assert!(e.contains("quality in 1..=100, got 0"), "{e}");
    let e = encode_jpeg(&u.expand_dims(0).unwrap(), 90).unwrap_err().to_string();
    assert!(e.contains("rank 3 (H, W, C)") && e.contains("[1, 2, 2, 3]"), "{e}");
}

#[test]
fn geometry_and_colour_ops_reject_bad_input() {
    let dev = Device::Cpu;
    let x = Tensor::zeros(vec![1, 4, 5, 3], DType::F32, dev).unwrap();
    let e = crop_to_bounding_box(&x, 2, 0, 3, 5).unwrap_err().to_string();
    assert!(e.contains("crop_to_bounding_box") && e.contains("rows 2..5") && e.contains("4x5"), "{e}");
    let e = crop_to_bounding_box(&x, 0, 0, 0, 5).unwrap_err().to_string();
    assert!(e.contains("positive target size"), "{e}");
    let e = pad_to_bounding_box(&x, 1, 0, 4, 5).unwrap_err().to_string();
    assert!(e.contains("pad_to_bounding_box") && e.contains("does not fit in 4x5"), "{e}");
    let e = central_crop(&x, 0.0).unwrap_err().to_string();
    assert!(e.contains("central_fraction in (0, 1], got 0"), "{e}");
    let e = resize_with_crop_or_pad(&x, 0, 3).unwrap_err().to_string();
    assert!(e.contains("resize_with_crop_or_pad") && e.contains("positive"), "{e}");
    let e = resize_with_pad(&x, 3, 0, ResizeMethod::Area, false).unwrap_err().to_string();
    assert!(e.contains("resize_with_pad") && e.contains("(3, 0)"), "{e}");
    let e = flip_left_right(&x.reshape(&[60]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("flip_left_right") && e.contains("[60]"), "{e}");
    let two = x.narrow(3, 0, 2).unwrap();
    let e = rgb_to_grayscale(&two).unwrap_err().to_string();
    assert!(e.contains("rgb_to_grayscale") && e.contains("size 3") && e.contains("[1, 4, 5, 2]"), "{e}");
    let e = rgb_to_hsv(&two).unwrap_err().to_string();
    assert!(e.contains("rgb_to_hsv") && e.contains("[1, 4, 5, 2]"), "{e}");
    let e = grayscale_to_rgb(&x).unwrap_err().to_string();
    assert!(e.contains("grayscale_to_rgb") && e.contains("size 1"), "{e}");
    let e = adjust_hue(&x, 1.5).unwrap_err().to_string();
    assert!(e.contains("delta in [-1, 1], got 1.5"), "{e}");
    let e = adjust_gamma(&x, -1.0, 1.0).unwrap_err().to_string();
    assert!(e.contains("non-negative gamma, got -1"), "{e}");
    let u = Tensor::zeros(vec![4, 5, 3], DType::U8, dev).unwrap();
    let e = adjust_contrast(&u, 2.0).unwrap_err().to_string();
    assert!(e.contains("adjust_contrast") && e.contains("convert_image_dtype"), "{e}");
}
