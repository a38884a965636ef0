//! The upload API: opens jobs and hands out presigned upload URLs.

pub mod config;
pub mod handler;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{UploadApi, UploadApiSettings, handle};
