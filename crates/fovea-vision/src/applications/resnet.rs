//! ResNet-34 as Géron writes it in Keras (*Hands-On ML*, ch. 14): a `Sequential` stem and
//! sixteen `ResidualUnit` custom layers — the seeds' example of a layer defined through the
//! [`Layer`] trait, holding its own sub-layers.

use fovea_core::ops::padding::Padding;
use fovea_core::{Tensor, Variable};
use fovea_nn::activations::Activation as Act;
use fovea_nn::layer::{single_input, single_shape, Layer, LayerBase, LayerRef, ShapeSpec};
use fovea_nn::layers::{Activation, Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, MaxPooling2D};
use fovea_nn::model::functional::{Connect, Functional, Input};
use fovea_nn::model::Sequential;
use fovea_nn::Result;
use serde_json::json;
use std::sync::Arc;

/// Two 3×3 convolutions with batch normalisation, plus a 1×1 projection on the skip path when
/// the unit downsamples: `relu(main(x) + skip(x))`.
pub struct ResidualUnit {
    base: LayerBase,
    filters: usize,
    strides: usize,
    main: Vec<LayerRef>,
    skip: Vec<LayerRef>,
}

impl ResidualUnit {
    /// A unit with `filters` channels; `strides` 2 halves the spatial size.
    pub fn new(filters: usize, strides: usize) -> Self {
        let conv = |k: usize, s: usize| -> LayerRef {
            Arc::new(Conv2D::new(filters, (k, k)).strides((s, s)).padding(Padding::Same).use_bias(false))
        };
        let bn = || -> LayerRef { Arc::new(BatchNormalization::new()) };
        let main = vec![conv(3, strides), bn(), Arc::new(Activation::new(Act::Relu)) as LayerRef, conv(3, 1), bn()];
        let skip = if strides > 1 { vec![conv(1, strides), bn()] } else { vec![] };
        ResidualUnit { base: LayerBase::new("ResidualUnit"), filters, strides, main, skip }
    }

    fn sublayers(&self) -> impl Iterator<Item = &LayerRef> {
        self.main.iter().chain(&self.skip)
    }
}

fn run(layers: &[LayerRef], x: &Tensor, training: bool) -> Result<Tensor> {
    layers.iter().try_fold(x.clone(), |h, l| l.apply(&[h], training))
}

impl Layer for ResidualUnit {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "ResidualUnit"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let input = single_shape(&self.base, input_shapes)?.clone();
        for path in [&self.main, &self.skip] {
            let mut shape = input.clone();
            for l in path {
                l.build(&[shape.clone()])?;
                l.base().mark_built();
                shape = l.compute_output_shape(&[shape])?;
            }
        }
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let mut shape = single_shape(&self.base, input_shapes)?.clone();
        for l in &self.main {
            shape = l.compute_output_shape(&[shape])?;
        }
        Ok(shape)
    }

    fn call(&self, inputs: &[Tensor], training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let main = run(&self.main, x, training)?;
        let skip = run(&self.skip, x, training)?;
        Ok(main.add(&skip)?.relu()?)
    }

    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "filters": self.filters, "strides": self.strides})
    }

    /// The unit as a graph over its own sublayers, so it exports to ONNX: main path, skip path
    /// (the identity when the unit keeps the size), sum, ReLU.
    fn as_functional(&self, input_shapes: &[ShapeSpec]) -> Option<Result<Functional>> {
        let graph = || -> Result<Functional> {
            let shape = single_shape(&self.base, input_shapes)?;
            let dims: Option<Vec<usize>> = shape[1..].iter().copied().collect();
            let dims = dims.ok_or_else(|| self.base.error("needs a fully known input shape to be exported"))?;
            let x = Input::named(&dims, &format!("{}/input", self.name()));
            let path = |layers: &[LayerRef]| layers.iter().try_fold(x.clone(), |h, l| l.clone().on(&h));
            let (main, skip) = (path(&self.main)?, path(&self.skip)?);
            let sum = Add::new().on_many(&[&main, &skip])?;
            let y = Activation::new(Act::Relu).on(&sum)?;
            Functional::new(&[&x], &[&y])
        };
        Some(graph())
    }

    fn weights(&self) -> Vec<Variable> {
        self.sublayers().flat_map(|l| l.weights()).collect()
    }

    fn to(&self, device: fovea_core::Device) -> Result<()> {
        // The sublayers build their weights in this unit's `build`, on their own device.
        self.base.to(device)?;
        self.sublayers().try_for_each(|l| l.to(device))
    }

    fn set_trainable(&self, trainable: bool) -> Result<()> {
        self.base.set_trainable(trainable)?;
        self.sublayers().try_for_each(|l| l.set_trainable(trainable))
    }

    fn losses(&self) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        for l in self.sublayers() {
            out.extend(l.losses()?);
        }
        Ok(out)
    }
}

