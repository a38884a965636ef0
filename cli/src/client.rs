//! The API as a client sees it: `ocr submit`, `ocr status`, `ocr list`,
//! `ocr search` and `ocr delete`, over the API's own job view. Talks to
//! `ocr dev` or to a deployed stack alike (`--api`, `--token`).

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use ocr_shared::domain::JobStatus;
use ocr_shared::view::JobView;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The piece of a file sent between two progress updates.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// A job as the API answers it: its view, and whether it was answered from
/// an earlier job with the same bytes (the create call's 200).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnsweredJob {
    #[serde(flatten)]
    pub view: JobView,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deduplicated: bool,
}

/// One page of a listing or a search, as the API answers it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub jobs: Vec<JobView>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

fn read_answer<T: serde::de::DeserializeOwned>(body: Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(body)
        .with_context(|| format!("the API's {what} is not of its own shape"))
}

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// An error answer of the API, with its code and sentence.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl Api {
    pub fn new(base: &str, token: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
        let response = request
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {}", self.base))?;
        let status = response.status();
        let text = response.text().await?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok((status, body));
        }
        let (code, message) = match &body {
            Value::Object(_) if body["error"].is_object() => (
                body["error"]["code"].as_str().unwrap_or("error").to_owned(),
                body["error"]["message"].as_str().unwrap_or("").to_owned(),
            ),
            // API Gateway's own answers (401, 404 of an unknown route).
            Value::Object(_) => (
                status.as_u16().to_string(),
                body["message"].as_str().unwrap_or("").to_owned(),
            ),
            other => (status.as_u16().to_string(), other.to_string()),
        };
        Err(ApiFailure {
            status,
            code,
            message,
        }
        .into())
    }

    pub async fn create(
        &self,
        document: &Document,
        webhook: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut body = json!({
            "filename": document.filename,
            "content_type": document.content_type,
            "size": document.bytes.len(),
            "sha256": document.sha256,
        });
        if let Some(url) = webhook {
            body["webhook_url"] = json!(url);
        }
        self.send(self.http.post(format!("{}/v1/jobs", self.base)).json(&body))
            .await
    }

    pub async fn job(&self, id: &str) -> anyhow::Result<AnsweredJob> {
        let (_, body) = self
            .send(self.http.get(format!("{}/v1/jobs/{id}", self.base)))
            .await?;
        read_answer(body, "job")
    }

    /// `DELETE /v1/jobs/{id}`: the job, its upload and its result are gone.
    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let url = format!("{}/v1/jobs/{id}", self.base);
        self.send(self.http.delete(url)).await?;
        Ok(())
    }

    /// `ocr delete`: each job in turn, said as it goes.
    pub async fn delete_all(&self, ids: &[String]) -> anyhow::Result<()> {
        for id in ids {
            self.delete(id).await?;
            println!("deleted {id}");
        }
        Ok(())
    }

    /// `GET /v1/jobs` with these filters: one page.
    pub async fn list(&self, params: &ListParams, cursor: Option<&str>) -> anyhow::Result<Listing> {
        let mut url = url::Url::parse(&format!("{}/v1/jobs", self.base))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &params.limit.to_string());
            let optional = [
                ("q", params.query.as_deref()),
                ("status", params.status.as_deref()),
                ("document_type", params.document_type.as_deref()),
                ("created_after", params.created_after.as_deref()),
                ("created_before", params.created_before.as_deref()),
                ("needs_review", params.needs_review.then_some("true")),
                ("cursor", cursor),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
        }
        let request = self.http.get(url);
        read_answer(self.send(request).await?.1, "listing")
    }

    /// PUTs `document` to the presigned URL of `created`, reporting bytes sent to `progress`.
    pub async fn upload(
        &self,
        created: &Value,
        document: &Document,
        progress: &ProgressBar,
    ) -> anyhow::Result<()> {
        let upload = &created["upload"];
        let url = upload["url"]
            .as_str()
            .ok_or_else(|| anyhow!("the API gave no upload URL"))?;
        let chunks: Vec<Bytes> = document
            .bytes
            .chunks(UPLOAD_CHUNK)
            .map(Bytes::copy_from_slice)
            .collect();
        let bar = progress.clone();
        let stream = futures::stream::iter(chunks).map(move |chunk| {
            bar.inc(chunk.len() as u64);
            Ok::<_, std::io::Error>(chunk)
        });
        let mut request = self
            .http
            .put(url)
            .body(reqwest::Body::wrap_stream(stream))
            .timeout(Duration::from_secs(600));
        // Every signed header, exactly as given; content-length too, so the body is not chunked.
        if let Some(headers) = upload["headers"].as_object() {
            for (name, value) in headers {
                request = request.header(name, value.as_str().unwrap_or_default());
            }
        }
        if upload["headers"].get("content-length").is_none() {
            request = request.header("content-length", document.bytes.len());
        }
        let response = request
            .send()
            .await
            .context("the upload did not reach storage")?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("storage refused the upload ({status}): {}", text.trim());
        }
        Ok(())
    }

    /// Polls the job with backoff until it is final, or `timeout`.
    pub async fn wait(
        &self,
        id: &str,
        timeout: Duration,
        spinner: &ProgressBar,
    ) -> anyhow::Result<AnsweredJob> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(300);
        loop {
            let job = self.job(id).await?;
            show_progress(&job.view, spinner);
            let status = job.view.status;
            if status.is_final() {
                return Ok(job);
            }
            if started.elapsed() > timeout {
                bail!("job {id} is still {status} after {} s", timeout.as_secs());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(3));
        }
    }
}

