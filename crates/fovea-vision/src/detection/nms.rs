//! Non-maximum suppression: greedy (hard), per class (`batched_nms`) and soft-NMS.
//!
//! NMS is a sequential loop over a sorted list, so it runs on the host; [`nms_tensor`] reads the
//! tensors back and returns the kept indices as an i64 tensor on their device.
//!
//! # Two conventions for odd boxes
//!
//! TensorFlow (`tf.image.non_max_suppression`) and torchvision (`torchvision.ops.nms`) agree on
//! ordinary boxes (suppress when IoU > threshold, highest score first, ties to the lower index)
//! but differ on degenerate ones, so [`IouConvention`] picks one:
//!
//! - **TensorFlow** sorts each box's corners first (a box `x2 < x1` is the same box as its
//!   mirror) and gives IoU 0 to any pair where one box has zero area.
//! - **torchvision** takes the corners as given: a reversed box has a negative (or, reversed on
//!   both axes, positive) area and its intersection with anything clamps to zero, so it never
//!   suppresses nor is suppressed; two identical zero-area boxes have IoU 0/0 = NaN, which is not
//!   `> threshold`, so they do not suppress each other either.

use super::boxes::{iou, BBox};
use fovea_core::{Error, Result, Tensor};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// How IoU treats reversed and zero-area boxes (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IouConvention {
    /// Corners as given, torchvision's arithmetic.
    #[default]
    Torchvision,
    /// Corners sorted per box, zero-area pairs at IoU 0 (TensorFlow's kernel).
    Tensorflow,
}

/// The parameters of [`nms`], [`batched_nms`] and [`soft_nms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmsOptions {
    /// A candidate is suppressed by a kept box when their IoU is strictly greater than this.
    pub iou_threshold: f32,
    /// Only boxes with a score strictly greater than this are candidates (TensorFlow's
    /// `score_threshold`; `-inf`, the default, keeps all).
    pub score_threshold: f32,
    /// At most this many indices are returned (TensorFlow's `max_output_size`).
    pub max_output: usize,
    /// How degenerate boxes are treated.
    pub convention: IouConvention,
}

impl NmsOptions {
    /// IoU threshold `iou_threshold`, no score threshold, no output limit, torchvision's
    /// convention.
    pub fn new(iou_threshold: f32) -> Self {
        NmsOptions { iou_threshold, score_threshold: f32::NEG_INFINITY, max_output: usize::MAX, convention: IouConvention::Torchvision }
    }

    /// Sets the score threshold.
    pub fn with_score_threshold(mut self, t: f32) -> Self {
        self.score_threshold = t;
        self
    }

    /// Sets the maximum number of boxes returned.
    pub fn with_max_output(mut self, n: usize) -> Self {
        self.max_output = n;
        self
    }

    /// Sets the IoU convention.
    pub fn with_convention(mut self, c: IouConvention) -> Self {
        self.convention = c;
        self
    }
}

/// How soft-NMS decays the score of a box that overlaps a kept one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SoftNmsKind {
    /// `score · (1 − IoU)` when IoU > the IoU threshold (Bodla et al. 2017).
    Linear,
    /// `score · exp(−IoU² / (2σ))` for every overlap, with `σ` = TensorFlow's `soft_nms_sigma`
    /// (its kernel's `exp(−0.5·IoU²/σ)`); the IoU threshold is not used, as in TensorFlow.
    Gaussian {
        /// TensorFlow's `soft_nms_sigma`, > 0.
        sigma: f32,
    },
}

fn iou_with(convention: IouConvention, a: &BBox, b: &BBox) -> f32 {
    match convention {
        IouConvention::Torchvision => iou(a, b),
        IouConvention::Tensorflow => {
            let sort = |b: &BBox| [b[0].min(b[2]), b[1].min(b[3]), b[0].max(b[2]), b[1].max(b[3])];
            let (a, b) = (sort(a), sort(b));
            let area_a = (a[3] - a[1]) * (a[2] - a[0]);
            let area_b = (b[3] - b[1]) * (b[2] - b[0]);
            if area_a <= 0.0 || area_b <= 0.0 {
                return 0.0;
            }
            let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let inter = h * w;
            inter / (area_a + area_b - inter)
        }
    }
}

