//! Pascal VOC annotation files (one XML file per image): reading and writing.
//!
//! Only the elements VOC uses are read (`filename`, `size`, and per `object` its `name`,
//! `difficult`, `truncated` and `bndbox`); a small element parser does it, so no XML dependency
//! is needed. Coordinates are kept as written (VOC's are 1-based pixel indices).

use fovea_data::{Error, Result};
use std::path::Path;

/// One `<object>`.
#[derive(Debug, Clone, PartialEq)]
pub struct VocObject {
    /// The class name.
    pub name: String,
    /// `[xmin, ymin, xmax, ymax]` as written.
    pub bbox: [f32; 4],
    /// Hard to recognise: VOC's evaluation neither rewards nor penalises it.
    pub difficult: bool,
    /// Partly outside the image.
    pub truncated: bool,
}

/// One annotation file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VocAnnotation {
    /// The image file name.
    pub filename: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channels (3 for VOC's JPEGs).
    pub depth: u32,
    /// The boxes.
    pub objects: Vec<VocObject>,
}

#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Parses elements and text; attributes, comments, processing instructions and CDATA-free
/// documents are all VOC files need.
fn parse(text: &str) -> std::result::Result<Element, String> {
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        let chunk = &rest[..lt];
        if !chunk.trim().is_empty() {
            stack.last_mut().expect("root").text.push_str(&unescape(chunk.trim()));
        }
        rest = &rest[lt..];
        if let Some(body) = rest.strip_prefix("<!--") {
            rest = &body[body.find("-->").ok_or("an unterminated comment")? + 3..];
            continue;
        }
        let gt = rest.find('>').ok_or("an unterminated tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let done = stack.pop().ok_or("a closing tag without an opening one")?;
            if done.name != name.trim() || stack.is_empty() {
                return Err(format!("</{}> closes <{}>", name.trim(), done.name));
            }
            stack.last_mut().expect("parent").children.push(done);
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag.trim_end_matches('/').split_whitespace().next().ok_or("an empty tag")?.to_string();
        let el = Element { name, ..Default::default() };
        if self_closing {
            stack.last_mut().expect("parent").children.push(el);
        } else {
            stack.push(el);
        }
    }
    if stack.len() != 1 {
        return Err(format!("<{}> is not closed", stack.last().map(|e| e.name.as_str()).unwrap_or("")));
    }
    let mut root = stack.pop().expect("root");
    match root.children.len() {
        1 => Ok(root.children.pop().expect("one")),
        n => Err(format!("expected one root element, found {n}")),
    }
}

