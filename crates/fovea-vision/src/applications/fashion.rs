//! Géron's Fashion-MNIST CNN (*Hands-On ML*, ch. 14): 3×3 "same" ReLU convolutions of 64 (7×7
//! first), 128, 128, 256, 256 filters with 2×2 max pooling, then 128 and 64 dense units with 50%
//! dropout — 1,413,834 parameters on 28×28×1.

use fovea_core::ops::padding::Padding;
use fovea_nn::activations::Activation as Act;
use fovea_nn::layers::{Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use fovea_nn::model::Sequential;
use fovea_nn::Result;

/// The Fashion-MNIST CNN for `input_shape` and `classes` outputs with a softmax.
///
/// # Errors
/// When the input is too small for three 2×2 poolings.
pub fn fashion_mnist_cnn(input_shape: (usize, usize, usize), classes: usize) -> Result<Sequential> {
    let (h, w, c) = input_shape;
    let conv = |filters, k| Conv2D::new(filters, (k, k)).padding(Padding::Same).activation(Act::Relu);
    let model = Sequential::with_input_shape(&[h, w, c]);
    model.add(conv(64, 7))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(conv(128, 3))?;
    model.add(conv(128, 3))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(conv(256, 3))?;
    model.add(conv(256, 3))?;
    model.add(MaxPooling2D::new((2, 2)))?;
    model.add(Flatten::new())?;
    model.add(Dense::new(128).activation(Act::Relu))?;
    model.add(Dropout::new(0.5))?;
    model.add(Dense::new(64).activation(Act::Relu))?;
    model.add(Dropout::new(0.5))?;
    model.add(Dense::new(classes).activation(Act::Softmax))?;
    model.build_for(&[h, w, c])?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_cnn_has_1413834_parameters() {
        let m = fashion_mnist_cnn((28, 28, 1), 10).unwrap();
        let table = m.summary().unwrap();
        for cell in
            ["3,200", "73,856", "147,584", "295,168", "590,080", "(None, 2304)", "295,040", "8,256", "650", "Total params: 1,413,834"]
        {
            assert!(table.contains(cell), "missing {cell} in\n{table}");
        }
    }
}
