//! CSV files of numeric columns with a header row, loaded into tensors (what
//! `pandas.read_csv(path).to_numpy()` gives for an all-numeric table, or
//! `tf.data.experimental.make_csv_dataset` with a `label_name`).
//!
//! Fields follow RFC 4180: separated by commas, optionally in double quotes, inside which commas,
//! line breaks and doubled quotes (`""`) are literal. Spaces around a field are dropped and blank
//! lines are skipped. Every value must be a number (header names can be any text).

use crate::{Error, Result};
use fovea_core::{Device, Tensor};
use std::path::Path;

/// A numeric table split into features and an optional label column.
#[derive(Debug, Clone)]
pub struct CsvData {
    /// The names of the feature columns, in file order.
    pub columns: Vec<String>,
    /// float32 `[rows, columns.len()]`.
    pub features: Tensor,
    /// The label column, when one was asked for: int64 `[rows]` when every value is a whole
    /// number (class labels), float32 `[rows]` otherwise (regression targets).
    pub labels: Option<Tensor>,
}

/// One record: the 1-based line it starts on and its fields, quotes resolved.
type Record = (usize, Vec<String>);

/// Splits CSV text into records of fields (RFC 4180 quoting), skipping blank lines.
fn records(text: &str, what: &str) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start_line) = (1, 1);
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    fn finish_field(field: &mut String, was_quoted: &mut bool, fields: &mut Vec<String>) {
        let f = std::mem::take(field);
        fields.push(if *was_quoted { f } else { f.trim().to_string() });
        *was_quoted = false;
    }
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                line += usize::from(c == '\n');
                field.push(c);
            }
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                (quoted, was_quoted) = (true, true);
            }
            (false, ',') => finish_field(&mut field, &mut was_quoted, &mut fields),
            (false, '\n') => {
                finish_field(&mut field, &mut was_quoted, &mut fields);
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    out.push((start_line, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                start_line = line;
            }
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, c) if was_quoted && c.is_whitespace() => {}
            (false, c) if was_quoted => {
                return Err(Error::format(what, format!("line {line}: unexpected {c:?} after a closing quote")));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(Error::format(what, format!("line {start_line}: a quoted field is never closed")));
    }
    finish_field(&mut field, &mut was_quoted, &mut fields);
    if !(fields.len() == 1 && fields[0].is_empty()) {
        out.push((start_line, fields));
    }
    Ok(out)
}

/// Parses CSV text; `what` names it in errors.
///
/// # Errors
/// `Format` naming `what` for an empty file, a `label_column` not in the header, a row with the
/// wrong number of fields, or a field that is not a number (with its line and column).
pub fn parse_csv(text: &str, label_column: Option<&str>, what: &str, device: Device) -> Result<CsvData> {
    let mut lines = records(text, what)?.into_iter();
    let (_, names) = lines.next().ok_or_else(|| Error::format(what, "the file is empty; expected a header row of column names"))?;
    let label_at = match label_column {
        None => None,
        Some(l) => Some(
            names
                .iter()
                .position(|n| n == l)
                .ok_or_else(|| Error::format(what, format!("no column named {l:?} for the labels; the header has {names:?}")))?,
        ),
    };
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    let mut rows = 0;
    for (line, fields) in lines {
        if fields.len() != names.len() {
            return Err(Error::format(what, format!("line {line}: expected {} fields like the header, got {}", names.len(), fields.len())));
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 =
                f.trim().parse().map_err(|_| Error::format(what, format!("line {line}, column {:?}: {f:?} is not a number", names[c])))?;
            if Some(c) == label_at {
                labels.push(v);
            } else {
                features.push(v as f32);
            }
        }
        rows += 1;
    }
    let columns: Vec<String> = names.iter().enumerate().filter(|&(c, _)| Some(c) != label_at).map(|(_, n)| n.clone()).collect();
    let features = Tensor::from_vec(features, vec![rows, columns.len()], device)?;
    let labels = match label_at {
        None => None,
        Some(_) if labels.iter().all(|v| v.fract() == 0.0 && v.abs() < 9.0e15) => {
            Some(Tensor::from_vec(labels.iter().map(|&v| v as i64).collect::<Vec<_>>(), vec![rows], device)?)
        }
        Some(_) => Some(Tensor::from_vec(labels.iter().map(|&v| v as f32).collect::<Vec<_>>(), vec![rows], device)?),
    };
    Ok(CsvData { columns, features, labels })
}

