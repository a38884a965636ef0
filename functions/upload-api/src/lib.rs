//! The upload API: opens jobs and hands out presigned upload URLs.

pub mod handler;

pub use handler::{UploadApi, UploadApiSettings, handle};
