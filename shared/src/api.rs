//! What the two HTTP functions share: the caller's identity, the one error
//! shape, JSON responses and the public view of a job.

use std::time::Duration;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;
use tracing::error;

use crate::domain::{Job, JobError, JobId, JobStatus, Owner, Timestamp, WebhookState};
use crate::ports::{BlobStore, JobStore, StoreError};

/// How long a presigned link to a full result lasts.
pub const RESULT_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// An error as the client sees it: a status, a stable code and a plain message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such job")
    }

    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests; try again in {} s",
                    retry_after.as_secs().max(1)
                ),
            )
        }
    }

    /// A failure of ours: the cause goes to the log, the client gets a request id to quote.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        error!(error = %crate::telemetry::error_chain(cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; quote the request id if it persists",
        )
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let body = json!({"error": {"code": self.code, "message": self.message, "request_id": request_id}});
        let mut response = json_response(self.status, &body);
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1).to_string();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds).expect("digits are a valid header"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => ApiError::not_found(),
            StoreError::BadCursor => {
                ApiError::bad_request("invalid_cursor", "the cursor is not valid for this listing")
            }
            other => ApiError::internal(&other),
        }
    }
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(body).expect("response bodies always serialise");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .expect("a response with a valid status and header")
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .expect("a response with a valid status")
}

/// The caller: the `sub` claim the API Gateway JWT authorizer verified.
pub fn caller(request: &Request) -> Result<Owner, ApiError> {
    let sub = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get("sub"))
            .cloned(),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    sub.and_then(|sub| Owner::parse(&sub).ok())
        .ok_or_else(ApiError::unauthorized)
}

/// API Gateway's id for this request, else the Lambda invocation's.
pub fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) if context.request_id.is_some() => {
            context.request_id.clone().unwrap_or_default()
        }
        _ => request
            .lambda_context_ref()
            .map(|context| context.request_id.clone())
            .unwrap_or_default(),
    }
}

/// The job `raw_id` if it exists and belongs to `owner`; any other job is 404,
/// so an id tells nothing about another tenant.
pub async fn owned_job(store: &dyn JobStore, owner: &Owner, raw_id: &str) -> Result<Job, ApiError> {
    let id = JobId::parse(raw_id).map_err(|_| ApiError::not_found())?;
    match store.get(&id).await? {
        Some(job) if &job.owner == owner => Ok(job),
        _ => Err(ApiError::not_found()),
    }
}

/// A short-lived link to a completed job's full result; `None` before completion.
pub async fn result_url(blobs: &dyn BlobStore, job: &Job) -> Result<Option<String>, ApiError> {
    let key = match (job.status, &job.result_key) {
        (JobStatus::Completed, Some(key)) => key,
        _ => return Ok(None),
    };
    let presigned = blobs
        .presign_download(key, RESULT_URL_TTL)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Some(presigned.url))
}

/// The public view of a job. Internal fields (lease, index keys, owner) stay private.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub job_id: JobId,
    /// A stored status, or `expired` for an upload slot that ran out unused.
    pub status: &'static str,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplicated_from: Option<JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// How the webhook delivery stands, once one was attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookView {
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

impl From<&WebhookState> for WebhookView {
    fn from(state: &WebhookState) -> Self {
        Self {
            status: state.status.clone(),
            attempts: state.attempts,
            last_error: state.last_error.clone(),
            delivered_at: state.delivered_at.map(Timestamp::to_rfc3339),
        }
    }
}

impl JobView {
    /// Everything but the text: for listings.
    pub fn summary(job: &Job, now: Timestamp) -> Self {
        let completed = job.status == JobStatus::Completed;
        Self {
            job_id: job.job_id.clone(),
            status: job.reported_status(now),
            filename: job.filename.clone(),
            content_type: job.content_type.mime().to_owned(),
            size: job.size.unwrap_or(job.declared_size),
            sha256: job.sha256.as_ref().map(|sha| sha.as_str().to_owned()),
            document_type: job.document_type.clone(),
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
            confidence: job.confidence.filter(|_| completed),
            pages: job.pages.filter(|_| completed),
            engine: job.engine.clone().filter(|_| completed),
            model_version: job.model_version.clone().filter(|_| completed),
            result_url: None,
            error: job
                .error
                .clone()
                .filter(|_| matches!(job.status, JobStatus::Failed | JobStatus::Rejected)),
            deduplicated_from: job.deduplicated_from.clone(),
            webhook_url: job.webhook_url.clone(),
            webhook: job.webhook.as_ref().map(WebhookView::from),
        }
    }

    /// The whole job: text and the link to the full result when completed.
    pub fn full(job: &Job, now: Timestamp, result_url: Option<String>) -> Self {
        let mut view = Self::summary(job, now);
        if job.status == JobStatus::Completed {
            view.text = job.text.clone();
            view.text_truncated = Some(job.text_truncated);
            view.result_url = result_url;
        }
        view
    }
}
