//! Jobs, their identifiers, the names of their stored attributes, and the
//! only legal moves between their statuses.

mod document_type;
mod error_code;
mod field;
mod file_type;
mod ids;
mod job;
pub mod pii;
mod quality;
pub mod search;
mod status;
mod text;
mod time;
mod transition;

pub use document_type::DocumentType;
pub use error_code::ErrorCode;
pub use field::JobField;
pub use file_type::FileType;
pub use ids::{Filename, IdError, JobId, MAX_FILENAME_CHARS, Owner, Sha256Hex, WebhookUrl};
pub use job::{
    CheckedUpload, Completion, DedupKey, HashKey, Job, JobError, NewJob, PENDING, SearchEntry,
    Webhook, WebhookState, WebhookStatus,
};
pub use pii::{PiiCounts, PiiKind};
pub use quality::QualityIssue;
pub use search::{SearchQuery, SearchQueryError};
pub use status::JobStatus;
pub use text::{MAX_STORED_TEXT_BYTES, truncate_utf8};
pub use time::Timestamp;
pub use transition::{FieldChange, Guard, Transition, TransitionRefused};
