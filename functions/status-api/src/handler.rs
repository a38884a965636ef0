//! The status API: `GET /v1/jobs/{id}`, `GET /v1/jobs`, `GET /v1/jobs/{id}/result`
//! and `GET /v1/webhooks/key`. It owns the reads a client makes: the owner
//! check (another owner's job is a 404), ETags, listing filters and cursors,
//! and the short-lived links to full results.

use std::sync::Arc;

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use ocr_shared::api::{self, ApiCode, ApiError};
use ocr_shared::domain::{DocumentType, Job, JobStatus, Owner, SearchQuery, Timestamp};
use ocr_shared::ports::{BlobStore, JobStore, ListQuery, SecretSource};
use ocr_shared::view::JobView;
use ocr_shared::webhook::{SIGNATURE_HEADER, owner_key};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::instrument;

pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;
/// Where an owner reads the key their webhooks are signed with.
pub const WEBHOOK_KEY_PATH: &str = "/v1/webhooks/key";

pub struct StatusApi {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// The master webhook secret, from which each owner's signing key is derived.
    pub secrets: Arc<dyn SecretSource>,
    pub webhook_secret_id: String,
}

/// Entry point: every outcome, error or not, is an HTTP response.
pub async fn handle(request: Request, api: &StatusApi) -> Result<Response<Body>, Error> {
    let request_id = api::request_id(&request);
    Ok(match route(request, api).await {
        Ok(response) => response,
        Err(error) => error.into_response(&request_id),
    })
}

async fn route(request: Request, api: &StatusApi) -> Result<Response<Body>, ApiError> {
    let owner = api::caller(&request)?;
    if request.method() != Method::GET {
        return Err(ApiError::route_not_found());
    }
    let path = request.uri().path().trim_end_matches('/').to_owned();
    if path == WEBHOOK_KEY_PATH {
        return api.webhook_key(&owner).await;
    }
    let segments: Vec<&str> = match path.strip_prefix("/v1/jobs") {
        Some("") => Vec::new(),
        Some(rest) if rest.starts_with('/') => rest[1..].split('/').collect(),
        _ => return Err(ApiError::route_not_found()),
    };
    let now = Timestamp::now();
    match segments.as_slice() {
        [] => api.list(&owner, &request).await,
        [id] => {
            let if_none_match = request
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            api.job(&owner, id, if_none_match.as_deref(), now).await
        }
        [id, "result"] => api.result(&owner, id).await,
        _ => Err(ApiError::route_not_found()),
    }
}

/// A finished job's status never changes again, but its body still can (the
/// webhook's delivery state): the ETag is a digest of everything the body
/// shows except the presigned link, which differs on every read.
fn etag(job: &Job, now: Timestamp) -> Option<String> {
    job.status.is_final().then(|| {
        let view = serde_json::to_vec(&JobView::full(job, now, None)).expect("views serialise");
        format!("\"{}\"", hex::encode(&Sha256::digest(view)[..16]))
    })
}

fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == etag || candidate == "*")
}

