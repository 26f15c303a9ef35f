//! The Keras preprocessing layers: numerics against Keras (fixtures from
//! `tools/fixtures/gen_image_aug_fixtures.py`), inference passthrough, seeded determinism,
//! config round trips, a training step through a `Sequential`, and error messages.

use fovea_core::{io::load_safetensors, set_seed, DType, Device, Tensor};
use fovea_nn::layer::Layer;
use fovea_nn::layers::{Conv2D, Dense, Flatten};
use fovea_nn::model::registry::layer_from_config;
use fovea_nn::model::{Model, Sequential};
use fovea_nn::optimizers::Optimizer;
use fovea_vision::image::{affine_transform, flip_left_right, FillMode, Interpolation};
use fovea_vision::preprocessing::*;
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/image_aug.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

fn max_err(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

fn check(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let e = max_err(got, want);
    assert!(e <= tol, "{what}: max abs error {e} > {tol}");
}

#[test]
fn deterministic_layers_match_keras() {
    let f = fixtures();
    let x = &f["img"];
    let run = |l: &dyn Layer| l.apply(std::slice::from_ref(x), false).unwrap();
    check("rescaling", &run(&Rescaling::new(1.0 / 127.5, -1.0).unwrap()), &f["layers/rescaling"], 1e-6);
    check("resizing 5x4", &run(&Resizing::new(5, 4).unwrap()), &f["layers/resizing/5x4"], 1e-5);
    check(
        "resizing nearest",
        &run(&Resizing::new(5, 4).unwrap().interpolation("nearest").unwrap()),
        &f["layers/resizing/5x4_nearest"],
        0.0,
    );
    check("resizing crop 4x6", &run(&Resizing::new(4, 6).unwrap().crop_to_aspect_ratio(true)), &f["layers/resizing/4x6_crop"], 1e-5);
    check("resizing crop 10x5", &run(&Resizing::new(10, 5).unwrap().crop_to_aspect_ratio(true)), &f["layers/resizing/10x5_crop"], 1e-5);
    check("center_crop 5x6", &run(&CenterCrop::new(5, 6).unwrap()), &f["layers/center_crop/5x6"], 0.0);
    // Larger than the input along one axis: Keras falls back to crop-to-aspect + resize.
    check("center_crop 8x6", &run(&CenterCrop::new(8, 6).unwrap()), &f["layers/center_crop/8x6"], 1e-5);
    check("center_crop 4x12", &run(&CenterCrop::new(4, 12).unwrap()), &f["layers/center_crop/4x12"], 1e-5);
    // uint8 in, uint8 out for Resizing (rounded and saturated): (37·i mod 251) on a 5×5 grid
    // resized to 3×4, values from Keras 3 (chosen with no float result near a .5 tie).
    let ramp = Tensor::from_vec((0..25).map(|i| (i * 37 % 251) as u8).collect::<Vec<_>>(), vec![1, 5, 5, 1], Device::Cpu).unwrap();
    let r = Resizing::new(3, 4).unwrap().apply(std::slice::from_ref(&ramp), false).unwrap();
    assert_eq!(r.to_vec::<u8>().unwrap(), vec![66, 81, 75, 121, 124, 170, 216, 43, 160, 60, 106, 152]);
    assert_eq!(CenterCrop::new(2, 2).unwrap().apply(&[ramp], false).unwrap().dtype(), DType::F32);
    // A single HWC image keeps its rank.
    let one = x.narrow(0, 1, 1).unwrap().squeeze(&[0]).unwrap();
    let got = CenterCrop::new(5, 6).unwrap().apply(&[one], false).unwrap();
    check("center_crop single", &got, &f["layers/center_crop/5x6"].narrow(0, 1, 1).unwrap().squeeze(&[0]).unwrap(), 0.0);
}

#[test]
fn normalization_adapt_matches_keras() {
    let f = fixtures();
    let data = &f["layers/norm/data"];
    let norm = Normalization::new(&[-1]);
    norm.adapt(data).unwrap();
    let (m, v) = norm.stats().unwrap().unwrap();
    let close = |a: &[f32], b: &Tensor, tol: f32| a.iter().zip(b.to_vec::<f32>().unwrap()).all(|(x, y)| (x - y).abs() <= tol);
    assert!(close(&m, &f["layers/norm/mean"], 1e-5), "mean {m:?}");
    assert!(close(&v, &f["layers/norm/variance"], 1e-4), "variance {v:?}");
    check("normalized", &norm.apply(std::slice::from_ref(data), false).unwrap(), &f["layers/norm/out"], 1e-5);
    // Keras's three non-trainable weights, `count` being the number of reduced values.
    let w = norm.weights();
    assert_eq!(w.iter().map(|v| v.name().rsplit('/').next().unwrap().to_string()).collect::<Vec<_>>(), ["mean", "variance", "count"]);
    assert_eq!(w[2].value().to_vec::<f32>().unwrap(), vec![5.0 * 4.0 * 3.0]);
    assert!(norm.trainable_weights().is_empty());
    // Adapting over batches of two (the last one short) combines statistics as Keras does.
    let by_axes = Normalization::new(&[1, 3]);
    let batches: Vec<Tensor> = [(0, 2), (2, 2), (4, 1)].iter().map(|&(s, n)| data.narrow(0, s, n).unwrap()).collect();
    by_axes.adapt_batches(batches).unwrap();
    let (m, v) = by_axes.stats().unwrap().unwrap();
    assert!(close(&m, &f["layers/norm/axis13/mean"], 1e-5), "axis13 mean {m:?}");
    assert!(close(&v, &f["layers/norm/axis13/variance"], 1e-4), "axis13 variance {v:?}");
}

#[test]
fn normalization_with_given_stats_and_invert() {
    let x = Tensor::from_vec(vec![1.0f32, 10.0, 3.0, 30.0], vec![2, 2], Device::Cpu).unwrap();
    let norm = Normalization::new(&[-1]).with_stats(&[2.0, 20.0], &[4.0, 100.0]).unwrap();
    // (1-2)/2, (10-20)/10, (3-2)/2, (30-20)/10
    assert_eq!(norm.apply(std::slice::from_ref(&x), false).unwrap().to_vec::<f32>().unwrap(), vec![-0.5, -1.0, 0.5, 1.0]);
    let inv = Normalization::new(&[-1]).with_stats(&[2.0, 20.0], &[4.0, 100.0]).unwrap().invert(true);
    assert_eq!(inv.apply(&[x], false).unwrap().to_vec::<f32>().unwrap(), vec![4.0, 120.0, 8.0, 320.0]);
    // A zero variance divides by 1e-7, not by zero.
    let z = Normalization::new(&[]).with_stats(&[1.0], &[0.0]).unwrap();
    let y = z.apply(&[Tensor::from_vec(vec![1.0f32, 1.5], vec![2, 1], Device::Cpu).unwrap()], false).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 0.5e7]);
}

