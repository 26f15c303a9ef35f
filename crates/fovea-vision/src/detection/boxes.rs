//! Box formats, conversions, clipping, areas and IoU, on host arrays and on tensors.
//!
//! Host boxes are `[f32; 4]` in the format the function names; tensor boxes are `[..., 4]` f32
//! tensors whose last axis holds the four numbers. The tensor functions are compositions of
//! core ops (slice, arithmetic, `maximum`/`minimum`, `relu`), so they run on every device and
//! carry gradients.

use fovea_core::{DType, Error, Result, Tensor};

/// A box as four numbers; what they mean depends on its [`BoxFormat`].
pub type BBox = [f32; 4];

/// How the four numbers of a box are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxFormat {
    /// Corners: `(x1, y1, x2, y2)`, as torchvision and Pascal VOC.
    Xyxy,
    /// Upper-left corner and size: `(x, y, w, h)`, as COCO's `bbox`.
    Xywh,
    /// Centre and size: `(cx, cy, w, h)`, as YOLO's targets.
    Cxcywh,
}

/// Converts one box between formats.
pub fn convert_box(b: BBox, from: BoxFormat, to: BoxFormat) -> BBox {
    let [x1, y1, x2, y2] = match from {
        BoxFormat::Xyxy => b,
        BoxFormat::Xywh => [b[0], b[1], b[0] + b[2], b[1] + b[3]],
        BoxFormat::Cxcywh => [b[0] - b[2] / 2.0, b[1] - b[3] / 2.0, b[0] + b[2] / 2.0, b[1] + b[3] / 2.0],
    };
    match to {
        BoxFormat::Xyxy => [x1, y1, x2, y2],
        BoxFormat::Xywh => [x1, y1, x2 - x1, y2 - y1],
        BoxFormat::Cxcywh => [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1],
    }
}

/// The area of an xyxy box, `(x2 − x1)·(y2 − y1)` as torchvision's `box_area` computes it: a box
/// with x2 < x1 (or y2 < y1) has a negative area, one with both reversed a positive one.
pub fn area(b: &BBox) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// Clips an xyxy box to the image `[0, width] × [0, height]`.
pub fn clip_box(b: BBox, width: f32, height: f32) -> BBox {
    [b[0].clamp(0.0, width), b[1].clamp(0.0, height), b[2].clamp(0.0, width), b[3].clamp(0.0, height)]
}

/// Divides x coordinates (and widths) by `width` and y by `height`: pixels to `[0, 1]`. Works
/// for every format, since each holds two x-like and two y-like numbers in the order x, y, x, y.
pub fn normalize_box(b: BBox, width: f32, height: f32) -> BBox {
    [b[0] / width, b[1] / height, b[2] / width, b[3] / height]
}

/// The inverse of [`normalize_box`]: `[0, 1]` coordinates to pixels.
pub fn denormalize_box(b: BBox, width: f32, height: f32) -> BBox {
    [b[0] * width, b[1] * height, b[2] * width, b[3] * height]
}

/// Intersection over union of two xyxy boxes, with torchvision's arithmetic: `inter / union`
/// where `union = area(a) + area(b) − inter`. Two identical zero-area boxes give NaN (0/0), as
/// `torchvision.ops.box_iou` does.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (area(a) + area(b) - inter)
}

/// All IoUs between `a` (N boxes) and `b` (M boxes), xyxy, row-major `N×M`: entry `i·M + j` is
/// `iou(a[i], b[j])`. The host counterpart of [`box_iou`]; rows are computed in parallel.
pub fn pairwise_iou(a: &[BBox], b: &[BBox]) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out = vec![0.0f32; a.len() * b.len()];
    if b.is_empty() {
        return out;
    }
    let area_b: Vec<f32> = b.iter().map(area).collect();
    // Rows of 64 keep each task large enough to pay for the hand-over on a few cores.
    out.par_chunks_mut(b.len() * 64).enumerate().for_each(|(chunk, rows)| {
        for (r, row) in rows.chunks_mut(b.len()).enumerate() {
            let p = &a[chunk * 64 + r];
            let ap = area(p);
            for ((o, q), &aq) in row.iter_mut().zip(b).zip(&area_b) {
                let w = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
                let h = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
                let inter = w * h;
                *o = inter / (ap + aq - inter);
            }
        }
    });
    out
}

