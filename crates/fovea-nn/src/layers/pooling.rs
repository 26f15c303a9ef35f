//! Pooling layers: `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`,
//! `GlobalMaxPooling2D`.

use crate::layer::{format_shape, single_input, single_shape, Layer, LayerBase, ShapeSpec};
use crate::Result;
use fovea_core::ops::padding::{resolve_axis, Padding};
use fovea_core::Tensor;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolKind {
    Max,
    Average,
}

/// A 2-D max or average pooling layer (constructed by [`MaxPooling2D::new`] or
/// [`AveragePooling2D::new`]).
pub struct Pooling2D {
    base: LayerBase,
    kind: PoolKind,
    pool_size: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
}

/// `keras.layers.MaxPooling2D`.
pub struct MaxPooling2D;
/// `keras.layers.AveragePooling2D`.
pub struct AveragePooling2D;

impl MaxPooling2D {
    /// Max over `pool_size` windows; strides default to the pool size, padding to `valid`.
    #[allow(clippy::new_ret_no_self)] // both pooling layers share one type
    pub fn new(pool_size: (usize, usize)) -> Pooling2D {
        Pooling2D::make(PoolKind::Max, "MaxPooling2D", pool_size)
    }
}

impl AveragePooling2D {
    /// Mean over `pool_size` windows (over real inputs only with `same` padding).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(pool_size: (usize, usize)) -> Pooling2D {
        Pooling2D::make(PoolKind::Average, "AveragePooling2D", pool_size)
    }
}

impl Pooling2D {
    fn make(kind: PoolKind, class_name: &'static str, pool_size: (usize, usize)) -> Self {
        Pooling2D { base: LayerBase::new(class_name), kind, pool_size, strides: pool_size, padding: Padding::Valid }
    }

    /// Strides (default: the pool size).
    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    /// `valid` (default) or `same`.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Names the layer.
    ///
    /// # Errors
    /// As [`LayerBase::set_name`].
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }
}

fn check_rank4(base: &LayerBase, shape: &ShapeSpec) -> Result<()> {
    if shape.len() != 4 {
        return Err(base.error(format!("expected an input of rank 4 (batch, height, width, channels), got shape {}", format_shape(shape))));
    }
    Ok(())
}

impl Layer for Pooling2D {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPooling2D",
            PoolKind::Average => "AveragePooling2D",
        }
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let shape = single_shape(&self.base, input_shapes)?;
        check_rank4(&self.base, shape)?;
        let mut out = shape.clone();
        let ks = [self.pool_size.0, self.pool_size.1];
        let ss = [self.strides.0, self.strides.1];
        for i in 0..2 {
            if let Some(n) = shape[1 + i] {
                out[1 + i] =
                    Some(resolve_axis("pooling", &self.padding, i, n, ks[i], ss[i], 1).map_err(|e| self.base.error(e.to_string()))?.out);
            }
        }
        Ok(out)
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let y = match self.kind {
            PoolKind::Max => x.max_pool2d(self.pool_size, self.strides, self.padding.clone()),
            PoolKind::Average => x.avg_pool2d(self.pool_size, self.strides, self.padding.clone()),
        };
        y.map_err(|e| self.base.error(e.to_string()))
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": self.name(),
            "trainable": self.trainable(),
            "pool_size": [self.pool_size.0, self.pool_size.1],
            "strides": [self.strides.0, self.strides.1],
            "padding": if self.padding == Padding::Same { "same" } else { "valid" },
            "data_format": "channels_last",
        })
    }
}

/// Global average or max pooling over height and width (`GlobalAveragePooling2D`,
/// `GlobalMaxPooling2D`).
pub struct GlobalPooling2D {
    base: LayerBase,
    kind: PoolKind,
    keepdims: bool,
}

/// `keras.layers.GlobalAveragePooling2D`.
pub struct GlobalAveragePooling2D;
/// `keras.layers.GlobalMaxPooling2D`.
pub struct GlobalMaxPooling2D;

impl GlobalAveragePooling2D {
    /// `[N, H, W, C] → [N, C]`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> GlobalPooling2D {
        GlobalPooling2D { base: LayerBase::new("GlobalAveragePooling2D"), kind: PoolKind::Average, keepdims: false }
    }
}

impl GlobalMaxPooling2D {
    /// `[N, H, W, C] → [N, C]`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> GlobalPooling2D {
        GlobalPooling2D { base: LayerBase::new("GlobalMaxPooling2D"), kind: PoolKind::Max, keepdims: false }
    }
}

impl GlobalPooling2D {
    /// Keep the spatial axes as size 1 (`[N, 1, 1, C]`).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }

    /// Names the layer.
    ///
    /// # Errors
    /// As [`LayerBase::set_name`].
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }
}

impl Layer for GlobalPooling2D {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPooling2D",
            PoolKind::Average => "GlobalAveragePooling2D",
        }
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let shape = single_shape(&self.base, input_shapes)?;
        check_rank4(&self.base, shape)?;
        Ok(if self.keepdims { vec![shape[0], Some(1), Some(1), shape[3]] } else { vec![shape[0], shape[3]] })
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let y = match self.kind {
            PoolKind::Average => x.global_avg_pool2d(self.keepdims),
            PoolKind::Max => x.global_max_pool2d(self.keepdims),
        };
        y.map_err(|e| self.base.error(e.to_string()))
    }

    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "keepdims": self.keepdims, "data_format": "channels_last"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_layer, LayerExpectations};

    #[test]
    fn pooling_layers_pass_the_harness() {
        let e = |o: &[Option<usize>]| LayerExpectations { output: o.to_vec(), params: 0, non_trainable: 0 };
        check_layer(&MaxPooling2D::new((2, 2)), &[&[6, 6, 3]], e(&[None, Some(3), Some(3), Some(3)]));
        check_layer(
            &AveragePooling2D::new((3, 3)).strides((2, 2)).padding(Padding::Same),
            &[&[7, 7, 2]],
            e(&[None, Some(4), Some(4), Some(2)]),
        );
        check_layer(&GlobalAveragePooling2D::new(), &[&[3, 3, 5]], e(&[None, Some(5)]));
        check_layer(&GlobalMaxPooling2D::new().keepdims(true), &[&[3, 3, 5]], e(&[None, Some(1), Some(1), Some(5)]));
    }

    #[test]
    fn pooling_rank_error_names_the_layer() {
        let p = MaxPooling2D::new((2, 2)).named("pool1").unwrap();
        let err = p.compute_output_shape(&[vec![None, Some(4), Some(4)]]).unwrap_err().to_string();
        assert!(err.contains("pool1: expected an input of rank 4") && err.contains("(None, 4, 4)"), "{err}");
    }
}
