//! `keras.applications.imagenet_utils.preprocess_input`: the three input conventions the
//! pretrained zoo models were trained with. Each model's weights only make sense after its own
//! mode (VGG and ResNet: `Caffe`; Inception, Xception, MobileNet: `Tf`; DenseNet: `Torch`).

use fovea_core::{DType, Device, Error, Result, Tensor};

/// How `preprocess_input` maps `[0, 255]` RGB pixels to a model's expected input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PreprocessMode {
    /// RGB→BGR, then subtract the ImageNet BGR means `[103.939, 116.779, 123.68]`, no scaling —
    /// the Caffe ports (VGG, ResNet).
    #[default]
    Caffe,
    /// Scale to `[-1, 1]`: `x / 127.5 - 1`.
    Tf,
    /// Scale to `[0, 1]`, then normalise each RGB channel with the ImageNet mean
    /// `[0.485, 0.456, 0.406]` and standard deviation `[0.229, 0.224, 0.225]`.
    Torch,
}

impl PreprocessMode {
    /// The mode a model file's `fovea.preprocess` metadata names: `None` for `none` or an
    /// absent key (pixels scaled to `[0, 1]`, as Fovea's own training pipeline does).
    ///
    /// # Errors
    /// `InvalidArgument` naming the value for anything but `torch`, `caffe`, `tf` or `none`.
    pub fn from_metadata(value: Option<&str>) -> Result<Option<Self>> {
        Ok(match value {
            None | Some("none") => None,
            Some("torch") => Some(PreprocessMode::Torch),
            Some("caffe") => Some(PreprocessMode::Caffe),
            Some("tf") => Some(PreprocessMode::Tf),
            Some(other) => return Err(Error::invalid("fovea.preprocess", format!("unknown value {other:?} (torch, caffe, tf or none)"))),
        })
    }
}

const CAFFE_BGR_MEAN: [f32; 3] = [103.939, 116.779, 123.68];
const TORCH_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const TORCH_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Keras's `preprocess_input(x, mode=...)` for channels-last `float32` images, one `(H, W, C)`
/// or a batch `(N, H, W, C)`, with pixel values in `[0, 255]`.
///
/// # Errors
/// A rank other than 3 or 4, a dtype other than `float32`, or — for `Caffe` and `Torch`, whose
/// per-channel constants are RGB — a channel axis other than 3.
pub fn preprocess_input(x: &Tensor, mode: PreprocessMode) -> Result<Tensor> {
    const OP: &str = "preprocess_input";
    if x.rank() != 3 && x.rank() != 4 {
        return Err(Error::rank(OP, "3 (H, W, C) or 4 (N, H, W, C)", x.shape()));
    }
    if x.dtype() != DType::F32 {
        return Err(Error::dtype(OP, "float32 (convert uint8 images first)", x.dtype()));
    }
    let channels = x.dims()[x.rank() - 1];
    let per_channel = |v: [f32; 3], dev: Device| Tensor::from_slice(&v, vec![3], dev);
    match mode {
        PreprocessMode::Tf => x.div_scalar(127.5)?.sub_scalar(1.0),
        _ if channels != 3 => Err(Error::shape(OP, format!("3 RGB channels for mode {mode:?}"), x.shape())),
        PreprocessMode::Caffe => x.flip(&[-1])?.sub(&per_channel(CAFFE_BGR_MEAN, x.device())?),
        PreprocessMode::Torch => x.div_scalar(255.0)?.sub(&per_channel(TORCH_MEAN, x.device())?)?.div(&per_channel(TORCH_STD, x.device())?),
    }
}
