//! Learning curves: one panel per metric family (the loss, then each metric), the training log
//! and its `val_` twin drawn against the epoch.

use super::{draw_err, font, grid_shape, save, Figure, TRAIN_COLOR, VAL_COLOR};
use fovea_core::{Error, Result};
use fovea_nn::model::History;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// How [`plot_history`] and [`plot_csv_log`] lay out their figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveOptions {
    /// The figure's title (default "Learning curves").
    pub title: Option<String>,
    /// The metric families to draw, by their training name (`"loss"`, `"accuracy"`); `None`
    /// draws every log. A `val_` log always joins its family.
    pub metrics: Option<Vec<String>>,
    /// The size of one panel in pixels (default 480×360); the figure adds a 40-pixel title band.
    pub panel_size: (u32, u32),
}

impl Default for CurveOptions {
    fn default() -> Self {
        CurveOptions { title: None, metrics: None, panel_size: (480, 360) }
    }
}

/// The band above the panels that holds the figure's title.
const TITLE_H: u32 = 40;

/// One metric family: its name and its training and validation values per epoch.
struct Panel {
    name: String,
    train: Option<Vec<f64>>,
    val: Option<Vec<f64>>,
}

/// A learning-curve figure ready to draw.
struct Curves {
    title: String,
    epochs: Vec<f64>,
    panels: Vec<Panel>,
    panel_size: (u32, u32),
    op: &'static str,
}

/// Writes learning curves of `history` to `path` (`.png` or `.svg`): a panel per metric family
/// — the loss first, then the other logs in name order, the learning rate last — each with the training values and
/// their `val_` counterparts against epochs 1, 2, ….
///
/// # Errors
/// `InvalidArgument` naming `plot_history` for an empty history, a metric in `options.metrics`
/// that the history lacks (the message lists those it has), a panel smaller than 100×100 or
/// larger than 4000×4000, a path that does not end in `.png`/`.svg`, or a path that cannot be
/// written (the message names it).
pub fn plot_history(history: &History, path: impl AsRef<Path>, options: &CurveOptions) -> Result<()> {
    let n = history.history.values().map(Vec::len).max().unwrap_or(0);
    let epochs = (1..=n).map(|e| e as f64).collect();
    let fig = Curves::new("plot_history", epochs, &history.history, options)?;
    save(&fig, path.as_ref())
}

/// Writes learning curves of a [`CsvLogger`](fovea_nn::callbacks::CsvLogger) (or Keras
/// `CSVLogger`) file to `path`, as [`plot_history`] does; epochs come from the file's `epoch`
/// column (0-based, drawn from 1 like Keras's progress lines).
///
/// # Errors
/// As [`read_csv_log`], and as [`plot_history`] with the op named `plot_csv_log`.
pub fn plot_csv_log(csv: impl AsRef<Path>, path: impl AsRef<Path>, options: &CurveOptions) -> Result<()> {
    let (epochs, logs) = parse_csv_log("plot_csv_log", csv.as_ref())?;
    let fig = Curves::new("plot_csv_log", epochs.iter().map(|e| e + 1.0).collect(), &logs, options)?;
    save(&fig, path.as_ref())
}

/// Reads a [`CsvLogger`](fovea_nn::callbacks::CsvLogger) file (a header `epoch,name,...` and a
/// row per epoch) back into a [`History`]; empty cells become NaN.
///
/// # Errors
/// `InvalidArgument` naming `read_csv_log` and the file for an unreadable file, a header
/// whose first column is not `epoch`, a row with the wrong number of cells, or a cell that is
/// not a number (the message gives the line).
pub fn read_csv_log(path: impl AsRef<Path>) -> Result<History> {
    let (_, history) = parse_csv_log("read_csv_log", path.as_ref())?;
    Ok(History { history })
}

/// Logs by name, each with a value per epoch (a `History`'s map).
type LogMap = BTreeMap<String, Vec<f64>>;

