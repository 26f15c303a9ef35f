//! Atrous spatial pyramid pooling (DeepLab v3, Chen et al. 2017): parallel branches over one
//! feature map — a 1×1 convolution, 3×3 convolutions dilated by each rate, and the image-level
//! average broadcast back over the map — concatenated and projected by a 1×1 convolution. Each
//! convolution is followed by batch normalisation and ReLU (and has no bias).

use fovea_core::ops::padding::Padding;
use fovea_nn::layers::{BatchNormalization, Concatenate, Conv2D, GlobalAveragePooling2D, ReLU, UpSampling2D};
use fovea_nn::model::functional::{Connect, Node};
use fovea_nn::{Error, Result};

/// Conv (no bias) → batch norm → ReLU, named `{name}_conv`, `{name}_bn`, `{name}_relu`.
fn conv_bn_relu(x: &Node, filters: usize, kernel: usize, rate: usize, name: &str) -> Result<Node> {
    let x = Conv2D::new(filters, (kernel, kernel))
        .padding(Padding::Same)
        .dilation_rate((rate, rate))
        .use_bias(false)
        .named(&format!("{name}_conv"))?
        .on(x)?;
    let x = BatchNormalization::new().named(&format!("{name}_bn"))?.on(&x)?;
    ReLU::new().named(&format!("{name}_relu"))?.on(&x)
}

/// An ASPP block on `x` (`(N, H, W, C)` with known H and W) with `filters` per branch and one
/// dilated branch per rate (DeepLab v3 uses 6, 12, 18 at output stride 16); layers are named
/// `{prefix}_…`.
///
/// # Errors
/// `Config` when `x`'s height or width is unknown, or `filters` or a rate is zero.
pub fn aspp(x: &Node, filters: usize, rates: &[usize], prefix: &str) -> Result<Node> {
    let shape = x.shape();
    let (Some(h), Some(w)) = (shape.get(1).copied().flatten(), shape.get(2).copied().flatten()) else {
        return Err(Error::Config(format!("{prefix}: ASPP needs a feature map of known height and width, got shape {shape:?}")));
    };
    if filters == 0 || rates.contains(&0) {
        return Err(Error::Config(format!("{prefix}: ASPP needs positive filters and rates, got {filters} filters, rates {rates:?}")));
    }
    let mut branches = vec![conv_bn_relu(x, filters, 1, 1, &format!("{prefix}_b0"))?];
    for (i, &r) in rates.iter().enumerate() {
        branches.push(conv_bn_relu(x, filters, 3, r, &format!("{prefix}_b{}", i + 1))?);
    }
    // Image pooling: the mean over the whole map, then broadcast back to every position (a
    // 1×1 map upsampled by (H, W): nearest and bilinear agree there).
    let pooled = GlobalAveragePooling2D::new().keepdims(true).named(&format!("{prefix}_pool"))?.on(x)?;
    let pooled = conv_bn_relu(&pooled, filters, 1, 1, &format!("{prefix}_pool"))?;
    branches.push(UpSampling2D::new((h, w)).named(&format!("{prefix}_pool_up"))?.on(&pooled)?);
    let refs: Vec<&Node> = branches.iter().collect();
    let x = Concatenate::new(-1).named(&format!("{prefix}_concat"))?.on_many(&refs)?;
    conv_bn_relu(&x, filters, 1, 1, &format!("{prefix}_project"))
}
