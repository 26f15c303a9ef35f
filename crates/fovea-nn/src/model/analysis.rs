//! Model analysis: multiply-accumulates per layer and in total, and the receptive field of a
//! stack of convolutions and poolings (the seeds' operation counts, biases excluded).
//!
//! A kernel applied at every output position costs one MAC per kernel weight there, whatever
//! the layer: a Conv2D's `[kh, kw, c_in/groups, filters]` kernel at each of `out_h·out_w`
//! positions, a Dense kernel at each position of its input's leading axes, a depthwise and a
//! pointwise kernel each at every output position. So a layer's MACs are its kernels' sizes
//! times the positions it produces — which also counts layers made of layers (a ResNet unit,
//! whose convolutions all produce the unit's output size) without knowing their classes. The
//! one exception is the transposed convolution, whose kernel is applied at every *input*
//! position.

use crate::layer::{Layer, ShapeSpec};
use crate::model::functional::Functional;
use crate::model::Sequential;
use crate::{Error, Result};

/// One layer's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMacs {
    /// The layer's name.
    pub name: String,
    /// Its class, e.g. `Conv2D`.
    pub class: &'static str,
    /// Multiply-accumulates per image (batch 1), biases excluded.
    pub macs: u64,
}

/// Positions a kernel is applied at: the product of a shape's axes between the batch and the
/// channel axis (1 for a `(None, units)` shape).
fn positions(shape: &ShapeSpec, layer: &str) -> Result<u64> {
    let inner = shape.get(1..shape.len().saturating_sub(1)).unwrap_or(&[]);
    inner.iter().try_fold(1u64, |acc, d| {
        let d = d.ok_or_else(|| Error::layer(layer, format!("MACs need known sizes, got shape {shape:?}")))?;
        acc.checked_mul(d as u64).ok_or_else(|| Error::layer(layer, "the MAC count overflows"))
    })
}

/// The MACs of `layer` called on `input` giving `output` (see the module docs).
///
/// # Errors
/// `Layer` for an unknown size on the axes that count, or an overflow.
pub fn layer_macs(layer: &dyn Layer, input: &ShapeSpec, output: &ShapeSpec) -> Result<u64> {
    let kernel_weights: u64 = layer.weights().iter().filter(|v| v.name().ends_with("kernel")).map(|v| v.value().numel() as u64).sum();
    if kernel_weights == 0 {
        return Ok(0);
    }
    let at = if layer.class_name() == "Conv2DTranspose" { input } else { output };
    positions(at, layer.name())?.checked_mul(kernel_weights).ok_or_else(|| Error::layer(layer.name(), "the MAC count overflows"))
}

/// Every layer of a Sequential model with its MACs per image.
///
/// # Errors
/// As [`Sequential::layer_output_shapes`] and [`layer_macs`].
pub fn sequential_macs(model: &Sequential) -> Result<Vec<LayerMacs>> {
    let mut input = model.input_shape().ok_or_else(|| Error::layer(model.name(), "MACs need the model's input shape"))?;
    if !model.base().is_built() {
        // The kernels' sizes are the count: a model declared with an input shape but not yet
        // built gets its weights now, as summary() would.
        let dims: Option<Vec<usize>> = input.iter().skip(1).copied().collect();
        model.build_for(&dims.ok_or_else(|| Error::layer(model.name(), format!("MACs need known sizes, got {input:?}")))?)?;
    }
    let mut rows = Vec::new();
    for (layer, output) in model.layer_output_shapes()? {
        rows.push(LayerMacs { name: layer.name().to_string(), class: layer.class_name(), macs: layer_macs(&*layer, &input, &output)? });
        input = output;
    }
    Ok(rows)
}

/// Every layer call of a functional model with its MACs per image (a layer called twice
/// appears twice).
///
/// # Errors
/// As [`layer_macs`].
pub fn functional_macs(model: &Functional) -> Result<Vec<LayerMacs>> {
    model
        .layer_calls()
        .into_iter()
        .map(|(layer, inputs, output)| {
            let input = inputs.into_iter().next().unwrap_or_default();
            Ok(LayerMacs { name: layer.name().to_string(), class: layer.class_name(), macs: layer_macs(&*layer, &input, &output)? })
        })
        .collect()
}

