//! COCO `instances` annotations and COCO results files: reading (with validation) and writing.
//!
//! Boxes are COCO's `[x, y, width, height]` in pixels, as f64 (pycocotools computes in f64).
//! Every problem in a file is an error that names the file and the entry
//! (`gt.json: annotations[3] (id 17): category_id 12 is not among the categories`), never a panic.
//! Images without annotations are valid.

use fovea_data::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// An entry of `images`.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoImage {
    /// The image id that annotations refer to.
    pub id: i64,
    /// The file, relative to the image folder (`""` when the file has none).
    pub file_name: String,
    /// Width in pixels (0 when the file has none; evaluation does not use it).
    pub width: u32,
    /// Height in pixels (0 when the file has none).
    pub height: u32,
}

/// An entry of `categories`.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoCategory {
    /// The category id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its supercategory (`""` when the file has none).
    pub supercategory: String,
}

/// An entry of `annotations` (a ground-truth box).
#[derive(Debug, Clone, PartialEq)]
pub struct CocoAnnotation {
    /// The annotation id (pycocotools matches on it: keep it non-zero, see [`super::cocoeval`]).
    pub id: i64,
    /// The image it belongs to.
    pub image_id: i64,
    /// Its category.
    pub category_id: i64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
    /// The area COCOeval sorts into small/medium/large: the file's `area` (for real COCO the
    /// segmentation's), else `width·height`.
    pub area: f64,
    /// A crowd region: detections on it are neither true nor false positives.
    pub iscrowd: bool,
}

/// A COCO `instances` file: images, annotations and categories. Other fields (`info`,
/// `licenses`, segmentations, keypoints) are not kept, so [`CocoDataset::write`] leaves them out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CocoDataset {
    /// The images.
    pub images: Vec<CocoImage>,
    /// The ground-truth boxes.
    pub annotations: Vec<CocoAnnotation>,
    /// The categories.
    pub categories: Vec<CocoCategory>,
}

/// One entry of a COCO results file: a detected box.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoDetection {
    /// The image it was found in.
    pub image_id: i64,
    /// The predicted category.
    pub category_id: i64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
    /// The confidence.
    pub score: f64,
}

fn format_err(what: impl Into<String>, detail: impl Into<String>) -> Error {
    Error::Format { what: what.into(), detail: detail.into() }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    parse_json(&text, &path.display().to_string())
}

fn parse_json(text: &str, source: &str) -> Result<Value> {
    serde_json::from_str(text).or_else(|e| {
        // Python's json module writes NaN and ±Infinity as bare words, which JSON lacks. Read
        // them as null so that the error names the entry that holds one, not a column.
        let strict = python_words_to_null(text);
        match serde_json::from_str(&strict) {
            Ok(v) if strict != text => Ok(v),
            _ => Err(format_err(source, format!("not valid JSON: {e}"))),
        }
    })
}

/// Replaces the bare words `NaN`, `Infinity` and `-Infinity` outside strings with `null`.
fn python_words_to_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if c == '"' {
            in_string = true;
        } else if let Some(word) = ["NaN", "Infinity", "-Infinity"].into_iter().find(|w| rest.starts_with(w)) {
            out.push_str("null");
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Field access that names the entry in its errors.
struct Entry<'a> {
    what: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Entry<'a> {
    fn new(source: &str, list: &str, index: usize, v: &'a Value) -> Result<Self> {
        let what = format!("{source}: {list}[{index}]");
        match v.as_object() {
            Some(obj) => {
                let what = match obj.get("id").and_then(Value::as_i64) {
                    Some(id) => format!("{what} (id {id})"),
                    None => what,
                };
                Ok(Entry { what, obj })
            }
            None => Err(format_err(what, format!("expected an object, found {}", kind(v)))),
        }
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        format_err(self.what.clone(), detail)
    }

    fn int(&self, key: &str) -> Result<i64> {
        match self.obj.get(key) {
            None => Err(self.err(format!("missing \"{key}\""))),
            Some(v) => as_int(v).ok_or_else(|| self.err(format!("\"{key}\" must be an integer, found {v}"))),
        }
    }

    fn opt_int(&self, key: &str, default: i64) -> Result<i64> {
        if self.obj.get(key).is_none_or(Value::is_null) {
            return Ok(default);
        }
        self.int(key)
    }

    fn opt_str(&self, key: &str) -> Result<String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(format!("\"{key}\" must be a string, found {v}"))),
        }
    }

    fn number(&self, key: &str) -> Result<f64> {
        match self.obj.get(key) {
            None => Err(self.err(format!("missing \"{key}\""))),
            Some(v) => {
                v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| self.err(format!("\"{key}\" must be a finite number, found {v}")))
            }
        }
    }

    /// A `[x, y, w, h]` box with finite numbers and non-negative sizes.
    fn bbox(&self) -> Result<[f64; 4]> {
        let v = self.obj.get("bbox").ok_or_else(|| self.err("missing \"bbox\""))?;
        if v.as_array().is_some_and(|a| a.len() == 4 && a.iter().any(Value::is_null)) {
            return Err(self.err(format!("\"bbox\" {v} has a NaN or infinite number (null here)")));
        }
        let nums: Option<Vec<f64>> = v.as_array().and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>());
        let b = match nums.as_deref() {
            Some(&[x, y, w, h]) => [x, y, w, h],
            _ => return Err(self.err(format!("\"bbox\" must be four numbers [x, y, width, height], found {v}"))),
        };
        if b.iter().any(|x| !x.is_finite()) {
            return Err(self.err(format!("\"bbox\" {b:?} has a non-finite number")));
        }
        if b[2] < 0.0 || b[3] < 0.0 {
            return Err(self.err(format!("\"bbox\" {b:?} has a negative width or height")));
        }
        Ok(b)
    }
}

fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn list<'a>(source: &str, root: &'a Value, key: &str, required: bool) -> Result<&'a [Value]> {
    match root.get(key) {
        Some(Value::Array(a)) => Ok(a),
        None if !required => Ok(&[]),
        None => Err(format_err(source, format!("missing the \"{key}\" list"))),
        Some(v) => Err(format_err(source, format!("\"{key}\" must be a list, found {}", kind(v)))),
    }
}

impl CocoDataset {
    /// Reads and validates a COCO `instances` JSON file.
    ///
    /// # Errors
    /// `Io` when the file cannot be read; `Format` naming the file and the entry for invalid
    /// JSON, a missing list, a duplicate id, a box with a non-finite number or a negative size,
    /// or an annotation naming an unknown image or category.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_value(&read_json(path)?, &path.display().to_string())
    }

    /// Parses and validates COCO `instances` JSON text; `source` names it in errors.
    ///
    /// # Errors
    /// As [`CocoDataset::read`].
    pub fn from_json_str(text: &str, source: &str) -> Result<Self> {
        Self::from_value(&parse_json(text, source)?, source)
    }

    fn from_value(root: &Value, source: &str) -> Result<Self> {
        if !root.is_object() {
            return Err(format_err(
                source,
                format!("expected a JSON object with images, annotations and categories, found {}", kind(root)),
            ));
        }
        let mut ds = CocoDataset::default();
        for (i, v) in list(source, root, "images", true)?.iter().enumerate() {
            let e = Entry::new(source, "images", i, v)?;
            let size = |key: &str| -> Result<u32> {
                let n = e.opt_int(key, 0)?;
                u32::try_from(n).map_err(|_| e.err(format!("\"{key}\" must be a non-negative size, found {n}")))
            };
            ds.images.push(CocoImage {
                id: e.int("id")?,
                file_name: e.opt_str("file_name")?,
                width: size("width")?,
                height: size("height")?,
            });
        }
        for (i, v) in list(source, root, "categories", true)?.iter().enumerate() {
            let e = Entry::new(source, "categories", i, v)?;
            ds.categories.push(CocoCategory { id: e.int("id")?, name: e.opt_str("name")?, supercategory: e.opt_str("supercategory")? });
        }
        let image_ids = unique_ids(source, "images", ds.images.iter().map(|im| im.id))?;
        let cat_ids = unique_ids(source, "categories", ds.categories.iter().map(|c| c.id))?;
        let mut ann_ids = HashSet::new();
        for (i, v) in list(source, root, "annotations", false)?.iter().enumerate() {
            let e = Entry::new(source, "annotations", i, v)?;
            let id = e.int("id")?;
            if !ann_ids.insert(id) {
                return Err(e.err(format!("annotation id {id} is used twice")));
            }
            let image_id = e.int("image_id")?;
            if !image_ids.contains(&image_id) {
                return Err(e.err(format!("image_id {image_id} is not among the images")));
            }
            let category_id = e.int("category_id")?;
            if !cat_ids.contains(&category_id) {
                return Err(e.err(format!("category_id {category_id} is not among the categories")));
            }
            let bbox = e.bbox()?;
            let area = if e.obj.get("area").is_none_or(Value::is_null) { bbox[2] * bbox[3] } else { e.number("area")? };
            if area < 0.0 {
                return Err(e.err(format!("\"area\" must not be negative, found {area}")));
            }
            let iscrowd = match e.opt_int("iscrowd", 0)? {
                0 => false,
                1 => true,
                n => return Err(e.err(format!("\"iscrowd\" must be 0 or 1, found {n}"))),
            };
            ds.annotations.push(CocoAnnotation { id, image_id, category_id, bbox, area, iscrowd });
        }
        Ok(ds)
    }

    /// The dataset as COCO `instances` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "images": self.images.iter().map(|im| json!({
                "id": im.id, "file_name": im.file_name, "width": im.width, "height": im.height,
            })).collect::<Vec<_>>(),
            "annotations": self.annotations.iter().map(|a| json!({
                "id": a.id, "image_id": a.image_id, "category_id": a.category_id, "bbox": a.bbox,
                "area": a.area, "iscrowd": u8::from(a.iscrowd),
            })).collect::<Vec<_>>(),
            "categories": self.categories.iter().map(|c| json!({
                "id": c.id, "name": c.name, "supercategory": c.supercategory,
            })).collect::<Vec<_>>(),
        })
    }

    /// Writes the dataset as COCO `instances` JSON.
    ///
    /// # Errors
    /// `Io` when the file cannot be written.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json().to_string()).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })
    }

    /// The annotations of each image id, in file order.
    pub fn annotations_by_image(&self) -> HashMap<i64, Vec<&CocoAnnotation>> {
        let mut m: HashMap<i64, Vec<&CocoAnnotation>> = HashMap::new();
        for a in &self.annotations {
            m.entry(a.image_id).or_default().push(a);
        }
        m
    }
}

