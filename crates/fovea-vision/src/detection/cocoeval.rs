//! COCO box evaluation: a port of pycocotools' `COCOeval` (`iouType="bbox"`), equal to it to
//! 1e-6 on the fixtures, and its 12 summary numbers.
//!
//! The port keeps pycocotools' decisions, including the odd ones, because results are compared
//! across papers by them:
//! - detections are sorted by score with a stable sort (ties keep file order; across images,
//!   image-id order), and only the best `maxDets` per image and category count;
//! - a detection matches the unmatched ground truth of highest IoU ≥ the threshold, preferring
//!   non-ignored ones; crowd boxes (`iscrowd`) may absorb many detections and use the
//!   detection's own area as the union; ignored and out-of-range matches are neither TP nor FP;
//! - precision is made monotone and sampled at 101 recall points (`searchsorted`, left);
//! - cells with no ground truth stay −1 and are left out of the means; a summary with no cell
//!   at all is −1;
//! - a match records the ground truth's *id*, and pycocotools tests it for non-zero, so a
//!   ground-truth box with id 0 never counts as matched. COCO ids start at 1; keep them so.

use super::coco::{CocoDataset, CocoDetection};
use serde_json::{json, Value};
use std::collections::HashMap;

/// COCOeval's parameters for boxes.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoEvalParams {
    /// IoU thresholds, `np.linspace(.5, .95, 10)`.
    pub iou_thrs: Vec<f64>,
    /// Recall points, `np.linspace(0, 1, 101)`.
    pub rec_thrs: Vec<f64>,
    /// Detections per image, ascending: `[1, 10, 100]`.
    pub max_dets: Vec<usize>,
    /// Area ranges `all, small, medium, large`: `[0, 1e10], [0, 32²], [32², 96²], [96², 1e10]`.
    pub area_rngs: Vec<[f64; 2]>,
}

/// `np.linspace(start, stop, num)` with NumPy's arithmetic (`i·step + start`, the last value
/// set to `stop`), so that thresholds compare bit-for-bit as in pycocotools.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

impl Default for CocoEvalParams {
    fn default() -> Self {
        CocoEvalParams {
            iou_thrs: linspace(0.5, 0.95, 10),
            rec_thrs: linspace(0.0, 1.0, 101),
            max_dets: vec![1, 10, 100],
            area_rngs: vec![[0.0, 1e10], [0.0, 32.0 * 32.0], [32.0 * 32.0, 96.0 * 96.0], [96.0 * 96.0, 1e10]],
        }
    }
}

/// The names of the 12 summary numbers, in pycocotools' `stats` order (the `--json` keys).
pub const SUMMARY_KEYS: [&str; 12] = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

/// The accumulated result of [`evaluate`]: pycocotools' `eval['precision']` and `['recall']`.
#[derive(Debug, Clone)]
pub struct CocoEval {
    /// The parameters used.
    pub params: CocoEvalParams,
    /// The category ids, sorted (the K axis).
    pub cat_ids: Vec<i64>,
    /// Precision, shape `[T, R, K, A, M]` row-major, −1 where a category has no ground truth.
    pub precision: Vec<f64>,
    /// Recall, shape `[T, K, A, M]` row-major, −1 likewise.
    pub recall: Vec<f64>,
}

/// What [`evaluate_image`] keeps of one image, category and area range (`evalImgs` entries).
struct ImageEval {
    /// Scores of the kept detections, best first.
    scores: Vec<f64>,
    /// `[T][D]`: matched to a ground truth with non-zero id.
    matched: Vec<Vec<bool>>,
    /// `[T][D]`: neither TP nor FP.
    ignored: Vec<Vec<bool>>,
    /// Ground truths that are not ignored.
    regular_gt: usize,
}

/// Detections and ground truths of one (image, category), sorted and cut as pycocotools does.
struct Cell<'a> {
    gts: Vec<&'a super::coco::CocoAnnotation>,
    dts: Vec<&'a CocoDetection>,
    /// `[D][G]` IoUs, detections in score order, ground truths in file order.
    ious: Vec<Vec<f64>>,
}