fn validate(op: &'static str, boxes: &[BBox], scores: &[f32], opts: &NmsOptions) -> Result<()> {
    if boxes.len() != scores.len() {
        return Err(Error::invalid(op, format!("{} boxes but {} scores", boxes.len(), scores.len())));
    }
    if opts.iou_threshold.is_nan() || opts.score_threshold.is_nan() {
        return Err(Error::invalid(op, "the IoU and score thresholds must not be NaN"));
    }
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(Error::invalid(op, format!("score {i} is NaN")));
    }
    if let Some(i) = boxes.iter().position(|b| b.iter().any(|v| !v.is_finite())) {
        return Err(Error::invalid(op, format!("box {i} has a non-finite coordinate: {:?}", boxes[i])));
    }
    Ok(())
}

/// Candidates above the score threshold, best first, ties to the lower index (the order of
/// TensorFlow's priority queue; torchvision's sort agrees on the fixtures).
fn candidates(scores: &[f32], score_threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] > score_threshold).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Greedy NMS: the indices of the kept boxes (xyxy), highest score first.
///
/// # Errors
/// `InvalidArgument` when the lengths differ, a score or threshold is NaN, or a coordinate is
/// not finite.
pub fn nms(boxes: &[BBox], scores: &[f32], opts: &NmsOptions) -> Result<Vec<usize>> {
    validate("nms", boxes, scores, opts)?;
    let mut kept: Vec<usize> = Vec::new();
    for i in candidates(scores, opts.score_threshold) {
        if kept.len() >= opts.max_output {
            break;
        }
        // Overlapping boxes tend to have similar scores, so the most recently kept ones are the
        // likeliest to suppress: look at them first.
        if !kept.iter().rev().any(|&k| iou_with(opts.convention, &boxes[i], &boxes[k]) > opts.iou_threshold) {
            kept.push(i);
        }
    }
    Ok(kept)
}

/// NMS within each class (`torchvision.ops.batched_nms`): boxes of different classes never
/// suppress each other. Returns the kept indices sorted by score (ties to the lower index), at
/// most `opts.max_output` of them over all classes.
///
/// # Errors
/// As [`nms`], and `InvalidArgument` when `classes` differs in length from `boxes`.
pub fn batched_nms(boxes: &[BBox], scores: &[f32], classes: &[i64], opts: &NmsOptions) -> Result<Vec<usize>> {
    validate("batched_nms", boxes, scores, opts)?;
    if classes.len() != boxes.len() {
        return Err(Error::invalid("batched_nms", format!("{} boxes but {} class ids", boxes.len(), classes.len())));
    }
    let mut by_class: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, &c) in classes.iter().enumerate() {
        by_class.entry(c).or_default().push(i);
    }
    let per_class = NmsOptions { max_output: usize::MAX, ..*opts };
    let mut kept = Vec::new();
    for members in by_class.values() {
        let b: Vec<BBox> = members.iter().map(|&i| boxes[i]).collect();
        let s: Vec<f32> = members.iter().map(|&i| scores[i]).collect();
        kept.extend(nms(&b, &s, &per_class)?.into_iter().map(|j| members[j]));
    }
    kept.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    kept.truncate(opts.max_output);
    Ok(kept)
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    index: usize,
    score: f32,
    /// Kept boxes before this position have already decayed this candidate's score.
    suppress_begin: usize,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Max-heap order: higher score first, then the lower index.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.index.cmp(&self.index))
    }
}

