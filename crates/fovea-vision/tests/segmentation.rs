//! Segmentation against Keras 3 / TensorFlow: per-pixel losses (value and gradient), metrics,
//! and the U-Net layer tables, from `tools/fixtures/gen_segmentation_fixtures.py`.

use fovea_core::io::load_safetensors;
use fovea_core::testing::assert_close;
use fovea_core::{Device, Tensor};
use fovea_nn::metrics::{Metric, MetricKind};
use fovea_vision::segmentation::losses::{dice_loss, sparse_pixel_crossentropy, sparse_pixel_focal, PixelLossOptions};
use fovea_vision::segmentation::metrics::SegmentationMetrics;
use std::collections::HashMap;

fn fixtures() -> HashMap<String, Tensor> {
    load_safetensors(format!("{}/tests/fixtures/segmentation/losses.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap()
}

#[test]
fn pixel_losses_and_gradients_match_keras() {
    let f = fixtures();
    type LossFn = Box<dyn Fn(&Tensor, &Tensor, Option<Vec<f32>>) -> fovea_nn::Result<Tensor>>;
    let sce = |from_logits: bool, ignore: bool| -> LossFn {
        Box::new(move |y, p, w| {
            let opts = PixelLossOptions { from_logits, ignore_label: ignore.then_some(255), class_weights: w };
            sparse_pixel_crossentropy(y, p, &opts)
        })
    };
    let dice = |from_logits: bool| -> LossFn {
        Box::new(move |y, p, _| dice_loss(y, p, &PixelLossOptions { from_logits, ignore_label: None, class_weights: None }))
    };
    let focal = |from_logits: bool, alpha: f32, gamma: f32| -> LossFn {
        Box::new(move |y, p, _| {
            sparse_pixel_focal(y, p, alpha, gamma, &PixelLossOptions { from_logits, ignore_label: Some(255), class_weights: None })
        })
    };
    let cases: Vec<(&str, LossFn)> = vec![
        ("sce_logits", sce(true, false)),
        ("sce_probs", sce(false, false)),
        ("sce_logits_ignore", sce(true, true)),
        ("sce_logits_weighted", sce(true, false)),
        ("sce_logits_weighted_ignore", sce(true, true)),
        ("dice_probs", dice(false)),
        ("dice_logits", dice(true)),
        ("focal_logits_ignore", focal(true, 0.25, 2.0)),
        ("focal_probs", focal(false, 0.5, 1.0)),
    ];
    for (name, loss) in cases {
        let labels = &f[&format!("{name}.labels")];
        let pred = f[&format!("{name}.y_pred")].with_requires_grad(true).unwrap();
        let weights = f.get(&format!("{name}.class_weights")).map(|w| w.to_vec::<f32>().unwrap());
        let value = loss(labels, &pred, weights).unwrap();
        assert_close(name, &value.to_vec::<f32>().unwrap(), &f[&format!("{name}.loss")].to_vec::<f32>().unwrap(), 1e-5, 1e-6);
        let g = value.backward().unwrap();
        assert_close(
            &format!("d {name}"),
            &g.get(&pred).unwrap().to_vec::<f32>().unwrap(),
            &f[&format!("{name}.dpred")].to_vec::<f32>().unwrap(),
            1e-4,
            1e-6,
        );
    }
}

#[test]
fn pixel_metrics_match_keras() {
    let f = fixtures();
    let (labels, scores) = (&f["metrics.labels"], &f["metrics.scores"]);
    let mut m = SegmentationMetrics::new(6, Some(255));
    // Two batches (the images split 1 + 2) give the same counts as one.
    m.update(&labels.narrow(0, 0, 1).unwrap(), &scores.narrow(0, 0, 1).unwrap()).unwrap();
    m.update(&labels.narrow(0, 1, 2).unwrap(), &scores.narrow(0, 1, 2).unwrap()).unwrap();
    let want = |k: &str| f[k].to_vec::<f32>().unwrap();
    assert_close("mean IoU", &[m.mean_iou() as f32], &want("metrics.mean_iou"), 1e-6, 1e-7);
    assert_close("class IoU", &m.class_iou().iter().map(|&v| v as f32).collect::<Vec<_>>(), &want("metrics.class_iou"), 1e-6, 1e-7);
    assert_close("pixel accuracy", &[m.pixel_accuracy() as f32], &want("metrics.pixel_accuracy"), 1e-6, 1e-7);
    assert_close("class Dice", &m.class_dice().iter().map(|&v| v as f32).collect::<Vec<_>>(), &want("metrics.class_dice"), 1e-6, 1e-7);
}

#[test]
fn keras_mean_iou_metric_takes_label_maps() {
    // fovea-nn's MeanIoU metric (no ignore label) on (N, H, W) labels against (N, H, W, C)
    // scores agrees with the segmentation counts once no pixel is ignored.
    let f = fixtures();
    let labels = f["metrics.labels"].to_vec::<i64>().unwrap().into_iter().map(|l| if l == 255 { 5 } else { l }).collect::<Vec<_>>();
    let labels = Tensor::from_vec(labels, [3, 8, 8], Device::Cpu).unwrap();
    let mut keras_style = Metric::new(MetricKind::MeanIou(6), "mean_iou");
    keras_style.update_state(&labels, &f["metrics.scores"]).unwrap();
    let mut m = SegmentationMetrics::new(6, None);
    m.update(&labels, &f["metrics.scores"]).unwrap();
    assert!((keras_style.result() - m.mean_iou()).abs() < 1e-12, "{} vs {}", keras_style.result(), m.mean_iou());
    assert!(m.mean_iou() > 0.2 && m.mean_iou() < 0.9, "{}", m.mean_iou());
}

/// Every layer's class, output shape and parameter count, by name, and the totals, against
/// the Keras build of the same architecture; `summary()` reports the same total.
fn check_against_keras(file: &str, model: &fovea_nn::model::functional::Functional) {
    use fovea_nn::layer::{Layer, ShapeSpec};
    let path = format!("{}/tests/fixtures/segmentation/{file}.json", env!("CARGO_MANIFEST_DIR"));
    let keras: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let params = |vs: &[fovea_core::Variable]| vs.iter().map(|v| v.value().numel()).sum::<usize>();
    let want: HashMap<String, (String, ShapeSpec, usize)> = keras["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let shape = r[2].as_array().unwrap().iter().map(|d| d.as_u64().map(|d| d as usize)).collect();
            (r[0].as_str().unwrap().to_string(), (r[1].as_str().unwrap().to_string(), shape, r[3].as_u64().unwrap() as usize))
        })
        .collect();
    // Output shapes node by node from the model's config (nodes come after their parents).
    let config = model.config();
    let layers = model.layers();
    let mut shapes: Vec<ShapeSpec> = Vec::new();
    let mut got = HashMap::new();
    for node in config["nodes"].as_array().unwrap() {
        let ins: Vec<ShapeSpec> = node["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let s = r.as_str().unwrap();
                let i: usize = s[1..].parse().unwrap();
                if s.starts_with('i') {
                    model.inputs()[i].shape().clone()
                } else {
                    shapes[i].clone()
                }
            })
            .collect();
        let layer = &layers[node["layer"].as_u64().unwrap() as usize];
        let out = layer.compute_output_shape(&ins).unwrap();
        got.insert(layer.name().to_string(), (layer.class_name().to_string(), out.clone(), params(&layer.weights())));
        shapes.push(out);
    }
    assert_eq!(got.len(), want.len(), "{file}: layer count");
    for (name, w) in &want {
        assert_eq!(got.get(name), Some(w), "{file}: layer {name} (fovea, Keras)");
    }
    let (total, trainable) = (params(&model.weights()), params(&model.trainable_weights()));
    assert_eq!(
        (total, trainable, total - trainable),
        (
            keras["total"].as_u64().unwrap() as usize,
            keras["trainable"].as_u64().unwrap() as usize,
            keras["non_trainable"].as_u64().unwrap() as usize
        ),
        "{file}: total / trainable / non-trainable"
    );
    let summary = model.summary().unwrap();
    let total_text = keras["total"].as_u64().unwrap().to_string();
    let grouped: String = total_text
        .chars()
        .rev()
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(",")
        .chars()
        .rev()
        .collect();
    assert!(summary.contains(&grouped), "{file}: summary lacks the total {grouped}:\n{summary}");
}

