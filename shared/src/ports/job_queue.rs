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

/// The body of a jobs-queue message: the id alone; the job record holds the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
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
