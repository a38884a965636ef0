//! Jobs, their identifiers and the only legal moves between their statuses.

mod file_type;
mod ids;
mod job;
mod status;
mod time;
mod transition;

pub use file_type::FileType;
pub use ids::{IdError, JobId, Owner, Sha256Hex};
pub use job::{Completion, DedupKey, Job, JobError, NewJob, WebhookState};
pub use status::JobStatus;
pub use time::Timestamp;
pub use transition::{FieldChange, Guard, Transition, TransitionRefused};