/// A file to submit: its bytes, the type its content shows, its SHA-256.
pub struct Document {
    pub filename: String,
    pub content_type: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

impl Document {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let filename = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "document".into());
        // What the bytes are, not what the name says; the API judges the claim.
        let content_type = infer::get(&bytes)
            .map(|kind| kind.mime_type().to_owned())
            .unwrap_or_else(|| "application/octet-stream".into());
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Ok(Self {
            filename,
            content_type,
            sha256,
            bytes,
        })
    }
}

pub struct SubmitOptions {
    pub wait: bool,
    /// Where the job's final event is POSTed, signed.
    pub webhook: Option<String>,
    pub json: bool,
    pub timeout: Duration,
}

fn bar(len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:24!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// The job's status on `progress`; once its page count is known (a PDF), the
/// spinner becomes a bar of the pages read so far.
pub fn show_progress(job: &JobView, progress: &ProgressBar) {
    progress.set_message(format!("{}: {}", job.job_id, job.status));
    let (Some(pages), Some(done)) = (job.pages.map(u64::from), job.pages_done.map(u64::from))
    else {
        return;
    };
    if progress.length() != Some(pages) {
        progress.set_style(
            ProgressStyle::with_template("{msg:24!} [{bar:30}] {pos}/{len} pages")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        progress.set_length(pages);
    }
    progress.set_position(done);
}

fn spinner(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// Submits each file in turn; returns whether every one ended well.
pub async fn submit(
    api: &Api,
    files: &[std::path::PathBuf],
    options: &SubmitOptions,
) -> anyhow::Result<bool> {
    let quiet = options.json || !std::io::stderr().is_terminal();
    let mut all_good = true;
    for path in files {
        let outcome = submit_one(api, path, options, quiet).await;
        match outcome {
            Ok(job) => {
                let status = job.view.status;
                // Without --wait, a job still under way is fine too.
                all_good &= status == JobStatus::Completed || (!options.wait && !status.is_final());
                if options.json {
                    println!("{}", serde_json::to_string(&job)?);
                } else {
                    print_job(&path.display().to_string(), &job);
                }
            }
            Err(error) => {
                all_good = false;
                if options.json {
                    let failure = error.downcast_ref::<ApiFailure>();
                    println!(
                        "{}",
                        json!({
                            "file": path.display().to_string(),
                            "error": {
                                "code": failure.map(|f| f.code.as_str()).unwrap_or("client_error"),
                                "message": failure.map(|f| f.message.clone()).unwrap_or_else(|| format!("{error:#}")),
                            }
                        })
                    );
                } else {
                    eprintln!("{}: {error:#}", path.display());
                }
            }
        }
    }
    Ok(all_good)
}

async fn submit_one(
    api: &Api,
    path: &Path,
    options: &SubmitOptions,
    quiet: bool,
) -> anyhow::Result<AnsweredJob> {
    let document = Document::read(path)?;
    let (status, created) = api.create(&document, options.webhook.as_deref()).await?;
    let id = created["job_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the API gave no job id"))?
        .to_owned();
    if status == StatusCode::OK && created["deduplicated"] == json!(true) {
        // The same bytes were read before: the answer is already there.
        return read_answer(created, "job");
    }
    let progress = bar(document.bytes.len() as u64, quiet);
    progress.set_message(document.filename.clone());
    api.upload(&created, &document, &progress).await?;
    progress.finish();
    if !options.wait {
        return api.job(&id).await;
    }
    let spinner = spinner(quiet);
    let job = api.wait(&id, options.timeout, &spinner).await;
    spinner.finish_and_clear();
    job
}

/// `ocr status`: the job as the API gave it (`json`), or for a person.
pub fn show_job(job: &AnsweredJob, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(job)?);
    } else {
        print_job("job", job);
    }
    Ok(())
}

