//! Separable resampling without the matrix product: image resizing weights are `[out, in]`
//! matrices with a few nonzeros per row (2 for bilinear, 4 for bicubic), so a dense product
//! over a channels-last image wastes nearly all of its work (it was 65% of a JPEG augmentation
//! pipeline's time). When no gradient is needed, each output row or column is a short weighted
//! sum of whole input rows or pixels instead.

use fovea_core::{Device, HostData, Result, Tensor};
use rayon::prelude::*;

/// One axis's resampling weights: the dense `[out, in]` matrix, for the differentiable product,
/// and the nonzero run of each of its rows, for the fast path.
pub(crate) struct AxisWeights {
    pub(crate) dense: Tensor,
    /// Per output index: the first input index and the run length (zeros inside a run are
    /// kept; they cost little).
    runs: Vec<(usize, usize)>,
    inp: usize,
}

impl AxisWeights {
    /// Wraps a dense `[out, inp]` matrix.
    pub(crate) fn new(w: Vec<f32>, out: usize, inp: usize, device: Device) -> Result<Self> {
        let runs = (0..out)
            .map(|r| {
                let row = &w[r * inp..(r + 1) * inp];
                let first = row.iter().position(|&v| v != 0.0).unwrap_or(0);
                let end = row.iter().rposition(|&v| v != 0.0).map_or(first, |l| l + 1);
                (first, end - first)
            })
            .collect();
        Ok(AxisWeights { dense: Tensor::from_vec(w, vec![out, inp], device)?, runs, inp })
    }

    /// Each output index's first input index and weights.
    fn runs<'a>(&self, dense: &'a [f32]) -> Vec<(usize, &'a [f32])> {
        self.runs.iter().enumerate().map(|(r, &(first, len))| (first, &dense[r * self.inp + first..][..len])).collect()
    }
}

/// Pixel data the fast path reads: f32, or uint8 converted on the fly (so that resizing a
/// decoded image needs no separate cast pass).
enum Pixels<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
}

/// Whether [`resample`] takes a uint8 `x` as it is; otherwise it must be cast to f32 first.
pub(crate) fn reads_u8(x: &Tensor) -> bool {
    x.device() == Device::Cpu
}

/// The f32 data of `w` when it needs no gradient.
fn weights_data(w: &AxisWeights) -> Option<&[f32]> {
    match w.dense.host_data().ok()? {
        HostData::F32(data) if !w.dense.requires_grad() => Some(data),
        _ => None,
    }
}

/// Applies `wy` along H and then `wx` along W to `x` `[N, H, W, C]` (f32 or uint8), giving
/// f32 `[N, out_h, out_w, C]`; `None` when a gradient may be needed or the data is not on the
/// CPU (the caller then uses the differentiable products).
///
/// Each output row is made whole before the next: the H pass writes one input-width line to a
/// scratch buffer that stays in L1, and the W pass reads it from there, so the intermediate
/// image is never written out. The sums run in the same order as the two matrix products.
pub(crate) fn resample(x: &Tensor, wy: &AxisWeights, wx: &AxisWeights) -> Option<Result<Tensor>> {
    if x.requires_grad() || x.device() != Device::Cpu {
        return None;
    }
    let pixels = match x.host_data().ok()? {
        HostData::F32(v) => Pixels::F32(v),
        HostData::U8(v) => Pixels::U8(v),
        _ => return None,
    };
    let (ry, rx) = (wy.runs(weights_data(wy)?), wx.runs(weights_data(wx)?));
    let d = x.dims();
    let (n, h, c) = (d[0], d[1], d[3]);
    let (line, out_h, out_line) = (d[2] * c, ry.len(), rx.len() * c);
    let mut y = fovea_core::buffer_pool::for_overwrite(n * out_h * out_line);
    if out_h * out_line > 0 {
        // Groups of output rows per task, so that small images do not pay a task per row.
        let group = (1usize << 14).div_ceil(out_line).max(1);
        let pairs = TapPairs::new(&rx, c, line);
        let task = Task { pixels: &pixels, ry: &ry, rx: &rx, pairs: pairs.as_ref(), h, c, line, out_h, out_line };
        y.par_chunks_mut(group * out_line).enumerate().for_each(|(g, rows)| task.run(g * group, rows));
    }
    Some(Tensor::from_vec(y, [n, out_h, rx.len(), c], Device::Cpu))
}

