//! Semantic segmentation: per-pixel losses ([`losses`]) and metrics ([`metrics`]) for
//! `(N, H, W, C)` class scores against `(N, H, W)` label maps, with an ignore label; MNIST
//! segmentation scenes and an image + mask folder reader ([`data`]); paired image + mask
//! augmentation ([`augment`]); U-Net training, evaluation and model files ([`train`]); SegNet's
//! `MaxUnpooling2D` ([`unpool`]); Pascal VOC's palette, colourised masks and overlays
//! ([`palette`]).
//!
//! ```
//! use fovea_core::{Device, Tensor};
//! use fovea_vision::segmentation::metrics::SegmentationMetrics;
//! // One 1×2 image: a background pixel predicted right and a digit pixel predicted as background.
//! let labels = Tensor::from_vec(vec![0i64, 1], [1, 1, 2], Device::Cpu).unwrap();
//! let scores = Tensor::from_vec(vec![0.9f32, 0.1, 0.8, 0.2], [1, 1, 2, 2], Device::Cpu).unwrap();
//! let mut m = SegmentationMetrics::new(2, Some(255));
//! m.update(&labels, &scores).unwrap();
//! assert_eq!((m.pixel_accuracy(), m.class_iou()[0], m.class_iou()[1]), (0.5, 0.5, 0.0));
//! ```

pub mod augment;
pub mod data;
pub mod losses;
pub mod metrics;
pub mod palette;
pub mod train;
pub mod unpool;
