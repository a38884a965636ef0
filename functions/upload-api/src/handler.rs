use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use ocr_shared::api::{self, ApiError, JobView};
use ocr_shared::config::{ConfigError, Env, UploadSettings, vars};
use ocr_shared::domain::{DocumentType, Job, NewJob, Owner, Sha256Hex, Timestamp};
use ocr_shared::ports::{BlobStore, JobStore, RateDecision, RateLimiter, UploadSlot};
use ocr_shared::upload_policy::UploadRejection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

pub const MAX_BATCH: usize = 20;
const MAX_FILENAME_CHARS: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadApiSettings {
    pub upload: UploadSettings,
    /// Jobs one owner may open per minute.
    pub create_per_minute: u32,
}

impl UploadApiSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            upload: UploadSettings::from_env(env)?,
            create_per_minute: env.number(vars::JOB_CREATE_RATE_PER_MINUTE, 60, 1..=100_000)?,
        })
    }
}

pub struct UploadApi {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub settings: UploadApiSettings,
}

/// The body of `POST /v1/jobs`, and of each entry of a batch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub document_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBatch {
    documents: Vec<Value>,
}

#[derive(Debug, Serialize)]
struct UploadInstructions {
    method: String,
    url: String,
    headers: std::collections::BTreeMap<String, String>,
    expires_at: String,
}

/// Entry point: every outcome, error or not, is an HTTP response.
pub async fn handle(request: Request, api: &UploadApi) -> Result<Response<Body>, Error> {
    let request_id = api::request_id(&request);
    Ok(match route(request, api).await {
        Ok(response) => response,
        Err(error) => error.into_response(&request_id),
    })
}

async fn route(request: Request, api: &UploadApi) -> Result<Response<Body>, ApiError> {
    let owner = api::caller(&request)?;
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let method = request.method().clone();
    match (method, path.strip_prefix("/v1/jobs")) {
        (Method::POST, Some("")) => {
            let body: Value = parse_body(&request)?;
            let (status, body) = api.create(&owner, body, Timestamp::now()).await?;
            Ok(api::json_response(status, &body))
        }
        (Method::POST, Some("/batch")) => {
            let batch: CreateBatch =
                serde_json::from_value(parse_body(&request)?).map_err(|e| {
                    ApiError::bad_request(
                        "invalid_request",
                        format!("the body must be {{\"documents\": [...]}}: {e}"),
                    )
                })?;
            let results = api
                .create_batch(&owner, batch.documents, Timestamp::now())
                .await?;
            Ok(api::json_response(
                StatusCode::OK,
                &json!({ "results": results }),
            ))
        }
        (Method::DELETE, Some(rest)) if rest.starts_with('/') && !rest[1..].contains('/') => {
            api.delete(&owner, &rest[1..]).await?;
            Ok(api::empty_response(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::route_not_found()),
    }
}

fn parse_body(request: &Request) -> Result<Value, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })
}

fn rejection(error: UploadRejection) -> ApiError {
    let status = match error {
        UploadRejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        UploadRejection::DeclaredTypeNotAllowed { .. } | UploadRejection::TypeNotAllowed { .. } => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.code(), error.to_string())
}

/// A webhook must be an absolute https URL.
fn check_webhook(raw: &str) -> Result<String, ApiError> {
    let url = reqwest::Url::parse(raw).map_err(|e| {
        ApiError::bad_request(
            "invalid_webhook_url",
            format!("webhook_url is not a URL: {e}"),
        )
    })?;
    if url.scheme() != "https" {
        return Err(ApiError::bad_request(
            "invalid_webhook_url",
            "webhook_url must use https",
        ));
    }
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::bad_request(
            "invalid_webhook_url",
            "webhook_url must name a host and carry no credentials",
        ));
    }
    Ok(url.to_string())
}