fn random_layers(seed: u64) -> Vec<Box<dyn Layer>> {
    vec![
        Box::new(RandomFlip::new("horizontal_and_vertical").unwrap().seed(seed)),
        Box::new(RandomRotation::new(0.2).unwrap().seed(seed)),
        Box::new(RandomZoom::new(0.3, None).unwrap().seed(seed)),
        Box::new(RandomTranslation::new(0.2, 0.3).unwrap().seed(seed)),
        Box::new(RandomContrast::new(0.5).unwrap().value_range((0.0, 1.0)).unwrap().seed(seed)),
        Box::new(RandomBrightness::new(0.2).unwrap().value_range((0.0, 1.0)).unwrap().seed(seed)),
        Box::new(RandomCrop::new(5, 6).unwrap().seed(seed)),
    ]
}

#[test]
fn random_layers_pass_through_in_inference_and_are_seeded_in_training() {
    let x = fixtures()["img"].clone();
    for (a, b) in random_layers(3).iter().zip(random_layers(3)) {
        let name = a.class_name();
        assert_eq!(a.apply(std::slice::from_ref(&x), false).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap(), "{name}");
        // Same seed, same sequence of augmentations; the two calls of one layer differ.
        let (a1, a2) = (a.apply(std::slice::from_ref(&x), true).unwrap(), a.apply(std::slice::from_ref(&x), true).unwrap());
        let (b1, b2) = (b.apply(std::slice::from_ref(&x), true).unwrap(), b.apply(std::slice::from_ref(&x), true).unwrap());
        assert_eq!(a1.to_vec::<f32>().unwrap(), b1.to_vec::<f32>().unwrap(), "{name}");
        assert_eq!(a2.to_vec::<f32>().unwrap(), b2.to_vec::<f32>().unwrap(), "{name}");
        if name != "RandomFlip" {
            assert_ne!(a1.to_vec::<f32>().unwrap(), a2.to_vec::<f32>().unwrap(), "{name}");
        }
    }
}