fn unique_ids(source: &str, list: &str, ids: impl Iterator<Item = i64>) -> Result<HashSet<i64>> {
    let mut seen = HashSet::new();
    for (i, id) in ids.enumerate() {
        if !seen.insert(id) {
            return Err(format_err(format!("{source}: {list}[{i}] (id {id})"), format!("id {id} is used twice")));
        }
    }
    Ok(seen)
}

/// Reads a COCO results file (a JSON list of `{image_id, category_id, bbox, score}`) and checks
/// it against the ground truth `gt`.
///
/// # Errors
/// `Io` when unreadable; `Format` naming the file and the entry for invalid JSON, a box with a
/// non-finite number or negative size, a non-finite score, or an image or category id that
/// `gt` lacks (pycocotools asserts on the first and silently drops the second).
pub fn read_results(path: impl AsRef<Path>, gt: &CocoDataset) -> Result<Vec<CocoDetection>> {
    let path = path.as_ref();
    results_from_value(&read_json(path)?, &path.display().to_string(), gt)
}

/// [`read_results`] on JSON text; `source` names it in errors.
///
/// # Errors
/// As [`read_results`].
pub fn results_from_json_str(text: &str, source: &str, gt: &CocoDataset) -> Result<Vec<CocoDetection>> {
    results_from_value(&parse_json(text, source)?, source, gt)
}

fn results_from_value(root: &Value, source: &str, gt: &CocoDataset) -> Result<Vec<CocoDetection>> {
    let items =
        root.as_array().ok_or_else(|| format_err(source, format!("a results file is a JSON list of detections, found {}", kind(root))))?;
    let image_ids: HashSet<i64> = gt.images.iter().map(|im| im.id).collect();
    let cat_ids: HashSet<i64> = gt.categories.iter().map(|c| c.id).collect();
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let e = Entry::new(source, "results", i, v)?;
        let image_id = e.int("image_id")?;
        if !image_ids.contains(&image_id) {
            return Err(e.err(format!("image_id {image_id} is not among the ground truth's images")));
        }
        let category_id = e.int("category_id")?;
        if !cat_ids.contains(&category_id) {
            return Err(e.err(format!("category_id {category_id} is not among the ground truth's categories")));
        }
        out.push(CocoDetection { image_id, category_id, bbox: e.bbox()?, score: e.number("score")? });
    }
    Ok(out)
}

/// Detections as a COCO results JSON list.
pub fn results_to_json(dets: &[CocoDetection]) -> Value {
    Value::Array(
        dets.iter().map(|d| json!({"image_id": d.image_id, "category_id": d.category_id, "bbox": d.bbox, "score": d.score})).collect(),
    )
}

