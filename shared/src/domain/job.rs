//! The job record: one document's trip through the pipeline, as stored.

use serde::{Deserialize, Serialize};

use super::{
    DocumentType, ErrorCode, FileType, Filename, JobId, JobStatus, Owner, PiiCounts, PiiKind,
    Sha256Hex, Timestamp, WebhookUrl,
};

/// Why a job was rejected or failed: a stable code for programs, a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
}

impl JobError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Where a job's webhook delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Not delivered yet; more attempts follow.
    Pending,
    Delivered,
    /// Given up: the last attempt failed or the destination is refused.
    Failed,
}

impl WebhookStatus {
    pub const ALL: [WebhookStatus; 3] = [
        WebhookStatus::Pending,
        WebhookStatus::Delivered,
        WebhookStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Pending => "pending",
            WebhookStatus::Delivered => "delivered",
            WebhookStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for WebhookStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Delivery state of a job's webhook, as the status API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookState {
    pub status: WebhookStatus,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
}

/// What a finished OCR run (or the completed job it duplicates) leaves on the job record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub text_truncated: bool,
    pub confidence: f64,
    pub pages: u32,
    pub engine: String,
    pub model_version: String,
    pub result_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<DocumentType>,
    /// The kinds of personal data masked in the text and the result, with counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<PiiCounts>,
    /// The document's confidence fell below the deployment's threshold
    /// (`LOW_CONFIDENCE_THRESHOLD`): a person should check what was read.
    #[serde(default)]
    pub needs_review: bool,
    /// When it needs review: the pages (from 1) whose confidence fell below it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review_pages: Vec<u32>,
}

/// The dedup index key: the same bytes only ever match within one owner, so a
/// hash never tells one tenant what another uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DedupKey {
    pub owner: Owner,
    pub sha256: Sha256Hex,
}

impl DedupKey {
    /// The `owner#sha256` value of the `by_hash` index.
    pub fn index_value(&self) -> String {
        format!("{}#{}", self.owner, self.sha256)
    }
}

/// What a client asks for when it opens a job.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub owner: Owner,
    pub filename: Filename,
    pub content_type: FileType,
    pub declared_size: u64,
    pub sha256: Option<Sha256Hex>,
    pub webhook_url: Option<WebhookUrl>,
    pub document_type: Option<DocumentType>,
    /// The kinds of personal data to mask: `Some(vec![])` for none at all,
    /// `None` for the default (every kind on an ID card).
    pub redact: Option<Vec<PiiKind>>,
}

/// One document's trip through the pipeline: the item of the `Jobs` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    pub owner: Owner,
    pub status: JobStatus,
    pub filename: Filename,
    pub content_type: FileType,
    pub declared_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Hex>,
    /// `owner#sha256` once the bytes are known: the `by_hash` index key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_mime: Option<String>,
    /// The ETag of the upload ingest checked: the worker reads only that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<DocumentType>,
    /// The client's choice of kinds to mask (see `NewJob::redact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact: Option<Vec<PiiKind>>,
    /// Set on completion: the kinds masked, with counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<PiiCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<WebhookUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookState>,
    #[serde(default)]
    pub attempts: u32,
    /// OCR calls refused for our credentials in a row: they back off, but
    /// never count as attempts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auth_failures: u32,
    /// OCR calls refused by the engine's rate limit since the last success:
    /// they back off, but never count as attempts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttles: u32,
    /// The fresh messages sent for this job since ingest's (on a hand-back or
    /// a yield): a message whose `wake` differs is stale (see `JobMessage`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wake: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub text_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Set on completion: see `Completion::needs_review`.
    #[serde(default)]
    pub needs_review: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review_pages: Vec<u32>,
    /// A PDF's page count from ingest, then the result's on completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// Pages read so far by a run that reads the document in chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_done: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<JobId>,
    /// The text's normal form for search (`search::search_text`), set on completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_text: Option<String>,
    /// `created_at` again, set with `search_text`: the sort key of the sparse
    /// search index, which holds only jobs with text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// After this instant the presigned upload URL no longer works.
    pub upload_expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    /// DynamoDB TTL: whole seconds since the epoch.
    pub expires_at: i64,
    /// Present while the job is unfinished: the key of the sweeper's sparse
    /// index, removed by every move to a final status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    /// Whether the event of the job's final status was published. A redelivery
    /// of a finished job publishes it when an earlier attempt could not.
    #[serde(default)]
    pub announced: bool,
}

