//! Convolution layers: `Conv1D`, `Conv2D`, `Conv2DTranspose`, `DepthwiseConv2D` and
//! `SeparableConv2D`, channels-last, with Keras's arguments, defaults and weight names.

use crate::layer::{format_shape, single_input, single_shape, Layer, LayerBase, ShapeSpec};
use crate::layers::common::{kernel_builders, merge_config, KernelArgs};
use crate::Result;
use fovea_core::ops::conv::Conv2dOptions;
use fovea_core::ops::conv_transpose::Conv2dTransposeOptions;
use fovea_core::ops::padding::{resolve_axis, Padding};
use fovea_core::{Tensor, Variable};
use serde_json::json;
use std::sync::OnceLock;

/// Which convolution a [`ConvLayer`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Conv1D,
    Conv2D,
    Conv2DTranspose,
    Depthwise { multiplier: usize },
    Separable { multiplier: usize },
}

/// The weights of a built convolution layer.
struct Params {
    kernel: Variable,
    /// The pointwise kernel of a separable convolution.
    pointwise: Option<Variable>,
    bias: Option<Variable>,
}

/// A convolution layer; constructed through [`Conv2D::new`] and its siblings.
pub struct ConvLayer {
    base: LayerBase,
    kind: Kind,
    class_name: &'static str,
    filters: usize,
    kernel_size: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    dilation: (usize, usize),
    groups: usize,
    output_padding: Option<(usize, usize)>,
    args: KernelArgs,
    params: OnceLock<Params>,
}

kernel_builders!(ConvLayer);

/// `keras.layers.Conv2D`.
pub struct Conv2D;
/// `keras.layers.Conv1D`.
pub struct Conv1D;
/// `keras.layers.Conv2DTranspose`.
pub struct Conv2DTranspose;
/// `keras.layers.DepthwiseConv2D`.
pub struct DepthwiseConv2D;
/// `keras.layers.SeparableConv2D`.
pub struct SeparableConv2D;

impl Conv2D {
    /// `filters` output channels with a `kernel_size` window (stride 1, `valid` padding).
    #[allow(clippy::new_ret_no_self)] // Keras's constructor name; all conv layers share one type
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> ConvLayer {
        ConvLayer::make(Kind::Conv2D, "Conv2D", filters, kernel_size)
    }
}

impl Conv1D {
    /// `filters` output channels with a window of `kernel_size` steps over `[N, L, C]` input.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(filters: usize, kernel_size: usize) -> ConvLayer {
        ConvLayer::make(Kind::Conv1D, "Conv1D", filters, (1, kernel_size))
    }
}

impl Conv2DTranspose {
    /// `filters` output channels, upsampling by the strides.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> ConvLayer {
        ConvLayer::make(Kind::Conv2DTranspose, "Conv2DTranspose", filters, kernel_size)
    }
}

impl DepthwiseConv2D {
    /// One `kernel_size` filter per input channel (times `depth_multiplier`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(kernel_size: (usize, usize), depth_multiplier: usize) -> ConvLayer {
        ConvLayer::make(Kind::Depthwise { multiplier: depth_multiplier }, "DepthwiseConv2D", 0, kernel_size)
    }
}

impl SeparableConv2D {
    /// A depthwise `kernel_size` convolution followed by a 1×1 convolution to `filters`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> ConvLayer {
        ConvLayer::make(Kind::Separable { multiplier: 1 }, "SeparableConv2D", filters, kernel_size)
    }
}

impl ConvLayer {
    /// The convolution alone: the layer's output before bias and activation.
    fn without_bias(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let x = single_input(&self.base, inputs)?;
        let p = self.params.get().ok_or_else(|| self.base.error("called before build"))?;
        let err = |e: fovea_core::Error| self.base.error(e.to_string());
        let k = p.kernel.value();
        Ok(match self.kind {
            Kind::Conv1D => x.conv1d(&k, self.strides.1, self.padding.clone(), self.dilation.1, self.groups).map_err(err)?,
            Kind::Conv2D => x.conv2d(&k, &self.conv_options()).map_err(err)?,
            Kind::Conv2DTranspose => {
                let opts = Conv2dTransposeOptions {
                    strides: self.strides,
                    padding: self.padding.clone(),
                    output_padding: self.output_padding,
                    dilation: self.dilation,
                };
                x.conv2d_transpose(&k, &opts).map_err(err)?
            }
            Kind::Depthwise { .. } => x.depthwise_conv2d(&k, &Conv2dOptions { groups: 1, ..self.conv_options() }).map_err(err)?,
            Kind::Separable { .. } => {
                let pw = p.pointwise.as_ref().expect("separable has a pointwise kernel").value();
                x.separable_conv2d(&k, &pw, &Conv2dOptions { groups: 1, ..self.conv_options() }).map_err(err)?
            }
        })
    }
    fn make(kind: Kind, class_name: &'static str, filters: usize, kernel_size: (usize, usize)) -> Self {
        ConvLayer {
            base: LayerBase::new(class_name),
            kind,
            class_name,
            filters,
            kernel_size,
            strides: (1, 1),
            padding: Padding::Valid,
            dilation: (1, 1),
            groups: 1,
            output_padding: None,
            args: KernelArgs::default(),
            params: OnceLock::new(),
        }
    }