/// The epoch column and the other columns by name.
fn parse_csv_log(op: &'static str, path: &Path) -> Result<(Vec<f64>, LogMap)> {
    let err = |msg: String| Error::invalid(op, format!("{}: {msg}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read the file: {e}")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| err("the file is empty; expected a header line `epoch,...`".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if names[0] != "epoch" {
        return Err(err(format!("expected a header starting with `epoch`, got {header:?}")));
    }
    let mut epochs = Vec::new();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); names.len() - 1];
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            return Err(err(format!("line {}: expected {} cells like the header, got {}", i + 1, names.len(), cells.len())));
        }
        let num = |j: usize| -> Result<f64> {
            match cells[j] {
                "" => Ok(f64::NAN),
                c => c.parse().map_err(|_| err(format!("line {}: column {:?} holds {c:?}, not a number", i + 1, names[j]))),
            }
        };
        epochs.push(num(0)?);
        for (j, col) in cols.iter_mut().enumerate() {
            col.push(num(j + 1)?);
        }
    }
    Ok((epochs, names[1..].iter().map(|n| n.to_string()).zip(cols).collect()))
}

impl Curves {
    /// Groups logs into panels and checks the options.
    fn new(op: &'static str, epochs: Vec<f64>, logs: &LogMap, options: &CurveOptions) -> Result<Curves> {
        if epochs.is_empty() || logs.values().all(Vec::is_empty) {
            return Err(Error::invalid(op, "the history is empty: expected at least one epoch of logs, got none"));
        }
        let (pw, ph) = options.panel_size;
        if !(100..=4000).contains(&pw) || !(100..=4000).contains(&ph) {
            return Err(Error::invalid(op, format!("expected a panel size between 100×100 and 4000×4000, got {pw}×{ph}")));
        }
        let family = |k: &str| k.strip_prefix("val_").unwrap_or(k).to_string();
        let mut names: Vec<String> = logs.keys().map(|k| family(k)).collect();
        // The loss leads; the learning rate, a setting rather than a score, trails.
        names.sort_by_key(|n| {
            (
                if n == "loss" {
                    0
                } else if n == "learning_rate" || n == "lr" {
                    2
                } else {
                    1
                },
                n.clone(),
            )
        });
        names.dedup();
        if let Some(wanted) = &options.metrics {
            if let Some(bad) = wanted.iter().find(|w| !names.contains(w)) {
                return Err(Error::invalid(op, format!("unknown metric {bad:?}; the logs have: {}", names.join(", "))));
            }
            names = wanted.clone();
        }
        let panels = names
            .into_iter()
            .map(|name| Panel { train: logs.get(&name).cloned(), val: logs.get(&format!("val_{name}")).cloned(), name })
            .collect();
        let title = options.title.clone().unwrap_or_else(|| "Learning curves".into());
        Ok(Curves { title, epochs, panels, panel_size: options.panel_size, op })
    }

    /// The x range: the epochs with a little air, widened around a single epoch.
    fn x_range(&self) -> (f64, f64) {
        let lo = self.epochs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.epochs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = if hi > lo { (hi - lo) * 0.03 } else { 0.5 };
        (lo - pad, hi + pad)
    }

    fn draw_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<()> {
        let op = self.op;
        let points = |v: &Option<Vec<f64>>| -> Vec<(f64, f64)> {
            v.iter().flat_map(|v| self.epochs.iter().copied().zip(v.iter().copied())).filter(|(_, y)| y.is_finite()).collect()
        };
        let (train, val) = (points(&panel.train), points(&panel.val));
        let (y0, y1) = y_range(train.iter().chain(&val).map(|p| p.1));
        let (x0, x1) = self.x_range();
        let decimals = label_decimals(y1 - y0);
        // Tiny values (learning rates) read better in scientific notation than as 0.0000x.
        let scientific = y0.abs().max(y1.abs()) < 1e-2;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.name, font(17.0))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(if scientific || decimals > 3 { 84 } else { 70 })
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err(op))?;
        let n_epochs = self.epochs.len().clamp(2, 10);
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(panel.name.as_str())
            .axis_desc_style(font(14.0))
            .label_style(font(12.0))
            .x_labels(n_epochs)
            .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("{}", x.round()) } else { String::new() })
            .y_label_formatter(&|y| if scientific { format!("{y:.2e}") } else { format!("{y:.decimals$}") })
            .y_labels(6)
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(draw_err(op))?;
        for (pts, color, label) in [(&train, TRAIN_COLOR, "training"), (&val, VAL_COLOR, "validation")] {
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(draw_err(op))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2)));
            // Markers show where the measurements are once lines hide them (few epochs).
            if pts.len() <= 40 {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(draw_err(op))?;
            }
        }
        // Losses fall and accuracies rise, so the legend goes where the curves end up not being.
        let falls = panel.name.contains("loss") || panel.name.contains("error");
        chart
            .configure_series_labels()
            .position(if falls { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight })
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font(font(13.0))
            .draw()
            .map_err(draw_err(op))?;
        Ok(())
    }
}

