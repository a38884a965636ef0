//! What the two HTTP functions share: the caller's identity, the one error
//! shape with its codes and statuses, JSON responses and result links.

use std::time::Duration;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;
use tracing::error;

use crate::domain::{ErrorCode, Job, JobId, Owner};
use crate::ports::{BlobStore, JobStore, StoreError};
use crate::view::RESULT_URL_TTL;

/// What went wrong, as the client matches on it. Each code has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    InvalidJson,
    /// JSON, but not the shape the operation takes.
    InvalidRequest,
    InvalidFilename,
    InvalidSha256,
    InvalidWebhookUrl,
    InvalidDocumentType,
    InvalidRedact,
    InvalidBatch,
    InvalidStatus,
    InvalidLimit,
    InvalidCursor,
    /// A search query with nothing to look for, or too long.
    InvalidQuery,
    /// A `created_after` / `created_before` that is not an RFC 3339 instant.
    InvalidDate,
    /// A listing filter out of its values (`needs_review`).
    InvalidFilter,
    /// A declared file the upload policy refuses before any byte is sent.
    Upload(ErrorCode),
    Unauthorized,
    NotFound,
    ResultNotReady,
    RateLimited,
    Internal,
}

impl ApiCode {
    /// The API's own codes (the upload policy's are `ErrorCode`s).
    pub const ALL: [ApiCode; 19] = [
        ApiCode::InvalidJson,
        ApiCode::InvalidRequest,
        ApiCode::InvalidFilename,
        ApiCode::InvalidSha256,
        ApiCode::InvalidWebhookUrl,
        ApiCode::InvalidDocumentType,
        ApiCode::InvalidRedact,
        ApiCode::InvalidBatch,
        ApiCode::InvalidStatus,
        ApiCode::InvalidLimit,
        ApiCode::InvalidCursor,
        ApiCode::InvalidQuery,
        ApiCode::InvalidDate,
        ApiCode::InvalidFilter,
        ApiCode::Unauthorized,
        ApiCode::NotFound,
        ApiCode::ResultNotReady,
        ApiCode::RateLimited,
        ApiCode::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApiCode::InvalidJson => "invalid_json",
            ApiCode::InvalidRequest => "invalid_request",
            ApiCode::InvalidFilename => "invalid_filename",
            ApiCode::InvalidSha256 => "invalid_sha256",
            ApiCode::InvalidWebhookUrl => "invalid_webhook_url",
            ApiCode::InvalidDocumentType => "invalid_document_type",
            ApiCode::InvalidRedact => "invalid_redact",
            ApiCode::InvalidBatch => "invalid_batch",
            ApiCode::InvalidStatus => "invalid_status",
            ApiCode::InvalidLimit => "invalid_limit",
            ApiCode::InvalidCursor => "invalid_cursor",
            ApiCode::InvalidQuery => "invalid_query",
            ApiCode::InvalidDate => "invalid_date",
            ApiCode::InvalidFilter => "invalid_filter",
            ApiCode::Upload(code) => code.as_str(),
            ApiCode::Unauthorized => "unauthorized",
            ApiCode::NotFound => "not_found",
            ApiCode::ResultNotReady => "result_not_ready",
            ApiCode::RateLimited => "rate_limited",
            ApiCode::Internal => "internal_error",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            ApiCode::InvalidRequest => StatusCode::UNPROCESSABLE_ENTITY,
            ApiCode::Upload(ErrorCode::FileTooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiCode::Upload(ErrorCode::UnsupportedType) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiCode::InvalidJson
            | ApiCode::InvalidFilename
            | ApiCode::InvalidSha256
            | ApiCode::InvalidWebhookUrl
            | ApiCode::InvalidDocumentType
            | ApiCode::InvalidRedact
            | ApiCode::InvalidBatch
            | ApiCode::InvalidStatus
            | ApiCode::InvalidLimit
            | ApiCode::InvalidCursor
            | ApiCode::InvalidQuery
            | ApiCode::InvalidDate
            | ApiCode::InvalidFilter
            | ApiCode::Upload(_) => StatusCode::BAD_REQUEST,
            ApiCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiCode::NotFound => StatusCode::NOT_FOUND,
            ApiCode::ResultNotReady => StatusCode::CONFLICT,
            ApiCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Serialize for ApiCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ApiCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error as the client sees it: a stable code (which fixes the status) and a plain message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ApiCode,
    pub message: String,
    pub retry_after: Option<Duration>,
}

/// `raw` as one of a closed set of names (`all`, read by `name_of`), or the
/// error that lists them all under the parameter's `field` name.
pub fn one_of<T: Copy>(
    raw: Option<&str>,
    field: &str,
    code: ApiCode,
    all: &[T],
    name_of: fn(T) -> &'static str,
) -> Result<Option<T>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if let Some(found) = all.iter().copied().find(|item| name_of(*item) == raw) {
        return Ok(Some(found));
    }
    let known: Vec<&str> = all.iter().map(|item| name_of(*item)).collect();
    Err(ApiError::new(
        code,
        format!("{field} must be one of: {}", known.join(", ")),
    ))
}

impl ApiError {
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn unauthorized() -> Self {
        Self::new(ApiCode::Unauthorized, "a valid bearer token is required")
    }

    pub fn not_found() -> Self {
        Self::new(ApiCode::NotFound, "no such job")
    }

    pub fn route_not_found() -> Self {
        Self::new(ApiCode::NotFound, "no such route")
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                ApiCode::RateLimited,
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
            ApiCode::Internal,
            "something went wrong on our side; quote the request id if it persists",
        )
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let body = json!({"error": {"code": self.code, "message": self.message, "request_id": request_id}});
        let mut response = json_response(self.status(), &body);
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

impl From<crate::upload_policy::UploadRejection> for ApiError {
    fn from(rejection: crate::upload_policy::UploadRejection) -> Self {
        Self::new(ApiCode::Upload(rejection.code()), rejection.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => ApiError::not_found(),
            StoreError::BadCursor => ApiError::new(
                ApiCode::InvalidCursor,
                "the cursor is not valid for this listing",
            ),
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
    let Some(key) = job.completion().map(|completion| &completion.result_key) else {
        return Ok(None);
    };
    let presigned = blobs
        .presign_download(key, RESULT_URL_TTL)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Some(presigned.url))
}
