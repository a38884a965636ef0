//! Sweeper: no job is left with nobody to move it.

pub mod config;
pub mod handler;

pub use config::{Config, DEFAULT_MAX_JOBS, DEFAULT_STALE_SECONDS, IAM_ACTIONS};
pub use handler::{PAGE, PENDING_TOO_LONG, Sweep, SweepSettings, Sweeper, handle};