#[test]
fn random_layers_apply_the_deterministic_op_with_a_drawn_parameter() {
    let x = fixtures()["img"].clone();
    let xs = std::slice::from_ref(&x);
    let img = |t: &Tensor, i: usize| t.narrow(0, i, 1).unwrap().to_vec::<f32>().unwrap();
    // RandomFlip: each image is unchanged or mirrored.
    let flip = RandomFlip::new("horizontal").unwrap().seed(5);
    let mirrored = flip_left_right(&x).unwrap();
    let mut flipped = 0;
    for _ in 0..20 {
        let y = flip.apply(xs, true).unwrap();
        for i in 0..2 {
            if img(&y, i) == img(&mirrored, i) {
                flipped += 1;
            } else {
                assert_eq!(img(&y, i), img(&x, i));
            }
        }
    }
    assert!((10..=30).contains(&flipped), "{flipped} of 40 flipped");
    // RandomBrightness: a constant shift per image, within ±0.2 of the (0, 1) range; nothing
    // clips because the fixture image's values leave room (checked on unclipped pixels).
    let br = RandomBrightness::new(0.2).unwrap().value_range((0.0, 1.0)).unwrap().seed(2);
    let y = br.apply(xs, true).unwrap();
    for i in 0..2 {
        let (a, b) = (img(&x, i), img(&y, i));
        let deltas: Vec<f32> = a.iter().zip(&b).filter(|(_, &o)| o > 0.0 && o < 1.0).map(|(p, o)| o - p).collect();
        assert!(deltas.iter().all(|d| (d - deltas[0]).abs() < 1e-6) && deltas[0].abs() <= 0.2, "{deltas:?}");
    }
    // RandomRotation: the output is affine_transform with one rotation in ±0.2 turns. Recover
    // the angle by search and compare exactly.
    let rot = RandomRotation::new(0.2).unwrap().fill_mode("constant").unwrap().seed(4);
    let y = rot.apply(xs, true).unwrap();
    let single = |i: usize| x.narrow(0, i, 1).unwrap();
    for i in 0..2 {
        let found = (-720..=720).map(|t| t as f32 * 0.1).find(|&angle| {
            let m = fovea_vision::image::affine_matrix(&fovea_vision::image::AffineParams { angle, ..Default::default() }, 7, 9);
            let r = affine_transform(&single(i), &[m], Interpolation::Bilinear, FillMode::Constant, 0.0).unwrap();
            max_err(&r, &y.narrow(0, i, 1).unwrap()) < 0.02
        });
        assert!(found.is_some(), "image {i}: no rotation angle in ±72° reproduces the output");
    }
    // RandomCrop in training: a 5×6 window of the input.
    let crop = RandomCrop::new(5, 6).unwrap().seed(9);
    let y = crop.apply(xs, true).unwrap();
    assert_eq!(y.dims(), &[2, 5, 6, 3]);
    let hit = (0..=2).flat_map(|t| (0..=3).map(move |l| (t, l))).any(|(t, l)| {
        fovea_vision::image::crop_to_bounding_box(&x, t, l, 5, 6).unwrap().to_vec::<f32>().unwrap() == y.to_vec::<f32>().unwrap()
    });
    assert!(hit, "the crop is not a window of the input");
}

#[test]
fn contrast_factors_cover_the_documented_range() {
    let x = Tensor::from_vec(vec![0.25f32, 0.75], vec![1, 1, 2, 1], Device::Cpu).unwrap();
    let layer = RandomContrast::new(0.5).unwrap().value_range((-10.0, 10.0)).unwrap().seed(1);
    // With mean 0.5, the output is 0.5 ∓ 0.25·c, so c = (0.5 − y0) / 0.25.
    let cs: Vec<f32> =
        (0..400).map(|_| (0.5 - layer.apply(std::slice::from_ref(&x), true).unwrap().to_vec::<f32>().unwrap()[0]) / 0.25).collect();
    assert!(cs.iter().all(|&c| (0.5 - 1e-5..=1.5 + 1e-5).contains(&c)));
    assert!(cs.iter().filter(|&&c| c < 1.0).count() > 150 && cs.iter().filter(|&&c| c > 1.0).count() > 150);
}

