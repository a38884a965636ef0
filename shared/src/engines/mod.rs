//! OCR engines behind the `OcrEngine` port.

pub mod upstage;

pub use upstage::{UpstageEngine, UpstageKeySource};
