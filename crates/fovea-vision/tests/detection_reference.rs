//! Detection ops against torchvision and TensorFlow: pairwise IoU, GIoU/DIoU losses and their
//! gradients, greedy, batched and soft NMS. The fixtures come from
//! `tools/fixtures/gen_detection_{torch,tf}_fixtures.py` (inputs in `detection_cases.py`).

use fovea_core::testing::assert_close;
use fovea_core::{Device, Tensor};
use fovea_vision::detection::{
    batched_nms, box_iou, boxes_to_tensor, diou_loss, giou_loss, nms, pairwise_iou, soft_nms, BBox, IouConvention, NmsOptions, SoftNmsKind,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/detection/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

/// JSON numbers (null = NaN) as f32.
fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().map_or(f32::NAN, |f| f as f32)).collect()
}

fn boxes(v: &Value) -> Vec<BBox> {
    floats(v).chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("index") as usize).collect()
}

fn options(case: &Value, convention: IouConvention) -> NmsOptions {
    let mut o = NmsOptions::new(case["iou_threshold"].as_f64().unwrap() as f32).with_convention(convention);
    if let Some(t) = case["score_threshold"].as_f64() {
        o = o.with_score_threshold(t as f32);
    }
    if let Some(m) = case["max_output"].as_u64() {
        o = o.with_max_output(m as usize);
    }
    o
}

/// Equal, NaN included (torchvision's 0/0 for two identical zero-area boxes).
fn assert_same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g == w || (g.is_nan() && w.is_nan()), "{what}[{i}]: got {g}, torchvision {w}");
    }
}

#[test]
fn pairwise_iou_equals_torchvision_box_iou() {
    let f = load("torch_box_iou.json");
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (a, b) = (boxes(&case["a"]), boxes(&case["b"]));
        let want = floats(&case["iou"]);
        assert!(want.iter().any(|v| v.is_nan()) || name != "points_and_reversed", "the fixture holds a NaN case");
        assert_same(&format!("{name} host"), &pairwise_iou(&a, &b), &want);
        for dev in [Device::Reference, Device::Cpu] {
            let t = box_iou(&boxes_to_tensor(&a, dev).unwrap(), &boxes_to_tensor(&b, dev).unwrap()).unwrap();
            assert_eq!(t.dims(), &[a.len(), b.len()]);
            // The tensor ops may contract differently from the host loop: allow one rounding.
            let got = t.to_vec::<f32>().unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6, "{name} {dev:?}[{i}]: got {g}, torchvision {w}");
            }
        }
    }
}

#[test]
fn giou_and_diou_losses_and_gradients_equal_torchvision() {
    let f = load("torch_losses.json");
    for case in f["cases"].as_array().unwrap() {
        let n = floats(&case["pred"]).len() / 4;
        for key in ["giou", "diou"] {
            let p = Tensor::from_vec(floats(&case["pred"]), [n, 4], Device::Reference).unwrap().with_requires_grad(true).unwrap();
            let t = Tensor::from_vec(floats(&case["target"]), [n, 4], Device::Reference).unwrap().with_requires_grad(true).unwrap();
            let loss = if key == "giou" { giou_loss(&p, &t, 1e-7) } else { diou_loss(&p, &t, 1e-7) }.unwrap();
            assert_close(key, &loss.to_vec::<f32>().unwrap(), &floats(&case[key]), 1e-5, 1e-6);
            let grads = loss.sum_all().unwrap().backward().unwrap();
            let dp = grads.get(&p).unwrap().to_vec::<f32>().unwrap();
            let dt = grads.get(&t).unwrap().to_vec::<f32>().unwrap();
            assert_close(&format!("{key} dpred"), &dp, &floats(&case[&format!("{key}_dpred")]), 1e-4, 1e-6);
            assert_close(&format!("{key} dtarget"), &dt, &floats(&case[&format!("{key}_dtarget")]), 1e-4, 1e-6);
        }
    }
}

#[test]
fn nms_selections_equal_torchvision_and_tensorflow() {
    for (file, convention) in [("torch_nms.json", IouConvention::Torchvision), ("tf_nms.json", IouConvention::Tensorflow)] {
        let f = load(file);
        let cases = f["cases"].as_array().unwrap();
        assert!(cases.len() >= 8, "{file}: every case present");
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let kept = nms(&boxes(&case["boxes"]), &floats(&case["scores"]), &options(case, convention)).unwrap();
            assert_eq!(kept, indices(&case["keep"]), "{file} {name}");
        }
    }
    // The degenerate case is where the two conventions part (documented in `detection::nms`).
    let tv = load("torch_nms.json");
    let tf = load("tf_nms.json");
    let pick = |f: &Value| f["cases"].as_array().unwrap().iter().find(|c| c["name"] == "degenerate").unwrap()["keep"].clone();
    assert_ne!(pick(&tv), pick(&tf), "the fixture exercises the difference");
}

#[test]
fn batched_nms_equals_torchvision() {
    let f = load("torch_nms.json");
    let cases = f["cases"].as_array().unwrap();
    for b in f["batched"].as_array().unwrap() {
        let case = cases.iter().find(|c| c["name"] == b["case"]).unwrap();
        let classes: Vec<i64> = b["classes"].as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).collect();
        let opts = NmsOptions::new(b["iou_threshold"].as_f64().unwrap() as f32);
        let kept = batched_nms(&boxes(&case["boxes"]), &floats(&case["scores"]), &classes, &opts).unwrap();
        assert_eq!(kept, indices(&b["keep"]), "batched {}", b["case"]);
    }
}

#[test]
fn gaussian_soft_nms_equals_tensorflow() {
    let f = load("tf_nms.json");
    let cases = f["cases"].as_array().unwrap();
    let soft = f["soft"].as_array().unwrap();
    assert!(soft.len() >= 6);
    for s in soft {
        let case = cases.iter().find(|c| c["name"] == s["case"]).unwrap();
        let opts = options(s, IouConvention::Tensorflow);
        let kind = SoftNmsKind::Gaussian { sigma: s["sigma"].as_f64().unwrap() as f32 };
        let (kept, scores) = soft_nms(&boxes(&case["boxes"]), &floats(&case["scores"]), &opts, kind).unwrap();
        let what = format!("soft {} sigma {}", s["case"], s["sigma"]);
        assert_eq!(kept, indices(&s["keep"]), "{what}");
        assert_close(&what, &scores, &floats(&s["kept_scores"]), 1e-6, 1e-7);
    }
}

#[test]
fn grid_anchors_equal_torchvision_anchor_generator() {
    let f = load("torch_anchors.json");
    for case in f["cases"].as_array().unwrap() {
        let sizes = floats(&case["sizes"]);
        let ratios = floats(&case["aspect_ratios"]);
        let hw = indices(&case["feature_hw"]);
        let stride = floats(&case["stride"]);
        let got = fovea_vision::detection::anchors::grid_anchors(&sizes, &ratios, (hw[0], hw[1]), (stride[0], stride[1])).unwrap();
        assert_eq!(got.concat(), floats(&case["anchors"]), "sizes {sizes:?} ratios {ratios:?}");
    }
}
