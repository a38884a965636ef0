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

/// The namespace of event ids (a UUID of this project's own).
const EVENT_NAMESPACE: uuid::Uuid = uuid::uuid!("1c0f3c52-8d55-4e0a-9a4b-6f2f8e7c2d10");

impl JobEvent {
    /// The event telling that `job` reached `event_type`'s status at `now`.
    /// Its id is the job's and the type's (a name-based UUID): the same event
    /// has the same id however often, and by whichever delivery, it is
    /// announced, so that a receiver drops a repeat by its id.
    pub fn for_job(job: &Job, event_type: JobEventType, now: Timestamp) -> Self {
        let name = format!("{}/{}", job.job_id.as_str(), event_type.as_str());
        Self {
            id: uuid::Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes()).to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileType;
    use crate::testing;

    #[test]
    fn the_same_event_keeps_its_id_and_another_event_or_job_has_another() {
        let now = Timestamp::now();
        let job = testing::open(testing::request("alice", "a.pdf", FileType::Pdf, 10), now);
        let other = testing::open(testing::request("alice", "a.pdf", FileType::Pdf, 10), now);
        let later = now.plus(std::time::Duration::from_secs(60));
        let first = JobEvent::for_job(&job, JobEventType::Completed, now);
        let again = JobEvent::for_job(&job, JobEventType::Completed, later);
        assert_eq!(first.id, again.id, "a retry or a concurrent announce");
        assert_ne!(
            first.id,
            JobEvent::for_job(&job, JobEventType::Failed, now).id
        );
        assert_ne!(
            first.id,
            JobEvent::for_job(&other, JobEventType::Completed, now).id
        );
        assert!(uuid::Uuid::parse_str(&first.id).is_ok());
    }
}