impl VocAnnotation {
    /// Reads a VOC XML annotation file.
    ///
    /// # Errors
    /// `Io` when unreadable; `Format` naming the file (and the object) for malformed XML, a
    /// missing or non-numeric field, or a box with `xmax < xmin` or `ymax < ymin`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        Self::from_xml_str(&text, &path.display().to_string())
    }

    /// Parses VOC XML text; `source` names it in errors.
    ///
    /// # Errors
    /// As [`VocAnnotation::read`].
    pub fn from_xml_str(text: &str, source: &str) -> Result<Self> {
        let err = |what: String, detail: String| Error::Format { what, detail };
        let root = parse(text).map_err(|d| err(source.to_string(), format!("not valid XML: {d}")))?;
        if root.name != "annotation" {
            return Err(err(source.to_string(), format!("expected an <annotation> root, found <{}>", root.name)));
        }
        let int = |el: Option<&Element>, what: &str| -> Result<u32> {
            match el {
                None => Ok(0),
                Some(e) => e
                    .text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v >= 0.0 && v.fract() == 0.0)
                    .map(|v| v as u32)
                    .ok_or_else(|| err(source.to_string(), format!("<{what}> must be a non-negative integer, found {:?}", e.text))),
            }
        };
        let size = root.child("size");
        let mut ann = VocAnnotation {
            filename: root.child("filename").map(|e| e.text.clone()).unwrap_or_default(),
            width: int(size.and_then(|s| s.child("width")), "width")?,
            height: int(size.and_then(|s| s.child("height")), "height")?,
            depth: int(size.and_then(|s| s.child("depth")), "depth")?,
            objects: Vec::new(),
        };
        for (i, obj) in root.children.iter().filter(|c| c.name == "object").enumerate() {
            let what = format!("{source}: object {i}");
            let name = obj.child("name").map(|e| e.text.clone()).ok_or_else(|| err(what.clone(), "missing <name>".into()))?;
            let bndbox = obj.child("bndbox").ok_or_else(|| err(what.clone(), "missing <bndbox>".into()))?;
            let mut bbox = [0f32; 4];
            for (k, key) in ["xmin", "ymin", "xmax", "ymax"].iter().enumerate() {
                let e = bndbox.child(key).ok_or_else(|| err(what.clone(), format!("missing <{key}> in <bndbox>")))?;
                bbox[k] = e
                    .text
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| err(what.clone(), format!("<{key}> must be a finite number, found {:?}", e.text)))?;
            }
            if bbox[2] < bbox[0] || bbox[3] < bbox[1] {
                return Err(err(what, format!("box {bbox:?} has xmax < xmin or ymax < ymin")));
            }
            let flag = |key: &str| obj.child(key).is_some_and(|e| e.text.trim() == "1");
            ann.objects.push(VocObject { name, bbox, difficult: flag("difficult"), truncated: flag("truncated") });
        }
        Ok(ann)
    }

    /// The annotation as VOC XML.
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<annotation>\n");
        s.push_str(&format!("\t<filename>{}</filename>\n", escape(&self.filename)));
        s.push_str(&format!(
            "\t<size>\n\t\t<width>{}</width>\n\t\t<height>{}</height>\n\t\t<depth>{}</depth>\n\t</size>\n",
            self.width, self.height, self.depth
        ));
        for o in &self.objects {
            s.push_str(&format!(
                "\t<object>\n\t\t<name>{}</name>\n\t\t<truncated>{}</truncated>\n\t\t<difficult>{}</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{}</xmin>\n\t\t\t<ymin>{}</ymin>\n\t\t\t<xmax>{}</xmax>\n\t\t\t<ymax>{}</ymax>\n\t\t</bndbox>\n\t</object>\n",
                escape(&o.name),
                u8::from(o.truncated),
                u8::from(o.difficult),
                o.bbox[0],
                o.bbox[1],
                o.bbox[2],
                o.bbox[3]
            ));
        }
        s.push_str("</annotation>\n");
        s
    }

    /// Writes the annotation as VOC XML.
    ///
    /// # Errors
    /// `Io` when the file cannot be written.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_xml()).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })
    }
}

