//! Ingest: every upload is checked before anything is spent on it.

pub mod handler;

pub use handler::{Ingest, Outcome, handle};