/// The W pass of a kernel with at most two taps (bilinear, nearest, area at mild scales) as
/// two taps per output element, so that the pass is one flat loop over the line instead of a
/// loop over pixels and a loop over their few taps and channels.
struct TapPairs {
    first: Vec<u32>,
    second: Vec<u32>,
    w_first: Vec<f32>,
    w_second: Vec<f32>,
    /// The largest index in `first` and `second`.
    max_index: usize,
    /// The input line length the tables were made for.
    in_line: usize,
    /// For 3 channels: how many leading pixels can use 4-float loads and stores within lines
    /// of `in_line` inputs and `first.len()` outputs.
    rgb_vector: usize,
}

impl TapPairs {
    /// `None` when some output pixel has more than two taps or the line is too long for i32
    /// indices.
    fn new(runs: &[(usize, &[f32])], c: usize, in_line: usize) -> Option<TapPairs> {
        if runs.iter().any(|(_, ws)| ws.len() > 2) || (runs.len() + 2) * c >= i32::MAX as usize {
            return None;
        }
        let n = runs.len() * c;
        let mut p = TapPairs {
            first: Vec::with_capacity(n),
            second: Vec::with_capacity(n),
            w_first: Vec::with_capacity(n),
            w_second: Vec::with_capacity(n),
            max_index: 0,
            in_line,
            rgb_vector: 0,
        };
        for &(first, ws) in runs {
            // A one-tap (or empty) run adds 0 × its own pixel: the sum is unchanged for finite
            // pixels, as `0 + w·a + 0 = 0 + w·a`.
            let (w0, w1) = (ws.first().copied().unwrap_or(0.0), ws.get(1).copied().unwrap_or(0.0));
            let second = if ws.len() == 2 { first + 1 } else { first };
            p.max_index = p.max_index.max((second + 1) * c - 1);
            for ch in 0..c {
                p.first.push((first * c + ch) as u32);
                p.second.push((second * c + ch) as u32);
                p.w_first.push(w0);
                p.w_second.push(w1);
            }
        }
        if c == 3 {
            // Leading pixels only: a pixel that does not fit ends the vector part.
            let out_len = p.first.len();
            p.rgb_vector = (0..runs.len())
                .take_while(|&px| {
                    let e = px * 3;
                    p.first[e] as usize + 4 <= in_line && p.second[e] as usize + 4 <= in_line && e + 4 <= out_len
                })
                .count();
        }
        Some(p)
    }

    /// One output line from the input line `src`, 8 elements a step with AVX2's gathers.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&self, src: &[f32], dst: &mut [f32]) {
        use std::arch::x86_64::*;
        let n = self.first.len().min(dst.len());
        // The indices are checked here, through their maximum, rather than by each gather.
        if self.max_index >= src.len() {
            return self.apply(src, dst);
        }
        let full = n - n % 8;
        for j in (0..full).step_by(8) {
            // SAFETY: j + 8 <= n, which is within all four tables and `dst`; every index was
            // checked to lie inside `src` above.
            unsafe {
                let i0 = _mm256_loadu_si256(self.first.as_ptr().add(j).cast());
                let i1 = _mm256_loadu_si256(self.second.as_ptr().add(j).cast());
                let a = _mm256_i32gather_ps::<4>(src.as_ptr(), i0);
                let b = _mm256_i32gather_ps::<4>(src.as_ptr(), i1);
                let w0 = _mm256_loadu_ps(self.w_first.as_ptr().add(j));
                let w1 = _mm256_loadu_ps(self.w_second.as_ptr().add(j));
                // `0 + w0·a + w1·b` in the scalar loop's order, so the results are the same.
                let v = _mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(w0, a)), _mm256_mul_ps(w1, b));
                _mm256_storeu_ps(dst.as_mut_ptr().add(j), v);
            }
        }
        self.apply_from(full, src, dst);
    }

    /// One line of 3-channel pixels: each output pixel is `0 + w0·A + w1·B` over two 4-float
    /// loads starting at its two input pixels, stored as 4 floats whose last lane the next
    /// pixel overwrites. Pixels too close to the end of `src` or `dst` for 4-float accesses
    /// take the scalar loop. Twice as fast as the gathers on Zen 4.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn apply_rgb(&self, src: &[f32], dst: &mut [f32]) {
        use std::arch::x86_64::*;
        // The pixels counted by `rgb_vector` fit lines of these lengths (and any longer).
        let vector = if src.len() >= self.in_line && dst.len() >= self.first.len() { self.rgb_vector } else { 0 };
        let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
        for p in 0..vector {
            let e = p * 3;
            // SAFETY: for p < rgb_vector the two 4-float loads end within `in_line <=
            // src.len()` and the store within `first.len() <= dst.len()` (see `TapPairs::new`);
            // SSE is part of x86-64's baseline.
            unsafe {
                let (i, j) = (*self.first.get_unchecked(e) as usize, *self.second.get_unchecked(e) as usize);
                let w0 = _mm_set1_ps(*self.w_first.get_unchecked(e));
                let w1 = _mm_set1_ps(*self.w_second.get_unchecked(e));
                let (a, b) = (_mm_loadu_ps(sp.add(i)), _mm_loadu_ps(sp.add(j)));
                let v = _mm_add_ps(_mm_add_ps(_mm_setzero_ps(), _mm_mul_ps(w0, a)), _mm_mul_ps(w1, b));
                _mm_storeu_ps(dp.add(e), v);
            }
        }
        self.apply_from(vector * 3, src, dst);
    }

    /// One output line from the input line `src`.
    #[inline(always)]
    fn apply(&self, src: &[f32], dst: &mut [f32]) {
        self.apply_from(0, src, dst)
    }

    /// Output elements `from..` of one line.
    #[inline(always)]
    fn apply_from(&self, from: usize, src: &[f32], dst: &mut [f32]) {
        let taps = self.first[from..].iter().zip(&self.second[from..]).zip(self.w_first[from..].iter().zip(&self.w_second[from..]));
        for (o, ((&i, &j), (&w0, &w1))) in dst[from..].iter_mut().zip(taps) {
            *o = 0.0 + w0 * src[i as usize] + w1 * src[j as usize];
        }
    }
}

