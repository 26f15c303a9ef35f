//! `model.summary()`: Keras 3's table of layers, output shapes and parameter counts, then the
//! totals with their size in memory.

use crate::layer::{format_shape, Layer};
use crate::model::Sequential;
use crate::Result;

/// One row of the summary table.
pub struct SummaryRow {
    /// `name (Type)`.
    pub layer: String,
    /// Keras-style shape, e.g. `(None, 28, 28, 6)`.
    pub output_shape: String,
    /// Parameters of the layer.
    pub params: usize,
    /// The layers feeding it (functional models only).
    pub connected_to: Option<String>,
    /// Multiply-accumulates per image, when the summary shows them.
    pub macs: Option<u64>,
}

/// `12,345` formatting.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's byte size: f32 parameters, in B / KB / MB / GB of 1024.
fn byte_size(params: usize) -> String {
    let bytes = params as f64 * 4.0;
    let units = ["B", "KB", "MB", "GB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", units[u])
}

/// Renders the table and totals, with a MACs column and total when the rows carry MACs.
pub fn render(model_name: &str, rows: &[SummaryRow], trainable: usize, non_trainable: usize) -> String {
    let functional = rows.iter().any(|r| r.connected_to.is_some());
    let show_macs = rows.iter().any(|r| r.macs.is_some());
    let total_macs: u64 = rows.iter().filter_map(|r| r.macs).sum();
    let mut widths = vec![33usize, 26, 15];
    if show_macs {
        widths.push(thousands(total_macs as usize).len().max(13) + 2);
    }
    let connected_column = widths.len();
    if functional {
        widths.push(28);
    }
    for r in rows {
        widths[0] = widths[0].max(r.layer.chars().count() + 2);
        widths[1] = widths[1].max(r.output_shape.chars().count() + 2);
        if let (true, Some(c)) = (functional, &r.connected_to) {
            widths[connected_column] = widths[connected_column].max(c.chars().count() + 2);
        }
    }
    let line = |l: &str, m: &str, r: &str, fill: &str| -> String {
        format!("{l}{}{r}\n", widths.iter().map(|w| fill.repeat(*w)).collect::<Vec<_>>().join(m))
    };
    let cells = |v: &[String], sep: &str| -> String {
        let mut s = String::from(sep);
        for (i, (c, w)) in v.iter().zip(&widths).enumerate() {
            // Counts (parameters, MACs) are right-aligned.
            let text = if i == 2 || (show_macs && i == 3) {
                format!("{c:>width$} ", width = w - 1)
            } else {
                format!(" {c:<width$}", width = w - 1)
            };
            s.push_str(&text);
            s.push_str(sep);
        }
        s.push('\n');
        s
    };
    let mut out = format!("Model: \"{model_name}\"\n");
    out += &line("┏", "┳", "┓", "━");
    let mut header = vec!["Layer (type)".to_string(), "Output Shape".into(), "Param #".into()];
    if show_macs {
        header.push("MACs".into());
    }
    if functional {
        header.push("Connected to".into());
    }
    out += &cells(&header, "┃");
    out += &line("┡", "╇", "┩", "━");
    for (i, r) in rows.iter().enumerate() {
        let mut v = vec![r.layer.clone(), r.output_shape.clone(), thousands(r.params)];
        if show_macs {
            v.push(thousands(r.macs.unwrap_or(0) as usize));
        }
        if functional {
            v.push(r.connected_to.clone().unwrap_or_else(|| "-".into()));
        }
        out += &cells(&v, "│");
        if i + 1 < rows.len() {
            out += &line("├", "┼", "┤", "─");
        }
    }
    out += &line("└", "┴", "┘", "─");
    let total = trainable + non_trainable;
    out += &format!(" Total params: {} ({})\n", thousands(total), byte_size(total));
    out += &format!(" Trainable params: {} ({})\n", thousands(trainable), byte_size(trainable));
    out += &format!(" Non-trainable params: {} ({})\n", thousands(non_trainable), byte_size(non_trainable));
    if show_macs {
        out += &format!(" Total MACs per image: {} ({:.2} G)\n", thousands(total_macs as usize), total_macs as f64 / 1e9);
    }
    out
}

fn count(vs: &[fovea_core::Variable]) -> usize {
    vs.iter().map(|v| v.value().numel()).sum()
}

impl Sequential {
    /// The Keras summary table (the model must know its input shape).
    ///
    /// # Errors
    /// When the input shape is unknown or a layer rejects it.
    pub fn summary(&self) -> Result<String> {
        self.summary_table(false)
    }

    /// [`Sequential::summary`] with a column of multiply-accumulates per image for each layer
    /// and their total (the seeds' `summary(show_flops)`; see [`crate::model::analysis`]).
    ///
    /// # Errors
    /// As [`Sequential::summary`], and for sizes the count needs but the model leaves unknown.
    pub fn summary_with_flops(&self) -> Result<String> {
        self.summary_table(true)
    }

    fn summary_table(&self, flops: bool) -> Result<String> {
        let macs = if flops { Some(crate::model::analysis::sequential_macs(self)?) } else { None };
        if !self.base().is_built() {
            if let Some(shape) = self.input_shape() {
                self.build(&[shape])?;
                self.base().mark_built();
            }
        }
        let rows = self
            .layer_output_shapes()?
            .into_iter()
            .enumerate()
            .map(|(i, (l, s))| SummaryRow {
                layer: format!("{} ({})", l.name(), l.class_name()),
                output_shape: format_shape(&s),
                params: count(&l.weights()),
                connected_to: None,
                macs: macs.as_ref().map(|m| m[i].macs),
            })
            .collect::<Vec<_>>();
        Ok(render(self.name(), &rows, count(&self.trainable_weights()), count(&self.non_trainable_weights())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_like_keras() {
        assert_eq!(thousands(21_306_826), "21,306,826");
        assert_eq!(thousands(999), "999");
        assert_eq!(byte_size(61_706), "241.04 KB");
        assert_eq!(byte_size(0), "0.00 B");
        assert_eq!(byte_size(21_306_826), "81.28 MB");
    }
}
