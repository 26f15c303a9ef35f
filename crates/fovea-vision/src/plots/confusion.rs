//! A confusion matrix as a heat map: true classes down the side, predicted ones along the
//! bottom, each cell's count (or row fraction) printed in it and a colour bar beside it.

use super::{draw_err, font, save, Figure};
use fovea_core::{Error, Result};
use fovea_nn::confusion::ConfusionMatrix;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// How [`plot_confusion_matrix`] draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfusionOptions {
    /// Show each row as fractions of its true class (rows sum to 1; an empty row stays 0),
    /// like scikit-learn's `normalize="true"`, instead of raw counts.
    pub normalize: bool,
    /// The figure's title (default "Confusion matrix", with "(normalized)" when it is).
    pub title: Option<String>,
}

const LABEL_FONT: f64 = 14.0;
const TITLE_H: i32 = 50;
const AXIS_TITLE: i32 = 34;
const BAR_GAP: i32 = 24;
const BAR_W: i32 = 20;
const BAR_LABELS: i32 = 70;

struct Heatmap {
    values: Vec<f64>,
    classes: usize,
    names: Vec<String>,
    normalize: bool,
    title: String,
    cell: i32,
    label_w: i32,
    rotate_x: bool,
}

/// Writes `matrix` (rows true classes, columns predicted ones) as a heat map to `path`
/// (`.png` or `.svg`). `class_names` is empty (classes are numbered) or names every class.
///
/// # Errors
/// `InvalidArgument` naming `plot_confusion_matrix` for a matrix without classes, a wrong
/// number of class names, a path that does not end in `.png`/`.svg`, or a path that cannot be
/// written (the message names it).
pub fn plot_confusion_matrix(
    matrix: &ConfusionMatrix,
    class_names: &[&str],
    path: impl AsRef<Path>,
    options: &ConfusionOptions,
) -> Result<()> {
    const OP: &str = "plot_confusion_matrix";
    let c = matrix.classes();
    if c == 0 {
        return Err(Error::invalid(OP, "expected a matrix with at least one class, got 0 classes"));
    }
    if !class_names.is_empty() && class_names.len() != c {
        return Err(Error::invalid(OP, format!("expected no class names or one per class ({c}), got {}", class_names.len())));
    }
    let names: Vec<String> =
        if class_names.is_empty() { (0..c).map(|k| k.to_string()).collect() } else { class_names.iter().map(|s| s.to_string()).collect() };
    let values = cell_values(matrix, options.normalize);
    // Cells shrink with more classes so the figure stays about 560 pixels square.
    let cell = (560 / c as i32).clamp(12, 80);
    // The layout needs the widest class name before anything is drawn, so measure it now.
    super::ensure_font(OP)?;
    let widths = names.iter().map(|n| font(LABEL_FONT).font.box_size(n).map(|(w, _)| w as i32));
    let label_w = widths.collect::<std::result::Result<Vec<i32>, _>>().map_err(draw_err(OP))?.into_iter().max().unwrap_or(0) + 10;
    let default_title = if options.normalize { "Confusion matrix (normalized)" } else { "Confusion matrix" };
    let fig = Heatmap {
        values,
        classes: c,
        names,
        normalize: options.normalize,
        title: options.title.clone().unwrap_or_else(|| default_title.into()),
        cell,
        label_w,
        rotate_x: label_w - 10 > cell - 4,
    };
    save(&fig, path.as_ref())
}

/// Counts, or each row divided by its total (`0/0 := 0`, the crate's convention).
fn cell_values(m: &ConfusionMatrix, normalize: bool) -> Vec<f64> {
    let c = m.classes();
    let mut v = Vec::with_capacity(c * c);
    for t in 0..c {
        let total: u64 = (0..c).map(|p| m.get(t, p)).sum();
        for p in 0..c {
            let n = m.get(t, p) as f64;
            v.push(if !normalize {
                n
            } else if total == 0 {
                0.0
            } else {
                n / total as f64
            });
        }
    }
    v
}