#[test]
fn unet_layer_tables_match_keras() {
    use fovea_vision::applications::{unet, unet_small};
    let small = unet_small((128, 128, 1), 11).unwrap();
    check_against_keras("unet_small", &small);
    check_against_keras("unet", &unet((256, 256, 1), 2).unwrap());
    // A forward pass keeps the input's size and gives one logit per class.
    let x = fovea_core::testing::rand(&[1, 32, 32, 1], 0.0, 1.0, 5, Device::Cpu);
    let out = fovea_vision::applications::unet_small((32, 32, 1), 11).unwrap().call_all(&[x], false).unwrap();
    assert_eq!(out[0].dims(), &[1, 32, 32, 11]);
    let e = unet_small((100, 128, 1), 11).err().expect("100 rows do not pool three times").to_string();
    assert!(e.contains("multiples of 8, got 100×128"), "{e}");
}

#[test]
fn fcn_and_aspp_layer_tables_match_keras() {
    use fovea_nn::layers::Conv2D;
    use fovea_nn::model::functional::{Connect, Functional, Input};
    use fovea_vision::applications::{aspp, fcn, FcnVariant};
    for (file, variant) in [("fcn8s", FcnVariant::Fcn8s), ("fcn16s", FcnVariant::Fcn16s), ("fcn32s", FcnVariant::Fcn32s)] {
        check_against_keras(file, &fcn((224, 224, 3), 21, variant).unwrap());
    }
    let e = fcn((200, 224, 3), 21, FcnVariant::Fcn8s).err().expect("200 is not a multiple of 32").to_string();
    assert!(e.contains("fcn8s: expected an input whose height and width are positive multiples of 32") && e.contains("200×224×3"), "{e}");
    let input = Input::named(&[32, 32, 320], "input");
    let x = aspp(&input, 256, &[6, 12, 18], "aspp").unwrap();
    let logits = Conv2D::new(21, (1, 1)).named("logits").unwrap().on(&x).unwrap();
    let head = Functional::new(&[&input], &[&logits]).unwrap().named("aspp_head").unwrap();
    check_against_keras("aspp_head", &head);
    // The pooled branch is broadcast back over the map: the output keeps 32×32 (tested at 8×8).
    let small = Input::named(&[8, 8, 4], "input");
    let x = aspp(&small, 3, &[2], "a").unwrap();
    let m = Functional::new(&[&small], &[&x]).unwrap();
    let out = m.call_all(&[fovea_core::testing::rand(&[2, 8, 8, 4], -1.0, 1.0, 3, Device::Cpu)], false).unwrap();
    assert_eq!(out[0].dims(), &[2, 8, 8, 3]);
}

