//! `Conv3D`: volumetric convolution over `[N, D, H, W, C]` with a `[kd, kh, kw, in, out]` kernel.

use crate::layer::{format_shape, single_input, single_shape, Layer, LayerBase, ShapeSpec};
use crate::layers::common::{kernel_builders, merge_config, KernelArgs};
use crate::Result;
use fovea_core::ops::padding::{resolve_axis, Padding};
use fovea_core::{Tensor, Variable};
use serde_json::json;
use std::sync::OnceLock;

/// `keras.layers.Conv3D` (channels last).
pub struct Conv3D {
    base: LayerBase,
    filters: usize,
    kernel_size: (usize, usize, usize),
    strides: (usize, usize, usize),
    padding: Padding,
    dilation: (usize, usize, usize),
    args: KernelArgs,
    params: OnceLock<(Variable, Option<Variable>)>,
}

kernel_builders!(Conv3D);

impl Conv3D {
    /// `filters` output channels with a `kernel_size` window (stride 1, `valid` padding).
    pub fn new(filters: usize, kernel_size: (usize, usize, usize)) -> Self {
        Conv3D {
            base: LayerBase::new("Conv3D"),
            filters,
            kernel_size,
            strides: (1, 1, 1),
            padding: Padding::Valid,
            dilation: (1, 1, 1),
            args: KernelArgs::default(),
            params: OnceLock::new(),
        }
    }

    /// Strides (depth, rows, columns).
    pub fn strides(mut self, strides: (usize, usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    /// `valid` (default) or `same`.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Dilation (depth, rows, columns).
    pub fn dilation_rate(mut self, dilation: (usize, usize, usize)) -> Self {
        self.dilation = dilation;
        self
    }

    fn channels(&self, s: &ShapeSpec) -> Result<usize> {
        match s.last() {
            Some(Some(c)) if s.len() == 5 => Ok(*c),
            _ => Err(self.base.error(format!(
                "expected an input of rank 5 (batch, depth, height, width, channels) with known channels, got shape {}",
                format_shape(s)
            ))),
        }
    }
}

impl Layer for Conv3D {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        "Conv3D"
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let c = self.channels(single_shape(&self.base, input_shapes)?)?;
        if self.filters == 0 {
            return Err(self.base.error("filters must be >= 1, got 0"));
        }
        let (kd, kh, kw) = self.kernel_size;
        let _ = self.params.set(self.args.create(&self.base, &[kd, kh, kw, c, self.filters], self.filters)?);
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let s = single_shape(&self.base, input_shapes)?;
        self.channels(s)?;
        let k = [self.kernel_size.0, self.kernel_size.1, self.kernel_size.2];
        let st = [self.strides.0, self.strides.1, self.strides.2];
        let d = [self.dilation.0, self.dilation.1, self.dilation.2];
        let mut out = vec![s[0]];
        for i in 0..3 {
            out.push(match s[1 + i] {
                None => None,
                Some(n) => {
                    Some(resolve_axis("conv3d", &self.padding, i, n, k[i], st[i], d[i]).map_err(|e| self.base.error(e.to_string()))?.out)
                }
            });
        }
        out.push(Some(self.filters));
        Ok(out)
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let (kernel, bias) = self.params.get().ok_or_else(|| self.base.error("called before build"))?;
        let y = x.conv3d(&kernel.value(), self.strides, self.padding.clone(), self.dilation).map_err(|e| self.base.error(e.to_string()))?;
        let y = match bias {
            Some(b) => y.add(&b.value())?,
            None => y,
        };
        self.args.activation.apply(&y)
    }

    fn config(&self) -> serde_json::Value {
        let (k, s, d) = (self.kernel_size, self.strides, self.dilation);
        let padding = match &self.padding {
            Padding::Same => json!("same"),
            Padding::Valid => json!("valid"),
            Padding::Explicit(p) => json!(p),
        };
        merge_config(
            json!({
                "name": self.name(),
                "trainable": self.trainable(),
                "filters": self.filters,
                "kernel_size": [k.0, k.1, k.2],
                "strides": [s.0, s.1, s.2],
                "dilation_rate": [d.0, d.1, d.2],
                "padding": padding,
                "data_format": "channels_last",
            }),
            self.args.config(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_layer, LayerExpectations};

    #[test]
    fn conv3d_passes_the_harness() {
        // 3·3·3·2·4 + 4 = 220 parameters; same padding keeps 4×4×4, stride 2 halves it.
        check_layer(
            &Conv3D::new(4, (3, 3, 3)).padding(Padding::Same),
            &[&[4, 4, 4, 2]],
            LayerExpectations { output: vec![None, Some(4), Some(4), Some(4), Some(4)], params: 220, non_trainable: 0 },
        );
        check_layer(
            &Conv3D::new(2, (2, 2, 2)).strides((2, 2, 2)),
            &[&[4, 4, 4, 1]],
            LayerExpectations { output: vec![None, Some(2), Some(2), Some(2), Some(2)], params: 18, non_trainable: 0 },
        );
        let e = Conv3D::new(2, (2, 2, 2)).compute_output_shape(&[vec![None, Some(4), Some(4), Some(1)]]).unwrap_err().to_string();
        assert!(e.contains("expected an input of rank 5"), "{e}");
    }
}
