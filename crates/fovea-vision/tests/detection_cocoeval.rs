//! COCO evaluation against pycocotools' COCOeval (bbox) and a VOC AP@0.5 reference; fixtures
//! from `tools/fixtures/gen_cocoeval_fixtures.py`.

use fovea_vision::detection::coco::{read_results, CocoDataset};
use fovea_vision::detection::cocoeval::{evaluate, CocoEvalParams};
use fovea_vision::detection::voc::{voc_ap, voc_map};
use serde_json::Value;

fn dir() -> String {
    format!("{}/tests/fixtures/detection", env!("CARGO_MANIFEST_DIR"))
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{}/cocoeval_expected.json", dir())).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn thresholds_equal_pycocotools_bit_for_bit() {
    let e = expected();
    let p = CocoEvalParams::default();
    assert_eq!(p.iou_thrs, floats(&e["iouThrs"]));
    assert_eq!(p.rec_thrs, floats(&e["recThrs"]));
}

#[test]
fn summary_stats_and_text_equal_pycocotools() {
    let e = expected();
    let cases = e["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 5);
    for (name, want) in cases {
        let gt = CocoDataset::read(format!("{}/cocoeval_{name}_gt.json", dir())).unwrap();
        let dt = read_results(format!("{}/cocoeval_{name}_dt.json", dir()), &gt).unwrap();
        let ev = evaluate(&gt, &dt);
        let stats = ev.stats();
        for (i, (got, want)) in stats.iter().zip(floats(&want["stats"])).enumerate() {
            assert!((got - want).abs() <= 1e-6, "{name}: stats[{i}] = {got}, pycocotools {want}");
        }
        assert_eq!(ev.summary_text(), want["summary"].as_str().unwrap(), "{name}: summarize() text");
        let voc = voc_ap(&gt, &dt, 0.5);
        let want_voc = want["voc_ap"].as_object().unwrap();
        assert_eq!(voc.len(), want_voc.len(), "{name}: VOC categories");
        for c in voc {
            let w = want_voc[&c.category_id.to_string()].as_f64().unwrap();
            assert!((c.ap - w).abs() <= 1e-9, "{name}: VOC AP of {} = {}, reference {w}", c.category_id, c.ap);
        }
        let mean = want_voc.values().map(|v| v.as_f64().unwrap()).sum::<f64>() / want_voc.len() as f64;
        assert!((voc_map(&gt, &dt, 0.5) - mean).abs() <= 1e-9, "{name}: VOC mAP");
    }
}

#[test]
fn the_fixtures_cover_minus_one_cells_and_max_dets() {
    let e = expected();
    let small = floats(&e["cases"]["small"]["stats"]);
    assert_eq!(small[4], -1.0, "no medium boxes");
    let mixed = CocoDataset::read(format!("{}/cocoeval_mixed_gt.json", dir())).unwrap();
    let dt = read_results(format!("{}/cocoeval_mixed_dt.json", dir()), &mixed).unwrap();
    assert!(dt.iter().filter(|d| d.image_id == 1).count() > 100, "one image exceeds maxDets");
    assert!(mixed.annotations.iter().any(|a| a.iscrowd));
    assert!(mixed.annotations.iter().any(|a| (a.area - a.bbox[2] * a.bbox[3]).abs() > 1.0), "an area that is not w·h");
}