/// `maskApi.c`'s `bbIou`: boxes `[x, y, w, h]`; a crowd ground truth uses the detection's area as
/// the union.
fn bb_iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let w = (d[2] + d[0]).min(g[2] + g[0]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[3] + d[1]).min(g[3] + g[1]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let da = d[2] * d[3];
    let u = if crowd { da } else { da + g[2] * g[3] - i };
    i / u
}

fn sort_by_score(dts: &mut [&CocoDetection]) {
    // A stable sort on descending score, as `np.argsort(-scores, kind="mergesort")`.
    dts.sort_by(|a, b| b.score.total_cmp(&a.score));
}

fn evaluate_image(cell: &Cell, area: [f64; 2], max_det: usize, p: &CocoEvalParams) -> Option<ImageEval> {
    if cell.gts.is_empty() && cell.dts.is_empty() {
        return None;
    }
    let gt_ignore_of = |g: &super::coco::CocoAnnotation| g.iscrowd || g.area < area[0] || g.area > area[1];
    // Regular ground truths first (a stable sort on the ignore flag).
    let mut order: Vec<usize> = (0..cell.gts.len()).collect();
    order.sort_by_key(|&i| gt_ignore_of(cell.gts[i]));
    let gts: Vec<_> = order.iter().map(|&i| cell.gts[i]).collect();
    let gt_ig: Vec<bool> = gts.iter().map(|g| gt_ignore_of(g)).collect();
    let d_count = cell.dts.len().min(max_det);
    let dts = &cell.dts[..d_count];
    let t_count = p.iou_thrs.len();
    let mut matched = vec![vec![false; d_count]; t_count];
    let mut ignored = vec![vec![false; d_count]; t_count];
    if !cell.ious.is_empty() && !gts.is_empty() {
        for (t, &thr) in p.iou_thrs.iter().enumerate() {
            let mut gt_taken = vec![false; gts.len()];
            for d in 0..d_count {
                let mut best = thr.min(1.0 - 1e-10);
                let mut m: Option<usize> = None;
                for (g, gt) in gts.iter().enumerate() {
                    if gt_taken[g] && !gt.iscrowd {
                        continue;
                    }
                    // Once matched to a regular ground truth, ignored ones (sorted last) cannot
                    // take the detection.
                    if m.is_some_and(|m| !gt_ig[m]) && gt_ig[g] {
                        break;
                    }
                    let iou = cell.ious[d][order[g]];
                    if iou < best {
                        continue;
                    }
                    best = iou;
                    m = Some(g);
                }
                if let Some(m) = m {
                    ignored[t][d] = gt_ig[m];
                    matched[t][d] = gts[m].id != 0;
                    gt_taken[m] = true;
                }
            }
        }
    }
    // Unmatched detections outside the area range are ignored too.
    for t in 0..t_count {
        for (d, det) in dts.iter().enumerate() {
            let a = det.bbox[2] * det.bbox[3];
            if !matched[t][d] && (a < area[0] || a > area[1]) {
                ignored[t][d] = true;
            }
        }
    }
    Some(ImageEval { scores: dts.iter().map(|d| d.score).collect(), matched, ignored, regular_gt: gt_ig.iter().filter(|&&i| !i).count() })
}

/// Runs COCOeval (bbox) on ground truth `gt` and detections `dts` with the default parameters.
pub fn evaluate(gt: &CocoDataset, dts: &[CocoDetection]) -> CocoEval {
    evaluate_with(gt, dts, CocoEvalParams::default())
}