/// The value of `pending` on every unfinished job (one partition: the sweeper
/// reads them oldest first).
pub const PENDING: &str = "1";

fn is_zero(count: &u32) -> bool {
    *count == 0
}

impl Job {
    /// A job waiting for its upload, created at `now`, whose upload slot lasts
    /// `upload_ttl` and whose record is kept for `retention`.
    pub fn open(
        request: NewJob,
        now: Timestamp,
        upload_ttl: std::time::Duration,
        retention: std::time::Duration,
    ) -> Self {
        let owner_sha256 = request.sha256.as_ref().map(|sha256| {
            DedupKey {
                owner: request.owner.clone(),
                sha256: sha256.clone(),
            }
            .index_value()
        });
        Self {
            job_id: JobId::new(),
            owner: request.owner,
            owner_sha256,
            status: JobStatus::AwaitingUpload,
            filename: request.filename,
            content_type: request.content_type,
            declared_size: request.declared_size,
            size: None,
            sha256: request.sha256,
            detected_mime: None,
            upload_etag: None,
            document_type: request.document_type,
            webhook: request.webhook_url.as_ref().map(|_| WebhookState {
                status: WebhookStatus::Pending,
                attempts: 0,
                last_error: None,
                delivered_at: None,
            }),
            webhook_url: request.webhook_url,
            redact: request.redact,
            redacted: None,
            attempts: 0,
            auth_failures: 0,
            throttles: 0,
            wake: 0,
            lease_until: None,
            error: None,
            text: None,
            text_truncated: false,
            confidence: None,
            needs_review: false,
            review_pages: Vec::new(),
            pages: None,
            pages_done: None,
            engine: None,
            model_version: None,
            result_key: None,
            deduplicated_from: None,
            search_text: None,
            search_at: None,
            created_at: now,
            updated_at: now,
            upload_expires_at: now.plus(upload_ttl),
            queued_at: None,
            started_at: None,
            completed_at: None,
            expires_at: now.plus(retention).as_epoch_seconds(),
            pending: Some(PENDING.to_owned()),
            announced: false,
        }
    }

    /// The status a reader sees: `expired` once an upload slot ran out unused,
    /// before the sweeper stores it so.
    pub fn reported_status(&self, now: Timestamp) -> JobStatus {
        if self.status == JobStatus::AwaitingUpload && now >= self.upload_expires_at {
            JobStatus::Expired
        } else {
            self.status
        }
    }

    /// Whether the job finished without keeping its upload (rejected, expired,
    /// or completed from an earlier job's result): any upload now is a stray.
    pub fn upload_was_discarded(&self) -> bool {
        matches!(self.status, JobStatus::Rejected | JobStatus::Expired)
            || (self.status == JobStatus::Completed && self.deduplicated_from.is_some())
    }

    /// Past its retention: DynamoDB's TTL deletes such a record late (up to
    /// days), so every read treats it as already gone.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now.as_epoch_seconds() >= self.expires_at
    }

    /// What the OCR run left on a completed job; `None` in any other status.
    pub fn completion(&self) -> Option<Completion> {
        if self.status != JobStatus::Completed {
            return None;
        }
        Some(Completion {
            text: self.text.clone()?,
            text_truncated: self.text_truncated,
            confidence: self.confidence?,
            pages: self.pages?,
            engine: self.engine.clone()?,
            model_version: self.model_version.clone()?,
            result_key: self.result_key.clone()?,
            document_type: self.document_type,
            redacted: self.redacted.clone(),
            needs_review: self.needs_review,
            review_pages: self.review_pages.clone(),
        })
    }

    /// Why the job failed or was rejected; `None` in any other status (a
    /// released job keeps its last error for the next attempt, unshown).
    pub fn failure(&self) -> Option<&JobError> {
        self.error
            .as_ref()
            .filter(|_| matches!(self.status, JobStatus::Failed | JobStatus::Rejected))
    }

    /// True while some worker holds a lease that has not run out.
    pub fn lease_is_live(&self, now: Timestamp) -> bool {
        self.status == JobStatus::Processing && self.lease_until.is_some_and(|until| until > now)
    }
}