/// Gathers VOC annotations into one COCO dataset: image ids from 1 in the given order, category
/// ids from 1 in sorted name order, boxes `[xmin, ymin, xmax − xmin, ymax − ymin]`. A
/// `difficult` object becomes `iscrowd`, the COCO flag with the same effect on evaluation (its
/// matches count neither as true nor as false positives).
pub fn voc_to_coco(annotations: &[VocAnnotation]) -> super::coco::CocoDataset {
    use super::coco::{CocoAnnotation, CocoCategory, CocoDataset, CocoImage};
    let mut names: Vec<&str> = annotations.iter().flat_map(|a| a.objects.iter().map(|o| o.name.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    let mut ds = CocoDataset {
        categories: names
            .iter()
            .enumerate()
            .map(|(i, n)| CocoCategory { id: i as i64 + 1, name: n.to_string(), supercategory: String::new() })
            .collect(),
        ..Default::default()
    };
    for (i, a) in annotations.iter().enumerate() {
        let image_id = i as i64 + 1;
        ds.images.push(CocoImage { id: image_id, file_name: a.filename.clone(), width: a.width, height: a.height });
        for o in &a.objects {
            let b = o.bbox.map(f64::from);
            let bbox = [b[0], b[1], b[2] - b[0], b[3] - b[1]];
            let category_id = names.binary_search(&o.name.as_str()).expect("collected above") as i64 + 1;
            let id = ds.annotations.len() as i64 + 1;
            ds.annotations.push(CocoAnnotation { id, image_id, category_id, bbox, area: bbox[2] * bbox[3], iscrowd: o.difficult });
        }
    }
    ds
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOC: &str = r#"<?xml version="1.0"?>
<annotation>
	<folder>VOC2007</folder>
	<filename>000001.jpg</filename>
	<!-- a comment -->
	<source><database>The VOC2007 Database</database></source>
	<size><width>353</width><height>500</height><depth>3</depth></size>
	<segmented>0</segmented>
	<object>
		<name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
		<bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>
	</object>
	<object>
		<name>person &amp; bike</name><truncated>0</truncated><difficult>1</difficult>
		<bndbox><xmin>8</xmin><ymin>12.5</ymin><xmax>352</xmax><ymax>498</ymax></bndbox>
	</object>
</annotation>"#;

    #[test]
    fn reads_voc_and_round_trips() {
        let a = VocAnnotation::from_xml_str(VOC, "000001.xml").unwrap();
        assert_eq!((a.filename.as_str(), a.width, a.height, a.depth), ("000001.jpg", 353, 500, 3));
        assert_eq!(a.objects.len(), 2);
        assert_eq!(a.objects[0], VocObject { name: "dog".into(), bbox: [48.0, 240.0, 195.0, 371.0], difficult: false, truncated: true });
        assert_eq!(a.objects[1].name, "person & bike");
        assert!(a.objects[1].difficult);
        assert_eq!(a.objects[1].bbox[1], 12.5);
        assert_eq!(VocAnnotation::from_xml_str(&a.to_xml(), "again").unwrap(), a);
    }

    #[test]
    fn voc_becomes_coco() {
        let a = VocAnnotation::from_xml_str(VOC, "000001.xml").unwrap();
        let ds = voc_to_coco(&[a.clone(), a]);
        assert_eq!(ds.categories.iter().map(|c| (c.id, c.name.as_str())).collect::<Vec<_>>(), [(1, "dog"), (2, "person & bike")]);
        assert_eq!(ds.images.len(), 2);
        assert_eq!(ds.annotations.len(), 4);
        assert_eq!(ds.annotations[0].bbox, [48.0, 240.0, 147.0, 131.0]);
        assert_eq!((ds.annotations[3].image_id, ds.annotations[3].category_id, ds.annotations[3].iscrowd), (2, 2, true));
        // What it writes reads back through the COCO validator.
        let back = crate::detection::coco::CocoDataset::from_json_str(&ds.to_json().to_string(), "voc.json").unwrap();
        assert_eq!(back, ds);
    }

    #[test]
    fn bad_files_name_the_object() {
        let e = VocAnnotation::from_xml_str(&VOC.replace("<xmax>195</xmax>", "<xmax>20</xmax>"), "a.xml").unwrap_err().to_string();
        assert!(e.contains("a.xml: object 0") && e.contains("xmax < xmin"), "{e}");
        let e = VocAnnotation::from_xml_str(&VOC.replace("<ymin>12.5</ymin>", "<ymin>NaN</ymin>"), "a.xml").unwrap_err().to_string();
        assert!(e.contains("object 1") && e.contains("<ymin>"), "{e}");
        let e = VocAnnotation::from_xml_str(&VOC.replace("</size>", ""), "a.xml").unwrap_err().to_string();
        assert!(e.contains("a.xml") && e.contains("not valid XML"), "{e}");
        let e = VocAnnotation::from_xml_str("<foo></foo>", "b.xml").unwrap_err().to_string();
        assert!(e.contains("<annotation>"), "{e}");
        assert!(VocAnnotation::from_xml_str(&VOC.replace("<width>353", "<width>-3"), "a.xml").is_err());
    }
}