/// Runs COCOeval (bbox) with explicit parameters (`max_dets` ascending).
pub fn evaluate_with(gt: &CocoDataset, dts: &[CocoDetection], params: CocoEvalParams) -> CocoEval {
    let mut img_ids: Vec<i64> = gt.images.iter().map(|im| im.id).collect();
    img_ids.sort_unstable();
    img_ids.dedup();
    let mut cat_ids: Vec<i64> = gt.categories.iter().map(|c| c.id).collect();
    cat_ids.sort_unstable();
    cat_ids.dedup();
    let max_det_all = params.max_dets.iter().copied().max().unwrap_or(0);

    let mut cells: HashMap<(i64, i64), Cell> = HashMap::new();
    let empty = || Cell { gts: Vec::new(), dts: Vec::new(), ious: Vec::new() };
    for a in &gt.annotations {
        cells.entry((a.image_id, a.category_id)).or_insert_with(empty).gts.push(a);
    }
    for d in dts {
        cells.entry((d.image_id, d.category_id)).or_insert_with(empty).dts.push(d);
    }
    for cell in cells.values_mut() {
        sort_by_score(&mut cell.dts);
        cell.dts.truncate(max_det_all);
        cell.ious = cell.dts.iter().map(|d| cell.gts.iter().map(|g| bb_iou(&d.bbox, &g.bbox, g.iscrowd)).collect()).collect();
    }

    let (t_n, r_n, k_n, a_n, m_n) =
        (params.iou_thrs.len(), params.rec_thrs.len(), cat_ids.len(), params.area_rngs.len(), params.max_dets.len());
    let mut precision = vec![-1.0; t_n * r_n * k_n * a_n * m_n];
    let mut recall = vec![-1.0; t_n * k_n * a_n * m_n];
    let empty_cell = empty();
    for (k, &cat) in cat_ids.iter().enumerate() {
        for (a, &area) in params.area_rngs.iter().enumerate() {
            let evals: Vec<ImageEval> = img_ids
                .iter()
                .filter_map(|&img| evaluate_image(cells.get(&(img, cat)).unwrap_or(&empty_cell), area, max_det_all, &params))
                .collect();
            if evals.is_empty() {
                continue;
            }
            let npig: usize = evals.iter().map(|e| e.regular_gt).sum();
            if npig == 0 {
                continue;
            }
            for (m, &max_det) in params.max_dets.iter().enumerate() {
                // (score, image position, detection position), best first, stable.
                let mut all: Vec<(f64, usize, usize)> = Vec::new();
                for (i, e) in evals.iter().enumerate() {
                    all.extend(e.scores.iter().take(max_det).enumerate().map(|(d, &s)| (s, i, d)));
                }
                all.sort_by(|x, y| y.0.total_cmp(&x.0));
                for t in 0..t_n {
                    let (mut tp, mut fp) = (0.0f64, 0.0f64);
                    let mut rc = Vec::with_capacity(all.len());
                    let mut pr = Vec::with_capacity(all.len());
                    for &(_, i, d) in &all {
                        let e = &evals[i];
                        if e.ignored[t][d] {
                        } else if e.matched[t][d] {
                            tp += 1.0;
                        } else {
                            fp += 1.0;
                        }
                        rc.push(tp / npig as f64);
                        pr.push(tp / (fp + tp + f64::EPSILON));
                    }
                    recall[((t * k_n + k) * a_n + a) * m_n + m] = rc.last().copied().unwrap_or(0.0);
                    for i in (1..pr.len()).rev() {
                        if pr[i] > pr[i - 1] {
                            pr[i - 1] = pr[i];
                        }
                    }
                    for (r, &thr) in params.rec_thrs.iter().enumerate() {
                        let idx = rc.partition_point(|&x| x < thr);
                        let q = if idx < pr.len() { pr[idx] } else { 0.0 };
                        precision[(((t * r_n + r) * k_n + k) * a_n + a) * m_n + m] = q;
                    }
                }
            }
        }
    }
    CocoEval { params, cat_ids, precision, recall }
}

/// One summary line's selection.
struct Summary {
    ap: bool,
    iou: Option<f64>,
    area: usize,
    max_det: usize,
}

const AREA_LABELS: [&str; 4] = ["all", "small", "medium", "large"];

fn summaries() -> [Summary; 12] {
    let s = |ap, iou, area, max_det| Summary { ap, iou, area, max_det };
    [
        s(true, None, 0, 100),
        s(true, Some(0.5), 0, 100),
        s(true, Some(0.75), 0, 100),
        s(true, None, 1, 100),
        s(true, None, 2, 100),
        s(true, None, 3, 100),
        s(false, None, 0, 1),
        s(false, None, 0, 10),
        s(false, None, 0, 100),
        s(false, None, 1, 100),
        s(false, None, 2, 100),
        s(false, None, 3, 100),
    ]
}

