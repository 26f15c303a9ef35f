//! YOLO (v2/v3-style) grid detection: the target encoder, the loss and the decoder.
//!
//! A head predicts, for each of the `S×S` cells of a stride-`s` grid and each of its `B`
//! anchors, `5 + C` raw values `(tx, ty, tw, th, objectness, class logits…)`, laid out NHWC as
//! `(N, S, S, B·(5 + C))`. The box is `cx = (j + σ(tx))·s`, `cy = (i + σ(ty))·s`,
//! `w = anchor_w·e^tw`, `h = anchor_h·e^th` in pixels; the confidence of class `c` is
//! `σ(objectness)·p(c)`. [`encode_targets`] turns ground-truth boxes into the same layout,
//! [`yolo_loss`] compares the two with differentiable tensor ops, and [`decode`] turns head
//! output into per-image detections through per-class NMS.

use super::anchors::size_iou;
use super::boxes::{iou, BBox};
use super::coco::CocoDetection;
use super::losses::{giou_loss, DEFAULT_EPS};
use super::nms::{batched_nms, NmsOptions};
use fovea_core::{Device, Error, Result, Tensor};

/// The geometry of a YOLO head: an `S×S` grid of stride `stride` pixels, `B` anchors given as
/// `[width, height]` in pixels, and `C` classes.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloGrid {
    /// Cells per side (`S`).
    pub size: usize,
    /// Pixels per cell, so the image side is `size·stride`.
    pub stride: f32,
    /// `[width, height]` of each anchor in pixels.
    pub anchors: Vec<[f32; 2]>,
    /// Number of classes (`C`).
    pub num_classes: usize,
}

impl YoloGrid {
    /// A grid of `size×size` cells of `stride` pixels with `anchors` and `num_classes` classes.
    ///
    /// # Errors
    /// `InvalidArgument` when a count is zero, the stride or an anchor side is not a positive
    /// finite number.
    pub fn new(size: usize, stride: f32, anchors: Vec<[f32; 2]>, num_classes: usize) -> Result<Self> {
        let bad = |m: String| Err(Error::invalid("YoloGrid", m));
        if size == 0 || anchors.is_empty() || num_classes == 0 {
            return bad(format!(
                "needs a non-empty grid, anchors and classes, got {size}×{size} cells, {} anchors, {num_classes} classes",
                anchors.len()
            ));
        }
        if !(stride.is_finite() && stride > 0.0) {
            return bad(format!("stride must be positive and finite, got {stride}"));
        }
        if let Some(a) = anchors.iter().find(|a| !a.iter().all(|v| v.is_finite() && *v > 0.0)) {
            return bad(format!("anchor sides must be positive and finite, got {a:?}"));
        }
        Ok(YoloGrid { size, stride, anchors, num_classes })
    }

    /// Values per anchor: 4 box offsets, objectness and `C` class scores.
    pub fn per_anchor(&self) -> usize {
        5 + self.num_classes
    }

    /// Channels of the head output, `B·(5 + C)`.
    pub fn channels(&self) -> usize {
        self.anchors.len() * self.per_anchor()
    }

    /// Side of the image the grid covers, in pixels.
    pub fn image_size(&self) -> f32 {
        self.size as f32 * self.stride
    }

    fn check_output(&self, op: &'static str, output: &Tensor) -> Result<usize> {
        let d = output.dims();
        if d.len() != 4 || d[1] != self.size || d[2] != self.size || d[3] != self.channels() {
            let s = self.size;
            return Err(Error::shape(op, format!("head output (N, {s}, {s}, {})", self.channels()), output.shape()));
        }
        Ok(d[0])
    }
}

/// A ground-truth object: an xyxy box in pixels and a class index in `0..C`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: BBox,
    /// Class index.
    pub class: usize,
}