/// Fake digits: class c is a bright bar whose width grows with c, on a 28×28 frame.
fn fake_digits(classes: &[i64]) -> Vec<u8> {
    let mut px = Vec::new();
    for &c in classes {
        for y in 0..28 {
            for x in 0..28 {
                px.push(if (4..24).contains(&y) && x >= 10 && x < 12 + c as usize { 255 } else { 0 });
            }
        }
    }
    px
}

#[test]
fn scene_masks_round_trip_through_the_folder_reader() {
    use fovea_vision::detection::scenes::{make_scenes, DigitSource, SceneOptions};
    use fovea_vision::segmentation::data::{read_mask_folder, scenes_to_tensors, write_segmentation_scenes};
    let labels = [3i64, 7, 9];
    let px = fake_digits(&labels);
    let scenes =
        make_scenes(&DigitSource { images: &px, labels: &labels, side: 28 }, &SceneOptions { count: 4, seed: 2, ..Default::default() })
            .unwrap();
    // Only background and 1 + the drawn digits appear, and every scene has a digit.
    for s in &scenes {
        assert!(s.mask.iter().all(|&m| [0, 4, 8, 10].contains(&m)));
        assert!(s.mask.iter().any(|&m| m > 0));
    }
    let dir = std::env::temp_dir().join(format!("fovea-seg-{}", std::process::id()));
    write_segmentation_scenes(&dir, &scenes, 128).unwrap();
    let folder = read_mask_folder(&dir, 1, 11, Some(255)).unwrap();
    assert_eq!(folder.names, ["000000.png", "000001.png", "000002.png", "000003.png"]);
    let (x, y) = scenes_to_tensors(&scenes, 128, Device::Cpu).unwrap();
    assert_eq!(folder.masks.cast(fovea_core::DType::I64).unwrap().to_vec::<i64>().unwrap(), y.to_vec::<i64>().unwrap());
    assert_eq!(folder.images.dims(), &[4, 128, 128, 1]);
    let grey: Vec<f32> = folder.images.to_vec::<u8>().unwrap().iter().map(|&p| f32::from(p) / 255.0).collect();
    assert_eq!(grey, x.to_vec::<f32>().unwrap());

    // Bad masks are errors naming the file.
    let mask = |name: &str| dir.join("masks").join(name);
    let save = |name: &str, v: &[u8], w: u32, h: u32| {
        image::save_buffer_with_format(mask(name), v, w, h, image::ExtendedColorType::L8, image::ImageFormat::Png).unwrap()
    };
    let mut bad = vec![0u8; 128 * 128];
    bad[130] = 11;
    save("000001.png", &bad, 128, 128);
    let e = read_mask_folder(&dir, 1, 11, Some(255)).unwrap_err().to_string();
    assert!(
        e.contains("000001.png") && e.contains("label 11 at pixel (row 1, column 2) is not a class 0 to 10 or the ignore label 255"),
        "{e}"
    );
    bad[130] = 255;
    save("000001.png", &bad, 128, 128);
    read_mask_folder(&dir, 1, 11, Some(255)).unwrap();
    let e = read_mask_folder(&dir, 1, 11, None).unwrap_err().to_string();
    assert!(e.contains("label 255 at pixel (row 1, column 2) is not a class 0 to 10"), "{e}");
    save("000002.png", &[0u8; 64 * 32], 64, 32);
    let e = read_mask_folder(&dir, 1, 11, Some(255)).unwrap_err().to_string();
    assert!(e.contains("000002.png") && e.contains("mask is 32×64 (height×width) but its image") && e.contains("is 128×128"), "{e}");
    std::fs::remove_file(mask("000002.png")).unwrap();
    let e = read_mask_folder(&dir, 1, 11, Some(255)).unwrap_err().to_string();
    assert!(e.contains("000002.png: missing mask for image"), "{e}");
    // Colour masks decode through Pascal VOC's palette: (128, 0, 0) is class 1, and a colour
    // outside the palette is named with the file.
    let mut rgb = vec![0u8; 128 * 128 * 3];
    rgb[0] = 128;
    let save_rgb = |v: &[u8]| {
        image::save_buffer_with_format(mask("000002.png"), v, 128, 128, image::ExtendedColorType::Rgb8, image::ImageFormat::Png).unwrap()
    };
    save_rgb(&rgb);
    let folder = read_mask_folder(&dir, 1, 11, Some(255)).unwrap();
    assert_eq!(folder.masks.narrow(0, 2, 1).unwrap().to_vec::<u8>().unwrap()[..2], [1, 0]);
    rgb[3] = 7;
    save_rgb(&rgb);
    let e = read_mask_folder(&dir, 1, 11, Some(255)).unwrap_err().to_string();
    assert!(e.contains("000002.png: colour (7, 0, 0) at pixel (row 0, column 1) is not in the palette"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn voc_indexed_masks_read_as_their_classes() {
    use fovea_vision::segmentation::data::read_mask;
    // An indexed PNG with VOC's palette, written by PIL (see the fixture script).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segmentation/voc_mask.png");
    let (h, w, v) = read_mask(&path, 21, Some(255)).unwrap();
    assert_eq!((h, w, v), (3, 4, vec![0, 1, 15, 255, 2, 0, 0, 255, 20, 15, 1, 0]));
    let e = read_mask(&path, 16, Some(255)).unwrap_err().to_string();
    assert!(e.contains("voc_mask.png") && e.contains("label 20 at pixel (row 2, column 0) is not a class 0 to 15"), "{e}");
}

#[test]
fn max_unpooling_matches_tensorflow_and_segnet_matches_keras() {
    use fovea_nn::layer::Layer;
    use fovea_vision::segmentation::unpool::MaxUnpooling2D;
    let f =
        load_safetensors(format!("{}/tests/fixtures/segmentation/unpool.safetensors", env!("CARGO_MANIFEST_DIR")), Device::Cpu).unwrap();
    let layer = MaxUnpooling2D::new((2, 2));
    let x = f["x"].with_requires_grad(true).unwrap();
    let out = layer.call(&[x.clone(), f["features"].clone()], true).unwrap();
    assert_close("unpooled", &out.to_vec::<f32>().unwrap(), &f["unpooled"].to_vec::<f32>().unwrap(), 0.0, 0.0);
    // The gradient gathers back from the argmax positions: d Σ out / d x is all ones.
    let g = out.sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).unwrap().to_vec::<f32>().unwrap().iter().all(|&v| v == 1.0));
    let e = layer.call(&[f["features"].clone(), f["features"].clone()], false).unwrap_err().to_string();
    assert!(e.contains("expected x of the pooled shape of features [2, 3, 2, 3], got [2, 6, 4, 3]"), "{e}");
    check_against_keras("segnet", &fovea_vision::applications::segnet((224, 224, 3), 12).unwrap());
}
