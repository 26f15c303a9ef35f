use super::*;
use crate::detection::coco::{CocoAnnotation, CocoCategory, CocoDataset, CocoImage};
use crate::detection::cocoeval::evaluate;
use fovea_core::testing::{assert_close, gradcheck};
use fovea_core::DType;

fn grid() -> YoloGrid {
    // 4×4 cells of 8 px over a 32 px image; a tall, a square and a wide anchor.
    YoloGrid::new(4, 8.0, vec![[6.0, 12.0], [10.0, 10.0], [20.0, 8.0]], 3).unwrap()
}

fn gt(b: BBox, class: usize) -> GtBox {
    GtBox { bbox: b, class }
}

fn at(t: &[f32], g: &YoloGrid, img: usize, i: usize, j: usize, a: usize) -> Vec<f32> {
    let (s, b, p) = (g.size, g.anchors.len(), g.per_anchor());
    t[(((img * s + i) * s + j) * b + a) * p..][..p].to_vec()
}

#[test]
fn encoder_picks_centre_cell_and_best_shaped_anchor() {
    let g = grid();
    // Centre (13, 21) → cell row 2, column 1, offsets (0.625, 0.625); 18×7 is closest to the wide anchor.
    let boxes = vec![vec![gt([4.0, 17.5, 22.0, 24.5], 2)], vec![]];
    let t = encode_targets(&g, &boxes, 0.5, Device::Reference).unwrap();
    assert_eq!(t.target.dims(), &[2, 4, 4, 3, 8]);
    assert_eq!(t.ignore.dims(), &[2, 4, 4, 3, 1]);
    let v = t.target.to_vec::<f32>().unwrap();
    let want = [0.625, 0.625, (18.0f32 / 20.0).ln(), (7.0f32 / 8.0).ln(), 1.0, 0.0, 0.0, 1.0];
    assert_close("target", &at(&v, &g, 0, 2, 1, 2), &want, 1e-6, 1e-6);
    // Exactly one responsible anchor in the batch; the empty image has none.
    assert_eq!(v.chunks(8).filter(|c| c[4] == 1.0).count(), 1);
    assert_eq!(v.iter().filter(|&&x| x != 0.0).count(), 6);
}

#[test]
fn anchors_overlapping_an_object_well_are_dont_care() {
    let g = grid();
    // A 10×10 box centred on cell (1, 1)'s centre is exactly the square anchor there.
    let boxes = vec![vec![gt([7.0, 7.0, 17.0, 17.0], 0)]];
    let t = encode_targets(&g, &boxes, 0.5, Device::Reference).unwrap();
    let ignore = t.ignore.to_vec::<f32>().unwrap();
    let target = t.target.to_vec::<f32>().unwrap();
    assert_eq!(at(&target, &g, 0, 1, 1, 1)[4], 1.0);
    // The responsible anchor is not also "don't care"; the tall anchor there (IoU 60/112) is;
    // the wide one (IoU 80/180) only under a lower threshold.
    assert_eq!(ignore[(4 + 1) * 3 + 1], 0.0);
    assert_eq!(ignore[(4 + 1) * 3], 1.0);
    assert_eq!(ignore[(4 + 1) * 3 + 2], 0.0);
    let loose = encode_targets(&g, &boxes, 0.4, Device::Reference).unwrap().ignore.to_vec::<f32>().unwrap();
    assert_eq!(loose[(4 + 1) * 3 + 2], 1.0);
    // Far cells never are.
    assert_eq!(loose[(3 * 4 + 3) * 3 + 1], 0.0);
}

#[test]
fn bad_boxes_are_errors_naming_image_and_box() {
    let g = grid();
    for (b, class, needle) in [
        ([f32::NAN, 0.0, 4.0, 4.0], 0, "finite"),
        ([5.0, 0.0, 4.0, 4.0], 0, "x2 > x1"),
        ([1.0, 1.0, 4.0, 1.0], 0, "x2 > x1"),
        ([30.0, 30.0, 40.0, 40.0], 0, "outside"),
        ([1.0, 1.0, 4.0, 4.0], 3, "class 3"),
    ] {
        let err =
            encode_targets(&g, &[vec![], vec![gt([1.0, 1.0, 3.0, 3.0], 0), gt(b, class)]], 0.5, Device::Reference).unwrap_err().to_string();
        assert!(err.contains("image 1, box 1") && err.contains(needle), "{err}");
    }
    assert!(YoloGrid::new(4, 8.0, vec![[0.0, 1.0]], 3).is_err());
    assert!(YoloGrid::new(4, f32::NAN, vec![[1.0, 1.0]], 3).is_err());
    assert!(YoloGrid::new(4, 8.0, vec![], 3).is_err());
}

fn scene_boxes() -> Vec<Vec<GtBox>> {
    vec![
        vec![gt([1.0, 2.0, 9.0, 14.0], 0), gt([12.5, 3.0, 31.0, 11.0], 2), gt([15.0, 17.0, 25.0, 29.0], 1)],
        vec![gt([3.0, 20.0, 11.0, 31.5], 1)],
        vec![],
    ]
}

