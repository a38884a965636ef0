//! OCR engines behind the `OcrEngine` port.

pub mod tesseract;
pub mod upstage;

pub use tesseract::TesseractEngine;
pub use upstage::{UpstageEngine, UpstageKeySource};
