//! The OCR worker: takes queued jobs under a lease and reads them.

pub mod budget;
pub mod config;
pub mod handler;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{Worker, WorkerSettings, handle};
