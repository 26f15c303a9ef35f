//! Anchor boxes: aspect/scale templates tiled over a feature map (as torchvision's
//! `AnchorGenerator`), and YOLOv2's k-means on box sizes with the `1 − IoU` distance.

use super::boxes::BBox;
use fovea_core::random::Rng;
use fovea_core::{Error, Result};

/// The `(w, h)` anchor templates for every aspect ratio (`h / w`, torchvision's convention) and
/// size: `h = size·√ratio`, `w = size/√ratio`, so the area is `size²`. Ratio-major order, as
/// torchvision's `AnchorGenerator.generate_anchors`.
pub fn anchor_templates(sizes: &[f32], aspect_ratios: &[f32]) -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(sizes.len() * aspect_ratios.len());
    for &r in aspect_ratios {
        let h_ratio = r.sqrt();
        let w_ratio = 1.0 / h_ratio;
        for &s in sizes {
            out.push([w_ratio * s, h_ratio * s]);
        }
    }
    out
}

/// Anchors tiled over a `feature_h × feature_w` map whose cells are `stride` pixels apart
/// (`(sy, sx)`), xyxy, location-major (row, then column, then template): torchvision's
/// `AnchorGenerator` for one feature map. Each template is centred at the cell's top-left corner
/// `(x·sx, y·sy)` and its corners rounded half to even, as torchvision does.
///
/// # Errors
/// `InvalidArgument` for a non-positive or non-finite stride, size or ratio.
pub fn grid_anchors(sizes: &[f32], aspect_ratios: &[f32], feature_hw: (usize, usize), stride: (f32, f32)) -> Result<Vec<BBox>> {
    let bad = |v: &f32| !(v.is_finite() && *v > 0.0);
    if sizes.iter().any(bad) || aspect_ratios.iter().any(bad) || bad(&stride.0) || bad(&stride.1) {
        return Err(Error::invalid(
            "grid_anchors",
            format!("sizes {sizes:?}, ratios {aspect_ratios:?} and stride {stride:?} must be positive"),
        ));
    }
    let base: Vec<BBox> = anchor_templates(sizes, aspect_ratios)
        .iter()
        .map(|&[w, h]| {
            [(-w / 2.0).round_ties_even(), (-h / 2.0).round_ties_even(), (w / 2.0).round_ties_even(), (h / 2.0).round_ties_even()]
        })
        .collect();
    let (fh, fw) = feature_hw;
    let mut out = Vec::with_capacity(fh * fw * base.len());
    for y in 0..fh {
        let cy = y as f32 * stride.0;
        for x in 0..fw {
            let cx = x as f32 * stride.1;
            out.extend(base.iter().map(|b| [cx + b[0], cy + b[1], cx + b[2], cy + b[3]]));
        }
    }
    Ok(out)
}

/// IoU of two sizes `(w, h)` placed at the same centre (YOLOv2's k-means similarity).
pub fn size_iou(a: [f32; 2], b: [f32; 2]) -> f32 {
    let inter = a[0].min(b[0]) * a[1].min(b[1]);
    inter / (a[0] * a[1] + b[0] * b[1] - inter)
}

/// The result of [`kmeans_anchors`].
#[derive(Debug, Clone, PartialEq)]
pub struct KmeansAnchors {
    /// The `k` centroids `(w, h)`, smallest area first.
    pub anchors: Vec<[f32; 2]>,
    /// Mean over the boxes of their best IoU with a centroid (YOLOv2's "Avg IOU").
    pub mean_iou: f32,
    /// Iterations run until the assignment stopped changing (or the limit).
    pub iterations: usize,
}

