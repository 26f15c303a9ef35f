//! `MaxUnpooling2D`, SegNet's decoder upsampling: each value goes back to the position its
//! encoder's max pooling took the maximum from; every other position is zero.
//!
//! The layer takes two inputs, `[x, features]`: `x` is the decoder map to upsample and
//! `features` the encoder map that was pooled (before pooling). The indices are recomputed
//! from `features` with [`Tensor::max_pool2d_with_argmax`] — the same window, so the same
//! argmax `tf.nn.max_pool_with_argmax` gives — which keeps every layer single-output in the
//! functional API instead of threading an index tensor through the graph.

use fovea_core::ops::padding::Padding;
use fovea_core::Tensor;
use fovea_nn::layer::{format_shape, Layer, LayerBase, ShapeSpec};
use fovea_nn::Result;
use serde_json::json;

/// Max unpooling with the indices of a `pool_size` max pooling (stride = pool size, `valid`).
pub struct MaxUnpooling2D {
    base: LayerBase,
    pool_size: (usize, usize),
}

impl MaxUnpooling2D {
    /// Unpooling for a `pool_size` max pooling (SegNet: 2×2).
    pub fn new(pool_size: (usize, usize)) -> Self {
        MaxUnpooling2D { base: LayerBase::new("MaxUnpooling2D"), pool_size }
    }

    /// Names the layer.
    ///
    /// # Errors
    /// As [`LayerBase::set_name`].
    pub fn named(self, name: &str) -> Result<Self> {
        self.base.set_name(name)?;
        Ok(self)
    }

    /// The pooled size of `n` (valid padding).
    fn pooled(&self, n: Option<usize>, k: usize) -> Option<usize> {
        n.map(|n| n / k)
    }
}

impl Layer for MaxUnpooling2D {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "MaxUnpooling2D"
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let [x, f] = input_shapes else {
            return Err(self.base.error(format!("expected 2 inputs [x, features], got {}", input_shapes.len())));
        };
        let (ph, pw) = self.pool_size;
        let pooled = |f: &ShapeSpec| -> ShapeSpec { vec![f[0], self.pooled(f[1], ph), self.pooled(f[2], pw), f[3]] };
        if x.len() != 4 || f.len() != 4 || (1..4).any(|i| x[i].is_some() && pooled(f)[i].is_some() && x[i] != pooled(f)[i]) {
            return Err(self.base.error(format!(
                "expected x of the pooled shape of features ({ph}×{pw} pooling), got x {} and features {}",
                format_shape(x),
                format_shape(f)
            )));
        }
        Ok(f.clone())
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let [x, f] = inputs else {
            return Err(self.base.error(format!("expected 2 inputs [x, features], got {}", inputs.len())));
        };
        let err = |e: fovea_core::Error| self.base.error(e.to_string());
        // The indices carry no gradient: only x is differentiated (through the scatter).
        let (_, argmax) = f.detach().max_pool2d_with_argmax(self.pool_size, self.pool_size, Padding::Valid).map_err(err)?;
        if argmax.dims() != x.dims() {
            return Err(self.base.error(format!(
                "expected x of the pooled shape of features {}, got {}",
                fovea_core::Shape::new(argmax.dims().to_vec()),
                x.shape()
            )));
        }
        x.max_unpool2d(&argmax, f.dims()).map_err(err)
    }

    fn config(&self) -> serde_json::Value {
        json!({"name": self.name(), "trainable": self.trainable(), "pool_size": [self.pool_size.0, self.pool_size.1]})
    }
}