fn coco_gt(boxes: &[Vec<GtBox>]) -> CocoDataset {
    let mut ds = CocoDataset {
        images: (0..boxes.len() as i64).map(|id| CocoImage { id: id + 10, file_name: String::new(), width: 32, height: 32 }).collect(),
        categories: (0..3).map(|c| CocoCategory { id: c + 1, name: c.to_string(), supercategory: String::new() }).collect(),
        annotations: vec![],
    };
    for (img, list) in boxes.iter().enumerate() {
        for g in list {
            let [x1, y1, x2, y2] = g.bbox.map(f64::from);
            ds.annotations.push(CocoAnnotation {
                id: ds.annotations.len() as i64 + 1,
                image_id: img as i64 + 10,
                category_id: g.class as i64 + 1,
                bbox: [x1, y1, x2 - x1, y2 - y1],
                area: (x2 - x1) * (y2 - y1),
                iscrowd: false,
            });
        }
    }
    ds
}

#[test]
fn encoding_then_decoding_ground_truth_gives_it_back_with_ap_one() {
    let g = grid();
    let boxes = scene_boxes();
    let targets = encode_targets(&g, &boxes, 0.5, Device::Reference).unwrap();
    let logits = perfect_logits(&g, &targets, 12.0).unwrap();
    assert_eq!(logits.dims(), &[3, 4, 4, 24]);
    for activation in [ClassActivation::Softmax, ClassActivation::Sigmoid] {
        let opts = DecodeOptions { class_activation: activation, ..DecodeOptions::default() };
        let dets = decode(&g, &logits, &opts).unwrap();
        for (found, want) in dets.iter().zip(&boxes) {
            assert_eq!(found.len(), want.len(), "{found:?}");
            for w in want {
                let d = found.iter().find(|d| d.class == w.class).expect("class found");
                assert_close("box", &d.bbox, &w.bbox, 0.0, 1e-3);
                assert!(d.score > 0.99, "{d:?}");
            }
        }
        let gt_ds = coco_gt(&boxes);
        let results = detections_to_coco(&dets, &[10, 11, 12], &[1, 2, 3]).unwrap();
        let stats = evaluate(&gt_ds, &results).stats();
        assert!((stats[0] - 1.0).abs() < 1e-9 && (stats[1] - 1.0).abs() < 1e-9, "{stats:?}");
    }
    // The same logits with the classes shuffled score AP 0: the check above can fail.
    let wrong: Vec<Vec<Detection>> = decode(&g, &logits, &DecodeOptions::default())
        .unwrap()
        .into_iter()
        .map(|v| v.into_iter().map(|d| Detection { class: (d.class + 1) % 3, ..d }).collect())
        .collect();
    let results = detections_to_coco(&wrong, &[10, 11, 12], &[1, 2, 3]).unwrap();
    assert_eq!(evaluate(&coco_gt(&boxes), &results).stats()[0], 0.0);
}

#[test]
fn decoder_applies_score_threshold_nms_and_max_detections() {
    let g = grid();
    let boxes = scene_boxes();
    let targets = encode_targets(&g, &boxes, 0.5, Device::Reference).unwrap();
    // Logit ±1: σ(1)·e/(e + 2/e) ≈ 0.575 for the objects, below a 0.6 threshold.
    let weak = perfect_logits(&g, &targets, 1.0).unwrap();
    let opts = DecodeOptions { score_threshold: 0.6, ..DecodeOptions::default() };
    assert!(decode(&g, &weak, &opts).unwrap().iter().all(|d| d.is_empty()));
    let strong = perfect_logits(&g, &targets, 12.0).unwrap();
    let one = decode(&g, &strong, &DecodeOptions { max_detections: 1, ..DecodeOptions::default() }).unwrap();
    assert_eq!(one.iter().map(|d| d.len()).collect::<Vec<_>>(), vec![1, 1, 0]);
    // Background anchors all decode to a confidence of σ(−12)·p ≈ 6e-6, below the default.
    let zeros = Tensor::zeros(vec![1, 4, 4, 24], DType::F32, Device::Reference).unwrap();
    // σ(0)·(1/3) ≈ 0.167 everywhere: every anchor is a candidate, NMS thins the duplicates.
    let all = decode(&g, &zeros, &DecodeOptions { max_detections: 1000, ..DecodeOptions::default() }).unwrap();
    assert!(!all[0].is_empty() && all[0].len() < 4 * 4 * 3 * 3, "{}", all[0].len());
}

