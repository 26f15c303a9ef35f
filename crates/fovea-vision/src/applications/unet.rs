//! U-Net (Ronneberger, Fischer & Brox 2015) with "same" padding, so the output map has the
//! input's height and width: an encoder of blocks (two 3×3 ReLU convolutions, then 2×2 max
//! pooling), a bottleneck block, and a decoder that per level upsamples with a 2×2 stride-2
//! transposed convolution, concatenates the encoder's feature map of the same size (the skip
//! connection) and applies a block; a 1×1 convolution gives per-pixel class logits.
//!
//! [`unet`] is the paper's widths (64 to 1024, four poolings, 31,030,658 parameters for 2
//! classes); [`unet_small`] a 16-to-128 one with batch normalisation for 128×128 scenes
//! (484,027 parameters for 11 classes). Layer names and counts match the Keras builds in
//! `tools/fixtures/gen_segmentation_fixtures.py`.

use fovea_core::ops::padding::Padding;
use fovea_nn::layers::{BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, MaxPooling2D, ReLU};
use fovea_nn::model::functional::{Connect, Functional, Input, Node};
use fovea_nn::{Error, Result};

/// The shape of a U-Net.
#[derive(Debug, Clone, PartialEq)]
pub struct UNetOptions {
    /// `(height, width, channels)`; height and width must be multiples of `2^depth`.
    pub input_shape: (usize, usize, usize),
    /// Output channels: one logit per class and pixel.
    pub classes: usize,
    /// Filters of the first block; each level down doubles them.
    pub filters: usize,
    /// Number of poolings (and of upsamplings).
    pub depth: usize,
    /// Batch normalisation after each 3×3 convolution (which then has no bias).
    pub batch_norm: bool,
    /// The model's name.
    pub name: String,
}

/// The paper's U-Net (64 filters, depth 4, no batch norm) with "same" padding.
///
/// # Errors
/// As [`unet_with`].
pub fn unet(input_shape: (usize, usize, usize), classes: usize) -> Result<Functional> {
    unet_with(&UNetOptions { input_shape, classes, filters: 64, depth: 4, batch_norm: false, name: "unet".into() })
}

/// A small U-Net for 128×128 scenes: 16 filters, depth 3, batch norm.
///
/// # Errors
/// As [`unet_with`].
pub fn unet_small(input_shape: (usize, usize, usize), classes: usize) -> Result<Functional> {
    unet_with(&UNetOptions { input_shape, classes, filters: 16, depth: 3, batch_norm: true, name: "unet_small".into() })
}

fn block(x: &Node, filters: usize, batch_norm: bool, prefix: &str) -> Result<Node> {
    let mut x = x.clone();
    for i in 1..=2 {
        x = Conv2D::new(filters, (3, 3)).padding(Padding::Same).use_bias(!batch_norm).named(&format!("{prefix}_conv{i}"))?.on(&x)?;
        if batch_norm {
            x = BatchNormalization::new().named(&format!("{prefix}_bn{i}"))?.on(&x)?;
        }
        x = ReLU::new().named(&format!("{prefix}_relu{i}"))?.on(&x)?;
    }
    Ok(x)
}

/// A U-Net of any width and depth.
///
/// # Errors
/// `Config` naming the option when a size is zero or the input's height or width is not a
/// multiple of `2^depth` (the skips would not line up).
pub fn unet_with(opts: &UNetOptions) -> Result<Functional> {
    let (h, w, c) = opts.input_shape;
    let step = 1usize << opts.depth.min(30);
    if opts.classes == 0 || opts.filters == 0 || c == 0 || h == 0 || w == 0 {
        return Err(Error::Config(format!(
            "{}: classes, filters and the input shape must be positive, got classes {}, filters {}, input {h}×{w}×{c}",
            opts.name, opts.classes, opts.filters
        )));
    }
    if h % step != 0 || w % step != 0 {
        return Err(Error::Config(format!(
            "{}: depth {} needs an input height and width that are multiples of {step}, got {h}×{w}",
            opts.name, opts.depth
        )));
    }
    let input = Input::named(&[h, w, c], "input");
    let (mut x, mut skips) = (input.clone(), Vec::with_capacity(opts.depth));
    for d in 0..opts.depth {
        x = block(&x, opts.filters << d, opts.batch_norm, &format!("enc{}", d + 1))?;
        skips.push(x.clone());
        x = MaxPooling2D::new((2, 2)).named(&format!("enc{}_pool", d + 1))?.on(&x)?;
    }
    x = block(&x, opts.filters << opts.depth, opts.batch_norm, "bottleneck")?;
    for d in (0..opts.depth).rev() {
        x = Conv2DTranspose::new(opts.filters << d, (2, 2)).strides((2, 2)).named(&format!("dec{}_up", d + 1))?.on(&x)?;
        x = Concatenate::new(-1).named(&format!("dec{}_concat", d + 1))?.on_many(&[&skips[d], &x])?;
        x = block(&x, opts.filters << d, opts.batch_norm, &format!("dec{}", d + 1))?;
    }
    let logits = Conv2D::new(opts.classes, (1, 1)).named("logits")?.on(&x)?;
    Functional::new(&[&input], &[&logits])?.named(&opts.name)
}
