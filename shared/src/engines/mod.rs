//! OCR engines behind the `OcrEngine` port, each behind its crate feature.

#[cfg(feature = "tesseract")]
pub mod tesseract;
#[cfg(feature = "upstage")]
pub mod upstage;

#[cfg(feature = "tesseract")]
pub use tesseract::TesseractEngine;
#[cfg(feature = "upstage")]
pub use upstage::{UpstageEngine, UpstageKeySource};