/// The receptive field of a stack of `(kernel, stride)` layers, convolutions and poolings
/// alike: `R_k = R_{k−1} + (K_k − 1)·Π_{i<k} s_i`, `R_1 = K_1` (0 for an empty stack).
pub fn receptive_field(layers: &[(usize, usize)]) -> usize {
    let mut field = 1;
    let mut jump = 1;
    for &(kernel, stride) in layers {
        field += kernel.saturating_sub(1) * jump;
        jump *= stride;
    }
    if layers.is_empty() {
        0
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::Activation;
    use crate::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
    use crate::model::functional::{Connect, Input, Node};
    use fovea_core::ops::padding::Padding;

    #[test]
    fn the_seeds_operation_counts() {
        // 224×224×3 → 64 3×3 filters, stride 1, pad 1: 3·3·3·64·224·224.
        let m = Sequential::with_input_shape(&[224, 224, 3]);
        m.add(Conv2D::new(64, (3, 3)).padding(Padding::Same)).unwrap();
        assert_eq!(sequential_macs(&m).unwrap()[0].macs, 86_704_128);
        // A dense layer of 64 on the flattened 224×224×3 image: H·W·C·outputs.
        let m = Sequential::with_input_shape(&[224, 224, 3]);
        m.add(Flatten::new()).unwrap();
        m.add(Dense::new(64)).unwrap();
        assert_eq!(sequential_macs(&m).unwrap().iter().map(|r| r.macs).sum::<u64>(), 9_633_792);
        // Inception's 5×5 branch on 28×28×192 → 32 filters, direct and through a 1×1 → 16.
        let x = Input::new(&[28, 28, 192]);
        let direct = Conv2D::new(32, (5, 5)).padding(Padding::Same).on(&x).unwrap();
        let squeezed = Conv2D::new(16, (1, 1)).on(&x).unwrap();
        let bottleneck = Conv2D::new(32, (5, 5)).padding(Padding::Same).on(&squeezed).unwrap();
        let total = |out: &Node| functional_macs(&Functional::new(&[&x], &[out]).unwrap()).unwrap().iter().map(|r| r.macs).sum::<u64>();
        assert_eq!(total(&direct), 120_422_400);
        assert_eq!(total(&bottleneck), 12_443_648);
        // 32×32×192 → 256 by a 3×3 directly, and through a 1×1 → 96 first.
        let x = Input::new(&[32, 32, 192]);
        let direct = Conv2D::new(256, (3, 3)).padding(Padding::Same).on(&x).unwrap();
        let squeezed = Conv2D::new(96, (1, 1)).on(&x).unwrap();
        let bottleneck = Conv2D::new(256, (3, 3)).padding(Padding::Same).activation(Activation::Relu).on(&squeezed).unwrap();
        let total = |out: &Node| functional_macs(&Functional::new(&[&x], &[out]).unwrap()).unwrap().iter().map(|r| r.macs).sum::<u64>();
        assert_eq!(total(&direct), 452_984_832);
        assert_eq!(total(&bottleneck), 245_366_784);
    }

    #[test]
    fn receptive_field_of_the_seeds_example() {
        // conv 3 → conv 3 → max pool 2/2 → conv 3: 3 → 5 → 6 → 10.
        assert_eq!(receptive_field(&[(3, 1), (3, 1), (2, 2), (3, 1)]), 10);
        // Three stacked 3×3 convolutions see as far as one 7×7.
        assert_eq!(receptive_field(&[(3, 1); 3]), receptive_field(&[(7, 1)]));
        assert_eq!(receptive_field(&[]), 0);
        let m = Sequential::with_input_shape(&[14, 14, 3]);
        m.add(MaxPooling2D::new((2, 2))).unwrap();
        assert_eq!(sequential_macs(&m).unwrap()[0].macs, 0, "pooling has no kernel");
    }

    /// The row of `table` that names `layer`, split into its cells.
    fn row<'a>(table: &'a str, layer: &str) -> Vec<&'a str> {
        let line = table.lines().find(|l| l.contains(layer)).unwrap_or_else(|| panic!("no row {layer} in\n{table}"));
        line.split('│').map(str::trim).filter(|c| !c.is_empty()).collect()
    }

    #[test]
    fn summaries_with_flops_add_a_macs_column_and_total() {
        crate::names::clear_session();
        let m = Sequential::with_input_shape(&[224, 224, 3]);
        m.add(Conv2D::new(64, (3, 3)).padding(Padding::Same)).unwrap();
        m.add(MaxPooling2D::new((2, 2))).unwrap();
        let plain = m.summary().unwrap();
        let table = m.summary_with_flops().unwrap();
        assert!(!plain.contains("MACs"), "{plain}");
        assert_eq!(row(&table, "conv2d (Conv2D)"), ["conv2d (Conv2D)", "(None, 224, 224, 64)", "1,792", "86,704,128"]);
        assert_eq!(row(&table, "max_pooling2d"), ["max_pooling2d (MaxPooling2D)", "(None, 112, 112, 64)", "0", "0"]);
        assert!(table.contains("┃ Layer (type)") && table.contains("MACs ┃"), "{table}");
        assert!(table.contains(" Total MACs per image: 86,704,128 (0.09 G)"), "{table}");
        // The rest of the table is the plain one.
        assert!(table.contains(" Total params: 1,792 (7.00 KB)"), "{table}");
        // A functional model: a shared layer's calls add up; inputs cost nothing.
        let x = Input::new(&[4]);
        let shared: crate::layer::LayerRef = std::sync::Arc::new(Dense::new(4).named("shared").unwrap());
        let once = shared.clone().on(&x).unwrap();
        let twice = shared.on(&once).unwrap();
        let y = Dense::new(2).named("head").unwrap().on(&twice).unwrap();
        let f = Functional::new(&[&x], &[&y]).unwrap();
        let table = f.summary_with_flops().unwrap();
        assert_eq!(&row(&table, "shared (Dense)")[..4], ["shared (Dense)", "(None, 4)", "20", "32"]);
        assert_eq!(&row(&table, "head (Dense)")[..4], ["head (Dense)", "(None, 2)", "10", "8"]);
        assert_eq!(&row(&table, "(InputLayer)")[2..4], ["0", "0"]);
        assert!(table.contains("Connected to") && table.contains(" Total MACs per image: 40 (0.00 G)"), "{table}");
    }
}