    /// Strides (rows, columns); for `Conv1D` only the second is used.
    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = if self.kind == Kind::Conv1D { (1, strides.1) } else { strides };
        self
    }

    /// `"valid"` (default) or `"same"` padding.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Dilation rate (rows, columns).
    pub fn dilation_rate(mut self, dilation: (usize, usize)) -> Self {
        self.dilation = if self.kind == Kind::Conv1D { (1, dilation.1) } else { dilation };
        self
    }

    /// Channel groups (`Conv1D`/`Conv2D`).
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Extra output rows/columns of a transposed convolution.
    pub fn output_padding(mut self, p: (usize, usize)) -> Self {
        self.output_padding = Some(p);
        self
    }

    /// The depth multiplier of a separable convolution.
    pub fn depth_multiplier(mut self, m: usize) -> Self {
        if let Kind::Separable { .. } = self.kind {
            self.kind = Kind::Separable { multiplier: m };
        }
        self
    }

    fn spatial_rank(&self) -> usize {
        if self.kind == Kind::Conv1D {
            1
        } else {
            2
        }
    }

    fn conv_options(&self) -> Conv2dOptions {
        Conv2dOptions { strides: self.strides, padding: self.padding.clone(), dilation: self.dilation, groups: self.groups }
    }

    fn channels(&self, shape: &ShapeSpec) -> Result<usize> {
        let want = self.spatial_rank() + 2;
        match shape.last() {
            Some(Some(c)) if shape.len() == want => Ok(*c),
            _ => Err(self.base.error(format!(
                "expected an input of rank {want} (batch, {}channels) with known channels, got shape {}",
                if want == 3 { "steps, " } else { "height, width, " },
                format_shape(shape)
            ))),
        }
    }

    fn out_channels(&self, c_in: usize) -> usize {
        match self.kind {
            Kind::Depthwise { multiplier } => c_in * multiplier,
            _ => self.filters,
        }
    }

    fn check_args(&self, c_in: usize) -> Result<()> {
        let (kh, kw) = self.kernel_size;
        if kh == 0 || kw == 0 {
            return Err(self.base.error(format!("kernel_size must be positive, got {:?}", self.kernel_size)));
        }
        match self.kind {
            Kind::Depthwise { multiplier } | Kind::Separable { multiplier } if multiplier == 0 => {
                Err(self.base.error("depth_multiplier must be >= 1"))
            }
            Kind::Depthwise { .. } => Ok(()),
            _ if self.filters == 0 => Err(self.base.error("filters must be >= 1, got 0")),
            _ if self.groups == 0 || !c_in.is_multiple_of(self.groups) || !self.filters.is_multiple_of(self.groups) => {
                Err(self.base.error(format!(
                    "groups must divide the input channels ({c_in}) and filters ({}), got groups {}",
                    self.filters, self.groups
                )))
            }
            _ => Ok(()),
        }
    }
}

impl Layer for ConvLayer {
    fn base(&self) -> &LayerBase {
        &self.base
    }

