//! The OCR engine port: a document in, an engine-independent result out (the
//! shape of the full result clients download), and the three ways a call
//! fails, by what the worker must do about each.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::domain::{ErrorCode, FileType, JobId, PiiCounts, QualityIssue};

/// A document to read.
#[derive(Clone, Debug)]
pub struct Document {
    pub filename: String,
    pub file_type: FileType,
    pub bytes: Bytes,
}

/// The engine-neutral full result (S3 `results/{job_id}.json`): the same shape
/// whichever engine ran. Pages are 1-based; vertices are pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrResult {
    pub job_id: Option<JobId>,
    pub engine: String,
    pub model_version: String,
    pub confidence: f64,
    pub text: String,
    pub num_billed_pages: u32,
    pub pages: Vec<OcrPage>,
    /// The kinds of personal data masked in this result, with how many of each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<PiiCounts>,
}

/// Words read with at least this confidence are usable text.
pub const USABLE_WORD_CONFIDENCE: f64 = 0.5;

impl OcrResult {
    /// The issues its pages' images showed, each once, in the order of
    /// `QualityIssue::ALL`.
    pub fn quality_issues(&self) -> Vec<QualityIssue> {
        QualityIssue::ALL
            .into_iter()
            .filter(|issue| {
                self.pages
                    .iter()
                    .filter_map(|page| page.quality.as_ref())
                    .any(|quality| quality.issues.contains(issue))
            })
            .collect()
    }

    /// Words read with `USABLE_WORD_CONFIDENCE` or more, over its pages.
    pub fn usable_words(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|page| &page.words)
            .filter(|word| {
                word.confidence >= USABLE_WORD_CONFIDENCE
                    && word.text.chars().any(char::is_alphanumeric)
            })
            .count()
    }
}

/// Between two pages' texts in a document's text: a blank line, so that the
/// last word of one page never runs into the first word of the next.
pub const PAGE_SEPARATOR: &str = "\n\n";

/// A document's text from its pages' own texts, in page order.
pub fn document_text(pages: &[OcrPage]) -> String {
    pages
        .iter()
        .map(|page| page.text.trim_end())
        .collect::<Vec<_>>()
        .join(PAGE_SEPARATOR)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrPage {
    pub page: u32,
    pub width: u32,
    pub height: u32,
    pub confidence: f64,
    pub text: String,
    pub words: Vec<OcrWord>,
    /// What the page's image shows of its own quality, where the engine
    /// measured it (the offline engine does, on every image page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<PageQuality>,
}

/// A page image's quality as measured before it is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageQuality {
    /// The angle its text lines made with the horizontal, counter-clockwise
    /// positive, before it was straightened (a quarter or half turn included).
    pub skew_degrees: f64,
    /// Sharpness of its strokes: the gradient across its edges over the
    /// ink's contrast, 0 (flat) to about 0.8 (a crisp scan); a page under
    /// 0.42 is `blurry`.
    pub blur: f64,
    /// The height of its text lines in the original image's pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_height_px: Option<f64>,
    /// How bright the paper is, 0 to 1 (its 90th percentile of luminance).
    pub brightness: f64,
    pub issues: Vec<QualityIssue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcrWord {
    pub text: String,
    pub confidence: f64,
    /// Top-left, top-right, bottom-right, bottom-left.
    pub vertices: [Vertex; 4],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    pub x: i64,
    pub y: i64,
}

/// How an OCR call failed, by what the pipeline should do about it.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// The document itself cannot be read (400, 413, 415, undecodable):
    /// fail the job at once with this message.
    #[error("{message}")]
    Rejected { code: ErrorCode, message: String },
    /// 5xx, timeouts, broken connections, broken bodies: try again later.
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The engine's rate limit (429): try again later without counting it
    /// against the document, which is not at fault.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The engine refused our credentials: retried (a rotated key must not
    /// fail every job) and alarmed.
    #[error("{message}")]
    Unauthorized { message: String },
}

#[async_trait]
pub trait OcrEngine: Send + Sync {
    /// The engine's name as recorded on the job (`upstage`, `tesseract`).
    fn name(&self) -> &'static str;

    /// Pixels of one image the engine reads well; a larger image is scaled
    /// down to this before it is sent. Upstage documents 100–200 million.
    fn max_pixels(&self) -> u64 {
        100_000_000
    }

    /// How long one call may take before the client gives up, when it is
    /// bounded: a call is not started with less of the invocation left.
    fn call_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError>;
}