/// Reads a CSV file (see [`parse_csv`]).
///
/// # Errors
/// `Io` naming the file (also for text that is not UTF-8); `Format` as [`parse_csv`].
pub fn read_csv(path: impl AsRef<Path>, label_column: Option<&str>, device: Device) -> Result<CsvData> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_csv(&text, label_column, &path.display().to_string(), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\u{feff}\"sepal length\", width ,species\r\n5.1,3.5,0\r\n\r\n6.2,2.9,2\n4.9,3.0,1\n";

    #[test]
    fn columns_become_features_and_integer_labels() {
        let d = parse_csv(TABLE, Some("species"), "iris.csv", Device::Cpu).unwrap();
        assert_eq!(d.columns, ["sepal length", "width"]);
        assert_eq!(d.features.dims(), &[3, 2]);
        assert_eq!(d.features.to_vec::<f32>().unwrap(), vec![5.1, 3.5, 6.2, 2.9, 4.9, 3.0]);
        assert_eq!(d.labels.unwrap().to_vec::<i64>().unwrap(), vec![0, 2, 1]);
        let all = parse_csv(TABLE, None, "iris.csv", Device::Cpu).unwrap();
        assert_eq!((all.features.dims(), all.labels.is_none()), (&[3, 3][..], true));
        // A fractional label column is a regression target.
        let d = parse_csv(TABLE, Some("width"), "iris.csv", Device::Cpu).unwrap();
        assert_eq!(d.labels.unwrap().to_vec::<f32>().unwrap(), vec![3.5, 2.9, 3.0]);
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_line_breaks() {
        let text = "id,\"name, \"\"short\"\"\",\"multi\nline\"\n1, \"2.5\" ,3\n\"4\",5,6";
        let d = parse_csv(text, Some("id"), "q.csv", Device::Cpu).unwrap();
        assert_eq!(d.columns, ["name, \"short\"", "multi\nline"]);
        assert_eq!(d.features.to_vec::<f32>().unwrap(), vec![2.5, 3.0, 5.0, 6.0]);
        assert_eq!(d.labels.unwrap().to_vec::<i64>().unwrap(), vec![1, 4]);
        let e = |t: &str| parse_csv(t, None, "q.csv", Device::Cpu).unwrap_err().to_string();
        assert_eq!(e("a,b\n1,\"2\n"), "q.csv: line 2: a quoted field is never closed");
        assert_eq!(e("a,b\n1,\"2\"x\n"), "q.csv: line 2: unexpected 'x' after a closing quote");
        // A quoted line break moves the line numbers of later rows on.
        assert_eq!(e("\"a\nb\",c\n1,2\n3,x\n"), "q.csv: line 4, column \"c\": \"x\" is not a number");
        assert_eq!(e("a,b\n1,\"1,000\"\n"), "q.csv: line 2, column \"b\": \"1,000\" is not a number");
    }

    #[test]
    fn bad_tables_name_the_file_line_and_column() {
        let e = |t: &str, l: Option<&str>| parse_csv(t, l, "t.csv", Device::Cpu).unwrap_err().to_string();
        assert_eq!(e("a,b\n1,x\n", None), "t.csv: line 2, column \"b\": \"x\" is not a number");
        assert_eq!(e("a,b\n1,2,3\n", None), "t.csv: line 2: expected 2 fields like the header, got 3");
        assert_eq!(e("a,b\n1,2\n", Some("label")), "t.csv: no column named \"label\" for the labels; the header has [\"a\", \"b\"]");
        assert!(e("\n\n", None).contains("the file is empty"));
        let missing = read_csv("/nonexistent/data.csv", None, Device::Cpu).unwrap_err().to_string();
        assert!(missing.starts_with("/nonexistent/data.csv"), "{missing}");
    }
}