impl StatusApi {
    /// `GET /v1/webhooks/key`: the caller's own signing key, never another's.
    #[instrument(skip(self), fields(owner = %owner))]
    pub async fn webhook_key(&self, owner: &Owner) -> Result<Response<Body>, ApiError> {
        let master = self
            .secrets
            .secret(&self.webhook_secret_id)
            .await
            .map_err(|error| ApiError::internal(&error))?;
        let key = owner_key(master.expose_secret().as_bytes(), owner);
        let mut response = api::json_response(
            StatusCode::OK,
            &json!({"key": key, "algorithm": "HMAC-SHA256", "header": SIGNATURE_HEADER}),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// `GET /v1/jobs/{id}`.
    #[instrument(skip(self, if_none_match, now), fields(owner = %owner))]
    pub async fn job(
        &self,
        owner: &Owner,
        raw_id: &str,
        if_none_match: Option<&str>,
        now: Timestamp,
    ) -> Result<Response<Body>, ApiError> {
        let job = api::owned_job(self.jobs.as_ref(), owner, raw_id).await?;
        let tag = etag(&job, now);
        if let (Some(tag), Some(if_none_match)) = (&tag, if_none_match)
            && matches_etag(if_none_match, tag)
        {
            let mut response = api::empty_response(StatusCode::NOT_MODIFIED);
            response.headers_mut().insert(
                header::ETAG,
                HeaderValue::from_str(tag).expect("hex is a valid header"),
            );
            return Ok(response);
        }
        let result_url = api::result_url(self.blobs.as_ref(), &job).await?;
        let mut response =
            api::json_response(StatusCode::OK, &JobView::full(&job, now, result_url));
        if let Some(tag) = tag {
            response.headers_mut().insert(
                header::ETAG,
                HeaderValue::from_str(&tag).expect("hex is a valid header"),
            );
        }
        Ok(response)
    }

    /// `GET /v1/jobs?q=&document_type=&created_after=&created_before=&status=&limit=&cursor=`:
    /// the caller's jobs, newest first, without their text; with `q`, those
    /// whose text holds it, each with a snippet.
    #[instrument(skip(self, request), fields(owner = %owner))]
    pub async fn list(&self, owner: &Owner, request: &Request) -> Result<Response<Body>, ApiError> {
        let query = list_query(&request.query_string_parameters())?;
        let page = self.jobs.list_by_owner(owner, &query).await?;
        let now = Timestamp::now();
        let jobs: Vec<JobView> = page
            .jobs
            .iter()
            .map(|job| {
                let mut view = JobView::summary(job, now);
                if let Some(search) = &query.search {
                    view.snippet = job.text().map(|text| search.snippet(text));
                }
                view
            })
            .collect();
        Ok(api::json_response(
            StatusCode::OK,
            &json!({"jobs": jobs, "next_cursor": page.next_cursor}),
        ))
    }

    /// `GET /v1/jobs/{id}/result`: a redirect to the full result.
    #[instrument(skip(self), fields(owner = %owner))]
    pub async fn result(&self, owner: &Owner, raw_id: &str) -> Result<Response<Body>, ApiError> {
        let job = api::owned_job(self.jobs.as_ref(), owner, raw_id).await?;
        let Some(url) = api::result_url(self.blobs.as_ref(), &job).await? else {
            return Err(ApiError::new(
                ApiCode::ResultNotReady,
                format!(
                    "the job is {}; a result exists only once it is completed",
                    job.status
                ),
            ));
        };
        let response = Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            .body(Body::Empty)
            .expect("a redirect with a valid location");
        Ok(response)
    }
}

/// A listing's filters, each checked, from its query string.
fn list_query(params: &QueryMap) -> Result<ListQuery, ApiError> {
    let status = api::one_of(
        params.first("status"),
        "status",
        ApiCode::InvalidStatus,
        &JobStatus::ALL,
        JobStatus::as_str,
    )?;
    let search = params
        .first("q")
        .map(|raw| {
            SearchQuery::parse(raw)
                .map_err(|error| ApiError::new(ApiCode::InvalidQuery, error.to_string()))
        })
        .transpose()?;
    let document_type = api::one_of(
        params.first("document_type"),
        "document_type",
        ApiCode::InvalidDocumentType,
        &DocumentType::ALL,
        DocumentType::as_str,
    )?;
    Ok(ListQuery {
        status,
        limit: page_limit(params.first("limit"))?,
        // `cursor=` (empty) is the first page, as no cursor is.
        cursor: params
            .first("cursor")
            .filter(|cursor| !cursor.is_empty())
            .map(str::to_owned),
        search,
        document_type,
        created_after: instant(params.first("created_after"), "created_after")?,
        created_before: instant(params.first("created_before"), "created_before")?,
        needs_review: api::one_of(
            params.first("needs_review"),
            "needs_review",
            ApiCode::InvalidFilter,
            &[true, false],
            |wanted| if wanted { "true" } else { "false" },
        )?,
    })
}

/// `limit`: 1 to `MAX_PAGE`, `DEFAULT_PAGE` when absent.
fn page_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|limit| (1..=MAX_PAGE).contains(limit))
        .ok_or_else(|| {
            ApiError::new(
                ApiCode::InvalidLimit,
                format!("limit must be 1 to {MAX_PAGE}"),
            )
        })
}

