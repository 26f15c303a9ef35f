//! Stateless random image ops: determinism, seed sensitivity, distributions of the drawn
//! parameters, and equality with the deterministic op at the drawn parameter.

use fovea_core::{testing::rand, DType, Device, Tensor};
use fovea_vision::image::*;

fn img() -> Tensor {
    rand(&[2, 6, 7, 3], 0.2, 0.8, 17, Device::Cpu)
}

fn v(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

fn max_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    v(a).iter().zip(v(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

type Op = fn(&Tensor, Seed) -> fovea_core::Result<Tensor>;

#[test]
fn same_seed_same_output_different_seed_different_output() {
    let x = img();
    let ops: Vec<(&str, Op)> = vec![
        ("crop", |x, s| random_crop(x, (3, 4), s)),
        ("flip_lr", |x, s| random_flip_left_right(&x.tile(&[4, 1, 1, 1])?, s)),
        ("flip_ud", |x, s| random_flip_up_down(&x.tile(&[4, 1, 1, 1])?, s)),
        ("brightness", |x, s| random_brightness(x, 0.3, s)),
        ("contrast", |x, s| random_contrast(x, 0.5, 1.5, s)),
        ("saturation", |x, s| random_saturation(x, 0.5, 1.5, s)),
        ("hue", |x, s| random_hue(x, 0.3, s)),
        ("jpeg", |x, s| random_jpeg_quality(x, 10, 90, s)),
    ];
    for (name, op) in ops {
        let a = op(&x, (1, 2)).unwrap();
        assert_eq!(v(&a), v(&op(&x, (1, 2)).unwrap()), "{name}: same seed");
        // Swapping the halves of the seed, or changing either, changes the draw.
        for other in [(2, 1), (1, 3), (9, 2)] {
            assert_ne!(v(&a), v(&op(&x, other).unwrap()), "{name}: seed {other:?}");
        }
    }
}

#[test]
fn flips_happen_half_the_time_per_image() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0], vec![1, 2, 1], Device::Cpu).unwrap();
    let flips = (0..2000u64).filter(|&s| v(&random_flip_left_right(&x, (s, 0)).unwrap()) == vec![2.0, 1.0]).count();
    // Binomial(2000, ½): sd 22, so ±110 is five sd.
    assert!((890..=1110).contains(&flips), "{flips} flips of 2000");
    let y = Tensor::from_vec(vec![1.0f32, 2.0], vec![2, 1, 1], Device::Cpu).unwrap();
    let ups = (0..2000u64).filter(|&s| v(&random_flip_up_down(&y, (7, s)).unwrap()) == vec![2.0, 1.0]).count();
    assert!((890..=1110).contains(&ups), "{ups} flips of 2000");
    // In a batch, each image tosses its own coin: both outcomes appear within one call.
    let batch = x.expand_dims(0).unwrap().tile(&[16, 1, 1, 1]).unwrap();
    let out = v(&random_flip_left_right(&batch, (3, 3)).unwrap());
    let flipped = out.chunks(2).filter(|p| p == &[2.0, 1.0]).count();
    assert!(flipped > 0 && flipped < 16, "{flipped} of 16");
}

#[test]
fn brightness_deltas_are_uniform_in_range() {
    let x = Tensor::full(vec![1, 1, 1], 0.5, DType::F32, Device::Cpu).unwrap();
    let deltas: Vec<f32> = (0..4000u64).map(|s| v(&random_brightness(&x, 0.3, (s, 11)).unwrap())[0] - 0.5).collect();
    assert!(deltas.iter().all(|d| (-0.3 - 1e-6..0.3 + 1e-6).contains(d)));
    // Four equal bins of [-0.3, 0.3): 1000 expected each, sd ≈ 27.
    let mut bins = [0usize; 4];
    for d in &deltas {
        bins[(((d + 0.3) / 0.15) as usize).min(3)] += 1;
    }
    assert!(bins.iter().all(|&b| (880..=1120).contains(&b)), "{bins:?}");
    let mean = deltas.iter().sum::<f32>() / deltas.len() as f32;
    assert!(mean.abs() < 0.01, "mean {mean}");
    // The output is adjust_brightness at the drawn delta, for a whole image.
    let y = random_brightness(&img(), 0.3, (5, 5)).unwrap();
    let d = v(&y)[0] - v(&img())[0];
    assert!(max_err(&y, &adjust_brightness(&img(), d).unwrap()) < 1e-6);
}

#[test]
fn colour_ops_equal_the_deterministic_op_at_the_drawn_parameter() {
    let x = img();
    for seed in [(0u64, 1u64), (4, 4), (123, 9)] {
        // Contrast: every value moves away from its image-channel mean by the same factor.
        let y = random_contrast(&x, 0.5, 1.5, seed).unwrap();
        let mean = x.mean(&[1, 2], true).unwrap();
        let num = v(&y.sub(&mean).unwrap())[0];
        let den = v(&x.sub(&mean).unwrap())[0];
        let c = num / den;
        assert!((0.5..1.5).contains(&c), "contrast {c}");
        assert!(max_err(&y, &adjust_contrast(&x, c).unwrap()) < 1e-5, "contrast {seed:?}");
        // Hue: the shift of one pixel's hue is the drawn delta.
        let y = random_hue(&x, 0.3, seed).unwrap();
        let (hx, hy) = (v(&rgb_to_hsv(&x).unwrap()), v(&rgb_to_hsv(&y).unwrap()));
        let mut d = hy[0] - hx[0];
        if d > 0.5 {
            d -= 1.0;
        } else if d < -0.5 {
            d += 1.0;
        }
        assert!(d.abs() <= 0.3 + 1e-5, "hue delta {d}");
        assert!(max_err(&y, &adjust_hue(&x, d).unwrap()) < 1e-4, "hue {seed:?}");
        // Saturation: the ratio of one unclipped pixel's saturation is the factor.
        let y = random_saturation(&x, 0.5, 1.5, seed).unwrap();
        let (sx, sy) = (v(&rgb_to_hsv(&x).unwrap()), v(&rgb_to_hsv(&y).unwrap()));
        let k = (0..sx.len() / 3).find(|&i| sx[3 * i + 1] > 0.05 && sy[3 * i + 1] < 0.99).unwrap();
        let f = sy[3 * k + 1] / sx[3 * k + 1];
        assert!((0.5..1.5).contains(&f), "saturation {f}");
        assert!(max_err(&y, &adjust_saturation(&x, f).unwrap()) < 1e-4, "saturation {seed:?}");
    }
}

