//! One small trait per capability the functions need. Each has an AWS adapter
//! (`crate::aws`) and an in-memory one (`crate::memory`) for unit tests of logic.

mod blob_store;
mod events;
mod job_queue;
mod job_store;
mod ocr;
mod rate_limiter;
mod secrets;

pub use blob_store::{BlobError, BlobStore, ObjectInfo, PresignedRequest, UploadSlot};
pub use events::{EventPublisher, JobEvent, JobEventType, PublishError, announce};
pub use job_queue::{JobMessage, JobQueue, QueueError};
pub use job_store::{
    JobPage, JobStore, ListQuery, Moved, PendingCursor, PendingPage, StoreError,
    transition_or_moved, transition_unless_moved,
};
pub use ocr::{
    Document, OcrEngine, OcrError, OcrPage, OcrResult, OcrWord, PAGE_SEPARATOR, PageQuality,
    Vertex, document_text,
};
pub use rate_limiter::{RateDecision, RateLimiter, RateScope, window_of};
pub use secrets::{SecretError, SecretSource};
