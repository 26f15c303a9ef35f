//! Fisher's Iris data set (150 flowers, 4 measurements in cm, 3 species), the seeds' first
//! experiment (`tf.contrib.learn.datasets.load_dataset("iris")`).
//!
//! Two layouts are read, as the packages that ship the file have it:
//! - scikit-learn's `iris.csv` (its wheel ships it at `sklearn/datasets/data/iris.csv`, and
//!   TensorFlow's old `contrib.learn` had the same file): a header `150,4,setosa,versicolor,virginica`
//!   (sample count, feature count, class names), then four features and a class index per row;
//! - UCI's `iris.data`: rows of four features and a class name (`Iris-setosa`), no header.
//!
//! [`load`] looks in `<data dir>/iris/` for either, then downloads UCI's file (the canonical
//! source), and otherwise says where to put one.

use crate::fetch::{data_dir, download, have};
use crate::{Error, Result};
use fovea_core::{Device, Tensor};
use std::path::{Path, PathBuf};

/// The species, in the order both layouts number them.
pub const CLASS_NAMES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The number of flowers in the data set.
pub const SAMPLES: usize = 150;

/// UCI's copy, the canonical source.
pub const UCI_URL: &str = "https://archive.ics.uci.edu/ml/machine-learning-databases/iris/iris.data";

/// The data set, in file order.
#[derive(Debug, Clone)]
pub struct Iris {
    /// float32 `[150, 4]`: sepal length, sepal width, petal length, petal width (cm).
    pub features: Tensor,
    /// int64 `[150]`: 0 setosa, 1 versicolor, 2 virginica.
    pub labels: Tensor,
}

/// Parses either layout (see the module docs); `what` names the source in errors.
///
/// # Errors
/// `Format` naming the line for a row that is not four finite numbers and a known class, a
/// header that does not announce 150 × 4 with the three species, or a count other than 150.
pub fn parse(text: &str, what: &str) -> Result<Iris> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty()).peekable();
    let header = lines.peek().map(|(_, l)| l.split(',').map(str::trim).collect::<Vec<_>>()).unwrap_or_default();
    let sklearn = header.len() == 5 && header[0].parse::<usize>().is_ok() && header[1].parse::<usize>().is_ok();
    if sklearn {
        let expected = ["150", "4", "setosa", "versicolor", "virginica"];
        if header != expected {
            return Err(Error::format(what, format!("line 1: expected the header {:?}, found {:?}", expected.join(","), header.join(","))));
        }
        lines.next();
    }
    let (mut features, mut labels) = (Vec::with_capacity(SAMPLES * 4), Vec::with_capacity(SAMPLES));
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        if fields.len() != 5 {
            return Err(Error::format(what, format!("line {line}: expected 4 features and a class, found {} fields", fields.len())));
        }
        for f in &fields[..4] {
            match f.parse::<f32>() {
                Ok(v) if v.is_finite() => features.push(v),
                _ => return Err(Error::format(what, format!("line {line}: expected a finite number, found {f:?}"))),
            }
        }
        let class = if sklearn {
            fields[4].parse::<usize>().ok().filter(|&c| c < CLASS_NAMES.len())
        } else {
            fields[4].strip_prefix("Iris-").and_then(|name| CLASS_NAMES.iter().position(|c| *c == name))
        };
        let Some(class) = class else {
            let expected = if sklearn { "a class index 0, 1 or 2" } else { "Iris-setosa, Iris-versicolor or Iris-virginica" };
            return Err(Error::format(what, format!("line {line}: expected {expected}, found {:?}", fields[4])));
        };
        labels.push(class as i64);
    }
    if labels.len() != SAMPLES {
        return Err(Error::format(what, format!("expected {SAMPLES} flowers, found {}", labels.len())));
    }
    Ok(Iris {
        features: Tensor::from_vec(features, vec![SAMPLES, 4], Device::Cpu)?,
        labels: Tensor::from_vec(labels, vec![SAMPLES], Device::Cpu)?,
    })
}

