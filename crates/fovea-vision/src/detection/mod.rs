//! Object detection: boxes and IoU ([`boxes`]), IoU losses ([`losses`]), non-maximum
//! suppression ([`nms`]), COCO annotations and COCO/VOC evaluation ([`coco`], [`cocoeval`],
//! [`voc`]), Pascal VOC XML files ([`voc_xml`]), anchors and k-means anchor sizes
//! ([`anchors`]), synthetic MNIST detection scenes ([`scenes`]), and YOLO targets, loss and
//! decoding ([`yolo`]), and a small YOLO model with its training loop ([`yolo_model`]).
//!
//! Host boxes are `[f32; 4]` ([`BBox`]); the formats are named by [`BoxFormat`]. IoU follows
//! `torchvision.ops.box_iou`, NMS both torchvision and TensorFlow (see [`nms`] for where they
//! differ), and evaluation pycocotools' `COCOeval`.
//!
//! ```
//! use fovea_vision::detection::{convert_box, iou, nms, BoxFormat, NmsOptions};
//! // Two overlapping detections of one object and a separate one, COCO's [x, y, w, h] → xyxy.
//! let boxes = [[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [30.0, 30.0, 5.0, 5.0]]
//!     .map(|b| convert_box(b, BoxFormat::Xywh, BoxFormat::Xyxy));
//! assert_eq!(iou(&boxes[0], &boxes[1]), 81.0 / 119.0);
//! let kept = nms(&boxes, &[0.9, 0.8, 0.7], &NmsOptions::new(0.5)).unwrap();
//! assert_eq!(kept, vec![0, 2]);
//! ```

pub mod anchors;
pub mod boxes;
pub mod coco;
pub mod cocoeval;
pub mod losses;
pub mod nms;
pub mod scenes;
pub mod voc;
pub mod voc_xml;
pub mod yolo;
pub mod yolo_model;

pub use anchors::{anchor_templates, grid_anchors, kmeans_anchors, KmeansAnchors};
pub use boxes::{
    area, box_area, box_iou, boxes_from_tensor, boxes_to_tensor, clip_box, clip_boxes, convert_box, convert_boxes, denormalize_box,
    denormalize_boxes, iou, normalize_box, normalize_boxes, pairwise_iou, BBox, BoxFormat,
};
pub use coco::{read_results, write_results, CocoAnnotation, CocoCategory, CocoDataset, CocoDetection, CocoImage};
pub use cocoeval::{evaluate, CocoEval, CocoEvalParams, SUMMARY_KEYS};
pub use losses::{diou_loss, giou_loss};
pub use nms::{batched_nms, nms, nms_tensor, soft_nms, IouConvention, NmsOptions, SoftNmsKind};
pub use scenes::{make_scenes, write_mnist_scenes, write_scenes, DigitSource, Scene, SceneOptions, SceneSplit};
pub use voc::{voc_ap, voc_map};
pub use voc_xml::{voc_to_coco, VocAnnotation, VocObject};
pub use yolo::{
    decode, detections_to_coco, encode_targets, yolo_loss, BoxLoss, ClassActivation, DecodeOptions, Detection, GtBox, YoloGrid,
    YoloLossOptions, YoloLossTerms, YoloTargets,
};
