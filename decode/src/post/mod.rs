//! Post-processing of model scores outside text generation: non-maximum
//! suppression for detections, probability calibration, and decision
//! thresholds.

pub mod boxes;
pub mod calibration;
pub mod nms;
pub mod roc;
pub mod soft_nms;
pub mod thresholds;

pub use boxes::{BBox, iou};
pub use calibration::{
    ReliabilityBin, expected_calibration_error, fit_temperature, reliability_curve,
};
pub use nms::{batched_nms, nms};
pub use roc::{RocCurve, auc, roc_auc, roc_curve};
pub use soft_nms::{SoftNmsDecay, soft_nms};
pub use thresholds::{PrCurve, precision_recall_curve};