/// Matplotlib's "Blues" colour map at `t` in `[0, 1]`, by linear steps between five of its stops.
fn blues(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [(247., 251., 255.), (198., 219., 239.), (107., 174., 214.), (33., 113., 181.), (8., 48., 107.)];
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Heatmap {
    fn vmax(&self) -> f64 {
        let m = self.values.iter().copied().fold(0.0, f64::max);
        if m > 0.0 {
            m
        } else {
            1.0
        }
    }

    fn fmt(&self, v: f64) -> String {
        if self.normalize {
            format!("{v:.2}")
        } else {
            format!("{}", v.round())
        }
    }

    /// Left and top of the grid.
    fn origin(&self) -> (i32, i32) {
        (AXIS_TITLE + self.label_w, TITLE_H)
    }

    fn x_labels_h(&self) -> i32 {
        if self.rotate_x {
            self.label_w
        } else {
            24
        }
    }
}

impl Figure for Heatmap {
    fn op(&self) -> &'static str {
        "plot_confusion_matrix"
    }

    fn size(&self) -> (u32, u32) {
        let side = self.cell * self.classes as i32;
        let w = AXIS_TITLE + self.label_w + side + BAR_GAP + BAR_W + BAR_LABELS;
        let h = TITLE_H + side + self.x_labels_h() + AXIS_TITLE + 6;
        (w as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let e = draw_err(self.op());
        let (w, _) = self.size();
        let (x0, y0) = self.origin();
        let (c, cell) = (self.classes, self.cell);
        let side = cell * c as i32;
        let centred = |size: f64| font(size).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(self.title.clone(), (w as i32 / 2, TITLE_H / 2), centred(20.0))).map_err(&e)?;
        let vmax = self.vmax();
        let value_font = (cell as f64 * 0.28).min(15.0);
        for t in 0..c {
            for p in 0..c {
                let v = self.values[t * c + p];
                let (x, y) = (x0 + p as i32 * cell, y0 + t as i32 * cell);
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], blues(v / vmax).filled())).map_err(&e)?;
                // Numbers only fit in cells of readable size; white on the dark half of the map.
                if cell >= 22 {
                    let ink = if v / vmax > 0.5 { WHITE } else { BLACK };
                    let style = centred(value_font).color(&ink);
                    root.draw(&Text::new(self.fmt(v), (x + cell / 2, y + cell / 2), style)).map_err(&e)?;
                }
            }
        }
        root.draw(&Rectangle::new([(x0, y0), (x0 + side, y0 + side)], BLACK.stroke_width(1))).map_err(&e)?;
        // Class names: true classes right-aligned left of the rows, predicted ones under the
        // columns (turned upright when they are wider than a cell).
        let right = font(LABEL_FONT).pos(Pos::new(HPos::Right, VPos::Center));
        for (k, name) in self.names.iter().enumerate() {
            let mid = k as i32 * cell + cell / 2;
            root.draw(&Text::new(name.clone(), (x0 - 6, y0 + mid), right.clone())).map_err(&e)?;
            let (pos, style) = if self.rotate_x {
                ((x0 + mid, y0 + side + 6), font(LABEL_FONT).pos(Pos::new(HPos::Right, VPos::Center)).transform(FontTransform::Rotate270))
            } else {
                ((x0 + mid, y0 + side + 6), font(LABEL_FONT).pos(Pos::new(HPos::Center, VPos::Top)))
            };
            root.draw(&Text::new(name.clone(), pos, style)).map_err(&e)?;
        }
        let below = y0 + side + self.x_labels_h() + AXIS_TITLE / 2;
        root.draw(&Text::new("Predicted label", (x0 + side / 2, below), centred(16.0))).map_err(&e)?;
        let upright = centred(16.0).transform(FontTransform::Rotate270);
        root.draw(&Text::new("True label", (AXIS_TITLE / 2, y0 + side / 2), upright)).map_err(&e)?;
        self.draw_colour_bar(root, x0 + side + BAR_GAP, y0, side)
    }
}

impl Heatmap {
    /// A vertical strip of the colour map, `vmax` at the top, with five ticks.
    fn draw_colour_bar<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, x: i32, y: i32, h: i32) -> Result<()> {
        let e = draw_err(self.op());
        for r in 0..h {
            let t = 1.0 - r as f64 / (h - 1).max(1) as f64;
            root.draw(&Rectangle::new([(x, y + r), (x + BAR_W, y + r + 1)], blues(t).filled())).map_err(&e)?;
        }
        root.draw(&Rectangle::new([(x, y), (x + BAR_W, y + h)], BLACK.stroke_width(1))).map_err(&e)?;
        let vmax = self.vmax();
        let style = font(12.0).pos(Pos::new(HPos::Left, VPos::Center));
        let step = nice_step(vmax, !self.normalize);
        for v in (0..).map(|k| k as f64 * step).take_while(|&v| v <= vmax * (1.0 + 1e-9)) {
            let ty = y + h - (h as f64 * v / vmax).round() as i32;
            root.draw(&PathElement::new(vec![(x + BAR_W, ty), (x + BAR_W + 4, ty)], BLACK)).map_err(&e)?;
            root.draw(&Text::new(self.fmt(v), (x + BAR_W + 7, ty), style.clone())).map_err(&e)?;
        }
        Ok(())
    }
}

/// A round tick step (1, 2 or 5 times a power of ten) giving at most six ticks from 0 to `vmax`;
/// whole numbers only when the values are counts.
fn nice_step(vmax: f64, whole: bool) -> f64 {
    let raw = vmax / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * pow).find(|&s| s >= raw).unwrap_or(10.0 * pow);
    if whole {
        step.max(1.0).round()
    } else {
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::{Device, Tensor};

    #[test]
    fn rows_normalize_with_empty_rows_left_at_zero() {
        let mut m = ConfusionMatrix::new(3);
        let l = Tensor::from_vec(vec![0i64, 0, 0, 1], [4], Device::Cpu).unwrap();
        let p = Tensor::from_vec(vec![0i64, 0, 1, 2], [4], Device::Cpu).unwrap();
        m.update(&l, &p).unwrap();
        assert_eq!(cell_values(&m, false), [2.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(cell_values(&m, true), [2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn colour_bar_steps_are_round() {
        assert_eq!([6.0, 40.0, 3.0, 1.0, 250.0].map(|v| nice_step(v, true)), [2.0, 10.0, 1.0, 1.0, 50.0]);
        assert_eq!(nice_step(1.0, false), 0.2);
        assert_eq!(nice_step(0.92, false), 0.2);
        assert_eq!(nice_step(0.4, false), 0.1);
    }

    #[test]
    fn blues_runs_from_near_white_to_dark_blue() {
        assert_eq!(blues(0.0), RGBColor(247, 251, 255));
        assert_eq!(blues(1.0), RGBColor(8, 48, 107));
        // Halfway between the stops at 0.25 and 0.5.
        assert_eq!(blues(0.375), RGBColor(153, 197, 227));
        assert_eq!(blues(2.0), blues(1.0));
    }
}
