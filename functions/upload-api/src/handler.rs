//! The upload API: `POST /v1/jobs`, `POST /v1/jobs/batch` and
//! `DELETE /v1/jobs/{id}`. It owns job creation: request validation (filename,
//! declared type and size, SHA-256, webhook URL, document type), the per-owner
//! rate limit, the early dedup on a declared SHA-256, and the presigned,
//! single-use upload URL; and deletion of a job with its upload and result.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use ocr_shared::api::{self, ApiCode, ApiError};
use ocr_shared::config::UploadSettings;
use ocr_shared::domain::{
    DocumentType, ErrorCode, FileType, Filename, Job, NewJob, Owner, PiiKind, Sha256Hex, Timestamp,
    WebhookUrl, pii,
};
use ocr_shared::metrics::{self, Metric};
use ocr_shared::ports::{BlobStore, JobStore, RateDecision, RateLimiter, RateScope, UploadSlot};
use ocr_shared::upload_policy::UploadRejection;
use ocr_shared::view::JobView;
use ocr_shared::webhook::{AddressPolicy, MAX_WEBHOOK_URL_CHARS, check_url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

pub const MAX_BATCH: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadApiSettings {
    pub upload: UploadSettings,
    /// Jobs one owner may open per minute.
    pub create_per_minute: u32,
    /// Which webhook URLs are accepted (http and loopback only locally).
    pub webhooks: AddressPolicy,
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
    #[serde(deserialize_with = "whole_number")]
    pub size: u64,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub document_type: Option<String>,
    /// `"none"`, or the kinds of personal data to mask.
    #[serde(default)]
    pub redact: Option<Value>,
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
                    ApiError::new(
                        ApiCode::InvalidBatch,
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

/// A request's `redact`: `"none"` masks nothing, a list masks those kinds;
/// absent, the default applies (every kind on an ID card).
fn parse_redact(raw: Option<&Value>) -> Result<Option<Vec<PiiKind>>, ApiError> {
    let refused = || {
        let known: Vec<&str> = PiiKind::ALL.iter().map(|kind| kind.as_str()).collect();
        ApiError::new(
            ApiCode::InvalidRedact,
            format!("redact must be \"none\" or a list of: {}", known.join(", ")),
        )
    };
    match raw {
        None => Ok(None),
        Some(Value::String(none)) if none == "none" => Ok(Some(Vec::new())),
        Some(Value::Array(items)) => {
            let mut kinds = Vec::with_capacity(items.len());
            for item in items {
                let kind = item.as_str().and_then(PiiKind::parse).ok_or_else(refused)?;
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            Ok(Some(kinds))
        }
        Some(_) => Err(refused()),
    }
}

/// A job request that passed what the request schema (openapi.yaml's
/// `CreateJob`) states: shape, types, patterns, enums and minimums.
struct ParsedRequest {
    filename: Filename,
    content_type: String,
    size: u64,
    sha256: Option<Sha256Hex>,
    /// A URL by its syntax, as written; its address is checked against the rules after.
    webhook_url: Option<String>,
    document_type: Option<DocumentType>,
    redact: Option<Vec<PiiKind>>,
}

/// The request as the schema allows it, or the first thing the schema forbids.
fn parse_request(body: Value) -> Result<ParsedRequest, ApiError> {
    let request: CreateJob = serde_json::from_value(body)
        .map_err(|e| ApiError::new(ApiCode::InvalidRequest, e.to_string()))?;
    let filename = Filename::parse(&request.filename)
        .map_err(|error| ApiError::new(ApiCode::InvalidFilename, error.to_string()))?;
    if FileType::from_mime(&request.content_type).is_none() {
        return Err(unsupported(&request.content_type));
    }
    if request.size == 0 {
        return Err(ApiError::from(UploadRejection::Empty));
    }
    let sha256 = request
        .sha256
        .as_deref()
        .map(Sha256Hex::parse)
        .transpose()
        .map_err(|_| {
            ApiError::new(
                ApiCode::InvalidSha256,
                "sha256 must be 64 hexadecimal characters",
            )
        })?;
    let webhook_url = request
        .webhook_url
        .as_deref()
        .map(webhook_url_of)
        .transpose()?;
    let document_type = api::one_of(
        request.document_type.as_deref(),
        "document_type",
        ApiCode::InvalidDocumentType,
        &DocumentType::ALL,
        DocumentType::as_str,
    )?;
    let redact = parse_redact(request.redact.as_ref())?;
    Ok(ParsedRequest {
        filename,
        content_type: request.content_type,
        size: request.size,
        sha256,
        webhook_url,
        document_type,
        redact,
    })
}

/// A declared type that is not one the pipeline accepts, with those it does.
fn unsupported(content_type: &str) -> ApiError {
    let known: Vec<&str> = FileType::ALL.iter().map(|kind| kind.mime()).collect();
    ApiError::new(
        ApiCode::Upload(ErrorCode::UnsupportedType),
        format!(
            "{content_type} is not an accepted type; send one of: {}",
            known.join(", ")
        ),
    )
}

/// `webhook_url` as the schema allows it: absolute, and not too long (the
/// address policy is checked after).
fn webhook_url_of(raw: &str) -> Result<String, ApiError> {
    match url::Url::parse(raw) {
        Ok(_) if raw.chars().count() <= MAX_WEBHOOK_URL_CHARS => Ok(raw.to_owned()),
        _ => Err(ApiError::new(
            ApiCode::InvalidWebhookUrl,
            format!(
                "webhook_url must be an absolute URL of at most {MAX_WEBHOOK_URL_CHARS} characters"
            ),
        )),
    }
}

/// A JSON number that is a whole number of bytes: `638739` or `638739.0`
/// (JSON does not tell the two apart, and some encoders write the second).
/// One too large for any file is kept as the largest number, which the size
/// limit then refuses with its reason.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(whole) = number.as_u64() {
        return Ok(whole);
    }
    match number.as_f64() {
        // `as` saturates: past u64, the largest u64.
        Some(float) if float.fract() == 0.0 && float >= 0.0 => Ok(float as u64),
        _ => Err(serde::de::Error::custom(format!(
            "size must be a whole number of bytes, not {number}"
        ))),
    }
}

fn parse_body(request: &Request) -> Result<Value, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    serde_json::from_slice::<Unique>(bytes)
        .map(|unique| unique.0)
        .map_err(|e| {
            ApiError::new(
                ApiCode::InvalidJson,
                format!("the body is not valid JSON: {e}"),
            )
        })
}

/// A JSON value whose objects name each key once. A repeated key is refused:
/// readers disagree on which one wins (the first, the last), and a request
/// must mean one thing to every proxy and logger that reads it.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{key}` appears twice"
                )));
            }
            let Unique(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Whether the completed `done` hides every kind of personal data a new job
/// asking `redact` would: if not, the new job is read (or copied) and masked itself.
fn masks_enough(done: &Job, redact: Option<&[PiiKind]>) -> bool {
    let document_type = done.document_type.unwrap_or(DocumentType::General);
    pii::covers(done.redacted(), &pii::kinds_for(redact, document_type))
}

impl UploadApi {
    /// Whether the job's full result can still be read: a duplicate must never
    /// point at a result the bucket's lifecycle already removed.
    async fn result_is_stored(&self, job: &Job) -> Result<bool, ApiError> {
        let Some(key) = job.result_key() else {
            return Ok(false);
        };
        let found = self
            .blobs
            .head(key)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        Ok(found.is_some())
    }

    /// Checks a request for a job against the schema, then this deployment's
    /// rules (size limit, accepted types, webhook addresses); the job it
    /// describes, or why not.
    fn validate(&self, owner: &Owner, body: Value) -> Result<NewJob, ApiError> {
        let request = parse_request(body)?;
        let content_type = self
            .settings
            .upload
            .limits
            .check_declaration(&request.content_type, request.size)
            .map_err(ApiError::from)?;
        let webhook_url = request
            .webhook_url
            .as_ref()
            .map(|url| {
                check_url(url, self.settings.webhooks)
                    .map(|url| WebhookUrl::checked(&url))
                    .map_err(|error| ApiError::new(ApiCode::InvalidWebhookUrl, error.to_string()))
            })
            .transpose()?;
        Ok(NewJob {
            owner: owner.clone(),
            filename: request.filename,
            content_type,
            declared_size: request.size,
            sha256: request.sha256,
            webhook_url,
            document_type: request.document_type,
            redact: request.redact,
        })
    }

    async fn admit(&self, owner: &Owner, now: Timestamp) -> Result<(), ApiError> {
        let scope = RateScope::Create(owner.clone());
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
            && masks_enough(&done, request.redact.as_deref())
            && self.result_is_stored(&done).await?
        {
            info!(job_id = %done.job_id, "same bytes already read; no upload needed");
            let result_url = api::result_url(self.blobs.as_ref(), &done).await?;
            let mut view = serde_json::to_value(JobView::full(&done, now, result_url))
                .expect("views serialise");
            view["deduplicated"] = json!(true);
            metrics::count(Metric::JobsDeduplicated);
            return Ok((StatusCode::OK, view));
        }

        let upload = &self.settings.upload;
        let job = Job::open(request, now, upload.upload_url_ttl, upload.retention);
        let slot = UploadSlot {
            content_type: job.content_type,
            content_length: job.declared_size,
            sha256: job.sha256().cloned(),
        };
        let presigned = self
            .blobs
            .presign_upload(&job.job_id.upload_key(), &slot, upload.upload_url_ttl)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        self.jobs.create(&job).await?;
        info!(job_id = %job.job_id, size = job.declared_size, "job opened");
        metrics::count(Metric::JobsCreated);
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
            return Err(ApiError::new(
                ApiCode::InvalidBatch,
                format!("a batch holds 1 to {MAX_BATCH} documents"),
            ));
        }
        // A document the request schema itself forbids makes the batch
        // malformed: refused whole, before any job is opened.
        for (index, document) in documents.iter().enumerate() {
            if let Err(error) = parse_request(document.clone()) {
                return Err(ApiError::new(
                    ApiCode::InvalidBatch,
                    format!("documents[{index}]: {}", error.message),
                ));
            }
        }
        let mut results = Vec::with_capacity(documents.len());
        for document in documents {
            results.push(match self.create(owner, document, now).await {
                Ok((status, job)) => json!({"status": status.as_u16(), "job": job}),
                Err(error) => json!({
                    "status": error.status().as_u16(),
                    "error": {"code": error.code, "message": error.message},
                }),
            });
        }
        Ok(results)
    }

    /// `DELETE /v1/jobs/{id}`: the record, the upload, the result and the
    /// chunks of a long PDF an attempt left.
    #[instrument(skip(self), fields(owner = %owner))]
    pub async fn delete(&self, owner: &Owner, raw_id: &str) -> Result<(), ApiError> {
        let job = api::owned_job(self.jobs.as_ref(), owner, raw_id).await?;
        // The record goes first: a worker finishing now finds no job and
        // removes the result it wrote, instead of completing a job whose
        // files are gone.
        self.jobs.delete(&job.job_id).await?;
        // Every job's result, a deduplicated one's copy included, is at its own key.
        for key in [job.job_id.upload_key(), job.job_id.result_key()] {
            self.blobs
                .delete(&key)
                .await
                .map_err(|e| ApiError::internal(&e))?;
        }
        self.blobs
            .delete_prefix(&job.job_id.chunks_prefix())
            .await
            .map_err(|e| ApiError::internal(&e))?;
        info!(job_id = %job.job_id, "job deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ocr_shared::domain::{Completion, DedupKey, JobStatus, Transition};
    use ocr_shared::memory::{MemoryBlobStore, MemoryJobStore, MemoryRateLimiter};
    use ocr_shared::testing;

    use super::*;

    const CREATE: &str = include_str!("../../../events/apigw-create-job.json");
    const SHA: &str = "108ad57e632cf8da9fb13b84ebdabded1dd6c926ad48399f3b6d5b34c4019b73";

    struct Given {
        jobs: Arc<MemoryJobStore>,
        blobs: Arc<MemoryBlobStore>,
        api: UploadApi,
    }

    fn given(create_per_minute: u32) -> Given {
        let jobs = Arc::new(MemoryJobStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let env = std::collections::HashMap::new();
        let mut settings =
            UploadApiSettings::from_env(&ocr_shared::config::Env::new(&env)).unwrap();
        settings.create_per_minute = create_per_minute;
        settings.upload.limits.max_bytes = 1_000_000;
        let api = UploadApi {
            jobs: jobs.clone(),
            blobs: blobs.clone(),
            limiter: Arc::new(MemoryRateLimiter::default()),
            settings,
        };
        Given { jobs, blobs, api }
    }

    /// The sample event with another method, path, body or caller.
    fn request(method: &str, path: &str, body: Option<Value>, sub: Option<&str>) -> Request {
        let mut event: Value = serde_json::from_str(CREATE).unwrap();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(path);
        match body {
            Some(body) => event["body"] = json!(body.to_string()),
            None => {
                event.as_object_mut().unwrap().remove("body");
            }
        }
        match sub {
            Some(sub) => event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub),
            None => {
                event["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorizer");
            }
        }
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    async fn send(given: &Given, request: Request) -> (u16, Value, Option<String>) {
        let response = handle(request, &given.api).await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().to_owned());
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            _ => Value::Null,
        };
        (status, body, retry_after)
    }

    async fn create(given: &Given, body: Value) -> (u16, Value) {
        let (status, body, _) = send(
            given,
            request("POST", "/v1/jobs", Some(body), Some("user-alice")),
        )
        .await;
        (status, body)
    }

    fn document() -> Value {
        json!({"filename": "영수증.png", "content_type": "image/png", "size": 498})
    }

    #[tokio::test]
    async fn the_sample_event_opens_a_job_with_its_upload_slot() {
        let given = given(60);
        let request = lambda_http::request::from_str(CREATE).unwrap();
        let (status, body, _) = send(&given, request).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "awaiting_upload");
        assert_eq!(body["upload"]["method"], "PUT");
        assert_eq!(body["upload"]["headers"]["content-type"], "image/png");
        assert!(
            body["upload"]["expires_at"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        let job_id = ocr_shared::domain::JobId::parse(body["job_id"].as_str().unwrap()).unwrap();
        let job = given.jobs.get(&job_id).await.unwrap().unwrap();
        assert_eq!(job.owner.as_str(), "user-alice");
        assert_eq!(job.filename.as_str(), "영수증.png");
        assert_eq!(job.declared_size, 498);
        assert_eq!(job.status, JobStatus::AwaitingUpload);
        assert!(
            body["upload"]["url"]
                .as_str()
                .unwrap()
                .ends_with(&job_id.upload_key())
        );
    }

    #[tokio::test]
    async fn a_request_without_an_identity_is_unauthorized() {
        let given = given(60);
        let (status, body, _) =
            send(&given, request("POST", "/v1/jobs", Some(document()), None)).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(body["error"]["request_id"], "Jx1AbCdEfGhIjKk=");
    }

    #[tokio::test]
    async fn every_invalid_field_is_refused_with_its_status_and_code() {
        let given = given(60);
        let with = |field: &str, value: Value| {
            let mut body = document();
            body[field] = value;
            body
        };
        let cases = [
            (with("filename", json!("")), 400, "invalid_filename"),
            (
                with("filename", json!("a\u{0007}b")),
                400,
                "invalid_filename",
            ),
            (
                with("content_type", json!("text/html")),
                415,
                "unsupported_type",
            ),
            (with("size", json!(2_000_000)), 413, "file_too_large"),
            (with("size", json!(0)), 400, "empty_file"),
            (with("size", json!(-1)), 422, "invalid_request"),
            (with("size", json!(2.5)), 422, "invalid_request"),
            (with("sha256", json!("abc")), 400, "invalid_sha256"),
            (
                with("webhook_url", json!("http://example.com/hook")),
                400,
                "invalid_webhook_url",
            ),
            (
                with("webhook_url", json!("not a url")),
                400,
                "invalid_webhook_url",
            ),
            (
                with("webhook_url", json!("https://user:pw@example.com/")),
                400,
                "invalid_webhook_url",
            ),
            (
                with("document_type", json!("passport")),
                400,
                "invalid_document_type",
            ),
            (with("redact", json!("all")), 400, "invalid_redact"),
            (with("redact", json!(["rrn", "ssn"])), 400, "invalid_redact"),
            (with("redact", json!({"rrn": true})), 400, "invalid_redact"),
            (with("unexpected", json!(1)), 422, "invalid_request"),
        ];
        for (body, expected_status, code) in cases {
            let (status, response) = create(&given, body.clone()).await;
            assert_eq!(
                (status, response["error"]["code"].as_str()),
                (expected_status, Some(code)),
                "{body}"
            );
            assert!(!response["error"]["message"].as_str().unwrap().is_empty());
        }
        let (status, _, _) = send(&given, {
            let mut event: Value = serde_json::from_str(CREATE).unwrap();
            event["body"] = json!("{not json");
            lambda_http::request::from_str(&event.to_string()).unwrap()
        })
        .await;
        assert_eq!(status, 400);
        assert!(given.jobs.all().is_empty(), "nothing was created");
    }

    #[tokio::test]
    async fn a_declared_hash_of_a_completed_job_is_answered_without_an_upload() {
        let given = given(60);
        let (_, created) = create(&given, with_sha()).await;
        let id = ocr_shared::domain::JobId::parse(created["job_id"].as_str().unwrap()).unwrap();
        complete(&given, &id).await;

        let (status, body) = create(&given, with_sha()).await;
        assert_eq!(status, 200);
        assert_eq!(body["deduplicated"], true);
        assert_eq!(body["job_id"], id.as_str());
        assert_eq!(body["text"], "영수증");
        assert!(body.get("upload").is_none());

        // Asking to mask what the earlier job did not is a job of its own.
        let mut masked = with_sha();
        masked["redact"] = json!(["phone"]);
        let (status, body) = create(&given, masked).await;
        assert_eq!(status, 201, "{body}");
        assert!(body["upload"].is_object());
        let mut nothing = with_sha();
        nothing["redact"] = json!("none");
        assert_eq!(create(&given, nothing).await.0, 200);

        // Another owner with the same hash gets a fresh upload slot.
        let (status, body, _) = send(
            &given,
            request("POST", "/v1/jobs", Some(with_sha()), Some("user-bob")),
        )
        .await;
        assert_eq!(status, 201);
        assert!(body["upload"].is_object());
    }

    fn with_sha() -> Value {
        let mut body = document();
        body["sha256"] = json!(SHA);
        body
    }

    async fn complete(given: &Given, id: &ocr_shared::domain::JobId) {
        let now = Timestamp::now();
        let owner = given.jobs.get(id).await.unwrap().unwrap().owner;
        let digest = DedupKey {
            owner,
            sha256: Sha256Hex::parse(SHA).unwrap(),
        };
        let steps = [
            Transition::Enqueue {
                size: 498,
                digest,
                detected: FileType::Png,
                declared: FileType::Png,
                etag: None,
                pages: None,
            },
            Transition::StartProcessing {
                lease_until: now.plus(Duration::from_secs(60)),
            },
            Transition::Complete {
                attempt: 1,
                completion: Completion {
                    confidence: 0.9,
                    result_key: id.result_key(),
                    // As the worker masks every document by default.
                    redacted: Some(ocr_shared::domain::PiiCounts::from([
                        (PiiKind::Rrn, 0),
                        (PiiKind::ForeignerRrn, 0),
                    ])),
                    ..testing::completion("영수증")
                },
                pages: 1,
                document_type: None,
            },
        ];
        for step in steps {
            given.jobs.transition(id, &step, now).await.unwrap();
        }
        given
            .blobs
            .put(&id.result_key(), "{}".into(), "application/json")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_duplicate_whose_result_is_gone_gets_a_fresh_upload_instead() {
        let given = given(60);
        let (_, created) = create(&given, with_sha()).await;
        let id = ocr_shared::domain::JobId::parse(created["job_id"].as_str().unwrap()).unwrap();
        complete(&given, &id).await;
        // The bucket's lifecycle removed the result before the record's TTL did.
        given.blobs.delete(&id.result_key()).await.unwrap();

        let (status, body) = create(&given, with_sha()).await;
        assert_eq!(status, 201, "{body}");
        assert_ne!(body["job_id"], id.as_str());
        assert!(body["upload"].is_object());
    }

    #[tokio::test]
    async fn creation_past_the_owners_rate_is_429_with_retry_after() {
        let given = given(2);
        for _ in 0..2 {
            assert_eq!(create(&given, document()).await.0, 201);
        }
        let (status, body, retry_after) = send(
            &given,
            request("POST", "/v1/jobs", Some(document()), Some("user-alice")),
        )
        .await;
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "rate_limited");
        let seconds: u64 = retry_after.expect("Retry-After is set").parse().unwrap();
        assert!((1..=60).contains(&seconds));
    }

    /// A POST of `raw` as the body, byte for byte.
    fn raw_request(path: &str, raw: &str) -> Request {
        let mut event: Value = serde_json::from_str(CREATE).unwrap();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        event["body"] = json!(raw);
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!("user-alice");
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[tokio::test]
    async fn malformed_nested_and_repeated_key_bodies_are_invalid_json_with_a_reason() {
        let given = given(100);
        let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for (raw, says) in [
            (r#"{"filename": "a.png", "size": 3"#, "EOF"),
            (nested.as_str(), "recursion limit"),
            (
                r#"{"filename": "a.png", "content_type": "image/png", "size": 3, "size": 99999999}"#,
                "the key `size` appears twice",
            ),
            (
                r#"{"documents": [{"filename": "a", "filename": "b"}]}"#,
                "the key `filename` appears twice",
            ),
        ] {
            for path in ["/v1/jobs", "/v1/jobs/batch"] {
                let (status, body, _) = send(&given, raw_request(path, raw)).await;
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (400, Some("invalid_json")),
                    "{raw:.60}"
                );
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains(says), "{message}");
            }
        }
        assert!(given.jobs.all().is_empty());
    }

    #[tokio::test]
    async fn a_size_written_as_a_whole_float_is_that_many_bytes() {
        let given = given(100);
        let (status, body) = create(
            &given,
            json!({"filename": "scan.png", "content_type": "image/png", "size": 498.0}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(given.jobs.all()[0].declared_size, 498);
    }

    #[tokio::test]
    async fn a_batch_answers_in_order_and_refuses_more_than_twenty() {
        let given = given(100);
        // Over this deployment's size limit: a rule the schema cannot state,
        // so that document alone is refused.
        let body = json!({"documents": [document(), {"filename": "x", "content_type": "image/png", "size": 2_000_000}]});
        let (status, body, _) = send(
            &given,
            request("POST", "/v1/jobs/batch", Some(body), Some("user-alice")),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["results"][0]["status"], 201);
        assert_eq!(body["results"][1]["status"], 413);
        assert_eq!(body["results"][1]["error"]["code"], "file_too_large");

        // What the schema forbids makes the whole batch malformed, and opens nothing.
        let opened = given.jobs.all().len();
        for (bad, says) in [
            (
                json!({"filename": "x", "content_type": "image/gif", "size": 1}),
                "image/gif is not an accepted type",
            ),
            (
                json!({"filename": "x", "content_type": "image/png", "size": 0}),
                "the file is empty",
            ),
            (
                json!({"content_type": "image/png", "size": 3}),
                "missing field `filename`",
            ),
            (
                json!({"filename": "a\u{0085}b", "content_type": "image/png", "size": 3}),
                "filename must be",
            ),
            (
                json!({"filename": "x", "content_type": "image/png", "size": 3, "webhook_url": "not a url"}),
                "webhook",
            ),
        ] {
            let batch = json!({"documents": [document(), bad]});
            let (status, body, _) = send(
                &given,
                request("POST", "/v1/jobs/batch", Some(batch), Some("user-alice")),
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_batch")),
                "{body}"
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("documents[1]: ") && message.contains(says),
                "{message}"
            );
        }
        assert_eq!(
            given.jobs.all().len(),
            opened,
            "a malformed batch opens no job"
        );

        let many = json!({"documents": vec![document(); MAX_BATCH + 1]});
        let (status, body, _) = send(
            &given,
            request("POST", "/v1/jobs/batch", Some(many), Some("user-alice")),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_batch"))
        );
        let empty = json!({"documents": []});
        assert_eq!(
            send(
                &given,
                request("POST", "/v1/jobs/batch", Some(empty), Some("user-alice"))
            )
            .await
            .0,
            400
        );
    }

    #[tokio::test]
    async fn delete_removes_the_owners_job_and_files_and_hides_others() {
        let given = given(60);
        let (_, created) = create(&given, document()).await;
        let id = created["job_id"].as_str().unwrap().to_owned();
        let job_id = ocr_shared::domain::JobId::parse(&id).unwrap();
        given
            .blobs
            .put(&job_id.upload_key(), "x".into(), "image/png")
            .await
            .unwrap();
        given
            .blobs
            .put(&job_id.result_key(), "{}".into(), "application/json")
            .await
            .unwrap();
        // Two chunks an attempt at a long PDF left, and another job's.
        for key in [
            job_id.chunk_key(1, 100),
            job_id.chunk_key(101, 200),
            ocr_shared::domain::JobId::new().chunk_key(1, 100),
        ] {
            given
                .blobs
                .put(&key, "{}".into(), "application/json")
                .await
                .unwrap();
        }

        let path = format!("/v1/jobs/{id}");
        let (status, body, _) =
            send(&given, request("DELETE", &path, None, Some("user-mallory"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
        assert_eq!(
            send(
                &given,
                request("DELETE", "/v1/jobs/not-an-id", None, Some("user-alice"))
            )
            .await
            .0,
            404
        );

        // Each file is removed only once the record is gone, so that nothing
        // can complete the job in between and leave a result behind.
        let record_left = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (jobs, seen) = (given.jobs.clone(), record_left.clone());
        given.blobs.on_delete(move |key| {
            seen.lock()
                .unwrap()
                .push((key.to_owned(), !jobs.all().is_empty()))
        });
        let (status, _, _) = send(&given, request("DELETE", &path, None, Some("user-alice"))).await;
        assert_eq!(status, 204);
        assert!(given.jobs.all().is_empty());
        assert_eq!(
            given.blobs.keys().len(),
            1,
            "only the other job's chunk is left"
        );
        assert!(given.blobs.keys()[0].starts_with("chunks/"));
        assert!(!given.blobs.keys()[0].contains(job_id.as_str()));
        assert_eq!(
            *record_left.lock().unwrap(),
            vec![
                (job_id.upload_key(), false),
                (job_id.result_key(), false),
                (job_id.chunk_key(1, 100), false),
                (job_id.chunk_key(101, 200), false)
            ]
        );
    }

    #[tokio::test]
    async fn unknown_routes_are_404() {
        let given = given(60);
        for (method, path) in [
            ("PUT", "/v1/jobs"),
            ("POST", "/v2/jobs"),
            ("DELETE", "/v1/jobs"),
        ] {
            let (status, body, _) = send(
                &given,
                request(method, path, Some(document()), Some("user-alice")),
            )
            .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{method} {path}"
            );
        }
    }
}
