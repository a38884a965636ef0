//! The status API: what became of a job, and its full result.

pub mod config;
pub mod handler;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{StatusApi, handle};
