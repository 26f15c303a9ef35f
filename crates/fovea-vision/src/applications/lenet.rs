//! LeNet-5 as Keras users write it (Planche, *Hands-On Computer Vision with TensorFlow 2*):
//! two 5×5 convolutions (6 and 16 filters, ReLU) each followed by 2×2 max pooling, then dense
//! layers of 120, 84 and `classes` units — 61,706 parameters for 28×28×1 inputs and 10 classes.

use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation;
use fovea_nn::layers::{AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D};
use fovea_nn::model::Sequential;
use fovea_nn::Result;

/// The Keras-style LeNet-5 for `input_shape` `(height, width, channels)` and `classes` outputs
/// with a softmax.
///
/// # Errors
/// When the input is too small for the two 5×5 convolutions and poolings (under 12×12).
pub fn lenet5(input_shape: (usize, usize, usize), classes: usize) -> Result<Sequential> {
    lenet(input_shape, classes, (6, 16), (120, 84), Pool::Max)
}

/// The wider LeNet-like network of the seeds (notebook 004): 32 and 48 filters each followed by
/// 2×2 *average* pooling, as LeCun's subsampling had it, dense layers of 256 and 84 units —
/// 369,174 parameters for 28×28×1 inputs and 10 classes.
///
/// # Errors
/// As [`lenet5`].
pub fn lenet_like(input_shape: (usize, usize, usize), classes: usize) -> Result<Sequential> {
    lenet(input_shape, classes, (32, 48), (256, 84), Pool::Average)
}

#[derive(Clone, Copy)]
enum Pool {
    Max,
    Average,
}

fn lenet(
    input_shape: (usize, usize, usize),
    classes: usize,
    filters: (usize, usize),
    dense: (usize, usize),
    pool: Pool,
) -> Result<Sequential> {
    let (h, w, c) = input_shape;
    let model = Sequential::with_input_shape(&[h, w, c]);
    let add_pool = |model: &Sequential| match pool {
        Pool::Max => model.add(MaxPooling2D::new((2, 2))),
        Pool::Average => model.add(AveragePooling2D::new((2, 2))),
    };
    model.add(Conv2D::new(filters.0, (5, 5)).padding(Padding::Same).activation(Activation::Relu))?;
    add_pool(&model)?;
    model.add(Conv2D::new(filters.1, (5, 5)).activation(Activation::Relu))?;
    add_pool(&model)?;
    model.add(Flatten::new())?;
    model.add(Dense::new(dense.0).activation(Activation::Relu))?;
    model.add(Dense::new(dense.1).activation(Activation::Relu))?;
    model.add(Dense::new(classes).activation(Activation::Softmax))?;
    model.build_for(&[h, w, c])?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fovea_nn::layer::Layer;

    #[test]
    fn keras_lenet5_has_61706_parameters_and_keras_shapes() {
        fovea_nn::names::clear_session();
        let m = lenet5((28, 28, 1), 10).unwrap();
        let table = m.summary().unwrap();
        // SPEC §2.2: 156; 2,416; 48,120; 10,164; 850 — total 61,706.
        for row in [
            "conv2d (Conv2D)",
            "(None, 28, 28, 6)",
            "156",
            "(None, 14, 14, 6)",
            "(None, 10, 10, 16)",
            "2,416",
            "(None, 5, 5, 16)",
            "(None, 400)",
            "48,120",
            "10,164",
            "850",
            "Total params: 61,706 (241.04 KB)",
            "Non-trainable params: 0 (0.00 B)",
        ] {
            assert!(table.contains(row), "missing {row:?} in\n{table}");
        }
        assert_eq!(m.weights().iter().map(|v| v.value().numel()).sum::<usize>(), 61_706);
        assert!(lenet5((8, 8, 1), 10).is_err());
    }

    #[test]
    fn lenet_like_has_369174_parameters() {
        fovea_nn::names::clear_session();
        let m = lenet_like((28, 28, 1), 10).unwrap();
        let table = m.summary().unwrap();
        // SPEC §2.2: 832; 38,448; 307,456; 21,588; 850 — total 369,174.
        for row in [
            "(None, 28, 28, 32)",
            "832",
            // Seed 004 subsamples by averaging, not by max pooling.
            "average_pooling2d (AveragePooling2D)",
            "(None, 14, 14, 32)",
            "average_pooling2d_1 (AveragePooling2D)",
            "(None, 10, 10, 48)",
            "38,448",
            "(None, 1200)",
            "307,456",
            "21,588",
            "850",
            "Total params: 369,174",
        ] {
            assert!(table.contains(row), "missing {row:?} in\n{table}");
        }
        assert!(!table.contains("MaxPooling2D"), "{table}");
    }
}