/// The y range of the finite values with 5% of air, or a unit range around a constant.
fn y_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else if lo != 0.0 {
        lo.abs() * 0.1
    } else {
        1.0
    };
    (lo - pad, hi + pad)
}

/// Enough decimals to tell apart the ticks of a range this wide (about six ticks).
fn label_decimals(span: f64) -> usize {
    (-(span / 5.0).log10().floor()).clamp(0.0, 6.0) as usize
}

impl Figure for Curves {
    fn op(&self) -> &'static str {
        self.op
    }

    fn size(&self) -> (u32, u32) {
        let (rows, cols) = grid_shape(self.panels.len());
        (self.panel_size.0 * cols as u32, self.panel_size.1 * rows as u32 + TITLE_H)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (top, body) = root.split_vertically(TITLE_H);
        top.titled(
            &self.title,
            font(20.0).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            )),
        )
        .map_err(draw_err(self.op))?;
        let (rows, cols) = grid_shape(self.panels.len());
        for (area, panel) in body.split_evenly((rows, cols)).iter().zip(&self.panels) {
            self.draw_panel(area, panel)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(pairs: &[(&str, &[f64])]) -> BTreeMap<String, Vec<f64>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect()
    }

    #[test]
    fn logs_group_into_families_loss_first() {
        let l = logs(&[("accuracy", &[0.5]), ("loss", &[1.0]), ("val_accuracy", &[0.4]), ("val_loss", &[1.2]), ("lr", &[0.1])]);
        let c = Curves::new("t", vec![1.0], &l, &CurveOptions::default()).unwrap();
        let names: Vec<&str> = c.panels.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["loss", "accuracy", "lr"]);
        assert_eq!((c.panels[0].train.clone(), c.panels[0].val.clone()), (Some(vec![1.0]), Some(vec![1.2])));
        assert_eq!(c.panels[2].val, None);
        // Three panels side by side under the title band.
        assert_eq!(c.size(), (1440, 400));
    }

    #[test]
    fn ranges_leave_air_and_survive_constants() {
        let close = |(a, b): (f64, f64), (c, d): (f64, f64)| (a - c).abs() < 1e-12 && (b - d).abs() < 1e-12;
        assert!(close(y_range([1.0, 3.0].into_iter()), (0.9, 3.1)));
        assert!(close(y_range([2.0].into_iter()), (1.8, 2.2)));
        assert!(close(y_range([1e-3].into_iter()), (9e-4, 1.1e-3)));
        assert!(close(y_range([0.0].into_iter()), (-1.0, 1.0)));
        assert_eq!(y_range(std::iter::empty()), (0.0, 1.0));
        assert_eq!([10.0, 0.8, 0.24, 0.05, 0.001].map(label_decimals), [0, 1, 2, 2, 4]);
    }

    #[test]
    fn a_saved_history_replots_to_the_same_picture() {
        let mut h = History::default();
        h.history.insert("loss".into(), vec![1.2, 0.7, 0.4, 0.35]);
        h.history.insert("val_loss".into(), vec![1.3, 0.9, 0.6, 0.62]);
        h.history.insert("accuracy".into(), vec![0.6, 0.8, 0.9, 0.91]);
        let dir = std::env::temp_dir().join(format!("fovea-replot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (json, first, again) = (dir.join("history.json"), dir.join("first.png"), dir.join("again.png"));
        plot_history(&h, &first, &CurveOptions::default()).unwrap();
        h.save(&json).unwrap();
        let loaded = History::load(&json).unwrap();
        plot_history(&loaded, &again, &CurveOptions::default()).unwrap();
        let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&again).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(a.len() > 1000 && a == b, "the re-plotted PNG differs ({} vs {} bytes)", a.len(), b.len());
    }
}
