//! IoU-based box regression losses (GIoU, DIoU) as differentiable tensor compositions.
//!
//! Both follow `torchvision.ops.generalized_box_iou_loss` / `distance_box_iou_loss` with
//! `reduction="none"`: boxes are xyxy, paired row by row, and `eps` guards the divisions.

use super::boxes::columns;
use fovea_core::{Error, Result, Tensor};

/// torchvision's default guard against division by zero.
pub const DEFAULT_EPS: f32 = 1e-7;

struct Pair {
    inter: Tensor,
    union: Tensor,
    /// Corners of the smallest enclosing box.
    c: [Tensor; 4],
    p: [Tensor; 4],
    g: [Tensor; 4],
}

fn pair(op: &'static str, pred: &Tensor, target: &Tensor) -> Result<Pair> {
    if pred.shape() != target.shape() {
        return Err(Error::shape(op, format!("target boxes shaped like the predictions, {}", pred.shape()), target.shape()));
    }
    let p = columns(op, pred)?;
    let g = columns(op, target)?;
    // relu(min − max) is torchvision's masked intersection: zero unless both extents are
    // positive, with the same gradient where they are.
    let w = p[2].minimum(&g[2])?.sub(&p[0].maximum(&g[0])?)?.relu()?;
    let h = p[3].minimum(&g[3])?.sub(&p[1].maximum(&g[1])?)?.relu()?;
    let inter = w.mul(&h)?;
    let area_p = p[2].sub(&p[0])?.mul(&p[3].sub(&p[1])?)?;
    let area_g = g[2].sub(&g[0])?.mul(&g[3].sub(&g[1])?)?;
    let union = area_p.add(&area_g)?.sub(&inter)?;
    let c = [p[0].minimum(&g[0])?, p[1].minimum(&g[1])?, p[2].maximum(&g[2])?, p[3].maximum(&g[3])?];
    Ok(Pair { inter, union, c, p, g })
}

/// Generalized IoU loss `1 − (IoU − (C − U)/C)` per box pair (Rezatofighi et al. 2019), where C
/// is the area of the smallest box enclosing both. `pred` and `target` are `[..., 4]` xyxy;
/// the result drops the last axis. Unlike `1 − IoU` it still has a gradient when the boxes do
/// not overlap.
///
/// # Errors
/// `ShapeMismatch` when the shapes differ or the last axis is not 4; `DTypeMismatch` unless f32.
pub fn giou_loss(pred: &Tensor, target: &Tensor, eps: f32) -> Result<Tensor> {
    let Pair { inter, union, c, .. } = pair("giou_loss", pred, target)?;
    let iou = inter.div(&union.add_scalar(eps)?)?;
    let area_c = c[2].sub(&c[0])?.mul(&c[3].sub(&c[1])?)?;
    let giou = iou.sub(&area_c.sub(&union)?.div(&area_c.add_scalar(eps)?)?)?;
    giou.neg()?.add_scalar(1.0)?.squeeze(&[-1])
}

/// Distance IoU loss `1 − IoU + ρ²/c²` per box pair (Zheng et al. 2020): ρ is the distance
/// between the two centres and c the diagonal of the enclosing box. Shapes as [`giou_loss`].
///
/// # Errors
/// As [`giou_loss`].
pub fn diou_loss(pred: &Tensor, target: &Tensor, eps: f32) -> Result<Tensor> {
    let Pair { inter, union, c, p, g } = pair("diou_loss", pred, target)?;
    let iou = inter.div(&union.add_scalar(eps)?)?;
    let diag = c[2].sub(&c[0])?.square()?.add(&c[3].sub(&c[1])?.square()?)?.add_scalar(eps)?;
    let centre = |a: &Tensor, b: &Tensor| a.add(b).and_then(|s| s.mul_scalar(0.5));
    let dx = centre(&p[0], &p[2])?.sub(&centre(&g[0], &g[2])?)?;
    let dy = centre(&p[1], &p[3])?.sub(&centre(&g[1], &g[3])?)?;
    let rho = dx.square()?.add(&dy.square()?)?;
    iou.neg()?.add_scalar(1.0)?.add(&rho.div(&diag)?)?.squeeze(&[-1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::testing::{assert_close, gradcheck};
    use fovea_core::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, [v.len() / 4, 4], Device::Reference).unwrap()
    }

    // Pairs chosen away from the kinks of min/max/relu, so finite differences are smooth:
    // overlapping, disjoint (GIoU's enclosing-box term only) and nested.
    const PRED: [f32; 12] = [0.0, 0.0, 2.0, 3.0, 5.0, 5.0, 6.5, 7.0, 1.0, 1.2, 4.0, 4.3];
    const TARGET: [f32; 12] = [0.7, 0.4, 2.9, 2.6, 0.0, 0.1, 1.5, 1.9, 0.5, 0.6, 4.6, 4.9];

    #[test]
    fn giou_gradient_matches_finite_differences() {
        gradcheck(|x| giou_loss(&x[0], &x[1], DEFAULT_EPS), &[t(&PRED), t(&TARGET)], 1e-3, 2e-3).unwrap();
    }

    #[test]
    fn diou_gradient_matches_finite_differences() {
        gradcheck(|x| diou_loss(&x[0], &x[1], DEFAULT_EPS), &[t(&PRED), t(&TARGET)], 1e-3, 2e-3).unwrap();
    }

    #[test]
    fn identical_boxes_have_zero_loss_and_disjoint_ones_more_than_one() {
        let a = t(&[0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0]);
        let b = t(&[0.0, 0.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]);
        let g = giou_loss(&a, &b, DEFAULT_EPS).unwrap().to_vec::<f32>().unwrap();
        // Disjoint unit boxes at distance: IoU 0, C = 16, U = 2 → GIoU = −14/16, loss 1.875.
        assert_close("giou", &g, &[0.0, 1.875], 1e-6, 1e-6);
        let d = diou_loss(&a, &b, DEFAULT_EPS).unwrap().to_vec::<f32>().unwrap();
        // Centres (0.5, 0.5) and (3.5, 3.5): ρ² = 18, c² = 32 → 1 + 18/32.
        assert_close("diou", &d, &[0.0, 1.5625], 1e-6, 1e-6);
    }

    fovea_core::backend_test!(losses_agree_on_every_backend, |dev| {
        let on = |v: &[f32]| Tensor::from_slice(v, [v.len() / 4, 4], dev).unwrap();
        let (p, g) = (on(&PRED).with_requires_grad(true).unwrap(), on(&TARGET));
        for f in [giou_loss, diou_loss] {
            let want = f(&t(&PRED), &t(&TARGET), DEFAULT_EPS).unwrap().to_vec::<f32>().unwrap();
            let loss = f(&p, &g, DEFAULT_EPS).unwrap();
            assert_eq!(loss.device(), dev);
            assert_close("loss", &loss.to_vec::<f32>().unwrap(), &want, 1e-5, 1e-6);
            let grads = loss.sum_all().unwrap().backward().unwrap();
            assert_eq!(grads.get(&p).unwrap().dims(), &[3, 4]);
        }
    });

    #[test]
    fn mismatched_shapes_are_errors() {
        let a = t(&PRED);
        let b = t(&TARGET[..8]);
        assert!(matches!(giou_loss(&a, &b, DEFAULT_EPS), Err(Error::ShapeMismatch { .. })));
        assert!(diou_loss(&a, &b, DEFAULT_EPS).is_err());
    }
}
