//! The job record: one document's trip through the pipeline, as stored.

use serde::{Deserialize, Serialize};

use super::{
    DocumentType, ErrorCode, FileType, Filename, JobField, JobId, JobStatus, Owner, PiiCounts,
    PiiKind, QualityIssue, Sha256Hex, Timestamp, WebhookUrl,
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

/// What a finished OCR run (or the completed job it duplicates) leaves on
/// the job record, stored flat beside the job's own attributes. The
/// document's `pages` and `document_type` stay on `Job`: they are known
/// before the read too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// `None` in a listing, which projects no text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub text_truncated: bool,
    pub confidence: f64,
    pub engine: String,
    pub model_version: String,
    /// Absent from a listing, which links no result.
    #[serde(default)]
    pub result_key: String,
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
    /// What the pages' images showed wrong (blurry, skewed, ...), each once,
    /// where the engine measured them: the reason a review is needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality_issues: Vec<QualityIssue>,
}

impl Completion {
    /// The attributes a completion writes, read from its own serde keys.
    pub fn fields(&self) -> Vec<(JobField, serde_json::Value)> {
        let serde_json::Value::Object(fields) = serde_json::json!(self) else {
            unreachable!("a Completion serialises to an object")
        };
        fields
            .into_iter()
            .map(|(name, value)| {
                let field = JobField::parse(&name)
                    .unwrap_or_else(|| panic!("`{name}` of Completion is no JobField"));
                (field, value)
            })
            .collect()
    }
}

/// The bytes' hash, once known (declared by the client, then verified by
/// ingest), with the `by_hash` index's key made of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashKey {
    pub sha256: Sha256Hex,
    /// `owner#sha256` (see `DedupKey::index_value`); `None` in a listing,
    /// which does not project it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_sha256: Option<String>,
}

impl From<&DedupKey> for HashKey {
    fn from(digest: &DedupKey) -> Self {
        Self {
            sha256: digest.sha256.clone(),
            owner_sha256: Some(digest.index_value()),
        }
    }
}

/// What ingest found in the upload: its size, the type its bytes show, and
/// the version it checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedUpload {
    pub size: u64,
    /// Any media type the bytes show, accepted or not (a rejection records it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_mime: Option<String>,
    /// The type the client declared, when the bytes show another accepted
    /// one: the job is read as what its bytes are (`content_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_type: Option<FileType>,
    /// The ETag of the upload ingest checked: the worker reads only that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_etag: Option<String>,
}

/// The client's webhook and how its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    #[serde(rename = "webhook_url")]
    pub url: WebhookUrl,
    #[serde(rename = "webhook")]
    pub state: WebhookState,
}

/// A completed job's entry in the sparse search index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchEntry {
    /// The text's normal form for search (`search::search_text`).
    pub search_text: String,
    /// `created_at` again: the index's sort key.
    pub search_at: Timestamp,
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
/// Its groups (`hash`, `upload`, `webhook`, `completion`, `search`) are
/// stored flat, each present whole or not at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    pub owner: Owner,
    pub status: JobStatus,
    pub filename: Filename,
    pub content_type: FileType,
    pub declared_size: u64,
    #[serde(flatten)]
    pub hash: Option<HashKey>,
    #[serde(flatten)]
    pub upload: Option<CheckedUpload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<DocumentType>,
    /// The client's choice of kinds to mask (see `NewJob::redact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact: Option<Vec<PiiKind>>,
    #[serde(flatten)]
    pub webhook: Option<Webhook>,
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
    /// Set on completion.
    #[serde(flatten)]
    pub completion: Option<Completion>,
    /// A PDF's or TIFF's page count from ingest, then the result's on completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// Pages read so far by a run that reads the document in chunks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pages_done: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<JobId>,
    /// Set on completion when the job has text.
    #[serde(flatten)]
    pub search: Option<SearchEntry>,
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
    /// Whether the job is unfinished: then it is in the sweeper's sparse
    /// index, as `pending = "1"`, which every move to a final status removes.
    #[serde(
        rename = "pending",
        default,
        skip_serializing_if = "std::ops::Not::not",
        with = "pending_marker"
    )]
    pub unfinished: bool,
    /// Whether the event of the job's final status was published. A redelivery
    /// of a finished job publishes it when an earlier attempt could not.
    #[serde(default)]
    pub announced: bool,
}

/// The value of `pending` on every unfinished job (one partition: the sweeper
/// reads them oldest first).
pub const PENDING: &str = "1";

/// `unfinished` as stored: the attribute `pending = "1"` while true, none after.
mod pending_marker {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(_unfinished: &bool, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(super::PENDING)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        String::deserialize(deserializer).map(|marker| marker == super::PENDING)
    }
}

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
        let hash = request.sha256.map(|sha256| {
            HashKey::from(&DedupKey {
                owner: request.owner.clone(),
                sha256,
            })
        });
        let webhook = request.webhook_url.map(|url| Webhook {
            url,
            state: WebhookState {
                status: WebhookStatus::Pending,
                attempts: 0,
                last_error: None,
                delivered_at: None,
            },
        });
        Self {
            job_id: JobId::new(),
            owner: request.owner,
            status: JobStatus::AwaitingUpload,
            filename: request.filename,
            content_type: request.content_type,
            declared_size: request.declared_size,
            hash,
            upload: None,
            document_type: request.document_type,
            redact: request.redact,
            webhook,
            attempts: 0,
            auth_failures: 0,
            throttles: 0,
            wake: 0,
            lease_until: None,
            error: None,
            completion: None,
            pages: None,
            pages_done: 0,
            deduplicated_from: None,
            search: None,
            created_at: now,
            updated_at: now,
            upload_expires_at: now.plus(upload_ttl),
            queued_at: None,
            started_at: None,
            completed_at: None,
            expires_at: now.plus(retention).as_epoch_seconds(),
            unfinished: true,
            announced: false,
        }
    }

    /// The bytes' SHA-256: declared, then as ingest verified it.
    pub fn sha256(&self) -> Option<&Sha256Hex> {
        self.hash.as_ref().map(|hash| &hash.sha256)
    }

    /// The upload's size as ingest measured it, else as the client declared it.
    pub fn size(&self) -> u64 {
        self.upload
            .as_ref()
            .map_or(self.declared_size, |upload| upload.size)
    }

    /// The text the read left on the job, once completed.
    pub fn text(&self) -> Option<&str> {
        self.completion()
            .and_then(|completion| completion.text.as_deref())
    }

    /// Where the full result is stored, once completed.
    pub fn result_key(&self) -> Option<&str> {
        self.completion()
            .map(|completion| completion.result_key.as_str())
    }

    /// The kinds of personal data masked, with counts, once completed.
    pub fn redacted(&self) -> Option<&PiiCounts> {
        self.completion()
            .and_then(|completion| completion.redacted.as_ref())
    }

    /// Whether the read needs a person's check (see `Completion::needs_review`).
    pub fn needs_review(&self) -> bool {
        self.completion()
            .is_some_and(|completion| completion.needs_review)
    }

    /// The client's webhook address, if it gave one.
    pub fn webhook_url(&self) -> Option<&WebhookUrl> {
        self.webhook.as_ref().map(|webhook| &webhook.url)
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
    pub fn completion(&self) -> Option<&Completion> {
        self.completion
            .as_ref()
            .filter(|_| self.status == JobStatus::Completed)
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
