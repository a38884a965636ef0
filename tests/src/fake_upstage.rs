//! A fake Upstage Document OCR server on 127.0.0.1 that speaks the published
//! contract: it checks the bearer key, the multipart field names and the model,
//! answers with real response bodies, and can be scripted per request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const API_KEY: &str = "up_test_key_0123456789";

/// The response a real request got: the rotated Korean receipt, 123 words.
pub const RECEIPT_RESPONSE: &str =
    include_str!("../../shared/tests/fixtures/upstage/response-rotate.json");

/// What the fake answers to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Ok(Value),
    /// This status with an Upstage-style error body, and Retry-After when given.
    Error {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Waits this long before answering 200: past the client's timeout.
    Hang(Duration),
    /// 200 with a body that is not a document result.
    Malformed,
}

/// One request the fake accepted, as it saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub model: String,
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    /// A PDF's page count.
    pub pages: Option<u32>,
}

/// Upstage reads at most this many pages in one synchronous call; more is a 413.
pub const MAX_PAGES: u32 = 100;

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    calls: Vec<Call>,
    refused: Vec<String>,
    /// Answer a PDF from its text layer, one page per page, after this long.
    read_pdfs: Option<Duration>,
    /// Answer every request with a 429 (no Retry-After) until then.
    limited_until: Option<Instant>,
    /// When each request that passed the contract checks came, 429s included.
    arrivals: Vec<Instant>,
    /// Requests answered with a 429 (the storm's or the quota's).
    throttled: usize,
    /// At most this many requests per second of the clock (a fixed window,
    /// as a per-second quota counts); more get a 429 with Retry-After: 1.
    quota: Option<usize>,
    /// Requests admitted in the current second, and which second that is.
    admitted_in: (u64, usize),
}

#[derive(Clone)]
pub struct FakeUpstage {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeUpstage {
    /// Starts the fake on a free loopback port; it stops with the test's runtime.
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/v1/document-digitization", post(digitize))
            // Upstage takes documents up to 50 MB; axum's default is 2 MB.
            .layer(axum::extract::DefaultBodyLimit::max(60 * 1024 * 1024))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Upstage");
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, script }
    }

    /// Replies for the next requests, in order; after them every request gets the receipt.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().replies.extend(replies);
    }

    /// From now on a PDF without a scripted reply is answered from its text
    /// layer, page by page, as Upstage reads a scan's pixels, after `latency`.
    pub fn read_pdfs(&self, latency: Duration) {
        self.script.lock().unwrap().read_pdfs = Some(latency);
    }

    /// From now on, for `period`, every request is answered 429 with no
    /// Retry-After, as a rate limit storm; those are not `calls`.
    pub fn rate_limit_for(&self, period: Duration) {
        self.script.lock().unwrap().limited_until = Some(Instant::now() + period);
    }

    /// From now on, at most `per_second` requests are read in any second of
    /// the clock; the others are answered 429 with Retry-After: 1, as
    /// Upstage's quota answers them.
    pub fn enforce_quota(&self, per_second: usize) {
        self.script.lock().unwrap().quota = Some(per_second);
    }

    /// How many requests were answered with a 429 (the storm's or the quota's).
    pub fn throttled(&self) -> usize {
        self.script.lock().unwrap().throttled
    }

    /// When each request that passed the contract checks came, 429s included.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.script.lock().unwrap().arrivals.clone()
    }

    /// Requests that passed the contract checks and were answered.
    pub fn calls(&self) -> Vec<Call> {
        self.script.lock().unwrap().calls.clone()
    }

    /// Requests refused for breaking the contract, with the reason.
    pub fn refused(&self) -> Vec<String> {
        self.script.lock().unwrap().refused.clone()
    }
}

fn upstage_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "code": status.as_u16().to_string()}});
    (status, axum::Json(body)).into_response()
}

