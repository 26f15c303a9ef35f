//! The CPU backend's strided walk. The reference walk hands out one innermost row at a time
//! through an odometer over every outer axis, and copies each row with a slice copy; on images
//! that row is one pixel of 3 channels, so a crop or a left-right flip spent its time in the
//! odometer and in `memcpy` calls for 12 bytes. Here axes that stay contiguous are merged first
//! (a crop of an NHWC image becomes whole `W × C` runs) and the innermost two axes run in a
//! tight loop, with fixed-size copies for rows of up to 4 elements.

use crate::backend::reference::movement::Walk;

/// A [`Walk`] with unit axes dropped, contiguous neighbours merged, and at least two axes.
pub(super) struct FastWalk {
    dims: Vec<usize>,
    strides: Vec<isize>,
    base: usize,
}

impl FastWalk {
    /// The same traversal as `walk` (same output order and elements).
    pub(super) fn new(walk: &Walk) -> FastWalk {
        let (mut dims, mut strides): (Vec<usize>, Vec<isize>) = (Vec::new(), Vec::new());
        for (&d, &s) in walk.dims.iter().zip(&walk.strides) {
            if d == 1 {
                continue;
            }
            match (dims.last_mut(), strides.last_mut()) {
                // The outer axis steps exactly over the whole inner one: one longer axis.
                (Some(outer_d), Some(outer_s)) if *outer_s == s * d as isize => {
                    *outer_d *= d;
                    *outer_s = s;
                }
                _ => {
                    dims.push(d);
                    strides.push(s);
                }
            }
        }
        while dims.len() < 2 {
            dims.insert(0, 1);
            strides.insert(0, 0);
        }
        FastWalk { dims, strides, base: walk.base }
    }

    /// Length of the innermost (merged) axis: the unit of work splitting.
    pub(super) fn row_len(&self) -> usize {
        self.dims[self.dims.len() - 1]
    }

    /// Fills `out` (whole rows) with the output starting at row `first_row`.
    pub(super) fn fill<T: Copy>(&self, x: &[T], first_row: usize, out: &mut [T]) {
        let r = self.dims.len();
        let (last, step) = (self.dims[r - 1], self.strides[r - 1]);
        let (mid, mid_stride) = (self.dims[r - 2], self.strides[r - 2]);
        let (outer_dims, outer_strides) = (&self.dims[..r - 2], &self.strides[..r - 2]);
        if out.is_empty() || last == 0 || mid == 0 {
            return;
        }
        let mut rows_left = out.len() / last;
        let mut pos = first_row % mid;
        let mut rem = first_row / mid;
        let mut idx = vec![0usize; r - 2];
        let mut off = self.base as isize;
        for k in (0..r - 2).rev() {
            idx[k] = rem % outer_dims[k];
            rem /= outer_dims[k];
            off += idx[k] as isize * outer_strides[k];
        }
        let mut rows = out.chunks_exact_mut(last);
        loop {
            let n = (mid - pos).min(rows_left);
            let mut src = off + pos as isize * mid_stride;
            for row in rows.by_ref().take(n) {
                copy_row(row, x, src, step);
                src += mid_stride;
            }
            rows_left -= n;
            if rows_left == 0 {
                return;
            }
            pos = 0;
            for k in (0..r - 2).rev() {
                idx[k] += 1;
                off += outer_strides[k];
                if idx[k] < outer_dims[k] {
                    break;
                }
                off -= outer_strides[k] * outer_dims[k] as isize;
                idx[k] = 0;
            }
        }
    }
}

/// `row[j] = x[src + j·step]`; short unit-step rows (pixels) are copied element by element,
/// since a `memcpy` call per pixel costs more than the copy.
#[inline(always)]
fn copy_row<T: Copy>(row: &mut [T], x: &[T], src: isize, step: isize) {
    let s = src as usize;
    if step == 1 {
        match row.len() {
            1 => row[0] = x[s],
            2 => {
                row[0] = x[s];
                row[1] = x[s + 1];
            }
            3 => {
                row[0] = x[s];
                row[1] = x[s + 1];
                row[2] = x[s + 2];
            }
            4 => {
                row[0] = x[s];
                row[1] = x[s + 1];
                row[2] = x[s + 2];
                row[3] = x[s + 3];
            }
            n => row.copy_from_slice(&x[s..s + n]),
        }
    } else {
        for (j, o) in row.iter_mut().enumerate() {
            *o = x[(src + j as isize * step) as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SliceAxis;
    use crate::Shape;

    /// Every split point of several walks (unit axes, mergeable runs, reversed and strided axes,
    /// rows of 1–5 elements) gives the reference walk's elements.
    #[test]
    fn fast_walk_matches_the_reference_walk_from_any_row() {
        let cases: Vec<(Vec<usize>, Vec<SliceAxis>)> = vec![
            // A crop of an NHWC image: W × C merges into one run.
            (vec![1, 7, 9, 3], vec![ax(0, 1, 1), ax(1, 1, 5), ax(2, 1, 6), ax(0, 1, 3)]),
            // A left-right flip: 3-element pixels in reverse order.
            (vec![2, 4, 5, 3], vec![ax(0, 1, 2), ax(0, 1, 4), ax(4, -1, 5), ax(0, 1, 3)]),
            // Strided innermost axis, reversed outer axis.
            (vec![3, 4, 10], vec![ax(2, -1, 3), ax(1, 1, 3), ax(9, -2, 5)]),
            // A whole tensor (everything merges into one run) and a single axis.
            (vec![2, 3, 4], vec![ax(0, 1, 2), ax(0, 1, 3), ax(0, 1, 4)]),
            (vec![6], vec![ax(1, 2, 3)]),
            // Rows of 2, 4 and 5 elements.
            (vec![3, 5, 2], vec![ax(0, 1, 3), ax(4, -1, 5), ax(0, 1, 2)]),
            (vec![3, 5, 4], vec![ax(0, 1, 3), ax(0, 2, 3), ax(0, 1, 4)]),
            (vec![3, 5, 5], vec![ax(2, -1, 2), ax(4, -1, 5), ax(0, 1, 5)]),
        ];
        for (dims, axes) in cases {
            let shape = Shape::new(dims.clone());
            let x: Vec<i64> = (0..shape.numel() as i64).collect();
            let walk = Walk::slice(&shape, &axes);
            let n: usize = walk.dims.iter().product();
            let mut want = vec![-1; n];
            walk.fill(&x, 0, &mut want);
            let fast = FastWalk::new(&walk);
            let row = fast.row_len();
            for first in 0..n / row {
                let mut got = vec![-1; n - first * row];
                fast.fill(&x, first, &mut got);
                assert_eq!(got, want[first * row..], "{dims:?} from row {first}");
            }
        }
    }

    fn ax(start: usize, step: isize, len: usize) -> SliceAxis {
        SliceAxis { start, step, len }
    }
}