/// Soft-NMS: instead of dropping overlapping boxes, decays their scores and keeps the boxes
/// whose score stays above `opts.score_threshold`. Returns `(indices, decayed scores)` in the
/// order selected. The loop is TensorFlow's (`non_max_suppression_with_scores`): a candidate's
/// score is decayed lazily by the boxes kept since it was last looked at, and it goes back into
/// the queue when it dropped, so the result equals eager re-scoring after each selection.
///
/// # Errors
/// As [`nms`], and `InvalidArgument` for a Gaussian `sigma` that is not positive.
pub fn soft_nms(boxes: &[BBox], scores: &[f32], opts: &NmsOptions, kind: SoftNmsKind) -> Result<(Vec<usize>, Vec<f32>)> {
    validate("soft_nms", boxes, scores, opts)?;
    if let SoftNmsKind::Gaussian { sigma } = kind {
        if sigma.is_nan() || sigma <= 0.0 {
            return Err(Error::invalid("soft_nms", format!("the Gaussian sigma must be positive, got {sigma}")));
        }
    }
    let weight = |iou: f32| -> f32 {
        match kind {
            SoftNmsKind::Gaussian { sigma } => ((-0.5 / sigma) * iou * iou).exp(),
            SoftNmsKind::Linear if iou > opts.iou_threshold => 1.0 - iou,
            SoftNmsKind::Linear => 1.0,
        }
    };
    let mut queue: BinaryHeap<Candidate> = (0..scores.len())
        .filter(|&i| scores[i] > opts.score_threshold)
        .map(|i| Candidate { index: i, score: scores[i], suppress_begin: 0 })
        .collect();
    let (mut kept, mut kept_scores): (Vec<usize>, Vec<f32>) = (Vec::new(), Vec::new());
    while kept.len() < opts.max_output {
        let Some(mut c) = queue.pop() else { break };
        let original = c.score;
        for j in (c.suppress_begin..kept.len()).rev() {
            c.score *= weight(iou_with(opts.convention, &boxes[c.index], &boxes[kept[j]]));
            if c.score <= opts.score_threshold {
                break;
            }
        }
        c.suppress_begin = kept.len();
        if c.score == original {
            kept.push(c.index);
            kept_scores.push(c.score);
        } else if c.score > opts.score_threshold {
            queue.push(c);
        }
    }
    Ok((kept, kept_scores))
}

