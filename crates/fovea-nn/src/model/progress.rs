//! Keras-style progress output: a live bar with ETA on a terminal, one line per epoch
//! otherwise (or always with `verbose = 2`).

use crate::model::training::Logs;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const BAR_WIDTH: usize = 20;
/// Redraws of the live bar are at most this frequent, so tiny batches do not flood the terminal.
const REDRAW: Duration = Duration::from_millis(100);

pub(crate) struct Progress {
    live: bool,
    lines: bool,
    steps: usize,
    start: Instant,
    last_draw: Option<Instant>,
}

fn format_logs(logs: &Logs) -> String {
    logs.iter().map(|(k, v)| format!(" - {k}: {}", keras_number(*v))).collect()
}

/// A value as Keras's progress bar prints it: `{:.4f}` above 1e-3 in magnitude, else `{:.4e}`
/// with Python's two-digit exponent (a learning rate of 5e-4 shows as `5.0000e-04`, not `0.0005`
/// rounded away to `0.0000`).
fn keras_number(v: f64) -> String {
    if v.abs() > 1e-3 || !v.is_finite() {
        return format!("{v:.4}");
    }
    let text = format!("{v:.4e}");
    match text.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

fn format_duration(d: f64) -> String {
    if d >= 3600.0 {
        format!("{}:{:02}:{:02}", (d / 3600.0) as u64, (d % 3600.0 / 60.0) as u64, (d % 60.0) as u64)
    } else if d >= 60.0 {
        format!("{}:{:02}", (d / 60.0) as u64, (d % 60.0) as u64)
    } else {
        format!("{}s", d.round() as u64)
    }
}

fn per_step(secs: f64, steps: usize) -> String {
    let per = secs / steps.max(1) as f64;
    if per >= 1.0 {
        format!("{per:.1}s/step")
    } else if per >= 1e-3 {
        format!("{:.0}ms/step", per * 1e3)
    } else {
        format!("{:.0}us/step", per * 1e6)
    }
}

impl Progress {
    pub(crate) fn new(verbose: u8, epoch: usize, epochs: usize, steps: usize) -> Self {
        let live = verbose == 1 && std::io::stdout().is_terminal();
        let lines = verbose == 2 || (verbose == 1 && !live);
        if verbose > 0 {
            println!("Epoch {}/{}", epoch + 1, epochs);
        }
        Progress { live, lines, steps, start: Instant::now(), last_draw: None }
    }

    fn bar(&self, step: usize) -> String {
        let filled = (step * BAR_WIDTH) / self.steps.max(1);
        format!("{}{}", "━".repeat(filled), " ".repeat(BAR_WIDTH - filled))
    }

    pub(crate) fn step(&mut self, step: usize, logs: &Logs) {
        if !self.live || (self.last_draw.is_some_and(|t| t.elapsed() < REDRAW) && step < self.steps) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let elapsed = self.start.elapsed().as_secs_f64();
        let eta = elapsed / step as f64 * (self.steps - step) as f64;
        let width = self.steps.to_string().len();
        print!("\r{step:>width$}/{} {} ETA: {}{}\x1b[K", self.steps, self.bar(step), format_duration(eta), format_logs(logs));
        let _ = std::io::stdout().flush();
    }

    pub(crate) fn finish(&mut self, logs: &Logs) {
        let secs = self.start.elapsed().as_secs_f64();
        let timing = format!("{} {}", format_duration(secs), per_step(secs, self.steps));
        if self.live {
            println!("\r{}/{} {} {timing}{}\x1b[K", self.steps, self.steps, self.bar(self.steps), format_logs(logs));
        } else if self.lines {
            println!("{}/{} - {timing}{}", self.steps, self.steps, format_logs(logs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_keras() {
        assert_eq!(format_duration(5.4), "5s");
        assert_eq!(format_duration(125.0), "2:05");
        assert_eq!(per_step(3.0, 1000), "3ms/step");
        let mut logs = Logs::new();
        logs.insert("loss".into(), 0.123456);
        logs.insert("accuracy".into(), 0.5);
        assert_eq!(format_logs(&logs), " - accuracy: 0.5000 - loss: 0.1235");
        // Python's f"{x:.4e}" below 1e-3, as Keras prints a small learning rate or loss.
        assert_eq!(
            [5e-4, 0.0, -2.5e-7, 1.2e-12, 0.002].map(keras_number),
            ["5.0000e-04", "0.0000e+00", "-2.5000e-07", "1.2000e-12", "0.0020"]
        );
    }
}
