//! Test harness for lambda-ocr: one moto server per test process, SDK clients
//! pointed at it, and uniquely named AWS resources for every test.

pub mod dev_process;
pub mod fake_upstage;
pub mod moto;
pub mod quality;
pub mod receiver;
pub mod resources;
pub mod stack;
pub mod template;

pub use moto::{MotoServer, moto, sdk_config};
pub use resources::unique_name;
