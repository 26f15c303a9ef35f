//! A grid of classified images, each captioned with its true and predicted class; mistakes get
//! a red frame and a red caption.

use super::{draw_err, font, Figure, Format, RIGHT_COLOR, WRONG_COLOR};
use crate::image::convert_image_dtype;
use fovea_core::{DType, Error, Result, Tensor};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const OP: &str = "plot_predictions";
const TITLE_H: usize = 40;
const PAD: usize = 8;
const CAPTION_H: usize = 38;
/// Small images are magnified by a whole factor to at least this many pixels a side.
const MIN_SIDE: usize = 96;

struct Grid {
    /// RGB bytes of each image, `h × w × 3`.
    rgb: Vec<u8>,
    n: usize,
    h: usize,
    w: usize,
    scale: usize,
    cols: usize,
    truth: Vec<String>,
    guess: Vec<String>,
    wrong: Vec<bool>,
}

/// Writes a grid of `images` (`[N, H, W, C]`, C 1 or 3, float32 in `[0, 1]` or uint8), `cols`
/// per row, each captioned "true: …" and "pred: …" from the integer `labels` and `predictions`
/// (`[N]`, any integer dtype), as a PNG at `path`. Wrong predictions are framed and captioned
/// in red; the title counts them. `class_names` is empty (classes print as numbers) or names
/// every class. Images smaller than 96 pixels are magnified by a whole factor (nearest pixel).
///
/// # Errors
/// `RankMismatch`/`ShapeMismatch`/`DTypeMismatch` naming `plot_predictions` for other image
/// shapes or dtypes; `InvalidArgument` for `cols == 0`, no images, label or prediction counts
/// that differ from the image count, a class outside `0..class_names.len()`, a path that does
/// not end in `.png` (SVG cannot hold the pixels compactly), or a path that cannot be written.
pub fn plot_predictions(
    path: impl AsRef<Path>,
    images: &Tensor,
    labels: &Tensor,
    predictions: &Tensor,
    class_names: &[&str],
    cols: usize,
) -> Result<()> {
    let path = path.as_ref();
    if Format::of(OP, path)? != Format::Png {
        return Err(Error::invalid(OP, format!("expected a path ending in .png (the grid holds pixels), got {}", path.display())));
    }
    if images.rank() != 4 {
        return Err(Error::rank(OP, "4 (N, H, W, C)", images.shape()));
    }
    let [n, h, w, c] = [images.dims()[0], images.dims()[1], images.dims()[2], images.dims()[3]];
    if c != 1 && c != 3 {
        return Err(Error::shape(OP, "images with 1 or 3 channels", images.shape()));
    }
    if cols == 0 || n == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(OP, format!("expected cols >= 1 and at least one image, got cols={cols} and shape {}", images.shape())));
    }
    let bytes = match images.dtype() {
        DType::U8 => images.to_vec::<u8>()?,
        DType::F32 => convert_image_dtype(images, DType::U8, true)?.to_vec::<u8>()?,
        other => return Err(Error::dtype(OP, "float32 or uint8 images", other)),
    };
    let rgb = if c == 3 { bytes } else { bytes.iter().flat_map(|&v| [v, v, v]).collect() };
    let classes = |what: &str, t: &Tensor| -> Result<Vec<i64>> {
        let v = t.cast(DType::I64)?.to_vec::<i64>()?;
        if v.len() != n {
            return Err(Error::invalid(OP, format!("expected {n} {what}, one per image, got {} (shape {})", v.len(), t.shape())));
        }
        if let Some(bad) = v.iter().find(|&&k| k < 0 || (!class_names.is_empty() && k as usize >= class_names.len())) {
            return Err(Error::invalid(OP, format!("{what}: class {bad} is outside 0..{}", class_names.len().max(1))));
        }
        Ok(v)
    };
    let (truth, guess) = (classes("labels", labels)?, classes("predictions", predictions)?);
    let name = |k: i64| if class_names.is_empty() { k.to_string() } else { class_names[k as usize].to_string() };
    let grid = Grid {
        rgb,
        n,
        h,
        w,
        scale: MIN_SIDE.div_ceil(h.max(w)).max(1),
        cols: cols.min(n),
        wrong: truth.iter().zip(&guess).map(|(a, b)| a != b).collect(),
        truth: truth.iter().map(|&k| format!("true: {}", name(k))).collect(),
        guess: guess.iter().map(|&k| format!("pred: {}", name(k))).collect(),
    };
    super::save(&grid, path)
}

impl Grid {
    /// The cell's width and height.
    fn cell(&self) -> (usize, usize) {
        ((self.w * self.scale).max(110) + 2 * PAD, self.h * self.scale + 2 * PAD + CAPTION_H)
    }

    /// Top-left corner of image `k` on the canvas.
    fn image_origin(&self, k: usize) -> (usize, usize) {
        let (cw, ch) = self.cell();
        let (col, row) = (k % self.cols, k / self.cols);
        (col * cw + (cw - self.w * self.scale) / 2, TITLE_H + row * ch + PAD)
    }
}

impl Figure for Grid {
    fn op(&self) -> &'static str {
        OP
    }

    fn size(&self) -> (u32, u32) {
        let (cw, ch) = self.cell();
        ((cw * self.cols) as u32, (TITLE_H + ch * self.n.div_ceil(self.cols)) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let e = draw_err(OP);
        let wrong = self.wrong.iter().filter(|&&w| w).count();
        let title = format!("Predictions: {} of {} wrong", wrong, self.n);
        let centre = |size: f64| font(size).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(title, (self.size().0 as i32 / 2, 10), centre(20.0))).map_err(&e)?;
        let (iw, ih) = ((self.w * self.scale) as i32, (self.h * self.scale) as i32);
        for k in 0..self.n {
            let (x, y) = self.image_origin(k);
            let (x, y) = (x as i32, y as i32);
            let ink = if self.wrong[k] { WRONG_COLOR } else { RIGHT_COLOR };
            if self.wrong[k] {
                root.draw(&Rectangle::new([(x - 4, y - 4), (x + iw + 3, y + ih + 3)], WRONG_COLOR.filled())).map_err(&e)?;
            }
            let mid = x + iw / 2;
            root.draw(&Text::new(self.truth[k].clone(), (mid, y + ih + 6), centre(13.0))).map_err(&e)?;
            root.draw(&Text::new(self.guess[k].clone(), (mid, y + ih + 22), centre(13.0).color(&ink))).map_err(&e)?;
        }
        Ok(())
    }

    /// Pastes the images (nearest-neighbour magnified) over the frames drawn beneath them.
    fn finish_bitmap(&self, canvas: &mut [u8]) {
        let width = self.size().0 as usize;
        let s = self.scale;
        for k in 0..self.n {
            let (x0, y0) = self.image_origin(k);
            for y in 0..self.h * s {
                for x in 0..self.w * s {
                    let src = ((k * self.h + y / s) * self.w + x / s) * 3;
                    let dst = ((y0 + y) * width + x0 + x) * 3;
                    canvas[dst..dst + 3].copy_from_slice(&self.rgb[src..src + 3]);
                }
            }
        }
    }
}