/// [`nms`] on tensors: `boxes` `[N, 4]` xyxy f32 and `scores` `[N]` f32; returns the kept
/// indices as an i64 tensor `[K]` on the boxes' device.
///
/// # Errors
/// Shape and dtype errors for malformed tensors; as [`nms`].
pub fn nms_tensor(boxes: &Tensor, scores: &Tensor, opts: &NmsOptions) -> Result<Tensor> {
    let b = super::boxes::boxes_from_tensor("nms", boxes)?;
    if scores.rank() != 1 {
        return Err(Error::rank("nms", "1 (one score per box)", scores.shape()));
    }
    if scores.dtype() != fovea_core::DType::F32 {
        return Err(Error::dtype("nms", "f32 scores", scores.dtype()));
    }
    let kept = nms(&b, &scores.to_vec::<f32>()?, opts)?;
    let n = kept.len();
    Tensor::from_vec(kept.into_iter().map(|i| i as i64).collect::<Vec<_>>(), [n], boxes.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    const BOXES: [BBox; 5] = [
        [0.0, 0.0, 10.0, 10.0],
        [1.0, 1.0, 11.0, 11.0], // IoU 81/119 with box 0, 72/118 with box 3
        [20.0, 20.0, 30.0, 30.0],
        [0.0, 0.0, 10.0, 9.0], // IoU 0.9 with box 0
        [21.0, 20.0, 31.0, 30.0],
    ];
    const SCORES: [f32; 5] = [0.9, 0.8, 0.7, 0.95, 0.6];

    #[test]
    fn greedy_keeps_the_best_of_each_cluster() {
        assert_eq!(nms(&BOXES, &SCORES, &NmsOptions::new(0.5)).unwrap(), vec![3, 2]);
        // Box 1 overlaps box 3 at 72/118 ≈ 0.61, box 4 overlaps box 2 at 90/110.
        assert_eq!(nms(&BOXES, &SCORES, &NmsOptions::new(0.65)).unwrap(), vec![3, 1, 2]);
        assert_eq!(nms(&BOXES, &SCORES, &NmsOptions::new(0.95)).unwrap(), vec![3, 0, 1, 2, 4]);
        assert_eq!(nms(&BOXES, &SCORES, &NmsOptions::new(0.95).with_max_output(2)).unwrap(), vec![3, 0]);
        // The score threshold is strict: box 1 at exactly 0.8 is out.
        assert_eq!(nms(&BOXES, &SCORES, &NmsOptions::new(0.95).with_score_threshold(0.8)).unwrap(), vec![3, 0]);
        assert!(nms(&[], &[], &NmsOptions::new(0.5)).unwrap().is_empty());
    }

    #[test]
    fn classes_do_not_suppress_each_other() {
        let kept = batched_nms(&BOXES, &SCORES, &[0, 1, 0, 0, 1], &NmsOptions::new(0.5)).unwrap();
        assert_eq!(kept, vec![3, 1, 2, 4]);
        let kept = batched_nms(&BOXES, &SCORES, &[0, 1, 0, 0, 1], &NmsOptions::new(0.5).with_max_output(3)).unwrap();
        assert_eq!(kept, vec![3, 1, 2]);
    }

    #[test]
    fn conventions_differ_only_on_degenerate_boxes() {
        let boxes = [[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]];
        let scores = [0.5, 0.9, 0.7];
        let tv = nms(&boxes, &scores, &NmsOptions::new(0.5)).unwrap();
        assert_eq!(tv, vec![1, 2, 0], "torchvision: the reversed box overlaps nothing");
        let tf = nms(&boxes, &scores, &NmsOptions::new(0.5).with_convention(IouConvention::Tensorflow)).unwrap();
        assert_eq!(tf, vec![1, 2], "TensorFlow: the reversed box is box 0 mirrored and suppresses it");
    }

    #[test]
    fn linear_soft_nms_decays_instead_of_dropping() {
        let (idx, s) = soft_nms(&BOXES, &SCORES, &NmsOptions::new(0.5), SoftNmsKind::Linear).unwrap();
        assert_eq!(idx, vec![3, 2, 1, 4, 0]);
        // Box 0 is decayed by box 3, then again by box 1 when it comes back to the queue.
        let want = 0.9 * (1.0 - iou(&BOXES[0], &BOXES[3])) * (1.0 - iou(&BOXES[0], &BOXES[1]));
        assert!((s[4] - want).abs() < 1e-6, "{s:?}");
        assert!((s[2] - 0.8 * (1.0 - iou(&BOXES[1], &BOXES[3]))).abs() < 1e-6, "{s:?}");
        // Scores come out in non-increasing order.
        assert!(s.windows(2).all(|w| w[0] >= w[1]), "{s:?}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(nms(&BOXES, &SCORES[..4], &NmsOptions::new(0.5)).is_err());
        assert!(nms(&BOXES, &[0.1, f32::NAN, 0.1, 0.1, 0.1], &NmsOptions::new(0.5)).is_err());
        assert!(nms(&[[0.0, f32::NAN, 1.0, 1.0]], &[0.1], &NmsOptions::new(0.5)).is_err());
        assert!(soft_nms(&BOXES, &SCORES, &NmsOptions::new(0.5), SoftNmsKind::Gaussian { sigma: 0.0 }).is_err());
        assert!(batched_nms(&BOXES, &SCORES, &[0], &NmsOptions::new(0.5)).is_err());
        let b = Tensor::zeros([2, 3], fovea_core::DType::F32, Device::Cpu).unwrap();
        let s = Tensor::zeros([2], fovea_core::DType::F32, Device::Cpu).unwrap();
        assert!(nms_tensor(&b, &s, &NmsOptions::new(0.5)).is_err());
    }

    #[test]
    fn tensor_wrapper_returns_i64_indices() {
        let b = super::super::boxes::boxes_to_tensor(&BOXES, Device::Cpu).unwrap();
        let s = Tensor::from_slice(&SCORES, [5], Device::Cpu).unwrap();
        let k = nms_tensor(&b, &s, &NmsOptions::new(0.5)).unwrap();
        assert_eq!(k.to_vec::<i64>().unwrap(), vec![3, 2]);
    }
}