/// Reads an `[N, 4]` f32 tensor into host boxes; `op` names the caller in errors.
///
/// # Errors
/// `RankMismatch`/`ShapeMismatch` unless the shape is `[N, 4]`; `DTypeMismatch` unless f32.
pub fn boxes_from_tensor(op: &'static str, t: &Tensor) -> Result<Vec<BBox>> {
    check_boxes(op, t, Some(2))?;
    let v = t.to_vec::<f32>()?;
    Ok(v.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
}

/// Writes host boxes into an `[N, 4]` f32 tensor on `device`.
///
/// # Errors
/// Propagates the tensor constructor's errors (an unusable device).
pub fn boxes_to_tensor(boxes: &[BBox], device: fovea_core::Device) -> Result<Tensor> {
    Tensor::from_vec(boxes.iter().flatten().copied().collect::<Vec<f32>>(), [boxes.len(), 4], device)
}

pub(crate) fn check_boxes(op: &'static str, t: &Tensor, rank: Option<usize>) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::dtype(op, "f32 boxes", t.dtype()));
    }
    if let Some(r) = rank {
        if t.rank() != r {
            return Err(Error::rank(op, format!("{r} with a last axis of 4 (boxes)"), t.shape()));
        }
    }
    if t.rank() == 0 || t.dims()[t.rank() - 1] != 4 {
        return Err(Error::shape(op, "boxes of shape [..., 4]", t.shape()));
    }
    Ok(())
}

/// The four coordinate columns of `[..., 4]` boxes, each `[..., 1]`.
pub(crate) fn columns(op: &'static str, t: &Tensor) -> Result<[Tensor; 4]> {
    check_boxes(op, t, None)?;
    let mut c = t.split(&[1, 1, 1, 1], -1)?.into_iter();
    let mut next = || c.next().expect("split into four");
    Ok([next(), next(), next(), next()])
}

/// Converts `[..., 4]` boxes between formats with tensor ops (differentiable).
///
/// # Errors
/// `DTypeMismatch`/`ShapeMismatch` unless the tensor is f32 with a last axis of 4.
pub fn convert_boxes(boxes: &Tensor, from: BoxFormat, to: BoxFormat) -> Result<Tensor> {
    const OP: &str = "convert_boxes";
    let [a, b, c, d] = columns(OP, boxes)?;
    if from == to {
        return Ok(boxes.clone());
    }
    let (x1, y1, x2, y2) = match from {
        BoxFormat::Xyxy => (a, b, c, d),
        BoxFormat::Xywh => (a.clone(), b.clone(), a.add(&c)?, b.add(&d)?),
        BoxFormat::Cxcywh => {
            let (hw, hh) = (c.mul_scalar(0.5)?, d.mul_scalar(0.5)?);
            (a.sub(&hw)?, b.sub(&hh)?, a.add(&hw)?, b.add(&hh)?)
        }
    };
    let cols = match to {
        BoxFormat::Xyxy => [x1, y1, x2, y2],
        BoxFormat::Xywh => [x1.clone(), y1.clone(), x2.sub(&x1)?, y2.sub(&y1)?],
        BoxFormat::Cxcywh => [x1.add(&x2)?.mul_scalar(0.5)?, y1.add(&y2)?.mul_scalar(0.5)?, x2.sub(&x1)?, y2.sub(&y1)?],
    };
    Tensor::concat(&[&cols[0], &cols[1], &cols[2], &cols[3]], -1)
}

/// Multiplies (or divides) `[..., 4]` boxes by `(sx, sy, sx, sy)`: see [`normalize_box`] for
/// why one function serves every format. Dividing rather than multiplying by the reciprocal
/// keeps the tensor result bit-equal to the host one.
fn scale_xy(op: &'static str, boxes: &Tensor, sx: f32, sy: f32, divide: bool) -> Result<Tensor> {
    check_boxes(op, boxes, None)?;
    let s = Tensor::from_vec(vec![sx, sy, sx, sy], [4], boxes.device())?;
    if divide {
        boxes.div(&s)
    } else {
        boxes.mul(&s)
    }
}