/// An optional RFC 3339 query parameter as an instant.
fn instant(raw: Option<&str>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw).ok_or_else(|| {
            ApiError::new(
                ApiCode::InvalidDate,
                format!("{name} must be an RFC 3339 instant, such as 2026-11-27T09:00:00Z"),
            )
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ocr_shared::domain::{Completion, FileType, JobError, JobId, Sha256Hex, Transition};
    use ocr_shared::memory::{MemoryBlobStore, MemoryJobStore, MemorySecrets};
    use ocr_shared::testing;
    use serde_json::Value;

    use super::*;

    const GET: &str = include_str!("../../../events/apigw-get-job.json");

    fn api() -> (Arc<MemoryJobStore>, StatusApi) {
        let jobs = Arc::new(MemoryJobStore::default());
        let api = StatusApi {
            jobs: jobs.clone(),
            blobs: Arc::new(MemoryBlobStore::default()),
            secrets: Arc::new(MemorySecrets::default().with("webhook", "master")),
            webhook_secret_id: "webhook".into(),
        };
        (jobs, api)
    }

    fn request(path_and_query: &str, sub: &str, if_none_match: Option<&str>) -> Request {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut event: Value = serde_json::from_str(GET).unwrap();
        // API Gateway hands the raw query encoded and the parameters decoded.
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let raw_query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        event["rawPath"] = json!(path);
        event["rawQueryString"] = json!(raw_query);
        event["requestContext"]["http"]["path"] = json!(path);
        event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(sub);
        if !pairs.is_empty() {
            let params: serde_json::Map<String, Value> =
                pairs.into_iter().map(|(k, v)| (k, json!(v))).collect();
            event["queryStringParameters"] = Value::Object(params);
        }
        if let Some(tag) = if_none_match {
            event["headers"]["if-none-match"] = json!(tag);
        }
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    async fn get(api: &StatusApi, request: Request) -> (u16, lambda_http::http::HeaderMap, Value) {
        let response = handle(request, api).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Text(text) => serde_json::from_str(&text).unwrap(),
            _ => Value::Null,
        };
        (parts.status.as_u16(), parts.headers, body)
    }

    async fn job(jobs: &MemoryJobStore, owner: &str, at: Timestamp) -> Job {
        let job = testing::open(testing::request(owner, "계약서.pdf", FileType::Pdf, 10), at);
        testing::create_and_move(jobs, &job, &[], at).await
    }

    async fn run(jobs: &MemoryJobStore, job: &Job, last: Transition) -> Job {
        let now = Timestamp::now();
        let steps = [
            testing::enqueue(job, 10, Sha256Hex::from_digest([3; 32]), None),
            Transition::StartProcessing {
                lease_until: now.plus(Duration::from_secs(60)),
            },
            last,
        ];
        let mut current = job.clone();
        for step in steps {
            current = jobs.transition(&job.job_id, &step, now).await.unwrap();
        }
        current
    }

    fn completed() -> Transition {
        Transition::Complete {
            attempt: 1,
            completion: Completion {
                confidence: 0.88,
                ..testing::completion("임대차 계약서")
            },
            pages: 2,
            document_type: Some(ocr_shared::domain::DocumentType::Contract),
        }
    }

    #[tokio::test]
    async fn a_completed_job_shows_its_text_and_link_and_answers_304_to_its_etag() {
        let (jobs, api) = api();
        // A job with a webhook: only such a job records a delivery.
        let hooked = ocr_shared::domain::NewJob {
            webhook_url: Some(ocr_shared::domain::WebhookUrl::checked(
                &"https://example.com/hook".parse().unwrap(),
            )),
            ..testing::request("user-alice", "계약서.pdf", FileType::Pdf, 10)
        };
        let job = testing::open(hooked, Timestamp::now());
        testing::create_and_move(jobs.as_ref(), &job, &[], Timestamp::now()).await;
        run(&jobs, &job, completed()).await;
        let path = format!("/v1/jobs/{}", job.job_id);
        let (status, headers, body) = get(&api, request(&path, "user-alice", None)).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "completed");
        assert_eq!(body["text"], "임대차 계약서");
        assert_eq!(body["document_type"], "contract");
        assert_eq!(
            (body["pages"].as_u64(), body["confidence"].as_f64()),
            (Some(2), Some(0.88))
        );
        assert!(
            body["result_url"]
                .as_str()
                .unwrap()
                .contains("results/x.json")
        );
        assert!(body.get("error").is_none());
        let etag = headers["etag"].to_str().unwrap().to_owned();

        let (status, headers, body) = get(&api, request(&path, "user-alice", Some(&etag))).await;
        assert_eq!((status, body), (304, Value::Null));
        assert_eq!(headers["etag"].to_str().unwrap(), etag);
        let (status, _, _) = get(
            &api,
            request(&path, "user-alice", Some("W/\"stale\", \"older\"")),
        )
        .await;
        assert_eq!(status, 200);

        // The webhook was delivered since: the body changed, so must the ETag.
        jobs.record_webhook(
            &job.job_id,
            &ocr_shared::domain::WebhookState {
                status: ocr_shared::domain::WebhookStatus::Delivered,
                attempts: 1,
                last_error: None,
                delivered_at: Some(Timestamp::now()),
            },
        )
        .await
        .unwrap();
        let (status, headers, body) = get(&api, request(&path, "user-alice", Some(&etag))).await;
        assert_eq!(status, 200, "a stale ETag must not answer 304");
        assert_eq!(body["webhook"]["status"], "delivered");
        assert_ne!(headers["etag"].to_str().unwrap(), etag);
    }

    #[tokio::test]
    async fn failed_jobs_show_their_error_and_unfinished_ones_no_etag() {
        let (jobs, api) = api();
        let failed = job(&jobs, "user-alice", Timestamp::now()).await;
        let error = JobError::new(
            ocr_shared::domain::ErrorCode::UnsupportedDocument,
            "Upstage could not read the document (415)",
        );
        run(
            &jobs,
            &failed,
            Transition::Fail {
                attempt: 1,
                error: error.clone(),
            },
        )
        .await;
        let (_, headers, body) = get(
            &api,
            request(&format!("/v1/jobs/{}", failed.job_id), "user-alice", None),
        )
        .await;
        assert_eq!(body["status"], "failed");
        assert_eq!(body["error"]["code"], "unsupported_document");
        assert!(headers.contains_key("etag"));
        assert!(body.get("text").is_none());

        let waiting = job(&jobs, "user-alice", Timestamp::now()).await;
        let (_, headers, body) = get(
            &api,
            request(&format!("/v1/jobs/{}", waiting.job_id), "user-alice", None),
        )
        .await;
        assert_eq!(body["status"], "awaiting_upload");
        assert!(body["upload_expires_at"].is_string());
        assert!(!headers.contains_key("etag"));
    }

    #[tokio::test]
    async fn an_upload_slot_that_ran_out_reports_expired() {
        let (jobs, api) = api();
        let two_hours_ago = Timestamp::from_millis(Timestamp::now().as_millis() - 2 * 3600 * 1000);
        let stale = job(&jobs, "user-alice", two_hours_ago).await;
        let (_, _, body) = get(
            &api,
            request(&format!("/v1/jobs/{}", stale.job_id), "user-alice", None),
        )
        .await;
        assert_eq!(body["status"], "expired");
    }

    #[tokio::test]
    async fn a_job_past_its_retention_is_never_served() {
        let (jobs, api) = api();
        let past_retention = testing::RETENTION + Duration::from_secs(86_400);
        let long_ago = Timestamp::from_millis(
            Timestamp::now().as_millis() - past_retention.as_millis() as i64,
        );
        let old = job(&jobs, "user-alice", long_ago).await;
        run(&jobs, &old, completed()).await;
        for path in [
            format!("/v1/jobs/{}", old.job_id),
            format!("/v1/jobs/{}/result", old.job_id),
        ] {
            let (status, _, body) = get(&api, request(&path, "user-alice", None)).await;
            assert_eq!(status, 404, "{path}: {body}");
        }
        let (status, _, listing) = get(&api, request("/v1/jobs", "user-alice", None)).await;
        assert_eq!(status, 200);
        assert_eq!(listing["jobs"], json!([]));
    }

    #[tokio::test]
    async fn the_result_redirects_when_ready_and_conflicts_before() {
        let (jobs, api) = api();
        let job = job(&jobs, "user-alice", Timestamp::now()).await;
        let path = format!("/v1/jobs/{}/result", job.job_id);
        let (status, _, body) = get(&api, request(&path, "user-alice", None)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("result_not_ready"))
        );
        run(&jobs, &job, completed()).await;
        let (status, headers, _) = get(&api, request(&path, "user-alice", None)).await;
        assert_eq!(status, 302);
        assert!(
            headers["location"]
                .to_str()
                .unwrap()
                .contains("results/x.json")
        );
    }

    #[tokio::test]
    async fn each_owner_reads_their_own_webhook_key_and_no_one_elses() {
        let (_, api) = api();
        let (status, headers, alice) = get(&api, request("/v1/webhooks/key", "alice", None)).await;
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "no-store");
        let owner = |name: &str| Owner::parse(name).unwrap();
        assert_eq!(alice["key"], owner_key(b"master", &owner("alice")));
        assert_eq!(alice["header"], "Lambda-OCR-Signature");
        let (_, _, bob) = get(&api, request("/v1/webhooks/key", "bob", None)).await;
        assert_eq!(bob["key"], owner_key(b"master", &owner("bob")));
        assert_ne!(alice["key"], bob["key"]);
        assert_ne!(alice["key"], "master", "the master secret never leaves");
    }

    #[tokio::test]
    async fn another_owners_job_and_unknown_ids_are_404() {
        let (jobs, api) = api();
        let job = job(&jobs, "user-alice", Timestamp::now()).await;
        for path in [
            format!("/v1/jobs/{}", job.job_id),
            format!("/v1/jobs/{}/result", job.job_id),
            format!("/v1/jobs/{}", JobId::new()),
            "/v1/jobs/../../etc".to_owned(),
            format!("/v1/jobs/{}/words", job.job_id),
        ] {
            let (status, _, body) = get(&api, request(&path, "user-mallory", None)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn listing_filters_by_status_pages_with_a_cursor_and_checks_its_parameters() {
        let (jobs, api) = api();
        let base = Timestamp::now();
        for i in 0..5 {
            let created = job(&jobs, "user-alice", base.plus(Duration::from_millis(i))).await;
            if i % 2 == 0 {
                run(&jobs, &created, completed()).await;
            }
        }
        job(&jobs, "user-bob", base).await;

        let (status, _, body) = get(
            &api,
            request("/v1/jobs?status=completed&limit=2", "user-alice", None),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["jobs"].as_array().unwrap().len(), 2);
        assert!(
            body["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|job| job["status"] == "completed")
        );
        assert!(body["jobs"][0].get("text").is_none());
        let cursor = body["next_cursor"].as_str().unwrap().to_owned();
        let next = format!("/v1/jobs?status=completed&limit=2&cursor={cursor}");
        let (_, _, body) = get(&api, request(&next, "user-alice", None)).await;
        assert_eq!(body["jobs"].as_array().unwrap().len(), 1);
        assert_eq!(body["next_cursor"], Value::Null);

        let (_, _, body) = get(&api, request("/v1/jobs", "user-alice", None)).await;
        assert_eq!(body["jobs"].as_array().unwrap().len(), 5);
        // An empty cursor is the first page, as the spec's optional string allows.
        let (status, _, body) = get(&api, request("/v1/jobs?cursor=", "user-alice", None)).await;
        assert_eq!((status, body["jobs"].as_array().unwrap().len()), (200, 5));

        for (query, code) in [
            ("/v1/jobs?status=done", "invalid_status"),
            ("/v1/jobs?limit=0", "invalid_limit"),
            ("/v1/jobs?limit=101", "invalid_limit"),
            ("/v1/jobs?cursor=garbage", "invalid_cursor"),
        ] {
            let (status, _, body) = get(&api, request(query, "user-alice", None)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some(code)),
                "{query}"
            );
        }
    }

    #[tokio::test]
    async fn a_search_answers_its_hits_with_snippets_and_checks_its_parameters() {
        let (jobs, api) = api();
        let base = Timestamp::now();
        let texts = [
            "임대차 계약서\n특약 사항: 애완동물 불가",
            "영수증 합계 5,000원",
        ];
        for (i, text) in texts.iter().enumerate() {
            let created = job(
                &jobs,
                "user-alice",
                base.plus(Duration::from_millis(i as u64)),
            )
            .await;
            let completion = testing::completion(text);
            run(
                &jobs,
                &created,
                Transition::Complete {
                    attempt: 1,
                    completion,
                    pages: 2,
                    document_type: Some(ocr_shared::domain::DocumentType::Contract),
                },
            )
            .await;
        }
        let (status, _, body) = get(&api, request("/v1/jobs?q=특약사항", "user-alice", None)).await;
        assert_eq!(status, 200, "{body}");
        let hits = body["jobs"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{body}");
        assert_eq!(hits[0]["snippet"], "임대차 계약서 특약 사항: 애완동물 불가");
        assert!(hits[0].get("text").is_none(), "a hit is a summary");
        assert_eq!(
            hits[0]["needs_review"], false,
            "a completed job says whether"
        );
        let (_, _, body) = get(
            &api,
            request("/v1/jobs?needs_review=true", "user-alice", None),
        )
        .await;
        assert!(body["jobs"].as_array().unwrap().is_empty(), "{body}");
        let (_, _, body) = get(&api, request("/v1/jobs", "user-alice", None)).await;
        assert!(
            body["jobs"][0].get("snippet").is_none(),
            "a listing has none"
        );
        let (_, _, body) = get(
            &api,
            request("/v1/jobs?q=계약&document_type=receipt", "user-alice", None),
        )
        .await;
        assert!(body["jobs"].as_array().unwrap().is_empty(), "{body}");
        let (_, _, body) = get(&api, request("/v1/jobs?q=합계", "user-bob", None)).await;
        assert!(
            body["jobs"].as_array().unwrap().is_empty(),
            "another owner's text"
        );

        for (query, code) in [
            ("/v1/jobs?q=%20", "invalid_query"),
            ("/v1/jobs?q=\t", "invalid_query"),
            ("/v1/jobs?document_type=menu", "invalid_document_type"),
            ("/v1/jobs?created_after=yesterday", "invalid_date"),
            (
                "/v1/jobs?created_before=2026-13-01T00:00:00Z",
                "invalid_date",
            ),
            ("/v1/jobs?needs_review=yes", "invalid_filter"),
        ] {
            let (status, _, body) = get(&api, request(query, "user-alice", None)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some(code)),
                "{query}"
            );
        }
        let window = "/v1/jobs?created_after=2000-01-01T00:00:00Z&created_before=2000-01-02T00:00:00%2B09:00";
        let (status, _, body) = get(&api, request(window, "user-alice", None)).await;
        assert_eq!((status, body["jobs"].as_array().unwrap().len()), (200, 0));
    }
}
