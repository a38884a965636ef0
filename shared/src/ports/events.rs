//! The job events port: what is published when a job reaches a final status,
//! and `announce`, which publishes it once and marks the job announced.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::{Job, JobId, JobStatus, Owner, Timestamp};

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
    #[serde(rename = "job.expired")]
    Expired,
}

impl JobEventType {
    /// The event a job in `status` is announced with; none for unfinished jobs.
    pub const fn for_status(status: JobStatus) -> Option<Self> {
        match status {
            JobStatus::Completed => Some(JobEventType::Completed),
            JobStatus::Failed => Some(JobEventType::Failed),
            JobStatus::Rejected => Some(JobEventType::Rejected),
            JobStatus::Expired => Some(JobEventType::Expired),
            _ => None,
        }
    }

    /// The status a job has when this event is told of it.
    pub const fn status(self) -> JobStatus {
        match self {
            JobEventType::Completed => JobStatus::Completed,
            JobEventType::Failed => JobStatus::Failed,
            JobEventType::Rejected => JobStatus::Rejected,
            JobEventType::Expired => JobStatus::Expired,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            JobEventType::Completed => "job.completed",
            JobEventType::Failed => "job.failed",
            JobEventType::Rejected => "job.rejected",
            JobEventType::Expired => "job.expired",
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

impl JobEvent {
    /// A fresh event (new id) telling that `job` reached `event_type`'s status at `now`.
    pub fn for_job(job: &Job, event_type: JobEventType, now: Timestamp) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            event_type,
            created_at: now,
            job_id: job.job_id.clone(),
            owner: job.owner.clone(),
            status: event_type.status(),
        }
    }
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &JobEvent) -> Result<(), PublishError>;
}

/// Publishes the event of `job`'s final status and notes it on the job.
/// `Err` when the publish failed: the caller fails too, so that the delivery
/// that brought it here comes again and announces the job then.
pub async fn announce(
    events: &dyn EventPublisher,
    jobs: &dyn super::JobStore,
    job: &Job,
    now: Timestamp,
) -> Result<(), PublishError> {
    let Some(event_type) = JobEventType::for_status(job.status) else {
        return Ok(());
    };
    events
        .publish(&JobEvent::for_job(job, event_type, now))
        .await?;
    if let Err(error) = jobs.mark_announced(&job.job_id).await {
        // At worst a later redelivery publishes again: receivers dedupe by event and job.
        tracing::warn!(%error, job_id = %job.job_id, "announced, but not noted on the job");
    }
    Ok(())
}