#[test]
fn configs_round_trip_through_layer_from_config() {
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Rescaling::new(0.5, 1.0).unwrap()),
        Box::new(Normalization::new(&[-1]).with_stats(&[1.0, 2.0, 3.0], &[1.0, 4.0, 9.0]).unwrap()),
        Box::new(Resizing::new(4, 6).unwrap().interpolation("nearest").unwrap().crop_to_aspect_ratio(true)),
        Box::new(CenterCrop::new(5, 6).unwrap()),
        Box::new(RandomRotation::new((-0.1, 0.3)).unwrap().fill_mode("wrap").unwrap().fill_value(0.5).seed(7)),
        Box::new(RandomZoom::new(0.2, Some(Factor::Range(-0.1, 0.4))).unwrap().interpolation("nearest").unwrap().seed(8)),
        Box::new(RandomTranslation::new(0.1, 0.2).unwrap().fill_mode("constant").unwrap().seed(9)),
    ];
    let x = fixtures()["img"].clone();
    let mut more = random_layers(11);
    more.truncate(1);
    for l in layers.iter().chain(&more) {
        let c = l.config();
        let back = layer_from_config(l.class_name(), &c).unwrap();
        assert_eq!(back.config(), c, "{}", l.class_name());
        assert_eq!(back.name(), l.name());
        // Same config and seed: the same output, training or not.
        for training in [false, true] {
            let (a, b) = (l.apply(std::slice::from_ref(&x), training).unwrap(), back.apply(std::slice::from_ref(&x), training).unwrap());
            assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{} training={training}", l.class_name());
        }
    }
    assert_eq!(layers[4].config()["factor"], serde_json::json!([-0.1f32, 0.3f32]));
    assert_eq!(layers[4].config()["fill_mode"], "wrap");
    // Other classes go to fovea-nn's registry.
    let flat = layer_from_config("Flatten", &serde_json::json!({})).unwrap();
    assert_eq!(flat.class_name(), "Flatten");
}

#[test]
fn sequential_with_augmentation_trains_one_step() {
    set_seed(21);
    // Images symmetric under both flips: the augmentation changes nothing, so the training
    // loss of the step must equal the loss evaluated before it.
    let base = fovea_core::testing::rand(&[4, 6, 6, 1], 0.0, 255.0, 3, Device::Cpu);
    let sym = base.add(&base.flip(&[1]).unwrap()).unwrap();
    let x = sym.add(&sym.flip(&[2]).unwrap()).unwrap().mul_scalar(0.25).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 0, 1], vec![4], Device::Cpu).unwrap();
    let model = Sequential::with_input_shape(&[6, 6, 1]);
    model.add(RandomFlip::new("horizontal_and_vertical").unwrap().seed(1)).unwrap();
    model.add(Rescaling::new(1.0 / 255.0, 0.0).unwrap()).unwrap();
    model.add(Conv2D::new(2, (3, 3))).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model
        .compile(
            Optimizer::sgd(0.1, 0.0, false),
            fovea_nn::losses::LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(),
            &[],
        )
        .unwrap();
    let before = model.evaluate(&x, &y, 4).unwrap()["loss"];
    let kernel = model.weights()[0].value().to_vec::<f32>().unwrap();
    let logs = model.train_on_batch(&x, &y).unwrap();
    assert!((logs["loss"] - before).abs() < 1e-5, "train loss {} vs evaluated {before}", logs["loss"]);
    assert_ne!(model.weights()[0].value().to_vec::<f32>().unwrap(), kernel, "the step left the kernel unchanged");
    assert!(model.evaluate(&x, &y, 4).unwrap()["loss"] < before);
    // The preprocessing layers add no weights.
    assert_eq!(model.weights().len(), 4);
}

