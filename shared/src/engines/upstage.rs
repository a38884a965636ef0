//! Upstage Document OCR: `POST {base}/v1/document-digitization`, multipart
//! with the file part `document` and the field `model`, bearer key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::{instrument, warn};

use crate::domain::ErrorCode;
use crate::ports::{
    Document, OcrEngine, OcrError, OcrPage, OcrResult, OcrWord, SecretSource, Vertex, document_text,
};

pub const ENGINE_NAME: &str = "upstage";
/// Upstage's own server-side limit is 3 minutes; a little more covers the upload.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(200);

/// Where the bearer key comes from.
#[derive(Clone)]
pub enum UpstageKeySource {
    Inline(SecretString),
    Secret {
        source: Arc<dyn SecretSource>,
        id: String,
    },
}

impl UpstageKeySource {
    async fn key(&self) -> Result<SecretString, OcrError> {
        match self {
            UpstageKeySource::Inline(key) => Ok(key.clone()),
            UpstageKeySource::Secret { source, id } => {
                source
                    .secret(id)
                    .await
                    .map_err(|error| OcrError::Unauthorized {
                        message: format!("the Upstage API key could not be read: {error}"),
                    })
            }
        }
    }
}

pub struct UpstageEngine {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    key: UpstageKeySource,
    timeout: Duration,
}

impl UpstageEngine {
    pub fn new(
        base_url: &str,
        model: &str,
        key: UpstageKeySource,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = crate::tls::client_builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            endpoint: format!(
                "{}/v1/document-digitization",
                base_url.trim_end_matches('/')
            ),
            model: model.to_owned(),
            key,
            timeout,
        })
    }
}

#[async_trait]
impl OcrEngine for UpstageEngine {
    fn name(&self) -> &'static str {
        ENGINE_NAME
    }

    fn call_timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    #[instrument(skip(self, document), fields(size = document.bytes.len(), file_type = %document.file_type))]
    async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError> {
        let key = self.key.key().await?;
        let form = self.form(document)?;
        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(key.expose_secret())
            .multipart(form)
            .send()
            .await
            .map_err(|error| OcrError::Retryable {
                message: if error.is_timeout() {
                    "Upstage did not answer in time".into()
                } else {
                    format!("Upstage could not be reached: {}", without_url(&error))
                },
                retry_after: None,
            })?;
        let status = response.status();
        let retry_after = retry_after_of(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|error| OcrError::Retryable {
                message: format!("Upstage's answer was cut short: {}", without_url(&error)),
                retry_after: None,
            })?;
        if status.is_success() {
            // A whole 200 is a read Upstage bills; one that does not parse
            // would not parse the next time either, so it is not paid again.
            return parse_response(&body).map_err(|error| OcrError::Rejected {
                code: ErrorCode::OcrUnavailable,
                message: format!(
                    "Upstage answered with a body that is not a document result: {error}"
                ),
            });
        }
        let detail = error_message(&body);
        warn!(status = status.as_u16(), "Upstage refused the request");
        let error = classify(status, detail, retry_after);
        if let (OcrError::Unauthorized { .. }, UpstageKeySource::Secret { source, id }) =
            (&error, &self.key)
        {
            // A rotated key: the retry reads the secret again instead of the cached one.
            source.forget(id).await;
        }
        Err(error)
    }
}

impl UpstageEngine {
    /// The multipart body of one call: the document, and the model to read it with.
    fn form(&self, document: &Document) -> Result<reqwest::multipart::Form, OcrError> {
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::from(document.bytes.clone()),
            document.bytes.len() as u64,
        )
        .file_name(document.filename.clone())
        .mime_str(document.file_type.mime())
        .map_err(|error| OcrError::Rejected {
            code: ErrorCode::UnsupportedType,
            message: error.to_string(),
        })?;
        Ok(reqwest::multipart::Form::new()
            .part("document", part)
            .text("model", self.model.clone()))
    }
}

