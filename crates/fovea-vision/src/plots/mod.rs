//! Training plots: learning curves from a [`History`](fovea_nn::model::History) or a
//! [`CsvLogger`](fovea_nn::callbacks::CsvLogger) file, a confusion-matrix heat map and a grid of
//! predictions, drawn with `plotters` and written as PNG or SVG.
//!
//! Text is set in DejaVu Sans (a Latin subset, `assets/DejaVuSans-subset.ttf`, its licence in
//! `assets/LICENSE_DEJAVU`) compiled into the crate, so plotting needs no system font libraries
//! and renders the same everywhere. Files are written atomically (a temporary file renamed into
//! place), like model files, so a failed plot never leaves half an image behind.
//!
//! ```
//! use fovea_nn::model::History;
//! use fovea_vision::plots::{plot_history, CurveOptions};
//!
//! # fn main() -> fovea_core::Result<()> {
//! let mut history = History::default();
//! history.history.insert("loss".into(), vec![0.9, 0.5, 0.3]);
//! history.history.insert("val_loss".into(), vec![1.0, 0.7, 0.6]);
//! let path = std::env::temp_dir().join(format!("fovea-doc-curves-{}.svg", std::process::id()));
//! plot_history(&history, &path, &CurveOptions::default())?;
//! // One panel, the loss, with a training and a validation line.
//! assert!(std::fs::read_to_string(&path).unwrap().contains("validation"));
//! # std::fs::remove_file(&path).unwrap();
//! # Ok(())
//! # }
//! ```

mod confusion;
mod curves;
mod predictions;

pub use confusion::{plot_confusion_matrix, ConfusionOptions};
pub use curves::{plot_csv_log, plot_history, read_csv_log, CurveOptions};
pub use predictions::plot_predictions;

use crate::image::encode_png;
use fovea_core::{Device, Error, Result, Tensor};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::OnceLock;

/// The one font family plots use; registered once under the name plotters looks up.
const FAMILY: &str = "sans-serif";
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// Matplotlib's first colours ("tab:blue", "tab:orange"), which readers know from Keras tutorials.
pub(crate) const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
pub(crate) const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);
pub(crate) const WRONG_COLOR: RGBColor = RGBColor(214, 39, 40);
pub(crate) const RIGHT_COLOR: RGBColor = RGBColor(44, 140, 44);

/// Registers the bundled font with plotters (once per process).
pub(crate) fn ensure_font(op: &'static str) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(op, "the bundled DejaVu Sans font could not be parsed"))
    }
}

/// A font of the bundled family, `size` pixels to the em. Plotters sets text at 1/1.24 of the
/// size it is given (its line height), so the size is scaled back up.
pub(crate) fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size * 1.24).into_font().color(&BLACK)
}

/// The image formats a plot can be written as, chosen by the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format `path`'s extension names (case-insensitive).
    pub(crate) fn of(op: &'static str, path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(Error::invalid(op, format!("expected a path ending in .png or .svg, got {}", path.display()))),
        }
    }
}

/// Turns a plotters failure into the crate's error, naming the op.
pub(crate) fn draw_err<E: std::fmt::Debug>(op: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::invalid(op, format!("drawing failed: {e:?}"))
}

/// Something that draws itself on any plotters backend, so one routine serves PNG and SVG.
pub(crate) trait Figure {
    /// The op name errors carry.
    fn op(&self) -> &'static str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on a white canvas of [`Figure::size`].
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
    /// Runs after drawing on the raw RGB buffer of a PNG (pixels plotters cannot place itself).
    fn finish_bitmap(&self, _rgb: &mut [u8]) {}
}

/// Renders `fig` into the bytes of a PNG or an SVG file.
pub(crate) fn render<F: Figure>(fig: &F, format: Format) -> Result<Vec<u8>> {
    ensure_font(fig.op())?;
    let (w, h) = fig.size();
    match format {
        Format::Png => {
            let mut rgb = vec![255u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                root.fill(&WHITE).map_err(draw_err(fig.op()))?;
                fig.draw(&root)?;
                root.present().map_err(draw_err(fig.op()))?;
            }
            fig.finish_bitmap(&mut rgb);
            encode_png(&Tensor::from_vec(rgb, vec![h as usize, w as usize, 3], Device::Cpu)?)
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                root.fill(&WHITE).map_err(draw_err(fig.op()))?;
                fig.draw(&root)?;
                root.present().map_err(draw_err(fig.op()))?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// Renders `fig` in the format `path` names and writes it there atomically.
pub(crate) fn save<F: Figure>(fig: &F, path: &Path) -> Result<()> {
    let bytes = render(fig, Format::of(fig.op(), path)?)?;
    write_atomic(fig.op(), path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place, so readers see
/// either the old file or the whole new one.
fn write_atomic(op: &'static str, path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::invalid(op, format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::invalid(op, format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(io);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Grid shape for `n` panels: up to three side by side, then more rows.
pub(crate) fn grid_shape(n: usize) -> (usize, usize) {
    let cols = match n {
        0..=3 => n.max(1),
        4 => 2,
        _ => 3,
    };
    (n.div_ceil(cols), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(Format::of("t", Path::new("a/b.PNG")).unwrap(), Format::Png);
        assert_eq!(Format::of("t", Path::new("b.svg")).unwrap(), Format::Svg);
        let m = Format::of("plot_history", Path::new("curves.jpg")).unwrap_err().to_string();
        assert_eq!(m, "plot_history: invalid argument: expected a path ending in .png or .svg, got curves.jpg");
    }

    #[test]
    fn panels_fill_rows_of_up_to_three() {
        assert_eq!([1, 2, 3, 4, 5, 7].map(grid_shape), [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]);
    }
}