#[test]
fn crops_are_windows_and_cover_every_offset() {
    let x = Tensor::from_vec((0..20).map(|i| i as f32).collect::<Vec<_>>(), vec![4, 5, 1], Device::Cpu).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for s in 0..300u64 {
        let y = v(&random_crop(&x, (2, 3), (s, 1)).unwrap());
        // The window's top-left value is 5·top + left.
        let (top, left) = ((y[0] as usize) / 5, (y[0] as usize) % 5);
        assert_eq!(y, v(&crop_to_bounding_box(&x, top, left, 2, 3).unwrap()));
        seen.insert((top, left));
    }
    assert_eq!(seen.len(), 3 * 3, "offsets seen: {seen:?}");
    // A batch shares one window, as TF's random_crop of a 4-D tensor.
    let b = img();
    let y = random_crop(&b, (3, 3), (2, 2)).unwrap();
    let found = (0..=3).flat_map(|t| (0..=4).map(move |l| (t, l))).any(|(t, l)| v(&crop_to_bounding_box(&b, t, l, 3, 3).unwrap()) == v(&y));
    assert!(found);
}

#[test]
fn jpeg_quality_round_trips_through_the_codec() {
    // A smooth image survives quality 95 closely; quality 5 visibly degrades it.
    let (h, w) = (16usize, 16usize);
    let data: Vec<f32> = (0..h * w * 3).map(|i| (i / 3 % w) as f32 / w as f32 * 0.5 + (i / 3 / w) as f32 / h as f32 * 0.4).collect();
    let x = Tensor::from_vec(data, vec![h, w, 3], Device::Cpu).unwrap();
    let hi = adjust_jpeg_quality(&x, 95).unwrap();
    let lo = adjust_jpeg_quality(&x, 5).unwrap();
    assert!(max_err(&hi, &x) < 0.03, "q95 error {}", max_err(&hi, &x));
    assert!(max_err(&lo, &x) > max_err(&hi, &x));
    // The random op equals the deterministic one at some quality in [10, 90).
    let y = random_jpeg_quality(&x, 10, 90, (3, 1)).unwrap();
    assert!((10..90).any(|q| v(&adjust_jpeg_quality(&x, q).unwrap()) == v(&y)));
    // Grey images work; a batch is coded image by image.
    let g = x.narrow(2, 0, 1).unwrap().expand_dims(0).unwrap().tile(&[2, 1, 1, 1]).unwrap();
    let gy = adjust_jpeg_quality(&g, 90).unwrap();
    assert_eq!(gy.dims(), &[2, h, w, 1]);
    assert_eq!(v(&gy.narrow(0, 0, 1).unwrap()), v(&gy.narrow(0, 1, 1).unwrap()));
}

#[test]
fn random_op_errors_name_the_op_and_the_values() {
    let x = img();
    let e = |r: fovea_core::Result<Tensor>| r.unwrap_err().to_string();
    let m = e(random_crop(&x, (7, 2), (0, 0)));
    assert!(m.contains("random_crop") && m.contains("1..=6 x 1..=7") && m.contains("(7, 2)"), "{m}");
    let m = e(random_crop(&x.reshape(&[2, 126]).unwrap(), (1, 1), (0, 0)));
    assert!(m.contains("random_crop") && m.contains("[2, 126]"), "{m}");
    let m = e(random_brightness(&x, -0.1, (0, 0)));
    assert!(m.contains("random_brightness") && m.contains("-0.1"), "{m}");
    let m = e(random_brightness(&x, f32::NAN, (0, 0)));
    assert!(m.contains("random_brightness") && m.contains("NaN"), "{m}");
    let m = e(random_contrast(&x, 1.5, 0.5, (0, 0)));
    assert!(m.contains("random_contrast") && m.contains("lower=1.5, upper=0.5"), "{m}");
    let m = e(random_saturation(&x, -1.0, 0.5, (0, 0)));
    assert!(m.contains("random_saturation") && m.contains("lower=-1"), "{m}");
    let m = e(random_hue(&x, 0.7, (0, 0)));
    assert!(m.contains("random_hue") && m.contains("[0, 0.5]") && m.contains("0.7"), "{m}");
    let m = e(random_jpeg_quality(&x, 50, 50, (0, 0)));
    assert!(m.contains("random_jpeg_quality") && m.contains("min_quality=50, max_quality=50"), "{m}");
    let m = e(adjust_jpeg_quality(&x.narrow(3, 0, 2).unwrap(), 50));
    assert!(m.contains("adjust_jpeg_quality") && m.contains("1 or 3 channels") && m.contains("[2, 6, 7, 2]"), "{m}");
    let m = e(adjust_jpeg_quality(&x, 0));
    assert!(m.contains("quality in 1..=100"), "{m}");
}