/// Géron's ResNet-34 for `input_shape` images and `classes` outputs (21,306,826 parameters at
/// 224×224×3 and 10 classes).
///
/// # Errors
/// When the input is too small for the five halvings.
pub fn resnet34_geron(input_shape: (usize, usize, usize), classes: usize) -> Result<Sequential> {
    let (h, w, c) = input_shape;
    let model = Sequential::with_input_shape(&[h, w, c]);
    model.add(Conv2D::new(64, (7, 7)).strides((2, 2)).padding(Padding::Same).use_bias(false))?;
    model.add(BatchNormalization::new())?;
    model.add(Activation::new(Act::Relu))?;
    model.add(MaxPooling2D::new((3, 3)).strides((2, 2)).padding(Padding::Same))?;
    let mut prev = 64;
    for filters in [64; 3].into_iter().chain([128; 4]).chain([256; 6]).chain([512; 3]) {
        model.add(ResidualUnit::new(filters, if filters == prev { 1 } else { 2 }))?;
        prev = filters;
    }
    model.add(GlobalAveragePooling2D::new())?;
    model.add(Flatten::new())?;
    model.add(Dense::new(classes).activation(Act::Softmax))?;
    model.build_for(&[h, w, c])?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet34_summary_matches_the_notebook_exactly() {
        fovea_nn::names::clear_session();
        let m = resnet34_geron((224, 224, 3), 10).unwrap();
        let table = m.summary().unwrap();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with('│')).collect();
        let cells = |r: &str| -> (String, String, String) {
            let c: Vec<&str> = r.split('│').map(str::trim).collect();
            (c[1].to_string(), c[2].to_string(), c[3].to_string())
        };
        // SPEC §2.3, seed 003: conv1 9,408; BN 256; maxpool → 56×56×64; RU64 74,240 ×3; first RU128
        // 230,912; RU128 295,936 ×3; first RU256 920,576; RU256 1,181,696 ×5; first RU512
        // 3,676,160; RU512 4,722,688 ×2; GAP (None, 512); Dense 5,130.
        let expected: Vec<(&str, &str, &str)> = [
            vec![
                ("conv2d (Conv2D)", "(None, 112, 112, 64)", "9,408"),
                ("batch_normalization (BatchNormalization)", "(None, 112, 112, 64)", "256"),
            ],
            vec![("activation (Activation)", "(None, 112, 112, 64)", "0"), ("max_pooling2d (MaxPooling2D)", "(None, 56, 56, 64)", "0")],
            vec![("", "(None, 56, 56, 64)", "74,240"); 3],
            vec![("", "(None, 28, 28, 128)", "230,912")],
            vec![("", "(None, 28, 28, 128)", "295,936"); 3],
            vec![("", "(None, 14, 14, 256)", "920,576")],
            vec![("", "(None, 14, 14, 256)", "1,181,696"); 5],
            vec![("", "(None, 7, 7, 512)", "3,676,160")],
            vec![("", "(None, 7, 7, 512)", "4,722,688"); 2],
            vec![
                ("global_average_pooling2d (GlobalAveragePooling2D)", "(None, 512)", "0"),
                ("flatten (Flatten)", "(None, 512)", "0"),
                ("dense (Dense)", "(None, 10)", "5,130"),
            ],
        ]
        .concat();
        assert_eq!(rows.len(), expected.len(), "{table}");
        for (row, (name, shape, params)) in rows.iter().zip(expected) {
            let (n, s, p) = cells(row);
            if name.is_empty() {
                assert!(n.ends_with("(ResidualUnit)"), "{n}");
            } else {
                assert_eq!(n, name);
            }
            assert_eq!((s.as_str(), p.as_str()), (shape, params), "row {n}");
        }
        assert!(table.contains("Total params: 21,306,826"), "{table}");
        assert!(table.contains("Trainable params: 21,289,802"), "{table}");
        assert!(table.contains("Non-trainable params: 17,024"), "{table}");
    }

    #[test]
    fn residual_unit_learns_a_batch_through_both_paths() {
        use fovea_nn::losses::Loss;
        use fovea_nn::model::Model;
        use fovea_nn::optimizers::Optimizer;
        fovea_core::set_seed(3);
        let d = fovea_core::Device::Cpu;
        // A downsampling unit, so the skip path has its own projection to train.
        let m = Sequential::with_input_shape(&[8, 8, 3]);
        m.add(ResidualUnit::new(4, 2)).unwrap();
        m.add(GlobalAveragePooling2D::new()).unwrap();
        m.add(Dense::new(2).activation(Act::Softmax)).unwrap();
        m.build_for(&[8, 8, 3]).unwrap();
        m.compile(Optimizer::adam(0.01), Loss::from_name("sparse_categorical_crossentropy").unwrap(), &[]).unwrap();
        // Class 1 images are brighter in channel 0: learnable by any working unit.
        let x = fovea_core::testing::rand(&[8, 8, 8, 3], -1.0, 1.0, 1, d);
        let labels: Vec<i64> = (0..8).map(|i| i % 2).collect();
        let shift: Vec<f32> = (0..8 * 8 * 8 * 3).map(|k| if labels[k / 192] == 1 && k % 3 == 0 { 1.5 } else { 0.0 }).collect();
        let x = x.add(&Tensor::from_vec(shift, [8, 8, 8, 3], d).unwrap()).unwrap();
        let y = Tensor::from_vec(labels, [8], d).unwrap();
        let unit = m.layers()[0].clone();
        let before: Vec<Vec<f32>> = unit.trainable_weights().iter().map(|w| w.value().to_vec::<f32>().unwrap()).collect();
        assert_eq!(before.len(), 9, "main: conv, bn γβ, conv, bn γβ; skip: conv, bn γβ");
        let first = m.train_on_batch(&x, &y).unwrap()["loss"];
        let mut last = first;
        for _ in 0..40 {
            last = m.train_on_batch(&x, &y).unwrap()["loss"];
        }
        // Chance is ln 2 ≈ 0.69; a unit that trains fits eight examples far below it.
        assert!(last < 0.25 && last < first / 2.0, "loss {first} → {last}");
        for (w, old) in unit.trainable_weights().iter().zip(&before) {
            assert_ne!(&w.value().to_vec::<f32>().unwrap(), old, "{} did not train", w.name());
        }
    }

    #[test]
    fn residual_units_export_to_onnx_as_their_graph() {
        use fovea_nn::export::onnx::ToOnnx;
        let m = Sequential::with_input_shape(&[8, 8, 3]);
        m.add(ResidualUnit::new(4, 2)).unwrap();
        m.add(ResidualUnit::new(4, 1)).unwrap();
        m.build_for(&[8, 8, 3]).unwrap();
        let g = m.to_onnx().unwrap().graph.unwrap();
        let count = |op: &str| g.node.iter().filter(|n| n.op_type == op).count();
        // Unit 1: two main convs and the projection; unit 2: two convs and the identity skip.
        assert_eq!((count("Conv"), count("BatchNormalization"), count("Add"), count("Relu")), (5, 5, 2, 4));
        // One transpose in, one back out: the units run in NCHW throughout.
        assert_eq!(count("Transpose"), 2);
        // Every weight of the units (moving statistics included) is an initializer.
        let values: usize = g.initializer.iter().map(|t| t.raw_data.len() / 4).sum();
        let params: usize = m.weights().iter().map(|w| w.value().numel()).sum();
        assert_eq!(values, params);
    }
}