/// Training targets for a batch, both `(N, S, S, B, ·)`.
#[derive(Debug, Clone)]
pub struct YoloTargets {
    /// `(N, S, S, B, 5 + C)`: `(σ-space x offset, y offset, tw, th, objectness, one-hot class)`;
    /// all zero for anchors responsible for no object.
    pub target: Tensor,
    /// `(N, S, S, B, 1)`: 1 for "don't care" anchors, which overlap some object well (best IoU
    /// above the threshold) without being responsible for it; they get no no-object loss.
    pub ignore: Tensor,
}

fn check_gt(grid: &YoloGrid, image: usize, k: usize, g: &GtBox) -> Result<()> {
    let [x1, y1, x2, y2] = g.bbox;
    let side = grid.image_size();
    let bad = |m: String| Err(Error::invalid("encode_targets", format!("image {image}, box {k} {:?}: {m}", g.bbox)));
    if !g.bbox.iter().all(|v| v.is_finite()) {
        return bad("coordinates must be finite".into());
    }
    if x2 <= x1 || y2 <= y1 {
        return bad("needs x2 > x1 and y2 > y1 (log-scale sizes of an empty box are −∞)".into());
    }
    let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    if !(0.0..side).contains(&cx) || !(0.0..side).contains(&cy) {
        return bad(format!("centre ({cx}, {cy}) lies outside the {side}×{side} image, so no cell owns it"));
    }
    if g.class >= grid.num_classes {
        return bad(format!("class {} is not below the {} classes", g.class, grid.num_classes));
    }
    Ok(())
}

/// Encodes ground-truth boxes (one list per image) as YOLO targets.
///
/// Each object goes to the cell holding its centre and, of that cell's anchors, the one whose
/// `[w, h]` has the best IoU with the box's (both centred, as YOLOv2). Its targets are the
/// centre's offset within the cell in `[0, 1)` (what `σ(tx)` should become), `ln(w/anchor_w)`,
/// `ln(h/anchor_h)`, objectness 1 and the one-hot class. When two objects pick the same anchor
/// the later one wins, as in darknet. An anchor is "don't care" when the anchor box centred on
/// its cell has IoU above `ignore_threshold` with some object it is not responsible for:
/// penalising it as background would fight the anchor that is.
///
/// # Errors
/// `InvalidArgument` for a box that is not finite, empty or inverted, whose centre is outside
/// the image, or whose class is not below `C`; the message names the image and box.
pub fn encode_targets(grid: &YoloGrid, gts: &[Vec<GtBox>], ignore_threshold: f32, device: Device) -> Result<YoloTargets> {
    let (s, b, p) = (grid.size, grid.anchors.len(), grid.per_anchor());
    let n = gts.len();
    let mut target = vec![0f32; n * s * s * b * p];
    let mut ignore = vec![0f32; n * s * s * b];
    for (img, boxes) in gts.iter().enumerate() {
        for (k, g) in boxes.iter().enumerate() {
            check_gt(grid, img, k, g)?;
        }
        for i in 0..s {
            for j in 0..s {
                let (cx, cy) = ((j as f32 + 0.5) * grid.stride, (i as f32 + 0.5) * grid.stride);
                for (a, &[aw, ah]) in grid.anchors.iter().enumerate() {
                    let anchor = [cx - aw / 2.0, cy - ah / 2.0, cx + aw / 2.0, cy + ah / 2.0];
                    if boxes.iter().any(|g| iou(&anchor, &g.bbox) > ignore_threshold) {
                        ignore[((img * s + i) * s + j) * b + a] = 1.0;
                    }
                }
            }
        }
        for g in boxes {
            let [x1, y1, x2, y2] = g.bbox;
            let (w, h) = (x2 - x1, y2 - y1);
            let (gx, gy) = ((x1 + x2) / 2.0 / grid.stride, (y1 + y2) / 2.0 / grid.stride);
            let (j, i) = ((gx.floor() as usize).min(s - 1), (gy.floor() as usize).min(s - 1));
            let best =
                (0..b).max_by(|&u, &v| size_iou([w, h], grid.anchors[u]).total_cmp(&size_iou([w, h], grid.anchors[v])).then(v.cmp(&u)));
            let a = best.expect("a grid has anchors");
            let cell = ((img * s + i) * s + j) * b + a;
            let t = &mut target[cell * p..(cell + 1) * p];
            t.fill(0.0);
            t[..5].copy_from_slice(&[gx - j as f32, gy - i as f32, (w / grid.anchors[a][0]).ln(), (h / grid.anchors[a][1]).ln(), 1.0]);
            t[5 + g.class] = 1.0;
            ignore[cell] = 0.0;
        }
    }
    Ok(YoloTargets {
        target: Tensor::from_vec(target, vec![n, s, s, b, p], device)?,
        ignore: Tensor::from_vec(ignore, vec![n, s, s, b, 1], device)?,
    })
}