/// A job for a person: one line of facts, then its text or its error.
pub fn print_job(label: &str, job: &AnsweredJob) {
    let view = &job.view;
    let mut facts = vec![view.job_id.to_string(), view.status.to_string()];
    if let Some(kind) = view.document_type {
        facts.push(kind.as_str().to_owned());
    }
    if let Some(confidence) = view.confidence {
        facts.push(format!("confidence {confidence:.2}"));
    }
    if let Some(pages) = view.pages {
        facts.push(format!("{pages} page(s)"));
    }
    if job.deduplicated {
        facts.push("same bytes as an earlier job: not read again".into());
    }
    println!("{label}: {}", facts.join(" · "));
    if view.needs_review == Some(true) {
        let pages: Vec<String> = view
            .review_pages
            .iter()
            .flatten()
            .map(u32::to_string)
            .collect();
        println!(
            "  needs review: read with low confidence{}",
            if pages.is_empty() {
                String::new()
            } else {
                format!(" on page(s) {}", pages.join(", "))
            }
        );
    }
    if let Some(issues) = view
        .quality_issues
        .as_ref()
        .filter(|issues| !issues.is_empty())
    {
        let named: Vec<&str> = issues.iter().map(|issue| issue.label()).collect();
        println!("  image quality: {}", named.join(", "));
    }
    if let Some(error) = &view.error {
        println!("  {}: {}", error.code, error.message);
    }
    if let Some(text) = &view.text {
        println!("{text}");
    }
}

/// The filters of `ocr list` and `ocr search`, as the API names them.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    pub query: Option<String>,
    pub needs_review: bool,
    pub status: Option<String>,
    pub document_type: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub limit: u32,
}

/// Pages a search reads at most before it hands back a cursor: each page
/// costs a request, and a rare phrase in a large history empties many.
const SEARCH_PAGES: usize = 20;

/// `ocr search`: follows the cursor through pages the filter emptied until
/// `limit` hits are found or the listing ends; one page of the API's shape.
pub async fn search(
    api: &Api,
    params: &ListParams,
    cursor: Option<&str>,
) -> anyhow::Result<Listing> {
    let mut hits = Listing::default();
    let mut cursor = cursor.map(str::to_owned);
    for _ in 0..SEARCH_PAGES {
        let mut page = params.clone();
        page.limit = params.limit - hits.jobs.len() as u32;
        let listing = api.list(&page, cursor.as_deref()).await?;
        hits.jobs.extend(listing.jobs);
        cursor = listing.next_cursor;
        if cursor.is_none() || hits.jobs.len() as u32 >= params.limit {
            break;
        }
    }
    hits.next_cursor = cursor;
    Ok(hits)
}

/// `ocr list`: a line per job, newest first (a search's with its snippet
/// below), and the command for the next page: `more` is that command
/// without its cursor.
pub fn print_list(listing: &Listing, more: &str) {
    if listing.jobs.is_empty() {
        println!("no jobs");
    }
    for job in &listing.jobs {
        let kind = job.document_type.map_or("-", |kind| kind.as_str());
        println!(
            "{}  {:<16} {:<22} {}  {}",
            job.job_id,
            job.status.as_str(),
            kind,
            job.created_at,
            job.filename,
        );
        if let Some(snippet) = &job.snippet {
            println!("    {snippet}");
        }
    }
    if let Some(cursor) = &listing.next_cursor {
        println!("more: {more} --cursor {cursor}");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The job view the API answers, of these fields besides the ones every job has.
    fn view(fields: Value) -> JobView {
        let mut job = json!({
            "filename": "긴 문서.pdf",
            "content_type": "application/pdf",
            "size": 1000,
            "attempts": 1,
            "created_at": "2026-12-04T00:00:00Z",
            "updated_at": "2026-12-04T00:00:00Z",
        });
        for (name, value) in fields.as_object().unwrap() {
            job[name] = value.clone();
        }
        serde_json::from_value(job).unwrap()
    }

    #[test]
    fn a_long_pdfs_pages_read_so_far_fill_the_bar() {
        let progress = ProgressBar::hidden();
        let id = "0b7a6f0e-2c55-4a7e-9d1a-3f0c0d1e2f3a";
        show_progress(&view(json!({"job_id": id, "status": "queued"})), &progress);
        assert_eq!(
            progress.length(),
            None,
            "a spinner while the pages are unknown"
        );
        assert_eq!(progress.message(), format!("{id}: queued"));
        let running =
            json!({"job_id": id, "status": "processing", "pages": 250, "pages_done": 100});
        show_progress(&view(running), &progress);
        assert_eq!((progress.position(), progress.length()), (100, Some(250)));
        let further =
            json!({"job_id": id, "status": "processing", "pages": 250, "pages_done": 200});
        show_progress(&view(further), &progress);
        assert_eq!(progress.position(), 200);
        assert_eq!(progress.message(), format!("{id}: processing"));
    }
}
