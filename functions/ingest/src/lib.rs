//! Ingest: every upload is checked before anything is spent on it.

pub mod config;
pub mod geometry;
pub mod handler;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{Ingest, IngestError, Outcome, handle};