    fn class_name(&self) -> &'static str {
        self.class_name
    }

    fn build(&self, input_shapes: &[ShapeSpec]) -> Result<()> {
        let c_in = self.channels(single_shape(&self.base, input_shapes)?)?;
        self.check_args(c_in)?;
        let (kh, kw) = self.kernel_size;
        let b = &self.base;
        let a = &self.args;
        let params = match self.kind {
            Kind::Conv1D => {
                let (kernel, bias) = a.create(b, &[kw, c_in / self.groups, self.filters], self.filters)?;
                Params { kernel, pointwise: None, bias }
            }
            Kind::Conv2D => {
                let (kernel, bias) = a.create(b, &[kh, kw, c_in / self.groups, self.filters], self.filters)?;
                Params { kernel, pointwise: None, bias }
            }
            Kind::Conv2DTranspose => {
                let (kernel, bias) = a.create(b, &[kh, kw, self.filters, c_in], self.filters)?;
                Params { kernel, pointwise: None, bias }
            }
            Kind::Depthwise { multiplier } => {
                let (kernel, bias) = a.create(b, &[kh, kw, c_in, multiplier], c_in * multiplier)?;
                Params { kernel, pointwise: None, bias }
            }
            Kind::Separable { multiplier } => {
                let depthwise =
                    b.add_weight("depthwise_kernel", &[kh, kw, c_in, multiplier], &a.kernel_initializer, true, a.kernel_regularizer)?;
                let pointwise = b.add_weight(
                    "pointwise_kernel",
                    &[1, 1, c_in * multiplier, self.filters],
                    &a.kernel_initializer,
                    true,
                    a.kernel_regularizer,
                )?;
                let bias = if a.use_bias {
                    Some(b.add_weight("bias", &[self.filters], &a.bias_initializer, true, a.bias_regularizer)?)
                } else {
                    None
                };
                Params { kernel: depthwise, pointwise: Some(pointwise), bias }
            }
        };
        let _ = self.params.set(params);
        Ok(())
    }

    fn compute_output_shape(&self, input_shapes: &[ShapeSpec]) -> Result<ShapeSpec> {
        let shape = single_shape(&self.base, input_shapes)?;
        let c_in = self.channels(shape)?;
        let spatial = &shape[1..shape.len() - 1];
        let (ks, ss, ds) = if self.kind == Kind::Conv1D {
            (vec![self.kernel_size.1], vec![self.strides.1], vec![self.dilation.1])
        } else {
            (vec![self.kernel_size.0, self.kernel_size.1], vec![self.strides.0, self.strides.1], vec![self.dilation.0, self.dilation.1])
        };
        let mut out: ShapeSpec = vec![shape[0]];
        for (i, dim) in spatial.iter().enumerate() {
            out.push(match dim {
                None => None,
                Some(n) if self.kind == Kind::Conv2DTranspose => {
                    let k = (ks[i] - 1) * ds[i] + 1;
                    let s = ss[i];
                    Some(match (self.output_padding, &self.padding) {
                        (None, Padding::Same) => n * s,
                        (None, _) => n * s + k.saturating_sub(s),
                        (Some(p), pad) => {
                            let op = if i == 0 { p.0 } else { p.1 };
                            let before = if *pad == Padding::Same { k / 2 } else { 0 };
                            ((n - 1) * s + k + op).saturating_sub(2 * before)
                        }
                    })
                }
                Some(n) => {
                    Some(resolve_axis("conv", &self.padding, i, *n, ks[i], ss[i], ds[i]).map_err(|e| self.base.error(e.to_string()))?.out)
                }
            });
        }
        out.push(Some(self.out_channels(c_in)));
        Ok(out)
    }

    fn call(&self, inputs: &[Tensor], _training: bool) -> Result<Tensor> {
        let p = self.params.get().ok_or_else(|| self.base.error("called before build"))?;
        self.args.bias_and_activation(self.without_bias(inputs)?, p.bias.as_ref())
    }

    fn call_with_affine(&self, inputs: &[Tensor], scale: &Tensor, shift: &Tensor, relu: bool) -> Option<Result<Tensor>> {
        if !matches!(self.args.activation, crate::activations::Activation::Linear) || !matches!(self.kind, Kind::Conv2D) {
            return None;
        }
        let p = self.params.get()?;
        let run = |inputs: &[Tensor]| -> Result<Tensor> {
            let x = single_input(&self.base, inputs)?;
            let err = |e: fovea_core::Error| self.base.error(e.to_string());
            // (z + b)·s + t = z·s + (t + b·s)
            let shift = match &p.bias {
                Some(b) => shift.add(&b.value().mul(scale).map_err(err)?).map_err(err)?,
                None => shift.clone(),
            };
            x.conv2d_affine(&p.kernel.value(), &self.conv_options(), scale, &shift, relu).map_err(err)
        };
        // The fused call stands in for `apply`, so it runs under the layer's policy as that would.
        Some(crate::mixed_precision::call_under(self.base.dtype_policy(), inputs, run))
    }

    fn call_without_bias(&self, inputs: &[Tensor]) -> Option<Result<(Tensor, Option<Tensor>)>> {
        if !matches!(self.args.activation, crate::activations::Activation::Linear) {
            return None;
        }
        let bias = self.params.get()?.bias.as_ref().map(Variable::value);
        Some(self.without_bias(inputs).map(|y| (y, bias)))
    }

    fn config(&self) -> serde_json::Value {
        let padding = match &self.padding {
            Padding::Same => json!("same"),
            Padding::Valid => json!("valid"),
            Padding::Explicit(p) => json!(p),
        };
        let mut own = json!({
            "name": self.name(),
            "trainable": self.trainable(),
            "kernel_size": [self.kernel_size.0, self.kernel_size.1],
            "strides": [self.strides.0, self.strides.1],
            "padding": padding,
            "dilation_rate": [self.dilation.0, self.dilation.1],
            "data_format": "channels_last",
        });
        match self.kind {
            Kind::Depthwise { multiplier } => own["depth_multiplier"] = json!(multiplier),
            Kind::Separable { multiplier } => {
                own["depth_multiplier"] = json!(multiplier);
                own["filters"] = json!(self.filters);
            }
            _ => {
                own["filters"] = json!(self.filters);
                own["groups"] = json!(self.groups);
            }
        }
        if let Some(p) = self.output_padding {
            own["output_padding"] = json!([p.0, p.1]);
        }
        merge_config(own, self.args.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::Activation;
    use crate::layers::testing::{check_layer, LayerExpectations};

    fn expect(output: &[Option<usize>], params: usize) -> LayerExpectations {
        LayerExpectations { output: output.to_vec(), params, non_trainable: 0 }
    }

    #[test]
    fn conv_layers_pass_the_harness_with_keras_counts() {
        // SPEC §2.1 #6: a 5×5 conv with 10 filters on 32×32×3 has 760 parameters.
        check_layer(&Conv2D::new(10, (5, 5)), &[&[32, 32, 3]], expect(&[None, Some(28), Some(28), Some(10)], 760));
        // LeNet-5 C1 of the Keras version: 5×5, 6 filters, same, tanh on 28×28×1 → 156.
        check_layer(
            &Conv2D::new(6, (5, 5)).padding(Padding::Same).activation(Activation::Tanh),
            &[&[8, 8, 1]],
            expect(&[None, Some(8), Some(8), Some(6)], 156),
        );
        check_layer(
            &Conv2D::new(4, (3, 3)).strides((2, 2)).padding(Padding::Same).groups(2),
            &[&[7, 7, 2]],
            expect(&[None, Some(4), Some(4), Some(4)], 3 * 3 * 4 + 4),
        );
        check_layer(&Conv1D::new(3, 3).dilation_rate((1, 2)), &[&[9, 2]], expect(&[None, Some(5), Some(3)], 3 * 2 * 3 + 3));
        // 002c4: conv2d_transpose(filters=1, kernel_size=4, strides=2, same): 14×14 → 28×28.
        check_layer(
            &Conv2DTranspose::new(1, (4, 4)).strides((2, 2)).padding(Padding::Same),
            &[&[14, 14, 3]],
            expect(&[None, Some(28), Some(28), Some(1)], 4 * 4 * 3 + 1),
        );
        check_layer(
            &Conv2DTranspose::new(2, (3, 3)).strides((2, 2)).output_padding((1, 1)),
            &[&[3, 3, 2]],
            expect(&[None, Some(8), Some(8), Some(2)], 3 * 3 * 2 * 2 + 2),
        );
        check_layer(
            &DepthwiseConv2D::new((3, 3), 2).padding(Padding::Same),
            &[&[5, 5, 3]],
            expect(&[None, Some(5), Some(5), Some(6)], 3 * 3 * 3 * 2 + 6),
        );
        check_layer(&SeparableConv2D::new(4, (3, 3)), &[&[5, 5, 3]], expect(&[None, Some(3), Some(3), Some(4)], 27 + 12 + 4));
    }

    #[test]
    fn conv_weight_names_follow_keras() {
        let s = SeparableConv2D::new(4, (3, 3)).named("sep").unwrap();
        s.apply(&[fovea_core::testing::rand(&[1, 4, 4, 2], -1.0, 1.0, 1, fovea_core::Device::Cpu)], false).unwrap();
        let names: Vec<String> = s.weights().iter().map(|v| v.name().to_string()).collect();
        assert_eq!(names, vec!["sep/depthwise_kernel", "sep/pointwise_kernel", "sep/bias"]);
    }

    #[test]
    fn conv_errors_name_the_layer() {
        let c = Conv2D::new(4, (3, 3)).named("c1").unwrap();
        let e = c.apply(&[fovea_core::testing::rand(&[2, 5, 5], -1.0, 1.0, 1, fovea_core::Device::Cpu)], false).unwrap_err().to_string();
        assert!(e.contains("c1: expected an input of rank 4") && e.contains("(None, 5, 5)"), "{e}");
        let g = Conv2D::new(4, (3, 3)).groups(3);
        let e = g.apply(&[fovea_core::testing::rand(&[1, 5, 5, 2], -1.0, 1.0, 1, fovea_core::Device::Cpu)], false).unwrap_err().to_string();
        assert!(e.contains("groups must divide the input channels (2) and filters (4), got groups 3"), "{e}");
        let big = Conv2D::new(1, (7, 7));
        let e = big.compute_output_shape(&[vec![None, Some(5), Some(5), Some(1)]]).unwrap_err().to_string();
        assert!(e.contains("larger than the padded input"), "{e}");
    }
}