/// K-means on box sizes `(w, h)` with distance `1 − IoU` (YOLOv2, Redmon & Farhadi 2017): large
/// boxes no longer dominate the error as with Euclidean distance. Seeded k-means++ start, then
/// Lloyd iterations (centroid = mean size of its boxes) until no box changes cluster or
/// `max_iter`. Deterministic for a seed.
///
/// # Errors
/// `InvalidArgument` when `k` is 0 or more than the number of boxes, or a size is not positive.
pub fn kmeans_anchors(sizes: &[[f32; 2]], k: usize, seed: u64, max_iter: usize) -> Result<KmeansAnchors> {
    const OP: &str = "kmeans_anchors";
    if k == 0 || k > sizes.len() {
        return Err(Error::invalid(OP, format!("cannot make {k} clusters from {} boxes", sizes.len())));
    }
    if let Some(i) = sizes.iter().position(|s| !(s[0] > 0.0 && s[1] > 0.0 && s[0].is_finite() && s[1].is_finite())) {
        return Err(Error::invalid(OP, format!("box size {i} is {:?}: widths and heights must be positive", sizes[i])));
    }
    let mut rng = Rng::new(seed);
    // k-means++: each next centroid is drawn with probability proportional to its squared
    // distance from the nearest chosen one.
    let mut centroids = vec![sizes[rng.below(sizes.len() as u64) as usize]];
    while centroids.len() < k {
        let d2: Vec<f64> =
            sizes.iter().map(|&s| centroids.iter().map(|&c| 1.0 - size_iou(s, c) as f64).fold(f64::INFINITY, f64::min).powi(2)).collect();
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.uniform() * total;
            d2.iter()
                .position(|&d| {
                    u -= d;
                    u < 0.0
                })
                .unwrap_or(sizes.len() - 1)
        } else {
            rng.below(sizes.len() as u64) as usize
        };
        centroids.push(sizes[pick]);
    }
    let nearest = |s: [f32; 2], cs: &[[f32; 2]]| -> (usize, f32) {
        cs.iter().enumerate().map(|(j, &c)| (j, size_iou(s, c))).fold((0, f32::NEG_INFINITY), |best, x| if x.1 > best.1 { x } else { best })
    };
    let mut assign: Vec<usize> = vec![usize::MAX; sizes.len()];
    let mut iterations = 0;
    while iterations < max_iter {
        iterations += 1;
        let next: Vec<usize> = sizes.iter().map(|&s| nearest(s, &centroids).0).collect();
        if next == assign {
            break;
        }
        assign = next;
        for (j, c) in centroids.iter_mut().enumerate() {
            let (mut sw, mut sh, mut n) = (0.0f64, 0.0f64, 0usize);
            for (s, _) in sizes.iter().zip(&assign).filter(|(_, &a)| a == j) {
                sw += s[0] as f64;
                sh += s[1] as f64;
                n += 1;
            }
            // An empty cluster keeps its centroid.
            if n > 0 {
                *c = [(sw / n as f64) as f32, (sh / n as f64) as f32];
            }
        }
    }
    let mean_iou = sizes.iter().map(|&s| nearest(s, &centroids).1 as f64).sum::<f64>() / sizes.len() as f64;
    centroids.sort_by(|a, b| (a[0] * a[1]).total_cmp(&(b[0] * b[1])));
    Ok(KmeansAnchors { anchors: centroids, mean_iou: mean_iou as f32, iterations })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_keep_the_area_and_the_ratio() {
        let t = anchor_templates(&[32.0, 64.0], &[0.5, 1.0, 2.0]);
        assert_eq!(t.len(), 6);
        for (i, [w, h]) in t.iter().enumerate() {
            let (s, r) = ([32.0f32, 64.0][i % 2], [0.5f32, 1.0, 2.0][i / 2]);
            assert!((w * h - s * s).abs() < 1e-2 && (h / w - r).abs() < 1e-5, "{i}: {w}×{h}");
        }
    }

    #[test]
    fn grid_anchors_tile_location_major() {
        let a = grid_anchors(&[16.0], &[1.0, 2.0], (2, 3), (8.0, 10.0)).unwrap();
        assert_eq!(a.len(), 2 * 3 * 2);
        assert_eq!(a[0], [-8.0, -8.0, 8.0, 8.0]);
        // Ratio 2: w = 16/√2 ≈ 11.31, h ≈ 22.63, halves rounded to 6 and 11.
        assert_eq!(a[1], [-6.0, -11.0, 6.0, 11.0]);
        // Location (row 1, column 2) starts at index (1·3 + 2)·2.
        assert_eq!(a[10], [20.0 - 8.0, 8.0 - 8.0, 20.0 + 8.0, 8.0 + 8.0]);
        assert!(grid_anchors(&[0.0], &[1.0], (1, 1), (8.0, 8.0)).is_err());
    }

    #[test]
    fn kmeans_finds_separated_size_clusters() {
        let mut rng = Rng::new(9);
        let centres = [[10.0f32, 20.0], [40.0, 30.0], [90.0, 100.0]];
        let sizes: Vec<[f32; 2]> = (0..300)
            .map(|i| {
                let c = centres[i % 3];
                [c[0] * (0.9 + 0.2 * rng.uniform() as f32), c[1] * (0.9 + 0.2 * rng.uniform() as f32)]
            })
            .collect();
        let r = kmeans_anchors(&sizes, 3, 1, 100).unwrap();
        for (a, c) in r.anchors.iter().zip(&centres) {
            assert!((a[0] / c[0] - 1.0).abs() < 0.05 && (a[1] / c[1] - 1.0).abs() < 0.05, "{:?} vs {centres:?}", r.anchors);
        }
        assert!(r.mean_iou > 0.85, "{}", r.mean_iou);
        assert_eq!(kmeans_anchors(&sizes, 3, 1, 100).unwrap(), r, "deterministic for a seed");
        // One cluster per box: every box is its own centroid.
        let two = kmeans_anchors(&sizes[..2], 2, 0, 10).unwrap();
        assert!((two.mean_iou - 1.0).abs() < 1e-6);
        assert!(kmeans_anchors(&sizes, 0, 0, 10).is_err());
        assert!(kmeans_anchors(&[[1.0, -2.0]], 1, 0, 10).is_err());
    }
}