fn check_filename(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_FILENAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_filename",
            format!(
                "filename must be 1 to {MAX_FILENAME_CHARS} characters with no control characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

impl UploadApi {
    /// Checks a request for a job; the job it describes, or why not.
    fn validate(&self, owner: &Owner, body: Value) -> Result<NewJob, ApiError> {
        let request: CreateJob = serde_json::from_value(body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.to_string(),
            )
        })?;
        let filename = check_filename(&request.filename)?;
        let content_type = self
            .settings
            .upload
            .limits
            .check_declaration(&request.content_type, request.size)
            .map_err(rejection)?;
        let sha256 = request
            .sha256
            .as_deref()
            .map(Sha256Hex::parse)
            .transpose()
            .map_err(|_| {
                ApiError::bad_request("invalid_sha256", "sha256 must be 64 hexadecimal characters")
            })?;
        let webhook_url = request
            .webhook_url
            .as_deref()
            .map(check_webhook)
            .transpose()?;
        let document_type = request
            .document_type
            .as_deref()
            .map(|raw| {
                DocumentType::parse(raw).ok_or_else(|| {
                    let known: Vec<&str> =
                        DocumentType::ALL.iter().map(|kind| kind.as_str()).collect();
                    ApiError::bad_request(
                        "invalid_document_type",
                        format!("document_type must be one of: {}", known.join(", ")),
                    )
                })
            })
            .transpose()?;
        Ok(NewJob {
            owner: owner.clone(),
            filename,
            content_type,
            declared_size: request.size,
            sha256,
            webhook_url,
            document_type: document_type.map(|kind| kind.as_str().to_owned()),
        })
    }

    async fn admit(&self, owner: &Owner, now: Timestamp) -> Result<(), ApiError> {
        let scope = format!("create#{owner}");
        let decision = self
            .limiter
            .acquire(
                &scope,
                self.settings.create_per_minute,
                Duration::from_secs(60),
                now,
            )
            .await?;
        match decision {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
                warn!(owner = %owner, "job creation rate limited");
                Err(ApiError::rate_limited(retry_after))
            }
        }
    }

    /// `POST /v1/jobs`: 201 with an upload slot, or 200 with the owner's
    /// completed job for the same bytes.
    #[instrument(skip(self, body, now), fields(owner = %owner))]
    pub async fn create(
        &self,
        owner: &Owner,
        body: Value,
        now: Timestamp,
    ) -> Result<(StatusCode, Value), ApiError> {
        let request = self.validate(owner, body)?;
        self.admit(owner, now).await?;

        if let Some(sha256) = &request.sha256
            && let Some(done) = self.jobs.find_completed_by_hash(owner, sha256).await?
        {
            info!(job_id = %done.job_id, "same bytes already read; no upload needed");
            let result_url = api::result_url(self.blobs.as_ref(), &done).await?;
            let mut view = serde_json::to_value(JobView::full(&done, now, result_url))
                .expect("views serialise");
            view["deduplicated"] = json!(true);
            return Ok((StatusCode::OK, view));
        }

        let upload = &self.settings.upload;
        let job = Job::open(request, now, upload.upload_url_ttl, upload.retention);
        let slot = UploadSlot {
            content_type: job.content_type,
            content_length: job.declared_size,
            sha256: job.sha256.clone(),
        };
        let presigned = self
            .blobs
            .presign_upload(&job.job_id.upload_key(), &slot, upload.upload_url_ttl)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        self.jobs.create(&job).await?;
        info!(job_id = %job.job_id, size = job.declared_size, "job opened");
        let body = json!({
            "job_id": job.job_id,
            "status": job.status,
            "upload": UploadInstructions {
                method: presigned.method,
                url: presigned.url,
                headers: presigned.headers,
                expires_at: job.upload_expires_at.to_rfc3339(),
            },
        });
        Ok((StatusCode::CREATED, body))
    }

    /// `POST /v1/jobs/batch`: one result per document, in order.
    pub async fn create_batch(
        &self,
        owner: &Owner,
        documents: Vec<Value>,
        now: Timestamp,
    ) -> Result<Vec<Value>, ApiError> {
        if documents.is_empty() || documents.len() > MAX_BATCH {
            return Err(ApiError::bad_request(
                "invalid_batch",
                format!("a batch holds 1 to {MAX_BATCH} documents"),
            ));
        }
        let mut results = Vec::with_capacity(documents.len());
        for document in documents {
            results.push(match self.create(owner, document, now).await {
                Ok((status, job)) => json!({"status": status.as_u16(), "job": job}),
                Err(error) => json!({
                    "status": error.status.as_u16(),
                    "error": {"code": error.code, "message": error.message},
                }),
            });
        }
        Ok(results)
    }

    /// `DELETE /v1/jobs/{id}`: the record, the upload and the result.
    #[instrument(skip(self), fields(owner = %owner))]
    pub async fn delete(&self, owner: &Owner, raw_id: &str) -> Result<(), ApiError> {
        let job = api::owned_job(self.jobs.as_ref(), owner, raw_id).await?;
        // Every job's result, a deduplicated one's copy included, is at its own key.
        for key in [job.job_id.upload_key(), job.job_id.result_key()] {
            self.blobs
                .delete(&key)
                .await
                .map_err(|e| ApiError::internal(&e))?;
        }
        self.jobs.delete(&job.job_id).await?;
        info!(job_id = %job.job_id, "job deleted");
        Ok(())
    }
}