/// The wait a refusal asks for, in whole seconds (`Retry-After`).
fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// reqwest's errors name the URL; the endpoint is no secret, but keep logs to the cause.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "the Upstage endpoint");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What the pipeline does about each status: fail at once, retry, or retry and alarm.
fn classify(status: StatusCode, detail: String, retry_after: Option<Duration>) -> OcrError {
    match status.as_u16() {
        400 | 413 | 415 | 422 => OcrError::Rejected {
            code: match status.as_u16() {
                413 => ErrorCode::DocumentTooLarge,
                415 => ErrorCode::UnsupportedDocument,
                _ => ErrorCode::UnreadableDocument,
            },
            message: format!(
                "Upstage could not read the document ({}): {detail}",
                status.as_u16()
            ),
        },
        401 | 403 => OcrError::Unauthorized {
            message: format!(
                "Upstage refused the API key ({}): {detail}",
                status.as_u16()
            ),
        },
        429 => OcrError::RateLimited {
            message: format!("Upstage's rate limit was reached: {detail}"),
            retry_after,
        },
        _ => OcrError::Retryable {
            message: format!("Upstage failed ({}): {detail}", status.as_u16()),
            retry_after,
        },
    }
}

/// The message of an error body in any of the shapes seen in the wild:
/// `{"error":{"message"}}`, `{"error":"…"}`, `{"message"}`; else the raw text.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_json = parsed.as_ref().and_then(|json| {
        json.pointer("/error/message")
            .or_else(|| json.get("message"))
            .or_else(|| json.get("error"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text = if text.is_empty() {
        "no details given".to_owned()
    } else {
        text
    };
    text.chars().take(300).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    num_billed_pages: Option<u32>,
    pages: Vec<Page>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    height: f64,
    #[serde(default)]
    width: f64,
    #[serde(default)]
    text: String,
    #[serde(default)]
    words: Vec<Word>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Word {
    #[serde(default)]
    bounding_box: Option<BoundingBox>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct BoundingBox {
    #[serde(default)]
    vertices: Vec<Point>,
}

/// Vertices are integer pixels in every response seen; a missing coordinate is 0.
#[derive(Deserialize, Default, Clone, Copy)]
struct Point {
    #[serde(default)]
    x: f64,
    #[serde(default)]
    y: f64,
}

fn vertices(bounding_box: Option<BoundingBox>) -> [Vertex; 4] {
    let points = bounding_box.map(|b| b.vertices).unwrap_or_default();
    std::array::from_fn(|i| {
        let point = points.get(i).copied().unwrap_or_default();
        Vertex {
            x: point.x.round() as i64,
            y: point.y.round() as i64,
        }
    })
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Upstage's 200 body as the engine-neutral result: pages numbered from 1 in
/// the order given, vertices in pixels, confidences 0–1.
pub fn parse_response(body: &[u8]) -> Result<OcrResult, serde_json::Error> {
    let response: Response = serde_json::from_slice(body)?;
    let pages: Vec<OcrPage> = response
        .pages
        .into_iter()
        .enumerate()
        .map(|(index, page)| {
            let words: Vec<OcrWord> = page
                .words
                .into_iter()
                .map(|word| OcrWord {
                    text: word.text,
                    confidence: word.confidence.unwrap_or(0.0),
                    vertices: vertices(word.bounding_box),
                })
                .collect();
            OcrPage {
                page: index as u32 + 1,
                width: page.width.max(0.0).round() as u32,
                height: page.height.max(0.0).round() as u32,
                confidence: page
                    .confidence
                    .or_else(|| mean(words.iter().map(|w| w.confidence)))
                    .unwrap_or(0.0),
                text: page.text,
                words,
                quality: None,
            }
        })
        .collect();
    // Upstage's own `text` runs its pages together with no separator: the
    // document's text is built from the pages instead.
    let text = if pages.is_empty() {
        response.text.unwrap_or_default()
    } else {
        document_text(&pages)
    };
    let confidence = response
        .confidence
        .or_else(|| pages.iter().map(|p| p.confidence).reduce(f64::min))
        .unwrap_or(0.0);
    Ok(OcrResult {
        redacted: None,
        job_id: None,
        engine: ENGINE_NAME.into(),
        model_version: response.model_version.unwrap_or_else(|| "unknown".into()),
        confidence,
        text,
        num_billed_pages: response.num_billed_pages.unwrap_or(pages.len() as u32),
        pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/upstage/",
                $name
            ))
        };
    }

    #[test]
    fn the_one_page_english_response_maps_every_field() {
        let result = parse_response(fixture!("response-ocr-2.2.1.json")).unwrap();
        assert_eq!(result.engine, "upstage");
        assert_eq!(result.model_version, "ocr-2.2.1");
        assert_eq!(result.confidence, 0.9919);
        assert_eq!(result.text, "Print the words \nhello, world");
        assert_eq!(result.num_billed_pages, 1);
        assert_eq!(result.pages.len(), 1);
        let page = &result.pages[0];
        assert_eq!((page.page, page.width, page.height), (1, 384, 125));
        assert_eq!(page.words.len(), 5);
        let the = &page.words[1];
        assert_eq!(the.text, "the");
        assert_eq!(the.confidence, 0.999);
        assert_eq!(
            the.vertices,
            [
                Vertex { x: 118, y: 21 },
                Vertex { x: 170, y: 27 },
                Vertex { x: 167, y: 55 },
                Vertex { x: 115, y: 50 }
            ]
        );
    }

    #[test]
    fn a_multi_page_korean_response_numbers_pages_from_one() {
        let result = parse_response(fixture!("response-multi_page.json")).unwrap();
        assert_eq!(
            result.pages.iter().map(|p| p.page).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let words: usize = result.pages.iter().map(|p| p.words.len()).sum();
        assert_eq!(words, 334);
        let lowest = result
            .pages
            .iter()
            .map(|p| p.confidence)
            .fold(f64::MAX, f64::min);
        assert_eq!(
            result.confidence, lowest,
            "document confidence is the lowest page's"
        );
        assert!(result.text.chars().any(|c| ('가'..='힣').contains(&c)));
    }

    #[test]
    fn pages_are_kept_apart_in_the_documents_text() {
        let body = fixture!("response-multi_page.json");
        let raw: serde_json::Value = serde_json::from_slice(body).unwrap();
        let result = parse_response(body).unwrap();
        // Upstage's own text runs the pages together; ours puts a blank line between.
        let pages: Vec<&str> = raw["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(raw["text"].as_str().unwrap(), pages.concat());
        assert_eq!(
            result.text,
            pages
                .iter()
                .map(|p| p.trim_end())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
        for (page, text) in result.pages.iter().zip(&pages) {
            assert_eq!(page.text, *text, "each page keeps its own text");
        }
    }

    #[test]
    fn rotated_and_watermarked_receipts_parse() {
        let rotated = parse_response(fixture!("response-rotate.json")).unwrap();
        assert_eq!(rotated.pages[0].words.len(), 123);
        assert!(rotated.text.contains("영수증"), "{}", rotated.text);
        let watermark = parse_response(fixture!("response-water_mark.json")).unwrap();
        assert!(!watermark.pages.is_empty());
    }

    #[test]
    fn error_bodies_of_every_known_shape_yield_their_message() {
        let nested = br#"{"error":{"message":"Too many requests","type":"too_many_requests","code":"too_many_requests"}}"#;
        assert_eq!(error_message(nested), "Too many requests");
        assert_eq!(
            error_message(br#"{"code":"invalid_model","message":"invalid model name"}"#),
            "invalid model name"
        );
        assert_eq!(
            error_message(br#"{"error":"no document in the request"}"#),
            "no document in the request"
        );
        assert_eq!(
            error_message(b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(error_message(b""), "no details given");
    }

    #[test]
    fn statuses_are_classified_as_the_design_says() {
        let class = |code: u16| classify(StatusCode::from_u16(code).unwrap(), "x".into(), None);
        for code in [400, 413, 415] {
            assert!(matches!(class(code), OcrError::Rejected { .. }), "{code}");
        }
        for code in [401, 403] {
            assert!(
                matches!(class(code), OcrError::Unauthorized { .. }),
                "{code}"
            );
        }
        for code in [500, 502, 503, 504] {
            assert!(matches!(class(code), OcrError::Retryable { .. }), "{code}");
        }
        let limited = classify(
            StatusCode::TOO_MANY_REQUESTS,
            "slow down".into(),
            Some(Duration::from_secs(7)),
        );
        assert!(
            matches!(limited, OcrError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
    }

    #[test]
    fn a_body_without_pages_is_not_a_result() {
        assert!(parse_response(br#"{"apiVersion":"1.1"}"#).is_err());
        assert!(parse_response(b"not json").is_err());
    }
}
