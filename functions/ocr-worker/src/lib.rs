//! The OCR worker: takes queued jobs under a lease and reads them.

pub mod backoff;
pub mod handler;

pub use handler::{Worker, WorkerSettings, handle};
