//! The OCR queue port: job messages sent now or later, and a received
//! message's redelivery pushed back (retry backoff by visibility).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::JobId;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl QueueError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        QueueError::Backend(Box::new(error))
    }
}

/// The body of a jobs-queue message: the id, and which of the job's messages
/// this is; the job record holds the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
    /// The job's `wake` when the message was sent. A worker that hands a job
    /// back sends a fresh message and counts it on the job, so a copy sent
    /// before (a duplicate, or the sweeper's) is known stale and dropped: a
    /// job has at most one live message. Ingest's first message is 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wake: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl JobMessage {
    /// The live message of `job` as it stands.
    pub fn of(job: &crate::domain::Job) -> Self {
        JobMessage {
            job_id: job.job_id.clone(),
            wake: job.wake,
        }
    }
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError>;

    /// Sends a fresh copy that becomes visible after `delay` (at most 15 minutes):
    /// how a job waits for capacity without using up its receive count.
    async fn send_later(&self, message: &JobMessage, delay: Duration) -> Result<(), QueueError>;

    /// Hides a received message for `delay` from now: how a retry waits
    /// without keeping a Lambda running.
    async fn delay_redelivery(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), QueueError>;
}