/// How class scores are turned into probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassActivation {
    /// One class per box: softmax over the `C` logits, cross-entropy in the loss (YOLOv2).
    #[default]
    Softmax,
    /// Independent classes: a sigmoid per logit, binary cross-entropy in the loss (YOLOv3).
    Sigmoid,
}

/// The box regression term of [`yolo_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoxLoss {
    /// Squared error on `σ(tx), σ(ty)` and on `tw, th` (YOLOv2/v3).
    #[default]
    Offsets,
    /// Squared error on `σ(tx), σ(ty)` and on `√w, √h` relative to the image (YOLOv1), so the
    /// same pixel error costs more on a small box.
    SqrtSize,
    /// The GIoU loss of the decoded box against the target box (scale-free).
    Giou,
}

/// Weights and variants of [`yolo_loss`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoloLossOptions {
    /// Weight of the box term (YOLOv1's λ_coord).
    pub lambda_coord: f32,
    /// Weight of the no-object term (YOLOv1's λ_noobj).
    pub lambda_noobj: f32,
    /// Weight of the class term.
    pub lambda_class: f32,
    /// The box regression term.
    pub box_loss: BoxLoss,
    /// Softmax or sigmoid class scores; [`decode`] must use the same.
    pub class_activation: ClassActivation,
}

impl Default for YoloLossOptions {
    fn default() -> Self {
        YoloLossOptions {
            lambda_coord: 5.0,
            lambda_noobj: 0.5,
            lambda_class: 1.0,
            box_loss: BoxLoss::Offsets,
            class_activation: ClassActivation::Softmax,
        }
    }
}

/// The terms of [`yolo_loss`], each a scalar summed over the batch and divided by its size;
/// `total` is their weighted sum and the one to differentiate.
#[derive(Debug, Clone)]
pub struct YoloLossTerms {
    /// `λ_coord·boxes + obj + λ_noobj·noobj + λ_class·class`.
    pub total: Tensor,
    /// Box regression over responsible anchors (unweighted).
    pub boxes: Tensor,
    /// Objectness BCE over responsible anchors.
    pub obj: Tensor,
    /// Objectness BCE towards 0 over anchors that are neither responsible nor "don't care".
    pub noobj: Tensor,
    /// Class loss over responsible anchors (unweighted).
    pub class: Tensor,
}

/// `BCE(σ(x), t) = softplus(x) − x·t`, which stays finite for any logit.
fn bce_with_logits(x: &Tensor, t: &Tensor) -> Result<Tensor> {
    x.softplus()?.sub(&x.mul(t)?)
}

/// A constant `(1, S, S, 1, 2)` tensor of each cell's `(j, i)`, for decoding boxes in grid units.
fn cell_offsets(s: usize, device: Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..s * s).flat_map(|k| [(k % s) as f32, (k / s) as f32]).collect();
    Tensor::from_vec(v, vec![1, s, s, 1, 2], device)
}

fn anchor_tensor(grid: &YoloGrid, scale: f32, device: Device) -> Result<Tensor> {
    let v: Vec<f32> = grid.anchors.iter().flat_map(|a| [a[0] * scale, a[1] * scale]).collect();
    Tensor::from_vec(v, vec![1, 1, 1, grid.anchors.len(), 2], device)
}

/// xyxy boxes in grid units from `(N, S, S, B, 2)` centres and sizes.
fn xyxy(centre: &Tensor, size: &Tensor) -> Result<Tensor> {
    let half = size.mul_scalar(0.5)?;
    Tensor::concat(&[&centre.sub(&half)?, &centre.add(&half)?], -1)
}