/// Pixel boxes to `[0, 1]` coordinates of an image `width × height` (any format).
///
/// # Errors
/// `InvalidArgument` for a non-positive size; as [`convert_boxes`] for a bad tensor.
pub fn normalize_boxes(boxes: &Tensor, width: f32, height: f32) -> Result<Tensor> {
    if !(width > 0.0 && height > 0.0) {
        return Err(Error::invalid("normalize_boxes", format!("image size must be positive, got {width}×{height}")));
    }
    scale_xy("normalize_boxes", boxes, width, height, true)
}

/// `[0, 1]` boxes to pixels of an image `width × height` (any format).
///
/// # Errors
/// As [`normalize_boxes`].
pub fn denormalize_boxes(boxes: &Tensor, width: f32, height: f32) -> Result<Tensor> {
    if !(width > 0.0 && height > 0.0) {
        return Err(Error::invalid("denormalize_boxes", format!("image size must be positive, got {width}×{height}")));
    }
    scale_xy("denormalize_boxes", boxes, width, height, false)
}

/// Clips `[..., 4]` xyxy boxes to `[0, width] × [0, height]` (`torchvision.ops.clip_boxes_to_image`).
///
/// # Errors
/// As [`normalize_boxes`].
pub fn clip_boxes(boxes: &Tensor, width: f32, height: f32) -> Result<Tensor> {
    const OP: &str = "clip_boxes";
    if !(width >= 0.0 && height >= 0.0) {
        return Err(Error::invalid(OP, format!("image size must be non-negative, got {width}×{height}")));
    }
    check_boxes(OP, boxes, None)?;
    let dev = boxes.device();
    let lo = Tensor::zeros([4], DType::F32, dev)?;
    let hi = Tensor::from_vec(vec![width, height, width, height], [4], dev)?;
    boxes.maximum(&lo)?.minimum(&hi)
}

/// Areas of `[..., 4]` xyxy boxes, shape `[...]` (`torchvision.ops.box_area`).
///
/// # Errors
/// As [`convert_boxes`].
pub fn box_area(boxes: &Tensor) -> Result<Tensor> {
    let [x1, y1, x2, y2] = columns("box_area", boxes)?;
    x2.sub(&x1)?.mul(&y2.sub(&y1)?)?.squeeze(&[-1])
}

/// Pairwise IoU of `a` `[N, 4]` and `b` `[M, 4]` xyxy boxes, `[N, M]`, equal to
/// `torchvision.ops.box_iou` (identical zero-area boxes give NaN). Built from broadcasting tensor
/// ops, so it runs on the boxes' device; [`pairwise_iou`] is the host version.
///
/// # Errors
/// `RankMismatch`/`ShapeMismatch` unless both are `[_, 4]`; `DTypeMismatch` unless f32; a
/// device mismatch from the ops.
pub fn box_iou(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "box_iou";
    check_boxes(OP, a, Some(2))?;
    check_boxes(OP, b, Some(2))?;
    let (inter, union) = inter_union_pairwise(a, b)?;
    inter.div(&union)
}

