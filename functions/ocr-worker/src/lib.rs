//! The OCR worker: takes queued jobs under a lease and reads them.

pub mod budget;
mod chunks;
pub mod config;
pub mod handler;
mod lease;
mod worker;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{
    DEFAULT_LOW_CONFIDENCE, DEFAULT_PAGES_PER_CALL, Parts, Worker, WorkerSettings, handle,
};
