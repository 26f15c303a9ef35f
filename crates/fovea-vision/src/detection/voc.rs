//! Pascal VOC average precision: AP at one IoU threshold (0.5 in VOC) with all-point
//! interpolation (VOC2010 and later), on COCO-structured ground truth and detections.
//!
//! The matching is the py-faster-rcnn `voc_eval` one, with continuous coordinates (no +1 pixel):
//! detections of a class, best score first (stable), each takes the image's ground-truth box of
//! its class with the highest IoU; above the threshold it is a true positive if that box is not
//! taken yet, else a false positive. Crowd boxes play VOC's "difficult": matches to them count
//! neither way, and they are not among the positives.

use super::coco::{CocoDataset, CocoDetection};
use std::collections::HashMap;

/// AP of one category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassAp {
    /// The category id.
    pub category_id: i64,
    /// Its average precision.
    pub ap: f64,
}

fn iou_xywh(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let ih = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = iw.max(0.0) * ih.max(0.0);
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// VOC AP per category with ground truth (sorted by id); categories without positives are left
/// out, as VOC has none. A detection is a true positive when its IoU is strictly greater than
/// `iou_threshold`.
pub fn voc_ap(gt: &CocoDataset, dts: &[CocoDetection], iou_threshold: f64) -> Vec<ClassAp> {
    let mut cats: Vec<i64> = gt.categories.iter().map(|c| c.id).collect();
    cats.sort_unstable();
    cats.dedup();
    let mut out = Vec::new();
    for cat in cats {
        let mut by_image: HashMap<i64, Vec<usize>> = HashMap::new();
        let mut positives = 0usize;
        for (i, a) in gt.annotations.iter().enumerate().filter(|(_, a)| a.category_id == cat) {
            by_image.entry(a.image_id).or_default().push(i);
            positives += usize::from(!a.iscrowd);
        }
        if positives == 0 {
            continue;
        }
        let mut dets: Vec<&CocoDetection> = dts.iter().filter(|d| d.category_id == cat).collect();
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut taken = vec![false; gt.annotations.len()];
        let (mut tp, mut fp) = (0.0f64, 0.0f64);
        let mut recall = Vec::with_capacity(dets.len());
        let mut precision = Vec::with_capacity(dets.len());
        for d in dets {
            let mut best: Option<(f64, usize)> = None;
            for &g in by_image.get(&d.image_id).map(Vec::as_slice).unwrap_or(&[]) {
                let ov = iou_xywh(&d.bbox, &gt.annotations[g].bbox);
                if best.is_none_or(|(b, _)| ov > b) {
                    best = Some((ov, g));
                }
            }
            match best {
                Some((ov, g)) if ov > iou_threshold => {
                    if gt.annotations[g].iscrowd {
                        continue;
                    }
                    if taken[g] {
                        fp += 1.0;
                    } else {
                        taken[g] = true;
                        tp += 1.0;
                    }
                }
                _ => fp += 1.0,
            }
            recall.push(tp / positives as f64);
            precision.push(tp / (tp + fp).max(f64::EPSILON));
        }
        out.push(ClassAp { category_id: cat, ap: all_point_ap(&recall, &precision) });
    }
    out
}

/// The area under the precision envelope: precision made non-increasing from the right, summed
/// over the recall steps.
pub fn all_point_ap(recall: &[f64], precision: &[f64]) -> f64 {
    let mut mrec = Vec::with_capacity(recall.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(precision.len() + 2);
    mpre.push(0.0);
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    for i in (1..mpre.len()).rev() {
        mpre[i - 1] = mpre[i - 1].max(mpre[i]);
    }
    (0..mrec.len() - 1).filter(|&i| mrec[i + 1] != mrec[i]).map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1]).sum()
}

/// The mean of [`voc_ap`] over the categories with ground truth (VOC's mAP); −1 when there are
/// none.
pub fn voc_map(gt: &CocoDataset, dts: &[CocoDetection], iou_threshold: f64) -> f64 {
    let aps = voc_ap(gt, dts, iou_threshold);
    if aps.is_empty() {
        return -1.0;
    }
    aps.iter().map(|c| c.ap).sum::<f64>() / aps.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_area_by_hand() {
        // Recall 0.5 at precision 1, then recall 1 at precision 2/3: 0.5·1 + 0.5·2/3.
        let ap = all_point_ap(&[0.5, 0.5, 1.0], &[1.0, 0.5, 2.0 / 3.0]);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-12, "{ap}");
        assert_eq!(all_point_ap(&[], &[]), 0.0);
    }
}
