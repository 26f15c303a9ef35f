//! Merge layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum` (element-wise,
//! with broadcasting) and `Concatenate` (along any axis).

use crate::layer::{format_shape, Layer, LayerBase, ShapeSpec};
use crate::Result;
use fovea_core::Tensor;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MergeOp {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    Concatenate(isize),
}

/// A layer combining several inputs (see each constructor).
pub struct Merge {
    base: LayerBase,
    op: MergeOp,
    class_name: &'static str,
}

macro_rules! merge_layers {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;
        impl $name {
            /// The layer.
            #[allow(clippy::new_ret_no_self)] // every merge layer is a Merge
            pub fn new() -> Merge {
                Merge { base: LayerBase::new(stringify!($name)), op: $op, class_name: stringify!($name) }
            }
        }
    )*};
}

merge_layers! {
    /// `keras.layers.Add`: the sum of the inputs.
    Add => MergeOp::Add;
    /// `keras.layers.Subtract`: the first input minus the second.
    Subtract => MergeOp::Subtract;
    /// `keras.layers.Multiply`: the product of the inputs.
    Multiply => MergeOp::Multiply;
    /// `keras.layers.Average`: the mean of the inputs.
    Average => MergeOp::Average;
    /// `keras.layers.Maximum`: the element-wise maximum.
    Maximum => MergeOp::Maximum;
    /// `keras.layers.Minimum`: the element-wise minimum.
    Minimum => MergeOp::Minimum;
}

/// `keras.layers.Concatenate`.
pub struct Concatenate;

impl Concatenate {
    /// Concatenates along `axis` (Keras default -1).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(axis: isize) -> Merge {
        Merge { base: LayerBase::new("Concatenate"), op: MergeOp::Concatenate(axis), class_name: "Concatenate" }
    }
}

impl Merge {
    /// Names the layer.
    ///
    /// # Errors
    /// As [`LayerBase::set_name`].
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }

    fn check_count(&self, n: usize) -> Result<()> {
        let ok = match self.op {
            MergeOp::Subtract => n == 2,
            _ => n >= 2,
        };
        if !ok {
            let want = if self.op == MergeOp::Subtract { "exactly 2" } else { "at least 2" };
            return Err(self.base.error(format!("expected {want} inputs, got {n}")));
        }
        Ok(())
    }
}

impl Layer for Merge {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        self.class_name
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        self.check_count(input_shapes.len())?;
        let first = &input_shapes[0];
        let all: Vec<String> = input_shapes.iter().map(|s| format_shape(s)).collect();
        if let MergeOp::Concatenate(axis) = self.op {
            let rank = first.len();
            let a = fovea_core::normalize_axis("concatenate", axis, rank).map_err(|e| self.base.error(e.to_string()))?;
            let mut out = first.clone();
            out[a] = Some(0);
            for s in input_shapes {
                if s.len() != rank || (0..rank).any(|i| i != a && i != 0 && s[i] != first[i]) {
                    return Err(self.base.error(format!("inputs must match on every axis but {axis}, got shapes {}", all.join(", "))));
                }
                out[a] = match (out[a], s[a]) {
                    (Some(x), Some(y)) => Some(x + y),
                    _ => None,
                };
            }
            return Ok(out);
        }
        // Element-wise merges broadcast like NumPy.
        let rank = input_shapes.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = vec![Some(1); rank];
        for s in input_shapes {
            for (i, d) in s.iter().enumerate() {
                let slot = &mut out[rank - s.len() + i];
                *slot = match (*slot, *d) {
                    (Some(1), d) | (d, Some(1)) => d,
                    (Some(x), Some(y)) if x == y => Some(x),
                    (None, d) | (d, None) => d,
                    _ => return Err(self.base.error(format!("inputs must have equal (or broadcastable) shapes, got {}", all.join(", ")))),
                };
            }
        }
        Ok(out)
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        self.check_count(inputs.len())?;
        let err = |e: fovea_core::Error| self.base.error(e.to_string());
        if let MergeOp::Concatenate(axis) = self.op {
            let refs: Vec<&Tensor> = inputs.iter().collect();
            return Tensor::concat(&refs, axis).map_err(err);
        }
        let mut acc = inputs[0].clone();
        for x in &inputs[1..] {
            acc = match self.op {
                MergeOp::Add | MergeOp::Average => acc.add(x),
                MergeOp::Subtract => acc.sub(x),
                MergeOp::Multiply => acc.mul(x),
                MergeOp::Maximum => acc.maximum(x),
                MergeOp::Minimum => acc.minimum(x),
                MergeOp::Concatenate(_) => unreachable!("handled above"),
            }
            .map_err(err)?;
        }
        if self.op == MergeOp::Average {
            acc = acc.mul_scalar(1.0 / inputs.len() as f32).map_err(err)?;
        }
        Ok(acc)
    }

    fn config(&self) -> serde_json::Value {
        let mut c = json!({"name": self.name(), "trainable": self.trainable()});
        if let MergeOp::Concatenate(axis) = self.op {
            c["axis"] = json!(axis);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_layer, LayerExpectations};
    use fovea_core::{Device, Tensor};

    #[test]
    fn merge_layers_pass_the_harness_and_compute() {
        let e = |o: &[Option<usize>]| LayerExpectations { output: o.to_vec(), params: 0, non_trainable: 0 };
        for layer in [Add::new(), Multiply::new(), Average::new(), Maximum::new(), Minimum::new()] {
            check_layer(&layer, &[&[3], &[3]], e(&[None, Some(3)]));
        }
        check_layer(&Subtract::new(), &[&[2, 3], &[2, 3]], e(&[None, Some(2), Some(3)]));
        check_layer(&Concatenate::new(-1), &[&[2, 3], &[2, 5]], e(&[None, Some(2), Some(8)]));
        check_layer(&Concatenate::new(1), &[&[2, 3], &[4, 3]], e(&[None, Some(6), Some(3)]));
        let a = Tensor::from_vec(vec![1.0f32, 5.0], [1, 2], Device::Cpu).unwrap();
        let b = Tensor::from_vec(vec![3.0f32, 2.0], [1, 2], Device::Cpu).unwrap();
        let avg = Average::new().apply(&[a.clone(), b.clone()], false).unwrap();
        assert_eq!(avg.to_vec::<f32>().unwrap(), vec![2.0, 3.5]);
        assert_eq!(Subtract::new().apply(&[a.clone(), b.clone()], false).unwrap().to_vec::<f32>().unwrap(), vec![-2.0, 3.0]);
        assert_eq!(Maximum::new().apply(&[a, b], false).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
    }

    #[test]
    fn merge_errors_list_the_shapes() {
        let add = Add::new().named("res_add").unwrap();
        let err = add.compute_output_shape(&[vec![None, Some(3)], vec![None, Some(4)]]).unwrap_err().to_string();
        assert!(err.contains("res_add: inputs must have equal (or broadcastable) shapes, got (None, 3), (None, 4)"), "{err}");
        let cat = Concatenate::new(-1);
        let err = cat.compute_output_shape(&[vec![None, Some(2), Some(3)], vec![None, Some(4), Some(3)]]).unwrap_err().to_string();
        assert!(err.contains("must match on every axis but -1"), "{err}");
        let err = Subtract::new().compute_output_shape(&[vec![None, Some(2)]]).unwrap_err().to_string();
        assert!(err.contains("expected exactly 2 inputs, got 1"), "{err}");
    }
}
