//! The options every `keras.applications` constructor takes, with Keras's defaults, and the
//! classification top they control — shared so that every zoo model reads them the same way.

use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Dense, GlobalAveragePooling2D, GlobalMaxPooling2D};
use fovea_nn::model::functional::{Connect, Node};
use fovea_nn::{Error, Result};

/// What follows the convolutional base when `include_top` is false (Keras's `pooling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooling {
    /// The 4-D feature map of the last block (`pooling=None`).
    #[default]
    None,
    /// Global average pooling to a vector (`pooling="avg"`).
    Avg,
    /// Global max pooling to a vector (`pooling="max"`).
    Max,
}

/// Keras's `include_top`, `input_shape`, `pooling`, `classes` and `classifier_activation`.
#[derive(Clone, Debug, PartialEq)]
pub struct AppOptions {
    /// Keep the classifier (the fully connected layers at the top).
    pub include_top: bool,
    /// `(height, width, channels)`; `None` means the model's canonical input (e.g. 224×224×3).
    pub input_shape: Option<(usize, usize, usize)>,
    /// The pooling after the base when `include_top` is false.
    pub pooling: Pooling,
    /// Output classes of the top.
    pub classes: usize,
    /// Activation of the last layer of the top (`softmax` by default; `None` gives logits).
    pub classifier_activation: Option<Act>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            include_top: true,
            input_shape: None,
            pooling: Pooling::None,
            classes: 1000,
            classifier_activation: Some(Act::Softmax),
        }
    }
}

impl AppOptions {
    /// The input shape to build: the user's, or `default` when none was given. `model` names
    /// the constructor in errors; `min` is the smallest height and width the architecture
    /// accepts (Keras's `min_size`), and `channels` the channel count it requires when the top
    /// is included, if any.
    ///
    /// # Errors
    /// An input smaller than `min`, or a zero dimension.
    pub fn resolve_input(&self, model: &str, default: (usize, usize, usize), min: usize) -> Result<(usize, usize, usize)> {
        let shape = self.input_shape.unwrap_or(default);
        let (h, w, c) = shape;
        if h < min || w < min || c == 0 {
            return Err(Error::Config(format!(
                "{model}: input_shape must be at least {min}×{min} with channels > 0, received {h}×{w}×{c}"
            )));
        }
        if self.include_top && self.classes == 0 {
            return Err(Error::Config(format!("{model}: classes must be positive when include_top is true, received 0")));
        }
        Ok(shape)
    }

    /// The pooling of a headless model (`include_top = false`): the node itself, or its global
    /// average / max, under Keras's layer names.
    ///
    /// # Errors
    /// Layer build errors.
    pub fn pool(&self, x: &Node) -> Result<Node> {
        match self.pooling {
            Pooling::None => Ok(x.clone()),
            Pooling::Avg => GlobalAveragePooling2D::new().named("avg_pool")?.on(x),
            Pooling::Max => GlobalMaxPooling2D::new().named("max_pool")?.on(x),
        }
    }

    /// The final classification layer, named `name` (Keras uses `predictions` in most models).
    ///
    /// # Errors
    /// Layer build errors.
    pub fn classifier(&self, x: &Node, name: &str) -> Result<Node> {
        let dense = Dense::new(self.classes).named(name)?;
        match self.classifier_activation {
            Some(act) => dense.activation(act).on(x),
            None => dense.on(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_keras_and_bad_shapes_are_named() {
        let o = AppOptions::default();
        assert!(o.include_top && o.classes == 1000 && o.pooling == Pooling::None);
        assert_eq!(o.resolve_input("ResNet50", (224, 224, 3), 32).unwrap(), (224, 224, 3));
        let small = AppOptions { input_shape: Some((16, 40, 3)), ..AppOptions::default() };
        let msg = small.resolve_input("ResNet50", (224, 224, 3), 32).unwrap_err().to_string();
        assert!(msg.contains("ResNet50") && msg.contains("32×32") && msg.contains("16×40×3"), "{msg}");
        let none = AppOptions { classes: 0, ..AppOptions::default() };
        assert!(none.resolve_input("VGG16", (224, 224, 3), 32).unwrap_err().to_string().contains("classes"));
    }
}