#[test]
fn bad_inputs_and_arguments_are_clear_errors() {
    let e = |r: fovea_nn::Result<Tensor>| r.unwrap_err().to_string();
    let flat = Tensor::zeros(vec![2, 5], DType::F32, Device::Cpu).unwrap();
    let msg = e(RandomRotation::new(0.1).unwrap().named_apply(&flat));
    assert!(msg.contains("random_rotation") && msg.contains("rank 3 (H, W, C) or 4") && msg.contains("[2, 5]"), "{msg}");
    let msg = e(CenterCrop::new(2, 2).unwrap().named_apply(&flat));
    assert!(msg.contains("center_crop") && msg.contains("[2, 5]"), "{msg}");
    let ints = Tensor::zeros(vec![1, 2, 2, 1], DType::I64, Device::Cpu).unwrap();
    let msg = e(RandomFlip::new("vertical").unwrap().named_apply(&ints));
    assert!(msg.contains("float32 or uint8") && msg.contains("int64"), "{msg}");
    let cfg = |r: fovea_nn::Result<()>| r.unwrap_err().to_string();
    let msg = cfg(RandomRotation::new(1.5).map(|_| ()));
    assert!(msg.contains("RandomRotation") && msg.contains("[-1, 1]") && msg.contains("1.5"), "{msg}");
    let msg = cfg(RandomZoom::new(-1.0, None).map(|_| ()));
    assert!(msg.contains("RandomZoom") && msg.contains("(-1, 1]"), "{msg}");
    let msg = cfg(RandomContrast::new(f32::NAN).map(|_| ()));
    assert!(msg.contains("RandomContrast") && msg.contains("NaN"), "{msg}");
    let msg = cfg(RandomBrightness::new(0.1).unwrap().value_range((0.0, f32::INFINITY)).map(|_| ()));
    assert!(msg.contains("RandomBrightness") && msg.contains("finite value_range"), "{msg}");
    let msg = cfg(RandomFlip::new("diagonal").map(|_| ()));
    assert!(msg.contains("RandomFlip") && msg.contains("\"diagonal\""), "{msg}");
    let msg = cfg(Resizing::new(0, 3).map(|_| ()));
    assert!(msg.contains("Resizing") && msg.contains("(0, 3)"), "{msg}");
    let msg = cfg(Resizing::new(3, 3).unwrap().interpolation("cubic").map(|_| ()));
    assert!(msg.contains("\"cubic\"") && msg.contains("lanczos5"), "{msg}");
    let msg = cfg(RandomRotation::new(0.1).unwrap().fill_mode("mirror").map(|_| ()));
    assert!(msg.contains("RandomRotation") && msg.contains("\"mirror\""), "{msg}");
    let msg = cfg(Normalization::new(&[-1]).with_stats(&[1.0], &[-1.0]).map(|_| ()));
    assert!(msg.contains("Normalization") && msg.contains("non-negative"), "{msg}");
    // Adapting with data whose kept axis differs from the built one.
    let norm = Normalization::new(&[-1]);
    norm.adapt(&Tensor::ones(vec![4, 3], DType::F32, Device::Cpu).unwrap()).unwrap();
    let msg = cfg(norm.adapt(&Tensor::ones(vec![4, 2], DType::F32, Device::Cpu).unwrap()));
    assert!(msg.contains("normalization") && msg.contains("[4, 2]") && msg.contains("[3]"), "{msg}");
    let msg = cfg(norm.adapt_batches(Vec::new()));
    assert!(msg.contains("no batches"), "{msg}");
    let fixed = Normalization::new(&[-1]).with_stats(&[0.0], &[1.0]).unwrap();
    let msg = cfg(fixed.adapt(&Tensor::ones(vec![4, 3], DType::F32, Device::Cpu).unwrap()));
    assert!(msg.contains("given a mean and variance"), "{msg}");
    // Axes and statistics that do not fit the input.
    let x34 = Tensor::ones(vec![4, 3], DType::F32, Device::Cpu).unwrap();
    let msg = e(Normalization::new(&[2]).apply(std::slice::from_ref(&x34), false));
    assert!(msg.contains("normalization") && msg.contains("axis 2 is out of range for inputs of rank 2"), "{msg}");
    let msg = e(Normalization::new(&[-1]).with_stats(&[0.0, 1.0], &[1.0, 1.0]).unwrap().apply(std::slice::from_ref(&x34), false));
    assert!(msg.contains("expected 1 or 3 mean/variance values") && msg.contains("got 2"), "{msg}");
    let built = Normalization::new(&[-1]);
    built.adapt(&x34).unwrap();
    let msg = e(built.apply(&[Tensor::ones(vec![4, 5], DType::F32, Device::Cpu).unwrap()], false));
    assert!(msg.contains("broadcastable") && msg.contains("[1, 3]") && msg.contains("[4, 5]"), "{msg}");
    let msg = layer_from_config("RandomZoom", &serde_json::json!({"height_factor": "big"})).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains("RandomZoom config") && msg.contains("height_factor"), "{msg}");
}

/// Applies a layer to one tensor in training mode.
trait NamedApply {
    fn named_apply(&self, x: &Tensor) -> fovea_nn::Result<Tensor>;
}

impl<L: Layer> NamedApply for L {
    fn named_apply(&self, x: &Tensor) -> fovea_nn::Result<Tensor> {
        self.apply(std::slice::from_ref(x), true)
    }
}
