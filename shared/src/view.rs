//! The job as clients see it: one view for the status API's reads and the
//! webhook bodies, which the CLI reads back. Internal fields (lease, index
//! keys, owner) stay private.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{
    DocumentType, Filename, Job, JobError, JobId, JobStatus, PiiCounts, QualityIssue, Timestamp,
    WebhookState, WebhookStatus, WebhookUrl,
};

/// How long a presigned link to a full result lasts (status API and webhooks).
pub const RESULT_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// The public view of a job. Internal fields (lease, index keys, owner) stay
/// private. Clients (the CLI) read it back as it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: JobId,
    /// A stored status, or `expired` for an upload slot that ran out unused.
    pub status: JobStatus,
    pub filename: Filename,
    /// The type the file's bytes show, which it is read as.
    pub content_type: String,
    /// The type the client declared, when its bytes show another (a PNG
    /// named `.jpg`). A job's own read shows it; a listing does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_content_type: Option<String>,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_type: Option<DocumentType>,
    pub attempts: u32,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_expires_at: Option<String>,
    /// When the upload was accepted for OCR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<String>,
    /// When the latest OCR attempt started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The document's pages: a PDF's from ingest on, any document's once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    /// While a job with a known page count waits or runs: the pages read so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages_done: Option<u32>,
    /// Once completed: whether the confidence fell below the review threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_review: Option<bool>,
    /// When it needs review: the pages whose confidence fell below it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_pages: Option<Vec<u32>>,
    /// What the pages' images showed wrong (`blurry`, `skewed`, ...), where
    /// the engine measured them; the reason for a review. Single reads only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_issues: Option<Vec<QualityIssue>>,
    /// In a search's hits only: the text around the first match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// The kinds of personal data masked in the text, with counts (single reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<PiiCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<WebhookUrl>,
    /// How the webhook delivery stands, once one was attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub status: WebhookStatus,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

impl From<&WebhookState> for WebhookView {
    fn from(state: &WebhookState) -> Self {
        Self {
            status: state.status,
            attempts: state.attempts,
            last_error: state.last_error.clone(),
            delivered_at: state.delivered_at.map(Timestamp::to_rfc3339),
        }
    }
}

impl JobView {
    /// Everything but the text: for listings.
    pub fn summary(job: &Job, now: Timestamp) -> Self {
        // Listings read the owner index, which projects no text: a
        // completion read from it has none, and no result key.
        let completion = job.completion();
        let running = matches!(job.status, JobStatus::Queued | JobStatus::Processing);
        Self {
            job_id: job.job_id.clone(),
            status: job.reported_status(now),
            filename: job.filename.clone(),
            content_type: job.content_type.mime().to_owned(),
            declared_content_type: job
                .upload
                .as_ref()
                .and_then(|upload| upload.declared_type)
                .map(|declared| declared.mime().to_owned()),
            size: job.size(),
            sha256: job.sha256().map(|sha| sha.as_str().to_owned()),
            document_type: job.document_type,
            attempts: job.attempts,
            created_at: job.created_at.to_rfc3339(),
            updated_at: job.updated_at.to_rfc3339(),
            upload_expires_at: (job.status == JobStatus::AwaitingUpload)
                .then(|| job.upload_expires_at.to_rfc3339()),
            queued_at: job.queued_at.map(Timestamp::to_rfc3339),
            started_at: job.started_at.map(Timestamp::to_rfc3339),
            completed_at: job.completed_at.map(Timestamp::to_rfc3339),
            text: None,
            text_truncated: None,
            confidence: completion.map(|done| done.confidence),
            pages: job
                .pages
                .filter(|_| job.status == JobStatus::Completed || running),
            pages_done: job.pages.filter(|_| running).map(|_| job.pages_done),
            needs_review: completion.map(|done| done.needs_review),
            review_pages: completion
                .filter(|done| done.needs_review)
                .map(|done| done.review_pages.clone()),
            quality_issues: completion
                .filter(|done| !done.quality_issues.is_empty())
                .map(|done| done.quality_issues.clone()),
            snippet: None,
            engine: completion.map(|done| done.engine.clone()),
            model_version: completion.map(|done| done.model_version.clone()),
            result_url: None,
            error: job.failure().cloned(),
            redacted: None,
            deduplicated_from: job.deduplicated_from.clone(),
            webhook_url: job.webhook_url().cloned(),
            webhook: job
                .webhook
                .as_ref()
                .map(|webhook| WebhookView::from(&webhook.state)),
        }
    }

    /// The whole job: text and the link to the full result when completed.
    pub fn full(job: &Job, now: Timestamp, result_url: Option<String>) -> Self {
        let mut view = Self::summary(job, now);
        if let Some(completion) = job.completion() {
            view.text = completion.text.clone();
            view.text_truncated = Some(completion.text_truncated);
            view.redacted = completion.redacted.clone();
            view.result_url = result_url;
        }
        view
    }
}
