//! Shared core of lambda-ocr: the job domain, the ports the functions talk
//! through, their AWS and in-memory adapters, configuration and telemetry.

#[cfg(feature = "api")]
pub mod api;
pub mod aws;
#[cfg(feature = "batch")]
pub mod batch;
pub mod config;
pub mod domain;
pub mod engines;
#[cfg(any(test, feature = "images"))]
pub mod images;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod metrics;
#[cfg(any(test, feature = "images"))]
pub mod page_image;
#[cfg(any(test, feature = "pdf"))]
pub mod pdf;
pub mod ports;
#[cfg(any(test, feature = "redact"))]
pub mod redact;
pub mod retry;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(feature = "https")]
pub mod tls;
pub mod upload_policy;
pub mod view;
pub mod webhook;

pub use domain::{
    ErrorCode, FileType, Job, JobError, JobId, JobStatus, Owner, Sha256Hex, Timestamp, Transition,
    TransitionRefused,
};