/// What every task of [`resample`] shares.
struct Task<'a> {
    pixels: &'a Pixels<'a>,
    ry: &'a [(usize, &'a [f32])],
    rx: &'a [(usize, &'a [f32])],
    pairs: Option<&'a TapPairs>,
    h: usize,
    c: usize,
    line: usize,
    out_h: usize,
    out_line: usize,
}

impl Task<'_> {
    /// Output rows `first..` (flattened over images) into `rows`.
    fn run(&self, first: usize, rows: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.run_avx2(first, rows) };
        }
        self.run_generic(first, rows, TapPairs::apply)
    }

    /// The same loops compiled for AVX2 (8 floats a step, and a uint8 → f32 widening that
    /// takes one instruction): the resampling ran at half speed on the baseline's SSE2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, first: usize, rows: &mut [f32]) {
        let channels = self.c;
        self.run_generic(first, rows, |pairs, src, dst| if channels == 3 { pairs.apply_rgb(src, dst) } else { pairs.apply_avx2(src, dst) })
    }

    #[inline(always)]
    fn run_generic(&self, first: usize, rows: &mut [f32], two_taps: impl Fn(&TapPairs, &[f32], &mut [f32])) {
        let mut scratch = vec![0f32; self.line];
        for (i, dst) in rows.chunks_mut(self.out_line).enumerate() {
            let (img, r) = ((first + i) / self.out_h, (first + i) % self.out_h);
            let (top, ws) = self.ry[r];
            let at = (img * self.h + top) * self.line;
            match self.pixels {
                Pixels::F32(v) => vertical(&v[at..], self.line, ws, &mut scratch),
                Pixels::U8(v) => vertical(&v[at..], self.line, ws, &mut scratch),
            }
            match self.pairs {
                Some(pairs) => two_taps(pairs, &scratch, dst),
                None => horizontal(&scratch, self.c, self.rx, dst),
            }
        }
    }
}

/// `dst = Σ_k ws[k] · src[k·line ..][.. line]`: one output row of the H pass.
#[inline(always)]
fn vertical<T: Copy + Into<f32>>(src: &[T], line: usize, ws: &[f32], dst: &mut [f32]) {
    let src_row = |k: usize| &src[k * line..][..line];
    match *ws {
        [] => dst.fill(0.0),
        // Bilinear rows in one pass; `0 + a + b` is the general loop's order, so the results
        // are the same.
        [w0, w1] => dst.iter_mut().zip(src_row(0)).zip(src_row(1)).for_each(|((o, &a), &b)| *o = 0.0 + w0 * a.into() + w1 * b.into()),
        _ => {
            dst.fill(0.0);
            for (k, &wk) in ws.iter().enumerate() {
                dst.iter_mut().zip(src_row(k)).for_each(|(o, &v)| *o += wk * v.into());
            }
        }
    }
}