/// Writes detections as a COCO results file.
///
/// # Errors
/// `Io` when the file cannot be written.
pub fn write_results(path: impl AsRef<Path>, dets: &[CocoDetection]) -> Result<()> {
    let path = path.as_ref();
    std::fs::write(path, results_to_json(dets).to_string()).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GT: &str = r#"{
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}, {"id": 2, "file_name": "empty.png", "width": 64, "height": 48}],
        "categories": [{"id": 3, "name": "three"}],
        "annotations": [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [1.5, 2, 10, 20], "iscrowd": 0},
                        {"id": 11, "image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "area": 7.5, "iscrowd": 1}]
    }"#;

    #[test]
    fn reads_validates_and_round_trips() {
        let ds = CocoDataset::from_json_str(GT, "gt.json").unwrap();
        assert_eq!(ds.images.len(), 2, "an image without boxes is valid");
        assert_eq!(ds.annotations[0].area, 200.0, "area defaults to w·h");
        assert_eq!(ds.annotations[1].area, 7.5);
        assert!(ds.annotations[1].iscrowd);
        assert_eq!(ds.categories[0].name, "three");
        let back = CocoDataset::from_json_str(&ds.to_json().to_string(), "round trip").unwrap();
        assert_eq!(back, ds);
        let dets =
            results_from_json_str(r#"[{"image_id": 2, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]"#, "dt.json", &ds).unwrap();
        assert_eq!(dets[0].bbox, [1.0, 2.0, 3.0, 4.0]);
        let again = results_from_json_str(&results_to_json(&dets).to_string(), "dt2.json", &ds).unwrap();
        assert_eq!(again, dets);
    }

    fn gt_err(text: &str) -> String {
        CocoDataset::from_json_str(text, "gt.json").unwrap_err().to_string()
    }

    #[test]
    fn bad_ground_truth_names_the_file_and_entry() {
        let bad = GT.replace("\"category_id\": 3, \"bbox\": [0, 0", "\"category_id\": 4, \"bbox\": [0, 0");
        let e = gt_err(&bad);
        assert!(e.contains("gt.json: annotations[1] (id 11)") && e.contains("category_id 4"), "{e}");
        let e = gt_err(
            &GT.replace("\"image_id\": 1, \"category_id\": 3, \"bbox\": [1.5", "\"image_id\": 9, \"category_id\": 3, \"bbox\": [1.5"),
        );
        assert!(e.contains("annotations[0] (id 10)") && e.contains("image_id 9"), "{e}");
        let e = gt_err(&GT.replace("[1.5, 2, 10, 20]", "[1.5, 2, -10, 20]"));
        assert!(e.contains("annotations[0]") && e.contains("negative width"), "{e}");
        let e = gt_err(&GT.replace("[1.5, 2, 10, 20]", "[1.5, 2, 10]"));
        assert!(e.contains("four numbers"), "{e}");
        let e = gt_err(&GT.replace("[1.5, 2, 10, 20]", "[NaN, 2, 10, 20]"));
        assert!(e.contains("gt.json: annotations[0] (id 10)") && e.contains("NaN"), "{e}");
        let e = gt_err(&GT.replace("[1.5, 2, 10, 20]", "[1.5, 2, -Infinity, 20]"));
        assert!(e.contains("annotations[0]") && e.contains("infinite"), "{e}");
        // Inside strings the words are text, and other syntax errors still name the file.
        let named = GT.replace("\"name\": \"three\"", "\"name\": \"NaN \\\" Infinity\"");
        assert_eq!(CocoDataset::from_json_str(&named, "gt.json").unwrap().categories[0].name, "NaN \" Infinity");
        let e = gt_err(&GT.replace("\"images\": [", "\"images\": [,"));
        assert!(e.contains("gt.json") && e.contains("not valid JSON"), "{e}");
        let e = gt_err(&GT.replace("\"id\": 11", "\"id\": 10"));
        assert!(e.contains("annotations[1] (id 10)") && e.contains("used twice"), "{e}");
        let e = gt_err(r#"{"images": [], "annotations": []}"#);
        assert!(e.contains("\"categories\""), "{e}");
        let e = gt_err("[1, 2]");
        assert!(e.contains("gt.json"), "{e}");
    }

    #[test]
    fn bad_results_name_the_file_and_entry() {
        let ds = CocoDataset::from_json_str(GT, "gt.json").unwrap();
        let err = |t: &str| results_from_json_str(t, "dt.json", &ds).unwrap_err().to_string();
        let e = err(
            r#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}, {"image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.5}]"#,
        );
        assert!(e.contains("dt.json: results[1]") && e.contains("image_id 7"), "{e}");
        let e = err(r#"[{"image_id": 1, "category_id": 5, "bbox": [1, 2, 3, 4], "score": 0.5}]"#);
        assert!(e.contains("results[0]") && e.contains("category_id 5"), "{e}");
        let e = err(r#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, -4], "score": 0.5}]"#);
        assert!(e.contains("negative"), "{e}");
        let e = err(r#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": NaN}]"#);
        assert!(e.contains("results[0]") && e.contains("\"score\""), "{e}");
        let e = err(r#"[{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}]"#);
        assert!(e.contains("\"score\""), "{e}");
        let e = err(r#"{"image_id": 1}"#);
        assert!(e.contains("JSON list"), "{e}");
        let missing = read_results("/nonexistent/dt.json", &ds).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/dt.json"), "{missing}");
    }
}