#[test]
fn decoder_rejects_bad_shapes_and_non_finite_output() {
    let g = grid();
    let bad = Tensor::zeros(vec![1, 4, 4, 23], DType::F32, Device::Reference).unwrap();
    let err = decode(&g, &bad, &DecodeOptions::default()).unwrap_err().to_string();
    assert!(err.contains("(N, 4, 4, 24)") && err.contains("[1, 4, 4, 23]"), "{err}");
    let mut v = vec![0f32; 2 * 4 * 4 * 24];
    v[4 * 4 * 24 + (4 + 2) * 24 + 8 + 4] = f32::NAN;
    let nan = Tensor::from_vec(v, vec![2, 4, 4, 24], Device::Reference).unwrap();
    let err = decode(&g, &nan, &DecodeOptions::default()).unwrap_err().to_string();
    assert!(err.contains("NaN at image 1, cell (1, 2), anchor 1, value 4"), "{err}");
    let targets = encode_targets(&g, &[vec![]], 0.5, Device::Reference).unwrap();
    assert!(matches!(yolo_loss(&g, &bad, &targets, &YoloLossOptions::default()), Err(Error::ShapeMismatch { .. })));
    let two = Tensor::zeros(vec![2, 4, 4, 24], DType::F32, Device::Reference).unwrap();
    assert!(matches!(yolo_loss(&g, &two, &targets, &YoloLossOptions::default()), Err(Error::ShapeMismatch { .. })));
    assert!(detections_to_coco(&[vec![Detection { bbox: [0.0; 4], score: 1.0, class: 3 }]], &[1], &[1, 2, 3]).is_err());
    assert!(detections_to_coco(&[vec![]], &[], &[1]).is_err());
}

fn tiny() -> (YoloGrid, YoloTargets, Tensor) {
    let g = YoloGrid::new(2, 8.0, vec![[6.0, 10.0], [12.0, 8.0]], 2).unwrap();
    let boxes = vec![vec![gt([1.0, 2.0, 8.0, 11.0], 1), gt([9.0, 9.0, 15.0, 14.0], 0)]];
    let t = encode_targets(&g, &boxes, 0.3, Device::Reference).unwrap();
    let x = fovea_core::testing::rand(&[1, 2, 2, 14], -1.5, 1.5, 7, Device::Reference);
    (g, t, x)
}

#[test]
fn loss_gradients_match_finite_differences() {
    let (g, t, x) = tiny();
    for box_loss in [BoxLoss::Offsets, BoxLoss::SqrtSize, BoxLoss::Giou] {
        for class_activation in [ClassActivation::Softmax, ClassActivation::Sigmoid] {
            let opts = YoloLossOptions { box_loss, class_activation, ..YoloLossOptions::default() };
            gradcheck(|v| Ok(yolo_loss(&g, &v[0], &t, &opts)?.total), std::slice::from_ref(&x), 1e-3, 2e-3).unwrap();
        }
    }
}

#[test]
fn loss_terms_follow_their_definitions() {
    let (g, t, _) = tiny();
    let perfect = perfect_logits(&g, &t, 12.0).unwrap();
    let terms = yolo_loss(&g, &perfect, &t, &YoloLossOptions::default()).unwrap();
    let scalar = |x: &Tensor| x.to_scalar::<f32>().unwrap();
    assert!(scalar(&terms.total) < 1e-3, "{}", scalar(&terms.total));
    assert!(scalar(&terms.boxes) < 1e-6);
    // All-zero logits: objectness BCE is ln 2 per anchor. 2 responsible anchors of 8; the
    // rest are background unless "don't care".
    let zeros = Tensor::zeros(vec![1, 2, 2, 14], DType::F32, Device::Reference).unwrap();
    let terms = yolo_loss(&g, &zeros, &t, &YoloLossOptions::default()).unwrap();
    let ignored = t.ignore.to_vec::<f32>().unwrap().iter().sum::<f32>();
    let ln2 = std::f32::consts::LN_2;
    assert_close("obj", &[scalar(&terms.obj)], &[2.0 * ln2], 1e-5, 1e-6);
    assert_close("noobj", &[scalar(&terms.noobj)], &[(6.0 - ignored) * ln2], 1e-5, 1e-6);
    assert_close("class", &[scalar(&terms.class)], &[2.0 * ln2], 1e-5, 1e-6);
    let want = 5.0 * scalar(&terms.boxes) + 2.0 * ln2 + 0.5 * (6.0 - ignored) * ln2 + 2.0 * ln2;
    assert_close("total", &[scalar(&terms.total)], &[want], 1e-5, 1e-6);
    assert!(ignored > 0.0, "the tiny case should exercise don't-care anchors");
}

fovea_core::backend_test!(loss_agrees_on_every_backend, |dev| {
    let (g, t, x) = tiny();
    let on = YoloTargets { target: t.target.to(dev).unwrap(), ignore: t.ignore.to(dev).unwrap() };
    for box_loss in [BoxLoss::Offsets, BoxLoss::Giou] {
        let opts = YoloLossOptions { box_loss, ..YoloLossOptions::default() };
        let want = yolo_loss(&g, &x, &t, &opts).unwrap().total.to_scalar::<f32>().unwrap();
        let xd = x.to(dev).unwrap().with_requires_grad(true).unwrap();
        let loss = yolo_loss(&g, &xd, &on, &opts).unwrap().total;
        assert_eq!(loss.device(), dev);
        assert_close("loss", &[loss.to_scalar::<f32>().unwrap()], &[want], 1e-5, 1e-5);
        assert_eq!(loss.backward().unwrap().get(&xd).unwrap().dims(), &[1, 2, 2, 14]);
    }
});
