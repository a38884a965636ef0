//! The notifier: tells each job's webhook what became of it.

pub mod config;
pub mod handler;

pub use config::{Config, IAM_ACTIONS};
pub use handler::{Notifier, NotifierSettings, handle};
