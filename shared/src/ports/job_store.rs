//! The job store port: jobs by id, by owner (listings), by hash (dedup) and
//! pending (the sweeper), and the one way a job changes: a guarded
//! `Transition`, applied atomically or refused (`Moved`: the job was
//! deleted, or another writer got there first).

use async_trait::async_trait;

use crate::domain::{
    DocumentType, Job, JobId, JobStatus, Owner, SearchQuery, Sha256Hex, Timestamp, Transition,
    TransitionRefused, WebhookState,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job {0} does not exist")]
    NotFound(JobId),
    #[error("job {0} already exists")]
    AlreadyExists(JobId),
    /// The job is not where the move starts: another writer got there first,
    /// or the move is illegal. Callers treat this as "already taken".
    #[error(transparent)]
    Refused(#[from] TransitionRefused),
    #[error("the list cursor is not valid for this listing")]
    BadCursor,
    /// The write would make the item larger than the table allows: trying
    /// again can never succeed.
    #[error("job {0} would exceed the table's item size limit")]
    ItemTooLarge(JobId),
    #[error("job store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// One page of an owner's jobs, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Opaque: hand it back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a page of the sweeper's jobs ended: the last job it held, in the
/// index's order (oldest change first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCursor {
    pub updated_at: Timestamp,
    pub job_id: JobId,
}

/// One page of unfinished jobs, and where the next one starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PendingPage {
    pub jobs: Vec<Job>,
    /// `None` when no unfinished job is left past this page.
    pub next: Option<PendingCursor>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub status: Option<JobStatus>,
    pub limit: u32,
    pub cursor: Option<String>,
    /// Only jobs whose text holds this (in normal form); such a listing
    /// holds only jobs with text, each read whole (for its snippet).
    pub search: Option<SearchQuery>,
    pub document_type: Option<DocumentType>,
    /// Only jobs created at or after this instant.
    pub created_after: Option<Timestamp>,
    /// Only jobs created before this instant.
    pub created_before: Option<Timestamp>,
    /// Only completed jobs that need review (`true`), or only jobs that do not.
    pub needs_review: Option<bool>,
}

impl ListQuery {
    /// Whether `job` passes every filter but the owner (the stores' shared rule).
    pub fn admits(&self, job: &Job) -> bool {
        self.status.is_none_or(|status| job.status == status)
            && self
                .document_type
                .is_none_or(|kind| job.document_type == Some(kind))
            && self.created_after.is_none_or(|at| job.created_at >= at)
            && self.created_before.is_none_or(|at| job.created_at < at)
            && self
                .needs_review
                .is_none_or(|wanted| job.needs_review() == wanted)
            && self.search.as_ref().is_none_or(|query| {
                job.search
                    .as_ref()
                    .is_some_and(|entry| query.matches(&entry.search_text))
            })
    }
}

/// The jobs table: every status change is a conditional write. A job past its
/// retention (`expires_at`) is gone for every read, as if the table's TTL,
/// which deletes late, had already removed it.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a new job; refuses to overwrite one with the same id.
    async fn create(&self, job: &Job) -> Result<(), StoreError>;

    async fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError>;

    /// Moves the job if, and only if, the transition's guards hold at this
    /// moment; returns the job as written.
    async fn transition(
        &self,
        id: &JobId,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<Job, StoreError>;

    /// The owner's jobs that pass the query's filters, newest first, a page
    /// at a time. A page may hold fewer than `limit` (even none) and still
    /// have a next cursor: the stores bound what one call reads.
    async fn list_by_owner(&self, owner: &Owner, query: &ListQuery) -> Result<JobPage, StoreError>;

    /// The owner's newest completed job with these bytes, if any. Never looks
    /// at other owners' jobs.
    async fn find_completed_by_hash(
        &self,
        owner: &Owner,
        sha256: &Sha256Hex,
    ) -> Result<Option<Job>, StoreError>;

    async fn delete(&self, id: &JobId) -> Result<(), StoreError>;

    /// Unfinished jobs whose last change is older than `before`, oldest
    /// first, a page of at most `limit` after `after`: what the sweeper looks
    /// at. A page may hold fewer (a job that finished since the index saw
    /// it is left out) and still have a next one.
    async fn unfinished_before(
        &self,
        before: Timestamp,
        after: Option<&PendingCursor>,
        limit: u32,
    ) -> Result<PendingPage, StoreError>;

    /// Records how the job's webhook delivery stands. Never touches the job's
    /// status: a webhook cannot change what became of the OCR.
    async fn record_webhook(&self, id: &JobId, state: &WebhookState) -> Result<(), StoreError>;

    /// Notes that the event of the job's final status was published.
    async fn mark_announced(&self, id: &JobId) -> Result<(), StoreError>;
}

/// Why a transition had nothing to do: the job moved on meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    /// The job was deleted.
    Deleted,
    /// Another writer got there first: the job is now in this status.
    Away(JobStatus),
}

/// Runs `transition`; `Err(Moved)` when the job moved on meanwhile, so that
/// the caller has nothing left to do but say why. Other store errors pass through.
pub async fn transition_or_moved(
    store: &dyn JobStore,
    id: &JobId,
    transition: &Transition,
    now: Timestamp,
) -> Result<Result<Job, Moved>, StoreError> {
    match store.transition(id, transition, now).await {
        Ok(job) => Ok(Ok(job)),
        Err(StoreError::Refused(refused)) => Ok(Err(Moved::Away(refused.current))),
        Err(StoreError::NotFound(_)) => Ok(Err(Moved::Deleted)),
        Err(error) => Err(error),
    }
}

/// Runs `transition`; `None` when the job moved on meanwhile (another writer
/// got there first, or it was deleted), so that the caller has nothing left to do.
pub async fn transition_unless_moved(
    store: &dyn JobStore,
    id: &JobId,
    transition: &Transition,
    now: Timestamp,
) -> Result<Option<Job>, StoreError> {
    Ok(transition_or_moved(store, id, transition, now).await?.ok())
}
