//! `Dense`: `activation(x · kernel + bias)` over the last axis.

use crate::layer::{single_input, single_shape, Layer, LayerBase, ShapeSpec};
use crate::layers::common::{kernel_builders, merge_config, KernelArgs};
use crate::Result;
use fovea_core::{Tensor, Variable};
use serde_json::json;
use std::sync::OnceLock;

/// A fully connected layer with Keras's defaults (glorot_uniform kernel, zero bias).
pub struct Dense {
    base: LayerBase,
    units: usize,
    args: KernelArgs,
    params: OnceLock<(Variable, Option<Variable>)>,
}

kernel_builders!(Dense);

impl Dense {
    /// A dense layer with `units` outputs.
    pub fn new(units: usize) -> Self {
        Dense { base: LayerBase::new("Dense"), units, args: KernelArgs::default(), params: OnceLock::new() }
    }

    /// The kernel `[in, units]`, once built.
    pub fn kernel(&self) -> Option<Variable> {
        self.params.get().map(|(k, _)| k.clone())
    }
}

impl Layer for Dense {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let shape = single_shape(&self.base, input_shapes)?;
        let in_dim = match shape.last() {
            Some(Some(d)) if shape.len() >= 2 => *d,
            _ => {
                return Err(self.base.error(format!(
                    "expected an input of rank >= 2 with a known last dimension, got shape {}",
                    crate::layer::format_shape(shape)
                )))
            }
        };
        if self.units == 0 {
            return Err(self.base.error("units must be >= 1, got 0"));
        }
        let _ = self.params.set(self.args.create(&self.base, &[in_dim, self.units], self.units)?);
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let mut shape = single_shape(&self.base, input_shapes)?.clone();
        if shape.len() < 2 {
            return Err(self.base.error(format!("expected an input of rank >= 2, got shape {}", crate::layer::format_shape(&shape))));
        }
        *shape.last_mut().expect("rank >= 2") = Some(self.units);
        Ok(shape)
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let (kernel, bias) = self.params.get().ok_or_else(|| self.base.error("called before build"))?;
        let k = kernel.value();
        let expected = k.dims()[0];
        if x.rank() < 2 || x.dims()[x.rank() - 1] != expected {
            return Err(self.base.error(format!("expected an input with last dimension {expected} (rank >= 2), got shape {}", x.shape())));
        }
        self.args.bias_and_activation(x.matmul(&k)?, bias.as_ref())
    }

    fn config(&self) -> serde_json::Value {
        merge_config(json!({"name": self.name(), "trainable": self.trainable(), "units": self.units}), self.args.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::Activation;
    use crate::initializers::Initializer;
    use crate::layers::testing::{check_layer, LayerExpectations};
    use fovea_core::{DType, Device};

    #[test]
    fn dense_passes_the_layer_harness() {
        // SPEC §2.1 #6: FC 10 on 32×32×3 inputs has 30,730 parameters.
        check_layer(&Dense::new(10), &[&[3072]], LayerExpectations { output: vec![None, Some(10)], params: 30_730, non_trainable: 0 });
        check_layer(
            &Dense::new(4).activation(Activation::Tanh),
            &[&[2, 3]],
            LayerExpectations { output: vec![None, Some(2), Some(4)], params: 16, non_trainable: 0 },
        );
        check_layer(
            &Dense::new(4).use_bias(false),
            &[&[3]],
            LayerExpectations { output: vec![None, Some(4)], params: 12, non_trainable: 0 },
        );
    }

    #[test]
    fn dense_computes_x_kernel_plus_bias_and_names_weights() {
        let d = Dense::new(2)
            .named("fc")
            .unwrap()
            .kernel_initializer(Initializer::Ones)
            .bias_initializer(Initializer::Constant { value: 0.5 })
            .activation(Activation::Relu);
        let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, -4.0, -5.0, -6.0], [2, 3], Device::Cpu).unwrap();
        let y = d.apply(&[x], false).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.5, 2.5, 0.0, 0.0]);
        let names: Vec<String> = d.weights().iter().map(|v| v.name().to_string()).collect();
        assert_eq!(names, vec!["fc/kernel", "fc/bias"]);
    }

    #[test]
    fn dense_errors_name_the_layer_and_shapes() {
        let d = Dense::new(2).named("head").unwrap();
        let x = Tensor::zeros([4], DType::F32, Device::Cpu).unwrap();
        let e = d.apply(&[x], false).unwrap_err().to_string();
        assert!(e.contains("head: expected an input of rank >= 2") && e.contains("(None,)"), "{e}");
        let d = Dense::new(2);
        d.apply(&[Tensor::zeros([1, 3], DType::F32, Device::Cpu).unwrap()], false).unwrap();
        let e = d.apply(&[Tensor::zeros([1, 5], DType::F32, Device::Cpu).unwrap()], false).unwrap_err().to_string();
        assert!(e.contains("expected an input with last dimension 3") && e.contains("[1, 5]"), "{e}");
    }
}
