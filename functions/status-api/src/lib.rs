//! The status API: what became of a job, and its full result.

pub mod handler;

pub use handler::{StatusApi, handle};
