//! One harness that every layer's tests run through: output shape, parameter counts, config,
//! a gradient check through the layer, and a training step that lowers a toy loss.

use crate::layer::{Layer, ShapeSpec};
use fovea_core::testing::{gradcheck, rand};
use fovea_core::{Device, Tensor};

/// What a layer must produce for the harness's inputs.
pub struct LayerExpectations {
    /// The output shape with `None` for the batch.
    pub output: ShapeSpec,
    /// Total parameters (trainable and not), as Keras counts them.
    pub params: usize,
    /// Non-trainable parameters.
    pub non_trainable: usize,
}

/// Runs the harness on `layer` with inputs of the given shapes (batch excluded). Panics with a
/// message naming the layer on any failure.
pub fn check_layer(layer: &dyn Layer, input_shapes: &[&[usize]], expect: LayerExpectations) {
    let name = layer.name().to_string();
    let specs: Vec<ShapeSpec> = input_shapes.iter().map(|s| std::iter::once(None).chain(s.iter().map(|&d| Some(d))).collect()).collect();
    assert_eq!(layer.compute_output_shape(&specs).unwrap(), expect.output, "{name}: compute_output_shape");

    let batch = 2;
    let inputs: Vec<Tensor> = input_shapes
        .iter()
        .enumerate()
        .map(|(i, s)| rand(&std::iter::once(batch).chain(s.iter().copied()).collect::<Vec<_>>(), -1.0, 1.0, 100 + i as u64, Device::Cpu))
        .collect();
    let y = layer.apply(&inputs, true).unwrap_or_else(|e| panic!("{name}: call failed: {e}"));
    let want: Vec<usize> = expect.output.iter().map(|d| d.unwrap_or(batch)).collect();
    assert_eq!(y.dims(), want.as_slice(), "{name}: output shape");

    let count = |vs: Vec<fovea_core::Variable>| vs.iter().map(|v| v.value().numel()).sum::<usize>();
    assert_eq!(count(layer.weights()), expect.params, "{name}: parameter count");
    assert_eq!(count(layer.non_trainable_weights()), expect.non_trainable, "{name}: non-trainable parameter count");

    let config = layer.config();
    assert_eq!(config["name"], serde_json::json!(name), "{name}: config names the layer");
    let text = serde_json::to_string(&config).expect("config serialises");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&text).expect("config parses"), config, "{name}: config round trip");

    // Rebuilt from its config (what a model file stores) with the same weights, the layer
    // computes the same outputs.
    if layer.class_name() != "Lambda" {
        let twin =
            crate::model::registry::layer_from_config(layer.class_name(), &config).unwrap_or_else(|e| panic!("{name}: from_config: {e}"));
        twin.build(&specs).unwrap_or_else(|e| panic!("{name}: rebuilt layer does not build: {e}"));
        twin.base().mark_built();
        assert_eq!(twin.config(), config, "{name}: config of the rebuilt layer");
        for (a, b) in twin.weights().iter().zip(layer.weights()) {
            a.assign(&b.value()).unwrap();
        }
        let (y1, y2) = (layer.apply(&inputs, false).unwrap(), twin.apply(&inputs, false).unwrap());
        assert_eq!(y1.to_vec::<f32>().unwrap(), y2.to_vec::<f32>().unwrap(), "{name}: the rebuilt layer computes differently");
    }

    // The gradient with respect to the inputs, through the layer's own backward passes.
    let small: Vec<Tensor> = inputs.iter().map(|t| t.narrow_batch(1)).collect();
    gradcheck(|xs| layer.apply(xs, false).map_err(|e| fovea_core::Error::Autodiff(e.to_string())), &small, 1e-2, 2e-2)
        .unwrap_or_else(|e| panic!("{name}: gradcheck: {e}"));

    // A step along the negative gradient of L = mean(y²) lowers it. A correct gradient is a
    // descent direction, so backtracking from a large step must find a decrease; a wrong one
    // (sign, scale of a part) fails at every step size.
    let trainable = layer.trainable_weights();
    if !trainable.is_empty() {
        let loss_of = || layer.apply(&inputs, false).unwrap().square().unwrap().mean_all().unwrap();
        let before = loss_of();
        let grads = before.backward().unwrap();
        let start: Vec<Tensor> = trainable.iter().map(|v| v.value().detach()).collect();
        let g: Vec<Tensor> = trainable
            .iter()
            .map(|v| grads.get(&v.value()).unwrap_or_else(|| panic!("{name}: no gradient for {}", v.name())).clone())
            .collect();
        let before = before.to_scalar::<f32>().unwrap();
        let mut lr = 0.5f32;
        let mut lowered = false;
        for _ in 0..30 {
            for ((v, w0), gi) in trainable.iter().zip(&start).zip(&g) {
                v.assign(&w0.sub(&gi.mul_scalar(lr).unwrap()).unwrap()).unwrap();
            }
            if loss_of().to_scalar::<f32>().unwrap() < before {
                lowered = true;
                break;
            }
            lr *= 0.5;
        }
        assert!(lowered, "{name}: no step along the negative gradient lowered the loss");
    }
}

trait NarrowBatch {
    fn narrow_batch(&self, n: usize) -> Tensor;
}

impl NarrowBatch for Tensor {
    /// The first `n` examples (copied), so gradient checks stay tiny.
    fn narrow_batch(&self, n: usize) -> Tensor {
        let per = self.numel() / self.dims()[0];
        let v = self.to_vec::<f32>().expect("f32 input");
        let mut dims = self.dims().to_vec();
        dims[0] = n;
        Tensor::from_vec(v[..n * per].to_vec(), dims, self.device()).expect("shape")
    }
}
