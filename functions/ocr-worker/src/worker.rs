//! The worker's parts and settings: the stores and the engine it reads
//! with, and the calls every read makes (one OCR call, timed; the shared
//! quota; the invocation's time left).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ocr_shared::domain::{DocumentType, ErrorCode, Job, JobError, Timestamp};
use ocr_shared::metrics::{self, Metric};
use ocr_shared::ports::{
    BlobError, BlobStore, Document, EventPublisher, JobQueue, JobStore, OcrEngine, OcrError,
    OcrResult, QueueError, RateDecision, RateLimiter, RateScope, StoreError,
};

/// 200 MiB: four 50 MiB documents at once fit a 512 MB function beside the runtime.
pub const DEFAULT_BYTES_IN_FLIGHT: u64 = 200 * 1024 * 1024;

/// 160 MiB: the decoded pixels of the images being turned or fitted at once
/// (`images::decode_cost`), beside the documents' own bytes; an image whose
/// preparation takes more waits until it is prepared alone.
pub const DECODE_BUDGET: u64 = 160 * 1024 * 1024;

/// Below this confidence a document is marked for review.
pub const DEFAULT_LOW_CONFIDENCE: f64 = 0.7;

/// Upstage reads at most 100 pages in one synchronous call.
pub const DEFAULT_PAGES_PER_CALL: u32 = 100;

/// Rate-limit refusals in a row before a job fails: with the backoff's
/// 15-minute ceiling, hours of a limit that never lifts.
pub const MAX_THROTTLES: u32 = 24;

/// Credential refusals in a row before a job fails with `ocr_unauthorized`:
/// with the same backoff, hours for an operator to mend the key after the
/// alarm, and never a job that waits for good.
pub const MAX_POSTPONES: u32 = 24;

/// Pauses before asking the store again to record a finished read.
pub(crate) const COMPLETION_RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1600),
];

#[derive(Clone, Debug, PartialEq)]
pub struct WorkerSettings {
    /// OCR attempts before a job fails for good.
    pub max_attempts: u32,
    /// How long a taken job is reserved for its worker; longer than one invocation.
    pub lease: Duration,
    /// The first retry's delay; each further receive doubles it.
    pub retry_base: Duration,
    /// OCR calls per second across every worker instance.
    pub rate_limit_rps: u32,
    /// Document bytes one instance holds at once (read, and being sent to OCR).
    pub max_bytes_in_flight: u64,
    /// Pages of a PDF sent in one OCR call; a longer PDF is read in chunks.
    pub pages_per_call: u32,
    /// A document read with less confidence than this needs review.
    pub review_below: f64,
}

/// What every read works with: the stores, the queue and the topic, the
/// engine, the shared quota and the settings. A `Lease` and the chunks of a
/// long PDF use these; the `Worker` (the handler's) adds its memory budgets.
pub struct Parts {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub events: Arc<dyn EventPublisher>,
    pub engine: Arc<dyn OcrEngine>,
    pub limiter: Arc<dyn RateLimiter>,
    pub settings: WorkerSettings,
}

/// Why a message goes back to the queue (reported as a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum JobRetry {
    /// The OCR engine failed in a way worth another try; the message waits `delay`.
    #[error("OCR will be tried again in {} s: {message}", delay.as_secs())]
    Ocr { message: String, delay: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the job's event could not be published: {0}")]
    Publish(#[from] ocr_shared::ports::PublishError),
}

/// No call is started with less of the invocation left than this, or than
/// the engine's own call timeout when it is longer: a call the invocation's
/// end cuts short is paid for and read again.
pub(crate) const CALL_TIME: Duration = Duration::from_secs(90);

impl Parts {
    /// One call's worth of the OCR quota shared by every instance, if it has room at `now`.
    pub(crate) async fn ocr_quota(&self, now: Timestamp) -> Result<RateDecision, StoreError> {
        self.limiter
            .acquire(
                &RateScope::Ocr,
                self.settings.rate_limit_rps,
                Duration::from_secs(1),
                now,
            )
            .await
    }

    /// One OCR call, timed.
    pub(crate) async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError> {
        let started = Instant::now();
        let read = self.engine.recognize(document).await;
        metrics::record(Metric::OcrDuration, started.elapsed().as_millis() as f64);
        read
    }

    /// Whether a call started now might outlast the invocation.
    pub(crate) fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        let call = self
            .engine
            .call_timeout()
            .unwrap_or(CALL_TIME)
            .max(CALL_TIME);
        deadline.is_some_and(|end| Instant::now() + call > end)
    }
}

/// The job's document type: the client's, else told from the result's text.
pub(crate) fn document_type_of(job: &Job, result: &OcrResult) -> DocumentType {
    job.document_type
        .unwrap_or_else(|| DocumentType::classify(&result.text))
}

/// The reason a job fails with, for an engine's error.
pub(crate) fn error_of(error: &OcrError) -> JobError {
    match error {
        OcrError::Rejected { code, message } => JobError::new(*code, message.clone()),
        OcrError::Retryable { message, .. } | OcrError::RateLimited { message, .. } => {
            JobError::new(ErrorCode::OcrUnavailable, message.clone())
        }
        OcrError::Unauthorized { message } => {
            JobError::new(ErrorCode::OcrUnauthorized, message.clone())
        }
    }
}