/// One line of the W pass: each output pixel a weighted sum of a few input pixels.
#[inline(always)]
fn horizontal(src: &[f32], c: usize, runs: &[(usize, &[f32])], dst: &mut [f32]) {
    // Pixels of up to 4 channels keep their sums in registers.
    match c {
        1 => pixels_of_line::<1>(src, runs, dst),
        3 => pixels_of_line::<3>(src, runs, dst),
        4 => pixels_of_line::<4>(src, runs, dst),
        _ => {
            dst.fill(0.0);
            for (oc, &(first, ws)) in runs.iter().enumerate() {
                let px = &mut dst[oc * c..(oc + 1) * c];
                for (k, &wk) in ws.iter().enumerate() {
                    px.iter_mut().zip(&src[(first + k) * c..][..c]).for_each(|(o, v)| *o += wk * v);
                }
            }
        }
    }
}

/// [`horizontal`] for `C`-channel pixels.
#[inline(always)]
fn pixels_of_line<const C: usize>(src: &[f32], runs: &[(usize, &[f32])], dst: &mut [f32]) {
    for (px, &(first, ws)) in dst.chunks_exact_mut(C).zip(runs) {
        let mut acc = [0f32; C];
        for (k, &wk) in ws.iter().enumerate() {
            let s = &src[(first + k) * C..][..C];
            for ch in 0..C {
                acc[ch] += wk * s[ch];
            }
        }
        px.copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use crate::image::{resize, ResizeMethod};
    use fovea_core::{DType, Device, Tensor};

    /// The fast path (no gradient) and the differentiable product give the same images, for
    /// 1, 3, 4 and 5 channels (the fixed-size and the general pixel loops).
    #[test]
    fn fast_resampling_matches_the_matrix_product() {
        for channels in [1, 3, 4, 5] {
            let x = Tensor::random_uniform([2, 7, 9, channels], 0.0, 1.0, Some(5), Device::Cpu).unwrap();
            let tracked = x.with_requires_grad(true).unwrap();
            for method in [ResizeMethod::Bilinear, ResizeMethod::Bicubic, ResizeMethod::Area, ResizeMethod::Lanczos3, ResizeMethod::Nearest]
            {
                for (size, aa) in [((4, 13), false), ((11, 5), true), ((7, 9), false)] {
                    let fast = resize(&x, size, method, aa).unwrap().to_vec::<f32>().unwrap();
                    let slow = resize(&tracked, size, method, aa).unwrap().to_vec::<f32>().unwrap();
                    assert_close(&fast, &slow, &format!("{method:?} {size:?} aa={aa} C={channels}"));
                }
            }
        }
    }

    /// uint8 images are read directly by the fast path and give what their f32 copy gives.
    #[test]
    fn uint8_images_resize_like_their_float_copy() {
        let pixels: Vec<u8> = (0..2 * 6 * 5 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let x = Tensor::from_vec(pixels, [2, 6, 5, 3], Device::Cpu).unwrap();
        let f = x.cast(DType::F32).unwrap();
        for method in [ResizeMethod::Bilinear, ResizeMethod::Bicubic, ResizeMethod::Area] {
            for size in [(9, 4), (3, 8)] {
                let from_u8 = resize(&x, size, method, false).unwrap();
                assert_eq!(from_u8.dtype(), DType::F32);
                let want = resize(&f, size, method, false).unwrap().to_vec::<f32>().unwrap();
                assert_eq!(from_u8.to_vec::<f32>().unwrap(), want, "{method:?} {size:?}");
            }
        }
        let nearest = resize(&x, (9, 4), ResizeMethod::Nearest, false).unwrap();
        assert_eq!(nearest.dtype(), DType::U8, "nearest keeps uint8, as TF");
    }

    fn assert_close(fast: &[f32], slow: &[f32], what: &str) {
        assert_eq!(fast.len(), slow.len(), "{what}");
        for (i, (a, b)) in fast.iter().zip(slow).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what} element {i}: {a} vs {b}");
        }
    }
}