/// Pairwise intersection and union areas, both `[N, M]`.
fn inter_union_pairwise(a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    let [ax1, ay1, ax2, ay2] = columns("box_iou", a)?;
    // b's columns as rows [1, M], so every op broadcasts to [N, M].
    let m = b.dims()[0] as isize;
    let [bx1, by1, bx2, by2] = columns("box_iou", b)?;
    let row = |t: Tensor| t.reshape(&[1, m]);
    let (bx1, by1, bx2, by2) = (row(bx1)?, row(by1)?, row(bx2)?, row(by2)?);
    let w = ax2.minimum(&bx2)?.sub(&ax1.maximum(&bx1)?)?.relu()?;
    let h = ay2.minimum(&by2)?.sub(&ay1.maximum(&by1)?)?.relu()?;
    let inter = w.mul(&h)?;
    let area_a = ax2.sub(&ax1)?.mul(&ay2.sub(&ay1)?)?;
    let area_b = bx2.sub(&bx1)?.mul(&by2.sub(&by1)?)?;
    let union = area_a.add(&area_b)?.sub(&inter)?;
    Ok((inter, union))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::{backend_test, Device};

    #[test]
    fn formats_round_trip() {
        let xyxy = [1.0, 2.0, 5.0, 10.0];
        let xywh = convert_box(xyxy, BoxFormat::Xyxy, BoxFormat::Xywh);
        assert_eq!(xywh, [1.0, 2.0, 4.0, 8.0]);
        let cxcywh = convert_box(xywh, BoxFormat::Xywh, BoxFormat::Cxcywh);
        assert_eq!(cxcywh, [3.0, 6.0, 4.0, 8.0]);
        assert_eq!(convert_box(cxcywh, BoxFormat::Cxcywh, BoxFormat::Xyxy), xyxy);
        assert_eq!(normalize_box(xyxy, 10.0, 20.0), [0.1, 0.1, 0.5, 0.5]);
        assert_eq!(denormalize_box([0.1, 0.1, 0.5, 0.5], 10.0, 20.0), xyxy);
        assert_eq!(clip_box([-3.0, 4.0, 12.0, 30.0], 10.0, 20.0), [0.0, 4.0, 10.0, 20.0]);
        assert_eq!(area(&xyxy), 32.0);
        assert_eq!(area(&[5.0, 0.0, 1.0, 2.0]), -8.0, "reversed corners give a negative area, as torchvision");
    }

    #[test]
    fn scalar_iou_cases() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[0.0, 0.0, 2.0, 2.0]), 1.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]).is_nan(), "0/0 as torchvision");
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[0.0, 0.0, 2.0, 2.0]), 0.0);
    }

    backend_test!(tensor_ops_match_host_versions, |dev| {
        let host = vec![[1.0f32, 2.0, 5.0, 10.0], [0.0, 0.0, 3.0, 3.0], [-2.0, 4.0, 30.0, 6.0]];
        let t = boxes_to_tensor(&host, dev).unwrap();
        for (from, to) in [
            (BoxFormat::Xyxy, BoxFormat::Xywh),
            (BoxFormat::Xyxy, BoxFormat::Cxcywh),
            (BoxFormat::Xywh, BoxFormat::Cxcywh),
            (BoxFormat::Cxcywh, BoxFormat::Xywh),
            (BoxFormat::Cxcywh, BoxFormat::Xyxy),
        ] {
            let got = boxes_from_tensor("test", &convert_boxes(&t, from, to).unwrap()).unwrap();
            let want: Vec<BBox> = host.iter().map(|&b| convert_box(b, from, to)).collect();
            assert_eq!(got, want, "{from:?} -> {to:?}");
        }
        let clipped = boxes_from_tensor("test", &clip_boxes(&t, 10.0, 5.0).unwrap()).unwrap();
        assert_eq!(clipped, host.iter().map(|&b| clip_box(b, 10.0, 5.0)).collect::<Vec<_>>());
        let n = boxes_from_tensor("test", &normalize_boxes(&t, 10.0, 20.0).unwrap()).unwrap();
        assert_eq!(n, host.iter().map(|&b| normalize_box(b, 10.0, 20.0)).collect::<Vec<_>>());
        let back = denormalize_boxes(&normalize_boxes(&t, 4.0, 8.0).unwrap(), 4.0, 8.0).unwrap();
        assert_eq!(boxes_from_tensor("test", &back).unwrap(), host);
        assert_eq!(box_area(&t).unwrap().to_vec::<f32>().unwrap(), host.iter().map(area).collect::<Vec<_>>());
        let iou_t = box_iou(&t, &t.narrow(0, 1, 2).unwrap()).unwrap();
        assert_eq!(iou_t.dims(), &[3, 2]);
        assert_eq!(iou_t.to_vec::<f32>().unwrap(), pairwise_iou(&host, &host[1..]));
    });

    #[test]
    fn bad_box_tensors_are_errors() {
        let t = Tensor::zeros([3, 5], DType::F32, Device::Cpu).unwrap();
        assert!(matches!(box_iou(&t, &t), Err(Error::ShapeMismatch { .. })));
        let t = Tensor::zeros([4], DType::F32, Device::Cpu).unwrap();
        assert!(matches!(box_iou(&t, &t), Err(Error::RankMismatch { .. })));
        let t = Tensor::zeros([2, 4], DType::I64, Device::Cpu).unwrap();
        assert!(matches!(box_area(&t), Err(Error::DTypeMismatch { .. })));
        let t = Tensor::zeros([2, 4], DType::F32, Device::Cpu).unwrap();
        assert!(normalize_boxes(&t, 0.0, 1.0).is_err());
        let empty = Tensor::zeros([0, 4], DType::F32, Device::Cpu).unwrap();
        assert_eq!(box_iou(&empty, &t).unwrap().dims(), &[0, 2]);
    }
}