/// Reads either layout from a file. Iris is 3–5 KB; anything over 64 KB is refused unread.
///
/// # Errors
/// `Io` for an unreadable file, `Format` as [`parse`] (naming the file) or for an oversized one.
pub fn read(path: impl AsRef<Path>) -> Result<Iris> {
    let path = path.as_ref();
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > 64 * 1024 {
        return Err(Error::format(path.display().to_string(), format!("expected an Iris file of a few KB, found {len} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| Error::format(path.display().to_string(), "expected text, found binary data"))?;
    parse(&text, &path.display().to_string())
}

/// The files [`load`] looks for in `dir`, in order.
pub fn candidates(dir: &Path) -> [PathBuf; 2] {
    [dir.join("iris.csv"), dir.join("iris.data")]
}

/// Loads Iris from `<data dir>/iris/` ([`data_dir`]), downloading UCI's `iris.data` there first
/// when neither file is present (validated before it is moved into place).
///
/// # Errors
/// `Missing` saying where to put the file when nothing is there and the download fails; `Format`
/// for a corrupt file.
pub fn load() -> Result<Iris> {
    load_from(&data_dir().join("iris"))
}

/// [`load`] with an explicit directory.
///
/// # Errors
/// As [`load`].
pub fn load_from(dir: &Path) -> Result<Iris> {
    find_or_download(dir, have("curl"))
}

fn find_or_download(dir: &Path, curl: bool) -> Result<Iris> {
    if let Some(path) = candidates(dir).into_iter().find(|p| p.is_file()) {
        return read(path);
    }
    let reason = if curl {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        match download(UCI_URL, dir, "iris.data").and_then(|bytes| {
            let text = String::from_utf8(bytes).map_err(|_| Error::format(UCI_URL, "expected text, found binary data"))?;
            let iris = parse(&text, UCI_URL)?;
            fovea_core::io::write_atomic(dir.join("iris.data"), text.as_bytes())?;
            Ok(iris)
        }) {
            Ok(iris) => return Ok(iris),
            Err(e) => format!("{UCI_URL}: {e}"),
        }
    } else {
        "curl is not installed, so UCI's copy was not downloaded".to_string()
    };
    Err(Error::Missing(format!(
        "the Iris data set is not in {} ({reason}). Put scikit-learn's iris.csv there (its wheel has it at \
         sklearn/datasets/data/iris.csv) or UCI's iris.data ({UCI_URL})",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uci_text() -> String {
        let rows = ["5.1,3.5,1.4,0.2,Iris-setosa", "7.0,3.2,4.7,1.4,Iris-versicolor", "6.3,3.3,6.0,2.5,Iris-virginica"];
        (0..SAMPLES).map(|i| rows[i % 3]).collect::<Vec<_>>().join("\n") + "\n\n"
    }

    #[test]
    fn both_layouts_give_the_same_tensors() {
        let uci = parse(&uci_text(), "iris.data").unwrap();
        let sklearn_text = std::iter::once("150,4,setosa,versicolor,virginica".to_string())
            .chain(uci_text().lines().filter(|l| !l.is_empty()).map(|l| {
                let (x, name) = l.rsplit_once(',').unwrap();
                format!("{x},{}", CLASS_NAMES.iter().position(|c| name == format!("Iris-{c}")).unwrap())
            }))
            .collect::<Vec<_>>()
            .join("\n");
        let sklearn = parse(&sklearn_text, "iris.csv").unwrap();
        assert_eq!(uci.features.to_vec::<f32>().unwrap(), sklearn.features.to_vec::<f32>().unwrap());
        assert_eq!(uci.labels.to_vec::<i64>().unwrap(), sklearn.labels.to_vec::<i64>().unwrap());
        assert_eq!(&uci.labels.to_vec::<i64>().unwrap()[..4], &[0, 1, 2, 0]);
        assert_eq!(&uci.features.to_vec::<f32>().unwrap()[4..8], &[7.0, 3.2, 4.7, 1.4]);
    }

    #[test]
    fn malformed_files_name_the_line_and_the_problem() {
        let cases = [
            ("151,4,setosa,versicolor,virginica\n", "expected the header"),
            ("5.1,3.5,1.4,Iris-setosa\n", "line 1: expected 4 features and a class, found 4 fields"),
            ("5.1,NaN,1.4,0.2,Iris-setosa\n", "line 1: expected a finite number, found \"NaN\""),
            ("5.1,3.5,1.4,0.2,Iris-rosa\n", "expected Iris-setosa, Iris-versicolor or Iris-virginica, found \"Iris-rosa\""),
            ("150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,3\n", "line 2: expected a class index 0, 1 or 2, found \"3\""),
            ("5.1,3.5,1.4,0.2,Iris-setosa\n", "expected 150 flowers, found 1"),
        ];
        for (text, expected) in cases {
            let err = parse(text, "f.csv").unwrap_err().to_string();
            assert!(err.starts_with("f.csv: ") && err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_missing_file_says_where_to_put_one() {
        let dir = std::env::temp_dir().join(format!("fovea-iris-missing-{}", std::process::id()));
        // Without curl the message must still say where the file goes.
        let err = find_or_download(&dir, false).unwrap_err().to_string();
        assert!(err.contains(&dir.display().to_string()) && err.contains("sklearn/datasets/data/iris.csv"), "{err}");
        assert!(err.contains("curl is not installed"), "{err}");
    }

    #[test]
    fn oversized_files_are_refused_unread() {
        let path = std::env::temp_dir().join(format!("fovea-iris-big-{}.csv", std::process::id()));
        std::fs::write(&path, vec![b'1'; 70_000]).unwrap();
        let err = read(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("expected an Iris file of a few KB, found 70000 bytes"), "{err}");
    }
}
