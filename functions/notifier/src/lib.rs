//! The notifier: tells each job's webhook what became of it.

pub mod handler;

pub use handler::{Notifier, NotifierSettings, handle};
