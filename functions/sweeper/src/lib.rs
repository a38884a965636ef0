//! Sweeper: no job is left with nobody to move it.

pub mod config;
pub mod handler;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{Sweep, SweepSettings, Sweeper, handle};
