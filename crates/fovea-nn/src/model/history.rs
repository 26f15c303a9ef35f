//! A `History` as a JSON file: the object Keras users write with `json.dump(history.history, f)`
//! (`{"loss": [..], "val_loss": [..]}`), so curves can be re-plotted or compared later.

use crate::model::training::History;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

impl History {
    /// The history as Keras's `history.history` JSON object; a non-finite value (a diverged
    /// epoch) is written as `null`, which JSON has instead of NaN.
    pub fn to_json(&self) -> String {
        let logs: BTreeMap<&str, Vec<Option<f64>>> =
            self.history.iter().map(|(k, v)| (k.as_str(), v.iter().map(|x| x.is_finite().then_some(*x)).collect())).collect();
        serde_json::to_string_pretty(&logs).expect("maps of numbers always serialize")
    }

    /// Parses [`History::to_json`]'s format (and Keras's `json.dump(history.history)`); `null`
    /// becomes NaN. `what` names the source in errors.
    ///
    /// # Errors
    /// `Config` naming `what` and the key when the text is not an object of lists of numbers.
    pub fn from_json(text: &str, what: &str) -> Result<History> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Config(format!("{what}: not JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| {
            Error::Config(format!("{what}: expected an object of per-epoch lists like {{\"loss\": [0.5, 0.3]}}, got {value}"))
        })?;
        let mut history = History::default();
        for (key, list) in object {
            let items = list.as_array().ok_or_else(|| Error::Config(format!("{what}: {key:?} must be a list of numbers, got {list}")))?;
            let values = items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    serde_json::Value::Null => Ok(f64::NAN),
                    v => v.as_f64().ok_or_else(|| Error::Config(format!("{what}: {key:?}[{i}] must be a number or null, got {v}"))),
                })
                .collect::<Result<Vec<f64>>>()?;
            history.history.insert(key.clone(), values);
        }
        Ok(history)
    }

    /// Writes [`History::to_json`] to `path` atomically (a crash keeps the previous file).
    ///
    /// # Errors
    /// The write's I/O error, naming the path.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(fovea_core::io::write_atomic(path, self.to_json().as_bytes())?)
    }

    /// Reads a history written by [`History::save`] (or by Keras users' `json.dump`).
    ///
    /// # Errors
    /// `Config` naming the path when it cannot be read or is not a history.
    pub fn load(path: impl AsRef<Path>) -> Result<History> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read history {}: {e}", path.display())))?;
        History::from_json(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_round_trips_through_a_file_and_reads_keras_json() {
        let mut h = History::default();
        h.history.insert("loss".into(), vec![0.9, 0.5, f64::NAN]);
        h.history.insert("val_accuracy".into(), vec![0.5, 0.75, 0.875]);
        let path = std::env::temp_dir().join(format!("fovea-history-{}.json", std::process::id()));
        h.save(&path).unwrap();
        let back = History::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.history["val_accuracy"], vec![0.5, 0.75, 0.875]);
        assert_eq!(back.history["loss"][..2], [0.9, 0.5]);
        assert!(back.history["loss"][2].is_nan(), "null comes back as NaN");
        // What Python's json.dump(history.history) writes.
        let keras = History::from_json(r#"{"accuracy": [0.91, 0.97], "loss": [0.31, 0.1]}"#, "keras.json").unwrap();
        assert_eq!(keras.history["accuracy"], vec![0.91, 0.97]);
        for (bad, says) in [
            ("[1, 2]", "expected an object"),
            (r#"{"loss": 0.5}"#, "\"loss\" must be a list"),
            (r#"{"loss": [0.5, "x"]}"#, "\"loss\"[1] must be a number"),
            ("{", "not JSON"),
        ] {
            let e = History::from_json(bad, "h.json").unwrap_err().to_string();
            assert!(e.contains("h.json") && e.contains(says), "{bad}: {e}");
        }
        let e = History::load("/nonexistent/h.json").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/h.json"), "{e}");
    }
}
