//! The job statuses and the edges of the state machine between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a job stands. An `awaiting_upload` job whose upload deadline passed
/// is reported as `expired` at once, and stored so by the sweeper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    AwaitingUpload,
    Queued,
    Processing,
    Completed,
    Failed,
    Rejected,
    /// No file arrived before the upload URL ran out.
    Expired,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::AwaitingUpload,
        JobStatus::Queued,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Rejected,
        JobStatus::Expired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::AwaitingUpload => "awaiting_upload",
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Rejected => "rejected",
            JobStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// A finished job never moves again.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Rejected | JobStatus::Expired
        )
    }

    /// The edges of the job state machine. `processing → processing` is the
    /// takeover of a job whose lease expired; the lease itself is checked by the guard.
    pub const fn can_move_to(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (AwaitingUpload, Queued | Rejected | Completed | Expired)
                | (Queued, Processing)
                | (Processing, Processing | Completed | Failed | Queued)
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