/// The YOLO loss of raw head output `(N, S, S, B·(5 + C))` against [`encode_targets`]' targets,
/// composed of differentiable tensor ops so it runs and differentiates on any device.
///
/// Objectness is sigmoid-BCE: towards 1 on responsible anchors, towards 0 (weighted by
/// `λ_noobj`) on the others except "don't care" ones. Box and class terms count only on
/// responsible anchors. Sums are divided by the batch size, as darknet does, so the gradient of
/// one object does not shrink as the grid grows.
///
/// # Errors
/// `ShapeMismatch` when the output is not `(N, S, S, B·(5 + C))` or the targets do not match it.
pub fn yolo_loss(grid: &YoloGrid, output: &Tensor, targets: &YoloTargets, opts: &YoloLossOptions) -> Result<YoloLossTerms> {
    let n = grid.check_output("yolo_loss", output)?;
    let (s, b, p) = (grid.size, grid.anchors.len(), grid.per_anchor());
    if targets.target.dims() != [n, s, s, b, p] || targets.ignore.dims() != [n, s, s, b, 1] {
        return Err(Error::shape(
            "yolo_loss",
            format!("targets ({n}, {s}, {s}, {b}, {p}) and ignore ({n}, {s}, {s}, {b}, 1) for this output"),
            format!("{} and {}", targets.target.shape(), targets.ignore.shape()),
        ));
    }
    let (b_i, s_i, p_i) = (b as isize, s as isize, p as isize);
    let out = output.reshape(&[n as isize, s_i, s_i, b_i, p_i])?;
    let t = &targets.target;
    let obj_mask = t.narrow(-1, 4, 1)?;
    let noobj_mask = obj_mask.neg()?.add_scalar(1.0)?.mul(&targets.ignore.neg()?.add_scalar(1.0)?)?;
    let (pxy, pwh, pobj, pcls) =
        (out.narrow(-1, 0, 2)?.sigmoid()?, out.narrow(-1, 2, 2)?, out.narrow(-1, 4, 1)?, out.narrow(-1, 5, grid.num_classes)?);
    let (txy, twh, tcls) = (t.narrow(-1, 0, 2)?, t.narrow(-1, 2, 2)?, t.narrow(-1, 5, grid.num_classes)?);
    let masked_sum = |x: Tensor| x.mul(&obj_mask)?.sum_all();
    let xy = || masked_sum(pxy.sub(&txy)?.square()?);
    // Untrained heads can emit huge tw; clipping keeps e^tw finite, and 0·∞ out of the loss.
    let pwh_safe = pwh.clip(-10.0, 10.0)?;
    let boxes = match opts.box_loss {
        BoxLoss::Offsets => xy()?.add(&masked_sum(pwh.sub(&twh)?.square()?)?)?,
        BoxLoss::SqrtSize => {
            // √(a·e^t / image) = e^(t/2)·√(a / image)
            let root_anchor = anchor_tensor(grid, 1.0 / grid.image_size(), output.device())?.sqrt()?;
            let half = |x: &Tensor| x.mul_scalar(0.5)?.exp()?.mul(&root_anchor);
            xy()?.add(&masked_sum(half(&pwh_safe)?.sub(&half(&twh)?)?.square()?)?)?
        }
        BoxLoss::Giou => {
            let cells = cell_offsets(s, output.device())?;
            let anchors = anchor_tensor(grid, 1.0 / grid.stride, output.device())?;
            let pred = xyxy(&pxy.add(&cells)?, &pwh_safe.exp()?.mul(&anchors)?)?;
            let truth = xyxy(&txy.add(&cells)?, &twh.exp()?.mul(&anchors)?)?;
            giou_loss(&pred, &truth, DEFAULT_EPS)?.expand_dims(-1)?.mul(&obj_mask)?.sum_all()?
        }
    };
    let obj = masked_sum(bce_with_logits(&pobj, &obj_mask)?)?;
    let noobj = bce_with_logits(&pobj, &obj_mask)?.mul(&noobj_mask)?.sum_all()?;
    let class = match opts.class_activation {
        ClassActivation::Softmax => masked_sum(pcls.log_softmax(-1)?.mul(&tcls)?.sum(&[-1], true)?.neg()?)?,
        ClassActivation::Sigmoid => masked_sum(bce_with_logits(&pcls, &tcls)?.sum(&[-1], true)?)?,
    };
    let per_image = 1.0 / n.max(1) as f32;
    let (boxes, obj, noobj, class) =
        (boxes.mul_scalar(per_image)?, obj.mul_scalar(per_image)?, noobj.mul_scalar(per_image)?, class.mul_scalar(per_image)?);
    let total = boxes
        .mul_scalar(opts.lambda_coord)?
        .add(&obj)?
        .add(&noobj.mul_scalar(opts.lambda_noobj)?)?
        .add(&class.mul_scalar(opts.lambda_class)?)?;
    Ok(YoloLossTerms { total, boxes, obj, noobj, class })
}

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]` in pixels, clipped to the image.
    pub bbox: BBox,
    /// `σ(objectness)·p(class)`.
    pub score: f32,
    /// Class index.
    pub class: usize,
}

/// Post-processing options of [`decode`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    /// Candidates scoring at or below this are dropped before NMS (COCO evaluation wants it low).
    pub score_threshold: f32,
    /// Boxes of one class overlapping a better one by more than this are suppressed.
    pub iou_threshold: f32,
    /// Most detections kept per image (COCO counts up to 100).
    pub max_detections: usize,
    /// Must match the loss's.
    pub class_activation: ClassActivation,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { score_threshold: 0.005, iou_threshold: 0.5, max_detections: 100, class_activation: ClassActivation::Softmax }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes raw head output `(N, S, S, B·(5 + C))` into detections per image, best first.
///
/// Every (anchor, class) pair scoring above the threshold is a candidate, not only each
/// anchor's best class: a second-best class costs little and is what lets COCO AP at low
/// thresholds recover from a confused class. Candidates then go through per-class NMS.
///
/// # Errors
/// `ShapeMismatch` for the wrong output shape; `InvalidArgument` when it holds NaN or ±∞ (a
/// diverged model), naming the first image, cell and anchor.
pub fn decode(grid: &YoloGrid, output: &Tensor, opts: &DecodeOptions) -> Result<Vec<Vec<Detection>>> {
    let n = grid.check_output("decode", output)?;
    let (s, b, p, c) = (grid.size, grid.anchors.len(), grid.per_anchor(), grid.num_classes);
    let values = output.to_vec::<f32>()?;
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        let cell = k / p;
        let (img, i, j, a) = (cell / (s * s * b), cell / (s * b) % s, cell / b % s, cell % b);
        return Err(Error::invalid(
            "decode",
            format!("head output is {} at image {img}, cell ({i}, {j}), anchor {a}, value {}", values[k], k % p),
        ));
    }
    let side = grid.image_size();
    let nms_opts = NmsOptions::new(opts.iou_threshold).with_score_threshold(opts.score_threshold).with_max_output(opts.max_detections);
    let mut all = Vec::with_capacity(n);
    let mut probs = vec![0f32; c];
    for img in 0..n {
        let (mut boxes, mut scores, mut classes) = (Vec::new(), Vec::new(), Vec::new());
        for cell in 0..s * s * b {
            let v = &values[(img * s * s * b + cell) * p..][..p];
            let (i, j, a) = (cell / (s * b), cell / b % s, cell % b);
            let objectness = sigmoid(v[4]);
            match opts.class_activation {
                ClassActivation::Softmax => {
                    let m = v[5..].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let z: f32 = v[5..].iter().map(|x| (x - m).exp()).sum();
                    probs.iter_mut().zip(&v[5..]).for_each(|(q, x)| *q = (x - m).exp() / z);
                }
                ClassActivation::Sigmoid => probs.iter_mut().zip(&v[5..]).for_each(|(q, x)| *q = sigmoid(*x)),
            }
            if objectness * probs.iter().copied().fold(0.0, f32::max) <= opts.score_threshold {
                continue;
            }
            let cx = (j as f32 + sigmoid(v[0])) * grid.stride;
            let cy = (i as f32 + sigmoid(v[1])) * grid.stride;
            // e^tw past f32 range would make an infinite box that NMS rejects; no real box is
            // e^20 anchors wide anyway.
            let w = grid.anchors[a][0] * v[2].min(20.0).exp();
            let h = grid.anchors[a][1] * v[3].min(20.0).exp();
            let bbox = [(cx - w / 2.0).max(0.0), (cy - h / 2.0).max(0.0), (cx + w / 2.0).min(side), (cy + h / 2.0).min(side)];
            for (k, q) in probs.iter().enumerate() {
                if objectness * q > opts.score_threshold {
                    boxes.push(bbox);
                    scores.push(objectness * q);
                    classes.push(k as i64);
                }
            }
        }
        let kept = batched_nms(&boxes, &scores, &classes, &nms_opts)?;
        all.push(kept.into_iter().map(|k| Detection { bbox: boxes[k], score: scores[k], class: classes[k] as usize }).collect());
    }
    Ok(all)
}

/// Detections per image as COCO results (`[x, y, w, h]` boxes), ready for
/// [`super::coco::write_results`] or [`super::cocoeval::evaluate`]. Image `k` of `dets` gets
/// `image_ids[k]`; class `c` becomes `category_ids[c]`.
///
/// # Errors
/// `InvalidArgument` when the image ids do not match the images, or a class has no category id.
pub fn detections_to_coco(dets: &[Vec<Detection>], image_ids: &[i64], category_ids: &[i64]) -> Result<Vec<CocoDetection>> {
    if dets.len() != image_ids.len() {
        return Err(Error::invalid("detections_to_coco", format!("{} images of detections but {} image ids", dets.len(), image_ids.len())));
    }
    let mut out = Vec::new();
    for (per_image, &image_id) in dets.iter().zip(image_ids) {
        for d in per_image {
            let category_id = *category_ids.get(d.class).ok_or_else(|| {
                Error::invalid("detections_to_coco", format!("class {} has no category id ({} given)", d.class, category_ids.len()))
            })?;
            let [x1, y1, x2, y2] = d.bbox.map(f64::from);
            out.push(CocoDetection { image_id, category_id, bbox: [x1, y1, x2 - x1, y2 - y1], score: d.score as f64 });
        }
    }
    Ok(out)
}

/// "Perfect" raw head output for targets: logits that [`decode`] turns back into the target
/// boxes with confidence `σ(logit)·p(class)` near 1, and near-zero confidence elsewhere.
/// For tests and for checking a decoder against an encoder.
///
/// # Errors
/// As the tensor ops it uses (none for targets from [`encode_targets`]).
pub fn perfect_logits(grid: &YoloGrid, targets: &YoloTargets, logit: f32) -> Result<Tensor> {
    let d = targets.target.dims().to_vec();
    let t = targets.target.to_vec::<f32>()?;
    let p = grid.per_anchor();
    let mut v = vec![0f32; t.len()];
    for (o, t) in v.chunks_mut(p).zip(t.chunks(p)) {
        let inv_sigmoid = |q: f32| {
            let q = q.clamp(1e-6, 1.0 - 1e-6);
            (q / (1.0 - q)).ln()
        };
        o[0] = inv_sigmoid(t[0]);
        o[1] = inv_sigmoid(t[1]);
        o[2] = t[2];
        o[3] = t[3];
        o[4] = if t[4] > 0.5 { logit } else { -logit };
        for k in 0..grid.num_classes {
            o[5 + k] = if t[5 + k] > 0.5 { logit } else { -logit };
        }
    }
    Tensor::from_vec(v, vec![d[0], d[1], d[2], d[3] * d[4]], targets.target.device())
}

#[cfg(test)]
#[path = "yolo_tests.rs"]
mod tests;