impl CocoEval {
    fn mean(&self, s: &Summary) -> f64 {
        let p = &self.params;
        let (t_n, r_n, k_n, a_n, m_n) = (p.iou_thrs.len(), p.rec_thrs.len(), self.cat_ids.len(), p.area_rngs.len(), p.max_dets.len());
        // pycocotools selects with `==` on the thresholds and labels; no match selects nothing.
        let ts: Vec<usize> = (0..t_n).filter(|&t| s.iou.is_none_or(|v| p.iou_thrs[t] == v)).collect();
        let ms: Vec<usize> = (0..m_n).filter(|&m| p.max_dets[m] == s.max_det).collect();
        let a = s.area;
        let (mut sum, mut n) = (0.0f64, 0usize);
        let mut add = |v: f64| {
            if v > -1.0 {
                sum += v;
                n += 1;
            }
        };
        if a < a_n {
            for &t in &ts {
                for &m in &ms {
                    for k in 0..k_n {
                        if s.ap {
                            for r in 0..r_n {
                                add(self.precision[(((t * r_n + r) * k_n + k) * a_n + a) * m_n + m]);
                            }
                        } else {
                            add(self.recall[((t * k_n + k) * a_n + a) * m_n + m]);
                        }
                    }
                }
            }
        }
        if n == 0 {
            -1.0
        } else {
            sum / n as f64
        }
    }

    /// The 12 summary numbers in pycocotools' `stats` order ([`SUMMARY_KEYS`]).
    pub fn stats(&self) -> [f64; 12] {
        let s = summaries();
        std::array::from_fn(|i| self.mean(&s[i]))
    }

    /// The 12 lines pycocotools' `summarize()` prints, each ending in a newline.
    pub fn summary_text(&self) -> String {
        let p = &self.params;
        let mut out = String::new();
        for (s, v) in summaries().iter().zip(self.stats()) {
            let (title, kind) = if s.ap { ("Average Precision", "(AP)") } else { ("Average Recall", "(AR)") };
            let iou = match s.iou {
                Some(t) => format!("{t:.2}"),
                None => match (p.iou_thrs.first(), p.iou_thrs.last()) {
                    (Some(a), Some(b)) => format!("{a:.2}:{b:.2}"),
                    _ => String::new(),
                },
            };
            out.push_str(&format!(
                " {title:<18} {kind} @[ IoU={iou:<9} | area={:>6} | maxDets={:>3} ] = {}\n",
                AREA_LABELS[s.area],
                s.max_det,
                format_3(v)
            ));
        }
        out
    }

    /// The summary as one line of JSON keyed by [`SUMMARY_KEYS`] in that order (a
    /// `serde_json::Value` would sort them), at full precision.
    pub fn stats_json_text(&self) -> String {
        let fields: Vec<String> = SUMMARY_KEYS.iter().zip(self.stats()).map(|(k, v)| format!("\"{k}\": {}", json!(v))).collect();
        format!("{{{}}}", fields.join(", "))
    }

    /// The summary as one JSON object keyed by [`SUMMARY_KEYS`], at full precision.
    pub fn stats_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in SUMMARY_KEYS.iter().zip(self.stats()) {
            m.insert(k.to_string(), json!(v));
        }
        Value::Object(m)
    }
}

