//! Encoder reuse (SPEC §3.12, unsupervised pretraining): the encoder of a trained autoencoder
//! becomes the base of a classifier, trained first with the encoder frozen (only the new head
//! learns), then unfrozen (fine-tuning), as in Keras's transfer-learning guide.

use fovea_nn::activations::Activation;
use fovea_nn::layer::{Layer, LayerRef};
use fovea_nn::layers::Dense;
use fovea_nn::model::Sequential;
use fovea_nn::{Error, Result};

/// A classifier whose first layers are copies of a pretrained encoder's, with their weights,
/// followed by a new head. The copies are independent of the encoder: training the
/// classifier leaves the autoencoder as it was.
pub struct EncoderClassifier {
    /// The whole classifier: the encoder's layers, then the head (logits).
    pub model: Sequential,
    encoder_layers: Vec<LayerRef>,
}

impl EncoderClassifier {
    /// The copied encoder layers, in order (the first layers of [`EncoderClassifier::model`]).
    pub fn encoder_layers(&self) -> &[LayerRef] {
        &self.encoder_layers
    }

    /// Freezes (`false`) or unfreezes (`true`) the copied encoder layers. Frozen weights are
    /// left out of the trainable weights, so `fit` updates only the head. As in Keras, compile
    /// the model again after a change: the optimizer's state is laid out for the trainable
    /// weights it was built with (`fit` says so otherwise).
    ///
    /// # Errors
    /// Core errors from re-flagging the variables (never for float weights).
    pub fn set_encoder_trainable(&self, trainable: bool) -> Result<()> {
        self.encoder_layers.iter().try_for_each(|l| l.set_trainable(trainable))
    }
}

