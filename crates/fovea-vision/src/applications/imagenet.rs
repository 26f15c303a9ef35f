//! The 1,000 ImageNet-1k classes in the order every ImageNet classifier's output uses, and
//! `keras.applications.imagenet_utils.decode_predictions`.
//!
//! `data/imagenet_classes.tsv` lists each WordNet id and its short name. The ids, in order, are
//! `timm/data/_info/imagenet_synsets.txt` from the `timm` wheel; each name is the first lemma of
//! `imagenet_synset_to_lemma.txt` with spaces as underscores, which is how Keras's
//! `imagenet_class_index.json` names the classes (`n01440764 tench`, `n03530642 honeycomb`;
//! `crane` and `maillot` appear twice, as in Keras).

use fovea_core::{DType, Error, Result, Tensor};
use std::sync::OnceLock;

/// The number of ImageNet-1k classes.
pub const IMAGENET_CLASSES: usize = 1000;

const TABLE: &str = include_str!("../../data/imagenet_classes.tsv");

/// `(wordnet_id, short_name)` of every ImageNet-1k class, indexed by class number.
pub fn imagenet_classes() -> &'static [(&'static str, &'static str)] {
    static CLASSES: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    CLASSES.get_or_init(|| TABLE.lines().filter_map(|l| l.split_once('\t')).collect())
}

/// One decoded prediction: Keras's `(class_name, class_description, score)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The class number (0–999).
    pub index: usize,
    /// The WordNet id, e.g. `n03530642`.
    pub id: &'static str,
    /// The short name, e.g. `honeycomb`.
    pub name: &'static str,
    /// The model's score (a probability after softmax).
    pub score: f32,
}

impl std::fmt::Display for Prediction {
    /// `n03530642 - honeycomb 37.23%`, as the Keras notebooks print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} - {} {:.2}%", self.id, self.name, 100.0 * self.score)
    }
}

/// Keras's `decode_predictions(preds, top)`: for each row of a `(N, 1000)` batch of scores,
/// the `top` best classes, highest first (ties keep the lower class number first).
///
/// # Errors
/// A tensor that is not `float32` of shape `(N, 1000)`, or `top` of 0 or over 1000.
pub fn decode_predictions(probs: &Tensor, top: usize) -> Result<Vec<Vec<Prediction>>> {
    const OP: &str = "decode_predictions";
    if probs.dtype() != DType::F32 {
        return Err(Error::dtype(OP, "float32 scores", probs.dtype()));
    }
    if probs.rank() != 2 || probs.dims()[1] != IMAGENET_CLASSES {
        return Err(Error::shape(OP, "a batch of ImageNet predictions (samples, 1000)", probs.shape()));
    }
    if top == 0 || top > IMAGENET_CLASSES {
        return Err(Error::shape(OP, format!("top between 1 and 1000, received {top}"), probs.shape()));
    }
    let classes = imagenet_classes();
    let values = probs.to_vec::<f32>()?;
    Ok(values
        .chunks(IMAGENET_CLASSES)
        .map(|row| {
            let mut order: Vec<usize> = (0..IMAGENET_CLASSES).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            order[..top].iter().map(|&i| Prediction { index: i, id: classes[i].0, name: classes[i].1, score: row[i] }).collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_core::Device;

    #[test]
    fn the_table_has_keras_ids_and_names_in_order() {
        let c = imagenet_classes();
        assert_eq!(c.len(), 1000);
        assert_eq!(c[0], ("n01440764", "tench"));
        assert_eq!(c[2], ("n01484850", "great_white_shark"));
        assert_eq!(c[599], ("n03530642", "honeycomb"));
        assert_eq!(c[999], ("n15075141", "toilet_tissue"));
        assert_eq!(c.iter().filter(|(_, n)| *n == "crane").count(), 2);
    }

    #[test]
    fn decodes_the_top_classes_of_each_row() {
        let mut v = vec![0.0f32; 2000];
        v[599] = 0.3723;
        v[1] = 0.5;
        v[2] = 0.1;
        v[1000 + 999] = 0.9;
        let t = Tensor::from_vec(v, vec![2, 1000], Device::Cpu).unwrap();
        let d = decode_predictions(&t, 3).unwrap();
        assert_eq!(d[0].iter().map(|p| p.index).collect::<Vec<_>>(), [1, 599, 2]);
        assert_eq!(d[0][1].to_string(), "n03530642 - honeycomb 37.23%");
        assert_eq!(d[0][0].name, "goldfish");
        // Ties (all zeros) keep the lower class first.
        assert_eq!(d[1].iter().map(|p| p.index).collect::<Vec<_>>(), [999, 0, 1]);
        let e = decode_predictions(&Tensor::zeros(vec![2, 10], DType::F32, Device::Cpu).unwrap(), 5).unwrap_err().to_string();
        assert!(e.contains("decode_predictions") && e.contains("(samples, 1000)") && e.contains("[2, 10]"), "{e}");
        let e = decode_predictions(&t, 0).unwrap_err().to_string();
        assert!(e.contains("top between 1 and 1000, received 0"), "{e}");
    }
}