/// Python's `'{:0.3f}'.format(v)`: Rust's `{:.3}` rounds the exact binary value half to even,
/// as Python does, and both print `-1.000` for −1.
fn format_3(v: f64) -> String {
    format!("{v:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::coco::{CocoAnnotation, CocoCategory, CocoImage};

    fn ds(anns: &[(i64, i64, [f64; 4], bool)], images: usize) -> CocoDataset {
        CocoDataset {
            images: (1..=images as i64).map(|id| CocoImage { id, file_name: String::new(), width: 100, height: 100 }).collect(),
            categories: vec![
                CocoCategory { id: 1, name: "a".into(), supercategory: String::new() },
                CocoCategory { id: 2, name: "b".into(), supercategory: String::new() },
            ],
            annotations: anns
                .iter()
                .enumerate()
                .map(|(i, &(image_id, category_id, bbox, iscrowd))| CocoAnnotation {
                    id: i as i64 + 1,
                    image_id,
                    category_id,
                    bbox,
                    area: bbox[2] * bbox[3],
                    iscrowd,
                })
                .collect(),
        }
    }

    fn det(image_id: i64, category_id: i64, bbox: [f64; 4], score: f64) -> CocoDetection {
        CocoDetection { image_id, category_id, bbox, score }
    }

    #[test]
    fn custom_parameters_never_panic() {
        let gt = ds(&[(1, 1, [10.0, 10.0, 20.0, 20.0], false)], 1);
        let dts = [det(1, 1, [10.0, 10.0, 20.0, 20.0], 0.9)];
        let p = CocoEvalParams { iou_thrs: vec![], rec_thrs: vec![], max_dets: vec![], area_rngs: vec![[0.0, 1e10]] };
        let ev = evaluate_with(&gt, &dts, p);
        assert!(ev.stats().iter().all(|&v| v == -1.0));
        assert_eq!(ev.summary_text().lines().count(), 12);
    }

    #[test]
    fn thresholds_are_numpys() {
        let p = CocoEvalParams::default();
        assert_eq!(p.iou_thrs.len(), 10);
        assert_eq!(p.iou_thrs[0], 0.5);
        assert_eq!(p.iou_thrs[5], 0.75, "AP75 selects a threshold by ==");
        assert_eq!(p.rec_thrs[100], 1.0);
        assert_eq!(p.rec_thrs[3], 3.0 * 0.01);
    }

    #[test]
    fn perfect_detections_score_one_and_missing_categories_are_left_out() {
        let gt = ds(&[(1, 1, [10.0, 10.0, 20.0, 20.0], false), (2, 1, [50.0, 50.0, 40.0, 40.0], false)], 3);
        let dts = vec![det(1, 1, [10.0, 10.0, 20.0, 20.0], 0.9), det(2, 1, [50.0, 50.0, 40.0, 40.0], 0.8)];
        let s = evaluate(&gt, &dts).stats();
        // Precision is tp/(tp + fp + ε), so "one" is one less an ulp or so.
        let one = |v: f64| (v - 1.0).abs() < 1e-12;
        // Category 2 has no ground truth: its cells stay −1 and do not pull the means down.
        assert!(one(s[0]) && one(s[1]) && one(s[2]), "{s:?}");
        assert_eq!(s[5], -1.0, "no large boxes (area > 96²)");
        assert!(one(s[3]) && one(s[4]) && one(s[6]), "{s:?}");
        let text = evaluate(&gt, &dts).summary_text();
        assert!(text.starts_with(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000\n"), "{text}");
        assert!(text.contains(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 1.000\n"), "{text}");
        assert!(text.contains("area= large | maxDets=100 ] = -1.000"), "{text}");
        let json = evaluate(&gt, &dts).stats_json_text();
        assert!(json.starts_with("{\"AP\": ") && json.contains("\"APl\": -1.0, \"AR1\": "), "{json}");
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, evaluate(&gt, &dts).stats_json());
    }

    #[test]
    fn no_detections_give_zero_and_no_ground_truth_gives_minus_one() {
        let gt = ds(&[(1, 1, [10.0, 10.0, 20.0, 20.0], false)], 1);
        let s = evaluate(&gt, &[]).stats();
        assert_eq!(s[0], 0.0);
        assert_eq!(s[8], 0.0);
        let empty = ds(&[], 2);
        assert!(evaluate(&empty, &[det(1, 1, [0.0, 0.0, 5.0, 5.0], 0.5)]).stats().iter().all(|&v| v == -1.0));
    }

    #[test]
    fn crowd_regions_absorb_detections_without_penalty() {
        let gt = ds(&[(1, 1, [0.0, 0.0, 10.0, 10.0], false), (1, 1, [50.0, 50.0, 40.0, 40.0], true)], 1);
        let with_crowd_hits = vec![
            det(1, 1, [0.0, 0.0, 10.0, 10.0], 0.5),
            det(1, 1, [55.0, 55.0, 10.0, 10.0], 0.9),
            det(1, 1, [70.0, 70.0, 10.0, 10.0], 0.8),
        ];
        let ap = evaluate(&gt, &with_crowd_hits).stats()[0];
        assert!((ap - 1.0).abs() < 1e-12, "detections inside a crowd box are ignored: AP {ap}");
        let with_fp = vec![det(1, 1, [0.0, 0.0, 10.0, 10.0], 0.5), det(1, 1, [20.0, 20.0, 10.0, 10.0], 0.9)];
        let s = evaluate(&gt, &with_fp).stats();
        // The false positive ranks first: precision at the one recall level is 1/2.
        assert!((s[0] - 0.5).abs() < 1e-12, "{s:?}");
    }
}