/// Builds a classifier on a trained encoder (a [`crate::generative::Autoencoder`]'s
/// `encoder`, or a VAE's): a copy of each encoder layer, rebuilt from its config for inputs of
/// `input_shape` (batch excluded) and given the encoder's weights, then `Dense(hidden, relu)`
/// when `hidden` is set, then `Dense(num_classes)` logits (compile it with a `from_logits`
/// cross-entropy). The encoder starts frozen; call
/// [`EncoderClassifier::set_encoder_trainable`]`(true)` to fine-tune it.
///
/// ```
/// use fovea_nn::layers::{Dense, Flatten};
/// use fovea_nn::model::Sequential;
/// use fovea_vision::generative::transfer::classifier_from_encoder;
///
/// # fn main() -> fovea_nn::Result<()> {
/// let encoder = Sequential::new();
/// encoder.add(Flatten::new())?;
/// encoder.add(Dense::new(8))?;
/// encoder.build_for(&[4, 4, 1])?; // in practice: trained inside an Autoencoder
/// let clf = classifier_from_encoder(&encoder, &[4, 4, 1], None, 3)?;
/// assert_eq!(clf.model.layers().len(), 3);
/// assert!(clf.encoder_layers().iter().all(|l| !l.trainable()));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// `Config` when the encoder has no layers or no weights yet (it was never built or trained),
/// or `num_classes` is 0; `Config` from rebuilding a layer whose class the registry does not
/// know; `Layer` when the encoder does not accept `input_shape`.
pub fn classifier_from_encoder(
    encoder: &Sequential,
    input_shape: &[usize],
    hidden: Option<usize>,
    num_classes: usize,
) -> Result<EncoderClassifier> {
    let layers = encoder.layers();
    if layers.is_empty() {
        return Err(Error::Config(format!("classifier_from_encoder: the encoder {} has no layers", encoder.name())));
    }
    if encoder.weights().is_empty() {
        return Err(Error::Config(format!(
            "classifier_from_encoder: the encoder {} has no weights yet: train it (or build it) before transferring it",
            encoder.name()
        )));
    }
    if num_classes == 0 {
        return Err(Error::Config("classifier_from_encoder: num_classes must be >= 1, got 0".into()));
    }
    let model = Sequential::with_input_shape(input_shape);
    let mut copies = Vec::with_capacity(layers.len());
    for layer in &layers {
        let copy = fovea_nn::model::registry::layer_from_config(layer.class_name(), &layer.config())?;
        model.add_ref(copy.clone())?;
        copies.push(copy);
    }
    if let Some(units) = hidden {
        model.add(Dense::new(units).activation(Activation::Relu))?;
    }
    model.add(Dense::new(num_classes))?;
    model.build_for(input_shape)?;
    for (copy, layer) in copies.iter().zip(&layers) {
        let (to, from) = (copy.weights(), layer.weights());
        if to.len() != from.len() {
            return Err(Error::Config(format!(
                "classifier_from_encoder: layer {} has {} weights, its copy {}",
                layer.name(),
                from.len(),
                to.len()
            )));
        }
        for (t, f) in to.iter().zip(&from) {
            t.assign(&f.value()).map_err(|e| Error::Config(format!("classifier_from_encoder: layer {}: {e}", layer.name())))?;
        }
    }
    let classifier = EncoderClassifier { model, encoder_layers: copies };
    classifier.set_encoder_trainable(false)?;
    Ok(classifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generative::Autoencoder;
    use fovea_core::{set_seed, Device, Tensor};
    use fovea_nn::layers::{Conv2D, Flatten, Reshape};
    use fovea_nn::losses::LossKind;
    use fovea_nn::model::training::{FitOptions, Model};
    use fovea_nn::optimizers::Optimizer;

    fn values(layers: &[LayerRef]) -> Vec<Vec<f32>> {
        layers.iter().flat_map(|l| l.weights()).map(|v| v.value().to_vec::<f32>().unwrap()).collect()
    }

    /// 48 images 6×6 in [0, 1]: class k has a bright row band k (of 3), plus noise.
    fn bands() -> (Tensor, Tensor) {
        let noise = Tensor::random_uniform([48, 6, 6, 1], 0.0, 0.2, Some(7), Device::Cpu).unwrap().to_vec::<f32>().unwrap();
        let mut x = noise;
        let labels: Vec<i64> = (0..48).map(|i| i % 3).collect();
        for (i, &k) in labels.iter().enumerate() {
            for r in 2 * k as usize..2 * k as usize + 2 {
                for c in 0..6 {
                    x[i * 36 + r * 6 + c] += 0.8;
                }
            }
        }
        (Tensor::from_vec(x, [48, 6, 6, 1], Device::Cpu).unwrap(), Tensor::from_vec(labels, [48], Device::Cpu).unwrap())
    }

    #[test]
    fn a_pretrained_encoder_transfers_frozen_then_fine_tuned() {
        set_seed(11);
        let (x, y) = bands();
        let encoder = Sequential::new();
        encoder.add(Conv2D::new(4, (3, 3)).strides((2, 2)).activation(Activation::Relu)).unwrap();
        encoder.add(Flatten::new()).unwrap();
        encoder.add(Dense::new(6)).unwrap();
        let decoder = Sequential::new();
        decoder.add(Dense::new(36)).unwrap();
        decoder.add(Reshape::new(&[6, 6, 1])).unwrap();
        let ae = Autoencoder::new(encoder, decoder, Optimizer::adam(1e-2));
        let opts = FitOptions { epochs: 2, batch_size: 16, verbose: 0, seed: Some(0), ..Default::default() };
        let h = ae.fit_multi(std::slice::from_ref(&x), &[], opts.clone(), &mut []).unwrap();
        assert!(h.history["loss"][1] < h.history["loss"][0], "the autoencoder trains: {:?}", h.history["loss"]);

        let clf = classifier_from_encoder(&ae.encoder, &[6, 6, 1], Some(8), 3).unwrap();
        let pretrained = values(&ae.encoder.layers());
        // The transferred weights are the encoder's, layer by layer, and they are copies.
        assert_eq!(values(clf.encoder_layers()), pretrained);
        assert_eq!(clf.model.layers().len(), 5);
        let codes = ae.encoder.apply(std::slice::from_ref(&x), false).unwrap();
        let copied = Sequential::new();
        for l in clf.encoder_layers() {
            copied.add_ref(l.clone()).unwrap();
        }
        assert_eq!(copied.apply(std::slice::from_ref(&x), false).unwrap().to_vec::<f32>().unwrap(), codes.to_vec::<f32>().unwrap());

        // Frozen: fit moves the head only.
        clf.model
            .compile(Optimizer::adam(1e-2), LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(), &["accuracy"])
            .unwrap();
        let head: Vec<LayerRef> = clf.model.layers()[3..].to_vec();
        let head_before = values(&head);
        clf.model.fit(&x, &y, opts.clone()).unwrap();
        assert_eq!(values(clf.encoder_layers()), pretrained, "a frozen encoder keeps its weights through fit");
        assert_ne!(values(&head), head_before, "the head trains");

        // Unfrozen: fine-tuning moves the encoder copy too, and never the autoencoder's own.
        clf.set_encoder_trainable(true).unwrap();
        let e = clf.model.fit(&x, &y, opts.clone()).unwrap_err().to_string();
        assert!(e.contains("compile again after changing the model or which layers are trainable"), "{e}");
        clf.model
            .compile(Optimizer::adam(1e-2), LossKind::SparseCategoricalCrossentropy { from_logits: true }.into(), &["accuracy"])
            .unwrap();
        clf.model.fit(&x, &y, opts).unwrap();
        assert_ne!(values(clf.encoder_layers()), pretrained, "an unfrozen encoder is fine-tuned");
        assert_eq!(values(&ae.encoder.layers()), pretrained, "the autoencoder's encoder is untouched");
    }

    #[test]
    fn an_untrained_or_empty_encoder_is_a_clear_error() {
        let e = classifier_from_encoder(&Sequential::new(), &[4], None, 2).err().unwrap().to_string();
        assert!(e.contains("has no layers"), "{e}");
        let enc = Sequential::new();
        enc.add(Dense::new(3)).unwrap();
        let e = classifier_from_encoder(&enc, &[4], None, 2).err().unwrap().to_string();
        assert!(e.contains("has no weights yet: train it (or build it)"), "{e}");
        enc.build_for(&[4]).unwrap();
        let e = classifier_from_encoder(&enc, &[4], None, 0).err().unwrap().to_string();
        assert!(e.contains("num_classes must be >= 1"), "{e}");
        let e = classifier_from_encoder(&enc, &[5], None, 2).err().unwrap().to_string();
        assert!(e.contains("classifier_from_encoder: layer") && e.contains("[4, 3]"), "{e}");
    }
}
