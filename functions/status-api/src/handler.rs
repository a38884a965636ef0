use std::sync::Arc;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use ocr_shared::api::{self, ApiError, JobView};
use ocr_shared::domain::{Job, JobStatus, Owner, Timestamp};
use ocr_shared::ports::{BlobStore, JobStore, ListQuery};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::instrument;

pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

pub struct StatusApi {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
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

/// A finished job never changes again, so its ETag is stable.
fn etag(job: &Job) -> Option<String> {
    job.status.is_final().then(|| {
        let digest = Sha256::digest(format!("{}:{}", job.job_id, job.updated_at.as_millis()));
        format!("\"{}\"", hex::encode(&digest[..16]))
    })
}

fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == etag || candidate == "*")
}

impl StatusApi {
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
        let tag = etag(&job);
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

    /// `GET /v1/jobs?status=&limit=&cursor=`: the caller's jobs, newest first, without their text.
    #[instrument(skip(self, request), fields(owner = %owner))]
    pub async fn list(&self, owner: &Owner, request: &Request) -> Result<Response<Body>, ApiError> {
        let params = request.query_string_parameters();
        let status = params
            .first("status")
            .map(|raw| {
                JobStatus::parse(raw).ok_or_else(|| {
                    let known: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::bad_request(
                        "invalid_status",
                        format!("status must be one of: {}", known.join(", ")),
                    )
                })
            })
            .transpose()?;
        let limit = match params.first("limit") {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_limit", format!("limit must be 1 to {MAX_PAGE}"))
                })?,
        };
        let query = ListQuery {
            status,
            limit,
            cursor: params.first("cursor").map(str::to_owned),
        };
        let page = self.jobs.list_by_owner(owner, &query).await?;
        let now = Timestamp::now();
        let jobs: Vec<JobView> = page
            .jobs
            .iter()
            .map(|job| JobView::summary(job, now))
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
                StatusCode::CONFLICT,
                "result_not_ready",
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