async fn digitize(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let refuse = |status: StatusCode, reason: &str| {
        script.lock().unwrap().refused.push(reason.to_owned());
        upstage_error(status, reason)
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {API_KEY}")) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    let (call, pdf) = match read_form(multipart).await {
        Ok(read) => read,
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, &reason),
    };
    if call.model != "ocr" && !call.model.starts_with("ocr-") {
        return refuse(StatusCode::BAD_REQUEST, "invalid model name");
    }
    if call.pages.is_some_and(|pages| pages > MAX_PAGES) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too many pages in the document",
        );
    }
    let (reply, read_pdfs) = {
        let mut script = script.lock().unwrap();
        let now = Instant::now();
        script.arrivals.push(now);
        if script.limited_until.is_some_and(|until| now < until) {
            script.throttled += 1;
            return upstage_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
        }
        if let Some(quota) = script.quota {
            let second = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            if script.admitted_in.0 != second {
                script.admitted_in = (second, 0);
            }
            if script.admitted_in.1 >= quota {
                script.throttled += 1;
                let mut response =
                    upstage_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
                response.headers_mut().insert(header::RETRY_AFTER, 1.into());
                return response;
            }
            script.admitted_in.1 += 1;
        }
        script.calls.push(call);
        (script.replies.pop_front(), script.read_pdfs)
    };
    if let (None, Some(latency), Some(pdf)) = (&reply, read_pdfs, pdf) {
        tokio::time::sleep(latency).await;
        let texts = ocr_shared::pdf::page_texts(&pdf);
        return (StatusCode::OK, axum::Json(pdf_response(&texts))).into_response();
    }
    match reply.unwrap_or_else(|| Reply::Ok(serde_json::from_str(RECEIPT_RESPONSE).unwrap())) {
        Reply::Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Reply::Error {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap();
            let mut response = upstage_error(status, status.canonical_reason().unwrap_or("error"));
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            response
        }
        Reply::Hang(duration) => {
            tokio::time::sleep(duration).await;
            (StatusCode::OK, RECEIPT_RESPONSE).into_response()
        }
        Reply::Malformed => {
            (StatusCode::OK, "{\"apiVersion\":\"1.1\",\"pages\":\"oops\"").into_response()
        }
    }
}

/// The call, and the document's bytes when it is a PDF.
async fn read_form(mut multipart: Multipart) -> Result<(Call, Option<axum::body::Bytes>), String> {
    let mut model = None;
    let mut document = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("not multipart: {e}"))?
    {
        match field.name() {
            Some("model") => model = Some(field.text().await.map_err(|e| e.to_string())?),
            Some("document") => {
                let filename = field
                    .file_name()
                    .map(str::to_owned)
                    .ok_or("the document part has no filename")?;
                let content_type = field.content_type().map(str::to_owned).unwrap_or_default();
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                document = Some((filename, content_type, bytes));
            }
            other => return Err(format!("unexpected field {other:?}")),
        }
    }
    let (filename, content_type, bytes) = document.ok_or("no document in the request")?;
    let model = model.ok_or("no model in the request")?;
    if bytes.is_empty() {
        return Err("the document is empty".into());
    }
    let pdf = bytes.starts_with(b"%PDF-").then_some(bytes.clone());
    let pages = match &pdf {
        Some(pdf) => {
            Some(ocr_shared::pdf::page_count(pdf).map_err(|e| format!("unreadable PDF: {e}"))?)
        }
        None => None,
    };
    let call = Call {
        model,
        filename,
        content_type,
        size: bytes.len(),
        pages,
    };
    Ok((call, pdf))
}

/// A 200 body of one page per text, as Upstage shapes it: word ids running
/// on across pages, and the top-level text the page texts with no separator.
pub fn pdf_response(texts: &[String]) -> Value {
    let pages: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            json!({
                "confidence": 0.97, "height": 1169, "id": i, "width": 827, "text": text,
                "words": [{"boundingBox": {"vertices": [{"x":80,"y":80},{"x":500,"y":80},{"x":500,"y":130},{"x":80,"y":130}]},
                           "confidence": 0.97, "id": i, "text": text}]
            })
        })
        .collect();
    json!({
        "apiVersion": "1.1", "confidence": 0.97, "mimeType": "multipart/form-data", "modelVersion": "ocr-2.2.1",
        "numBilledPages": texts.len(), "pages": pages, "stored": false, "text": texts.concat(),
        "metadata": {"pages": (0..texts.len()).map(|i| json!({"height": 1169, "page": i + 1, "width": 827})).collect::<Vec<_>>()}
    })
}

/// A 200 body of `pages` pages, each `bytes_per_page` bytes of Korean text.
pub fn large_response(pages: usize, bytes_per_page: usize) -> Value {
    let line = "가나다라마바사아자차카타파하 ";
    let page_text: String = line.repeat(bytes_per_page / line.len() + 1);
    let pages_json: Vec<Value> = (0..pages)
        .map(|i| {
            json!({
                "confidence": 0.95, "height": 1000, "id": i, "width": 800, "text": page_text,
                "words": [{"boundingBox": {"vertices": [{"x":1,"y":1},{"x":9,"y":1},{"x":9,"y":9},{"x":1,"y":9}]},
                           "confidence": 0.95, "id": i, "text": "가나다"}]
            })
        })
        .collect();
    let text: String = std::iter::repeat_n(page_text.as_str(), pages).collect();
    json!({
        "apiVersion": "1.1", "confidence": 0.95, "mimeType": "multipart/form-data", "modelVersion": "ocr-2.2.1",
        "numBilledPages": pages, "pages": pages_json, "stored": false, "text": text,
        "metadata": {"pages": (0..pages).map(|i| json!({"height": 1000, "page": i + 1, "width": 800})).collect::<Vec<_>>()}
    })
}
