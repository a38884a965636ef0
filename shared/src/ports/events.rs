use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{JobId, JobStatus, Owner, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("event publisher: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PublishError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PublishError::Backend(Box::new(error))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobEventType {
    #[serde(rename = "job.completed")]
    Completed,
    #[serde(rename = "job.failed")]
    Failed,
    #[serde(rename = "job.rejected")]
    Rejected,
}

impl JobEventType {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobEventType::Completed => "job.completed",
            JobEventType::Failed => "job.failed",
            JobEventType::Rejected => "job.rejected",
        }
    }
}

/// What subscribers hear about a job: never its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: JobEventType,
    pub created_at: Timestamp,
    pub job_id: JobId,
    pub owner: Owner,
    pub status: JobStatus,
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &JobEvent) -> Result<(), PublishError>;
}
