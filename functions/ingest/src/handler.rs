//! Ingest: the S3 `ObjectCreated` event of an upload, checked before any OCR
//! is paid for. It owns the upload rules as they apply to stored bytes (real
//! type by magic bytes, declared size, PDF tail, SHA-256), the dedup against
//! the owner's earlier results, and the move `awaiting_upload → queued`
//! (or `rejected`, or `completed` from a duplicate). Every step is idempotent:
//! S3 may deliver the event twice or late, and a failed record fails the
//! invocation so that it comes again.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent};
use ocr_shared::domain::{
    Completion, DedupKey, DocumentType, ErrorCode, FileType, Job, JobError, JobId, JobStatus,
    Sha256Hex, Timestamp, Transition,
};
use ocr_shared::metrics::{self, Metric};
use ocr_shared::pdf::{self, PdfError};
use ocr_shared::ports::{
    BlobError, BlobStore, EventPublisher, JobMessage, JobQueue, JobStore, OcrResult, StoreError,
    announce,
};
use ocr_shared::redact;
use ocr_shared::upload_policy::{HEADER_BYTES, TAIL_BYTES, UploadLimits, UploadRejection};

use crate::geometry;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, instrument, warn};

/// What `inspect` found in an upload.
struct Inspection {
    verdict: Result<FileType, UploadRejection>,
    /// The type the bytes show, whatever was declared.
    sniffed: Option<String>,
    /// A PDF's page count.
    pages: Option<u32>,
    /// The whole upload, when it had to be read (a PDF): hashed from memory.
    body: Option<bytes::Bytes>,
}

pub struct Ingest {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub events: Arc<dyn EventPublisher>,
    pub limits: UploadLimits,
}

/// What became of one S3 record (also the invocation's result, for `ocr invoke`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Checked and sent to the OCR queue.
    Queued { job_id: JobId },
    /// The job was already queued: the message was sent again (heals a lost send).
    Requeued { job_id: JobId },
    /// Refused, with the code the job now carries.
    Rejected { job_id: JobId, code: ErrorCode },
    /// The owner's earlier job had the same bytes: completed without OCR.
    Deduplicated { job_id: JobId, of: JobId },
    /// A repeated or late event: the job had moved on, nothing changed.
    Duplicate { job_id: JobId, status: JobStatus },
    /// Not ours to handle (not an upload key, no such job, object gone).
    Ignored { reason: String },
}

/// The part of an S3 notification ingest reads. Parsed leniently on purpose:
/// a record that lacks some field S3 normally sends (local emulators omit
/// `userIdentity`) must not cost the whole batch its uploads.
#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records")]
    records: Vec<NotificationRecord>,
}

#[derive(Debug, Deserialize)]
struct NotificationRecord {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: NotificationEntity,
}

#[derive(Debug, Deserialize)]
struct NotificationEntity {
    object: NotificationObject,
}

#[derive(Debug, Deserialize)]
struct NotificationObject {
    key: String,
}

/// Why a record must be tried again: a store or bucket that did not answer.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("the OCR queue refused the job: {0}")]
    Queue(#[from] ocr_shared::ports::QueueError),
    #[error("the job's event could not be published: {0}")]
    Publish(#[from] ocr_shared::ports::PublishError),
    /// Not an S3 notification at all: failing sends it to the function's
    /// failure destination instead of dropping it unseen.
    #[error("the event is not an S3 notification: {0}")]
    NotAnEvent(String),
    /// Some records failed: the invocation fails so that S3 sends the event again.
    #[error("{failed} upload(s) could not be processed and will be retried; the first: {first}")]
    Incomplete {
        failed: usize,
        first: Box<IngestError>,
    },
}

impl IngestError {
    /// Lambda's `errorType` for this failure: what logs and metrics group by.
    pub fn kind(&self) -> &'static str {
        match self {
            IngestError::Store(_) => "JobStoreUnavailable",
            IngestError::Blob(_) => "BucketUnavailable",
            IngestError::Queue(_) => "QueueUnavailable",
            IngestError::Publish(_) => "PublishFailed",
            IngestError::NotAnEvent(_) => "NotAnS3Event",
            IngestError::Incomplete { first, .. } => first.kind(),
        }
    }
}

impl From<IngestError> for Diagnostic {
    fn from(error: IngestError) -> Self {
        Diagnostic {
            error_type: error.kind().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Entry point. Every record is handled; if any hit a transient failure the
/// invocation fails so that S3 delivers the event again (all steps are idempotent).
pub async fn handle(
    event: LambdaEvent<Value>,
    ingest: &Ingest,
) -> Result<Vec<Outcome>, IngestError> {
    let results = ingest.process(event.payload).await;
    let failed = results.iter().filter(|result| result.is_err()).count();
    let mut outcomes = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(first) => {
                return Err(IngestError::Incomplete {
                    failed,
                    first: Box::new(first),
                });
            }
        }
    }
    Ok(outcomes)
}

/// An S3 key as it appears in an event: form-encoded (`+` is a space).
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

impl Ingest {
    /// One result per record, in order.
    pub async fn process(&self, payload: Value) -> Vec<Result<Outcome, IngestError>> {
        if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
            info!("S3 test event skipped");
            return vec![Ok(Outcome::Ignored {
                reason: "s3:TestEvent".into(),
            })];
        }
        let event: Notification = match serde_json::from_value(payload) {
            Ok(event) => event,
            Err(error) => {
                error!(%error, "not an S3 notification");
                return vec![Err(IngestError::NotAnEvent(error.to_string()))];
            }
        };
        let mut results = Vec::with_capacity(event.records.len());
        for record in &event.records {
            let result = self.record(record).await;
            if let Err(error) = &result {
                error!(error = %error, "upload will be retried");
            }
            results.push(result);
        }
        results
    }

    async fn record(&self, record: &NotificationRecord) -> Result<Outcome, IngestError> {
        let event_name = record.event_name.as_str();
        if !event_name.starts_with("ObjectCreated") {
            return Ok(Outcome::Ignored {
                reason: format!("event {event_name}"),
            });
        }
        let key = decode_key(&record.s3.object.key);
        let Some(job_id) = JobId::from_upload_key(&key) else {
            warn!(
                key_len = key.len(),
                "object key is not an upload of a job; ignored"
            );
            return Ok(Outcome::Ignored {
                reason: "not an upload key".into(),
            });
        };
        self.upload(&job_id, Timestamp::now()).await
    }

    /// Handles the upload of job `job_id`, whatever state the job is in.
    #[instrument(skip(self, now), fields(job_id = %job_id))]
    pub async fn upload(&self, job_id: &JobId, now: Timestamp) -> Result<Outcome, IngestError> {
        let key = job_id.upload_key();
        let Some(job) = self.jobs.get(job_id).await? else {
            // The job was deleted (or never existed): its upload has no owner.
            warn!("upload without a job; deleted");
            self.blobs.delete(&key).await?;
            return Ok(Outcome::Ignored {
                reason: "no such job".into(),
            });
        };
        match job.status {
            JobStatus::AwaitingUpload => self.check(job, now).await,
            JobStatus::Queued => {
                info!("event repeated while queued; message sent again");
                self.queue.send(&JobMessage::of(&job)).await?;
                Ok(Outcome::Requeued { job_id: job.job_id })
            }
            status => {
                if job.upload_was_discarded() {
                    // The URL was used again after ingest dropped the checked upload.
                    info!(%status, "upload arrived for a job that no longer reads one; deleted");
                    self.blobs.delete(&key).await?;
                }
                if status.is_final() && !job.announced {
                    info!(%status, "finished but not yet announced; announcing");
                    announce(self.events.as_ref(), self.jobs.as_ref(), &job, now).await?;
                }
                info!(%status, "duplicate event; job already moved on");
                Ok(Outcome::Duplicate {
                    job_id: job.job_id,
                    status,
                })
            }
        }
    }

    async fn check(&self, job: Job, now: Timestamp) -> Result<Outcome, IngestError> {
        let key = job.job_id.upload_key();
        let Some(info) = self.blobs.head(&key).await? else {
            warn!("upload event for an object that is gone");
            return Ok(Outcome::Ignored {
                reason: "object gone".into(),
            });
        };
        let Inspection {
            verdict,
            sniffed,
            pages,
            body,
        } = self
            .inspect(&job, &key, info.size, info.etag.as_deref())
            .await?;
        let kind = match verdict {
            Ok(kind) => kind,
            Err(rejection) => return self.refuse(job, rejection, info.size, sniffed, now).await,
        };
        let sha256 = self.sha256_of(&key, info.sha256, body).await?;
        if let Some(declared) = job.sha256()
            && *declared != sha256
        {
            let message = format!("the file's SHA-256 is {sha256} but {declared} was declared");
            return self
                .reject(
                    job,
                    ErrorCode::ChecksumMismatch,
                    message,
                    info.size,
                    sniffed,
                    now,
                )
                .await;
        }
        let digest = DedupKey {
            owner: job.owner.clone(),
            sha256,
        };
        if let Some(outcome) = self.deduplicate(&job, &digest, info.size, now).await? {
            return Ok(outcome);
        }
        let enqueue = Transition::Enqueue {
            size: info.size,
            digest,
            detected: kind,
            declared: job.content_type,
            etag: info.etag.clone(),
            pages,
        };
        if let Err(duplicate) = self.apply(&job.job_id, &enqueue, now).await? {
            return Ok(duplicate);
        }
        self.queue.send(&JobMessage::of(&job)).await?;
        info!(size = info.size, "upload accepted and queued");
        Ok(Outcome::Queued { job_id: job.job_id })
    }

    /// The upload's SHA-256: as S3 verified it, else of the body already
    /// read, else read for it.
    async fn sha256_of(
        &self,
        key: &str,
        verified: Option<Sha256Hex>,
        body: Option<bytes::Bytes>,
    ) -> Result<Sha256Hex, IngestError> {
        Ok(match (verified, body) {
            (Some(verified), _) => verified,
            (None, Some(body)) => Sha256Hex::of(&body),
            (None, None) => self.blobs.sha256(key).await?,
        })
    }

    /// The upload's real type, or the rule it breaks (size, declared type, an
    /// image's declared pixels, a PDF's, PNG's or JPEG's end marker, a PDF's pages or password), read
    /// from its first and last bytes, and a PDF whole (its page tree may be
    /// anywhere in it); with the type its bytes show, for the record.
    async fn inspect(
        &self,
        job: &Job,
        key: &str,
        size: u64,
        etag: Option<&str>,
    ) -> Result<Inspection, IngestError> {
        let head = if size > 0 {
            self.blobs.read_range(key, 0, HEADER_BYTES).await?
        } else {
            bytes::Bytes::new()
        };
        let sniffed = FileType::sniff(&head).map(|kind| kind.mime().to_owned());
        let limits = &self.limits;
        let verdict = limits
            .check_upload(job.content_type, job.declared_size, size, &head)
            .and_then(|kind| limits.check_pixels(kind, &head).map(|()| kind));
        let mut inspection = Inspection {
            verdict,
            sniffed,
            pages: None,
            body: None,
        };
        if let Ok(kind @ (FileType::Jpeg | FileType::Tiff)) = inspection.verdict {
            let file = geometry::Ranged::new(self.blobs.as_ref(), key, size, head.clone());
            self.measure_image(kind, file, &mut inspection).await?;
            if let Err(rejection) = &inspection.verdict {
                info!(%rejection, "image refused by its headers");
                return Ok(inspection);
            }
        }
        let kind = match inspection.verdict {
            Ok(kind) if UploadLimits::has_end_marker(kind) => kind,
            _ => return Ok(inspection),
        };
        let start = size.saturating_sub(TAIL_BYTES);
        let tail = self.blobs.read_range(key, start, TAIL_BYTES).await?;
        if let Err(rejection) = limits.check_tail(kind, &tail) {
            inspection.verdict = Err(rejection);
            return Ok(inspection);
        }
        if kind != FileType::Pdf {
            return Ok(inspection);
        }
        let body = match etag {
            Some(etag) => self.blobs.get_if_match(key, etag).await?,
            None => self.blobs.get(key).await?,
        };
        self.count_pages(&body, &mut inspection).await;
        inspection.body = Some(body);
        Ok(inspection)
    }

    /// A JPEG's or TIFF's headers read from `file`: its pages recorded, or
    /// the verdict turned into the refusal they show.
    async fn measure_image(
        &self,
        kind: FileType,
        mut file: geometry::Ranged<'_>,
        inspection: &mut Inspection,
    ) -> Result<(), IngestError> {
        match self.image_pages(kind, &mut file).await {
            Ok(pages) => inspection.pages = pages,
            Err(geometry::Unreadable::Storage(error)) => return Err(error.into()),
            Err(geometry::Unreadable::Format(reason)) => {
                inspection.verdict = Err(UploadRejection::UnreadableImage { reason })
            }
            Err(geometry::Unreadable::Refused(rejection)) => inspection.verdict = Err(rejection),
        }
        Ok(())
    }

    /// A whole PDF's pages counted (off the runtime) and checked: recorded,
    /// or the verdict turned into the refusal (too many, encrypted, too
    /// complex, none). A structure the parser cannot follow leaves it as it is.
    async fn count_pages(&self, body: &bytes::Bytes, inspection: &mut Inspection) {
        let counted = tokio::task::spawn_blocking({
            let body = body.clone();
            move || pdf::page_count(&body)
        })
        .await
        .unwrap_or_else(|panic| Err(PdfError::Unreadable(panic.to_string())));
        match counted {
            Ok(pages) => match self.limits.check_pages(pages) {
                Ok(()) => inspection.pages = Some(pages),
                Err(rejection) => inspection.verdict = Err(rejection),
            },
            Err(PdfError::Encrypted) => inspection.verdict = Err(UploadRejection::EncryptedPdf),
            Err(PdfError::TooComplex(reason)) => {
                inspection.verdict = Err(UploadRejection::ComplexPdf { reason })
            }
            Err(error @ PdfError::NoPages) => {
                inspection.verdict = Err(UploadRejection::UnreadablePdf {
                    reason: error.to_string(),
                })
            }
            // A structure this parser cannot follow may still be one the
            // engine reads: the PDF goes on whole, uncounted, and unsplit.
            Err(PdfError::Unreadable(reason)) => {
                warn!(%reason, "PDF pages not counted; sent to the engine whole")
            }
        }
    }

    /// A JPEG's or TIFF's pages checked against the limits from their headers
    /// wherever they sit (the head's own check sees only its first 64 KiB):
    /// the page count of a TIFF, for the record; `Err` with the refusal's
    /// reason as a format error.
    async fn image_pages(
        &self,
        kind: FileType,
        file: &mut geometry::Ranged<'_>,
    ) -> Result<Option<u32>, geometry::Unreadable> {
        let limits = &self.limits;
        let refused = |rejection: UploadRejection| geometry::Unreadable::Refused(rejection);
        if kind == FileType::Jpeg {
            let size = geometry::jpeg_size(file).await?;
            limits.check_page_pixels(&[size]).map_err(refused)?;
            return Ok(None);
        }
        let pages = geometry::tiff_pages(file, limits.max_pages).await?;
        let count = pages.len() as u32;
        limits.check_pages_of("TIFF", count).map_err(refused)?;
        limits.check_page_pixels(&pages).map_err(refused)?;
        Ok(Some(count))
    }

    /// The job after `transition`, or the duplicate outcome when another
    /// delivery moved it first.
    async fn apply(
        &self,
        job_id: &JobId,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<Result<Job, Outcome>, StoreError> {
        match self.jobs.transition(job_id, transition, now).await {
            Ok(job) => Ok(Ok(job)),
            Err(StoreError::Refused(refused)) => {
                info!(status = %refused.current, "another delivery got there first");
                Ok(Err(Outcome::Duplicate {
                    job_id: job_id.clone(),
                    status: refused.current,
                }))
            }
            Err(error) => Err(error),
        }
    }

    /// Completes `job` from the owner's earlier job with the same bytes, when
    /// there is one whose result can still be read.
    async fn deduplicate(
        &self,
        job: &Job,
        digest: &DedupKey,
        size: u64,
        now: Timestamp,
    ) -> Result<Option<Outcome>, IngestError> {
        let Some(original) = self
            .jobs
            .find_completed_by_hash(&job.owner, &digest.sha256)
            .await?
        else {
            return Ok(None);
        };
        let Some(completion) = self.copy_result(&original, job).await? else {
            return Ok(None);
        };
        let transition = Transition::CompleteAsDuplicate {
            of: original.job_id.clone(),
            digest: digest.clone(),
            size,
            completion,
            pages: original.pages.unwrap_or_default(),
            document_type: original.document_type,
        };
        let done = match self.apply(&job.job_id, &transition, now).await {
            Ok(Ok(done)) => {
                metrics::count(Metric::JobsDeduplicated);
                done
            }
            Ok(Err(duplicate)) => return Ok(Some(duplicate)),
            Err(StoreError::NotFound(_)) => {
                // Deleted while its result was copied: nothing may keep a result for it.
                self.blobs.delete(&job.job_id.result_key()).await?;
                self.blobs.delete(&job.job_id.upload_key()).await?;
                return Ok(Some(Outcome::Ignored {
                    reason: "no such job".into(),
                }));
            }
            Err(error) => return Err(error.into()),
        };
        self.blobs.delete(&job.job_id.upload_key()).await?;
        announce(self.events.as_ref(), self.jobs.as_ref(), &done, now).await?;
        info!(of = %original.job_id, "same bytes as an earlier job; completed without OCR");
        Ok(Some(Outcome::Deduplicated {
            job_id: job.job_id.clone(),
            of: original.job_id,
        }))
    }

    /// Copies the original's full result to the new job's own key, so that each
    /// job's result lives and dies with it. The copy is masked for what the
    /// new job asks: a result masked for fewer kinds is masked further.
    async fn copy_result(
        &self,
        original: &Job,
        to: &Job,
    ) -> Result<Option<Completion>, IngestError> {
        let Some(completion) = original.completion().cloned() else {
            return Ok(None);
        };
        let body = match self.blobs.get(&completion.result_key).await {
            Ok(body) => body,
            Err(BlobError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let Ok(mut result) = serde_json::from_slice::<OcrResult>(&body) else {
            warn!(of = %original.job_id, "the earlier result is not a whole result; not reused");
            return Ok(None);
        };
        result.job_id = Some(to.job_id.clone());
        let document_type = original.document_type.unwrap_or(DocumentType::General);
        let needed = redact::kinds_for(to.redact.as_deref(), document_type);
        let mut text = completion.text;
        if !redact::covers(result.redacted.as_ref(), &needed) {
            let added = redact::mask_result(&mut result, &needed).unwrap_or_default();
            let counts = result.redacted.get_or_insert_with(Default::default);
            for (kind, found) in added {
                *counts.entry(kind).or_insert(0) += found;
            }
            text = text.map(|text| redact::mask_text(&text, &needed).0);
        }
        let body = serde_json::to_vec(&result).expect("an OCR result serialises");
        self.blobs
            .put(&to.job_id.result_key(), body.into(), "application/json")
            .await?;
        Ok(Some(Completion {
            text,
            result_key: to.job_id.result_key(),
            redacted: result.redacted,
            ..completion
        }))
    }

    async fn refuse(
        &self,
        job: Job,
        rejection: UploadRejection,
        size: u64,
        detected_mime: Option<String>,
        now: Timestamp,
    ) -> Result<Outcome, IngestError> {
        self.reject(
            job,
            rejection.code(),
            rejection.to_string(),
            size,
            detected_mime,
            now,
        )
        .await
    }

    async fn reject(
        &self,
        job: Job,
        code: ErrorCode,
        message: String,
        size: u64,
        detected_mime: Option<String>,
        now: Timestamp,
    ) -> Result<Outcome, IngestError> {
        let transition = Transition::Reject {
            error: JobError::new(code, message),
            size,
            detected_mime,
        };
        let rejected = match self.apply(&job.job_id, &transition, now).await? {
            Ok(rejected) => rejected,
            Err(duplicate) => return Ok(duplicate),
        };
        // A rejected upload is never read again; keeping it would only cost.
        self.blobs.delete(&job.job_id.upload_key()).await?;
        announce(self.events.as_ref(), self.jobs.as_ref(), &rejected, now).await?;
        info!(%code, size, "upload rejected");
        metrics::count(Metric::JobsRejected);
        Ok(Outcome::Rejected {
            job_id: job.job_id,
            code,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use lambda_runtime::Context;
    use ocr_shared::domain::{NewJob, Sha256Hex};
    use ocr_shared::memory::{
        MemoryBlobStore, MemoryEventPublisher, MemoryJobQueue, MemoryJobStore,
    };
    use sha2::{Digest, Sha256};

    use super::*;
    use ocr_shared::ports::JobEventType;
    use ocr_shared::testing;
    use ocr_shared::view::JobView;

    const PNG: &[u8] = include_bytes!("../../../shared/tests/fixtures/headers/sample.png");
    const PDF: &[u8] = include_bytes!("../../../shared/tests/fixtures/headers/sample.pdf");
    const HTML: &[u8] = include_bytes!("../../../shared/tests/fixtures/headers/not-an-image.html");

    struct Given {
        jobs: Arc<MemoryJobStore>,
        blobs: Arc<MemoryBlobStore>,
        queue: Arc<MemoryJobQueue>,
        events: Arc<MemoryEventPublisher>,
        ingest: Ingest,
    }

    fn given() -> Given {
        let jobs = Arc::new(MemoryJobStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let queue = Arc::new(MemoryJobQueue::default());
        let events = Arc::new(MemoryEventPublisher::default());
        let ingest = Ingest {
            jobs: jobs.clone(),
            blobs: blobs.clone(),
            queue: queue.clone(),
            events: events.clone(),
            limits: UploadLimits {
                max_bytes: 1024 * 1024,
                allowed: FileType::ALL.to_vec(),
                max_pixels: ocr_shared::upload_policy::DEFAULT_MAX_PIXELS,
                max_pages: 10,
            },
        };
        Given {
            jobs,
            blobs,
            queue,
            events,
            ingest,
        }
    }

    fn sha(bytes: &[u8]) -> Sha256Hex {
        Sha256Hex::from_digest(Sha256::digest(bytes).into())
    }

    /// A job awaiting an upload declared as `content_type` and `size`, and `bytes` uploaded for it.
    async fn uploaded(
        given: &Given,
        owner: &str,
        content_type: FileType,
        size: u64,
        declared_sha: Option<Sha256Hex>,
        bytes: &[u8],
    ) -> Job {
        let request = NewJob {
            sha256: declared_sha,
            ..testing::request(owner, "doc", content_type, size)
        };
        let job = testing::open(request, Timestamp::now());
        given.jobs.create(&job).await.unwrap();
        given
            .blobs
            .put(
                &job.job_id.upload_key(),
                Bytes::copy_from_slice(bytes),
                content_type.mime(),
            )
            .await
            .unwrap();
        job
    }

    async fn status(given: &Given, job: &Job) -> Job {
        given.jobs.get(&job.job_id).await.unwrap().unwrap()
    }

    fn event_for(key: &str) -> Value {
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/s3-object-created.json")).unwrap();
        event["Records"][0]["s3"]["object"]["key"] = Value::String(key.to_owned());
        event
    }

    #[test]
    fn keys_are_decoded_the_way_s3_encodes_them() {
        assert_eq!(decode_key("uploads%2Fabc"), "uploads/abc");
        assert_eq!(
            decode_key("uploads/%EC%98%81%EC%88%98%EC%A6%9D+%EC%82%AC%EB%B3%B8.png"),
            "uploads/영수증 사본.png"
        );
        assert_eq!(decode_key("a%2Bb"), "a+b");
    }

    #[tokio::test]
    async fn a_good_upload_is_queued_with_its_hash_and_real_type() {
        let given = given();
        let job = uploaded(
            &given,
            "alice",
            FileType::Png,
            PNG.len() as u64,
            Some(sha(PNG)),
            PNG,
        )
        .await;
        let outcomes = handle(
            LambdaEvent::new(event_for(&job.job_id.upload_key()), Context::default()),
            &given.ingest,
        )
        .await
        .unwrap();
        assert_eq!(
            outcomes[0],
            Outcome::Queued {
                job_id: job.job_id.clone()
            }
        );
        assert!(
            matches!(outcomes[1], Outcome::Ignored { .. }),
            "the second sample record is no upload key"
        );
        let queued = status(&given, &job).await;
        assert_eq!(queued.status, JobStatus::Queued);
        assert_eq!(queued.sha256().cloned(), Some(sha(PNG)));
        let upload = queued.upload.clone().unwrap();
        assert_eq!(upload.size, PNG.len() as u64);
        assert_eq!(upload.detected_mime.as_deref(), Some("image/png"));
        let checked = given.blobs.head(&job.job_id.upload_key()).await.unwrap();
        assert_eq!(
            upload.upload_etag,
            checked.and_then(|info| info.etag),
            "the worker is told which version was checked"
        );
        assert!(upload.upload_etag.is_some());
        let sent = given.queue.sent.lock().unwrap().clone();
        assert_eq!(
            sent,
            vec![(
                JobMessage {
                    job_id: job.job_id.clone(),
                    wake: 0,
                },
                Duration::ZERO
            )]
        );
    }

    #[tokio::test]
    async fn a_file_of_another_accepted_type_is_read_as_what_it_is() {
        let given = given();
        // A PNG a browser declared as a JPEG from its name.
        let job = uploaded(&given, "alice", FileType::Jpeg, PNG.len() as u64, None, PNG).await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Queued {
                job_id: job.job_id.clone()
            }
        );
        let queued = status(&given, &job).await;
        assert_eq!(queued.content_type, FileType::Png, "read as its bytes are");
        let upload = queued.upload.clone().unwrap();
        assert_eq!(
            upload.declared_type,
            Some(FileType::Jpeg),
            "the declaration kept"
        );
        assert_eq!(upload.detected_mime.as_deref(), Some("image/png"));
        let view = JobView::summary(&queued, Timestamp::now());
        assert_eq!(view.content_type, "image/png");
        assert_eq!(view.declared_content_type.as_deref(), Some("image/jpeg"));
        // A truthful declaration leaves nothing beside the type.
        let truthful = uploaded(&given, "bob", FileType::Png, PNG.len() as u64, None, PNG).await;
        given
            .ingest
            .upload(&truthful.job_id, Timestamp::now())
            .await
            .unwrap();
        let queued = status(&given, &truthful).await;
        assert_eq!(queued.upload.unwrap().declared_type, None);
        assert_eq!(given.queue.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_repeated_event_sends_a_queued_job_again_and_leaves_a_finished_one_alone() {
        let given = given();
        let job = uploaded(&given, "alice", FileType::Png, PNG.len() as u64, None, PNG).await;
        let now = Timestamp::now();
        assert!(matches!(
            given.ingest.upload(&job.job_id, now).await.unwrap(),
            Outcome::Queued { .. }
        ));
        assert!(matches!(
            given.ingest.upload(&job.job_id, now).await.unwrap(),
            Outcome::Requeued { .. }
        ));
        assert_eq!(given.queue.sent.lock().unwrap().len(), 2);

        let html = uploaded(
            &given,
            "alice",
            FileType::Png,
            HTML.len() as u64,
            None,
            HTML,
        )
        .await;
        given.ingest.upload(&html.job_id, now).await.unwrap();
        let again = given.ingest.upload(&html.job_id, now).await.unwrap();
        assert_eq!(
            again,
            Outcome::Duplicate {
                job_id: html.job_id.clone(),
                status: JobStatus::Rejected
            }
        );
        assert_eq!(
            given.events.published.lock().unwrap().len(),
            1,
            "announced once"
        );
    }

    #[tokio::test]
    async fn a_rejection_whose_event_was_lost_is_announced_when_s3_retries() {
        let given = given();
        *given.events.failures.lock().unwrap() = 1;
        let html = uploaded(
            &given,
            "alice",
            FileType::Png,
            HTML.len() as u64,
            None,
            HTML,
        )
        .await;
        let failed = given.ingest.upload(&html.job_id, Timestamp::now()).await;
        assert!(matches!(failed, Err(IngestError::Publish(_))), "{failed:?}");
        let rejected = status(&given, &html).await;
        assert_eq!(
            (rejected.status, rejected.announced),
            (JobStatus::Rejected, false)
        );

        let again = given
            .ingest
            .upload(&html.job_id, Timestamp::now())
            .await
            .unwrap();
        assert!(matches!(
            again,
            Outcome::Duplicate {
                status: JobStatus::Rejected,
                ..
            }
        ));
        assert!(status(&given, &html).await.announced);
        let events = given.events.published.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, JobEventType::Rejected);
    }

    #[tokio::test]
    async fn each_broken_rule_rejects_with_its_reason_and_deletes_the_upload() {
        let given = given();
        let cut = &PDF[..PDF.len() / 2];
        let bomb = testing::png_declaring(60_000, 60_000);
        let cases = [
            (
                uploaded(&given, "a", FileType::Png, bomb.len() as u64, None, &bomb).await,
                ErrorCode::ImageTooLarge,
            ),
            (
                uploaded(&given, "a", FileType::Png, HTML.len() as u64, None, HTML).await,
                ErrorCode::UnsupportedType,
            ),
            (
                uploaded(&given, "a", FileType::Png, 10, None, PNG).await,
                ErrorCode::SizeMismatch,
            ),
            (
                uploaded(&given, "a", FileType::Png, 10, None, b"").await,
                ErrorCode::EmptyFile,
            ),
            (
                uploaded(&given, "a", FileType::Pdf, cut.len() as u64, None, cut).await,
                ErrorCode::TruncatedFile,
            ),
            (
                uploaded(
                    &given,
                    "a",
                    FileType::Png,
                    PNG.len() as u64,
                    Some(sha(b"other")),
                    PNG,
                )
                .await,
                ErrorCode::ChecksumMismatch,
            ),
        ];
        for (job, code) in &cases {
            let outcome = given
                .ingest
                .upload(&job.job_id, Timestamp::now())
                .await
                .unwrap();
            assert_eq!(
                outcome,
                Outcome::Rejected {
                    job_id: job.job_id.clone(),
                    code: *code
                }
            );
            let rejected = status(&given, job).await;
            assert_eq!(rejected.status, JobStatus::Rejected);
            let error = rejected.error.unwrap();
            assert_eq!(error.code, *code);
            assert!(!error.message.is_empty());
            assert_eq!(
                given.blobs.head(&job.job_id.upload_key()).await.unwrap(),
                None
            );
        }
        let events = given.events.published.lock().unwrap().clone();
        assert_eq!(events.len(), cases.len());
        assert!(
            events
                .iter()
                .all(|event| event.event_type == JobEventType::Rejected)
        );
        assert!(given.queue.sent.lock().unwrap().is_empty());
    }

    /// A job of alice's for `PNG`, run to completed as the worker would (lease,
    /// full result of `text`, completion), with nothing masked.
    async fn completed_original(given: &Given, text: &str) -> Job {
        let first = uploaded(given, "alice", FileType::Png, PNG.len() as u64, None, PNG).await;
        given
            .ingest
            .upload(&first.job_id, Timestamp::now())
            .await
            .unwrap();
        let now = Timestamp::now();
        let taken = given
            .jobs
            .transition(
                &first.job_id,
                &Transition::StartProcessing {
                    lease_until: now.plus(Duration::from_secs(60)),
                },
                now,
            )
            .await
            .unwrap();
        let result = OcrResult {
            job_id: Some(first.job_id.clone()),
            ..testing::ocr_result(text)
        };
        given
            .blobs
            .put(
                &first.job_id.result_key(),
                serde_json::to_vec(&result).unwrap().into(),
                "application/json",
            )
            .await
            .unwrap();
        let completion = Completion {
            result_key: first.job_id.result_key(),
            ..testing::completion(text)
        };
        let complete = Transition::Complete {
            attempt: taken.attempts,
            completion,
            pages: 1,
            document_type: Some(ocr_shared::domain::DocumentType::Receipt),
        };
        given
            .jobs
            .transition(&first.job_id, &complete, now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_duplicate_that_asks_for_masking_gets_a_masked_copy_of_an_unmasked_result() {
        let given = given();
        let first = completed_original(&given, "영수증 문의 010-1234-5678").await;
        let request = NewJob {
            redact: Some(vec![ocr_shared::domain::PiiKind::Phone]),
            ..testing::request("alice", "doc", FileType::Png, PNG.len() as u64)
        };
        let second = testing::open(request, Timestamp::now());
        given.jobs.create(&second).await.unwrap();
        given
            .blobs
            .put(
                &second.job_id.upload_key(),
                Bytes::from_static(PNG),
                "image/png",
            )
            .await
            .unwrap();
        let outcome = given.ingest.upload(&second.job_id, Timestamp::now()).await;
        assert!(
            matches!(outcome, Ok(Outcome::Deduplicated { .. })),
            "{outcome:?}"
        );
        let done = status(&given, &second).await;
        assert_eq!(done.text(), Some("영수증 문의 010-****-5678"));
        let phone = ocr_shared::domain::PiiKind::Phone;
        assert_eq!(done.redacted().unwrap()[&phone], 1);
        let copy = given.blobs.get(&second.job_id.result_key()).await.unwrap();
        let copy: OcrResult = serde_json::from_slice(&copy).unwrap();
        assert_eq!(copy.text, "영수증 문의 010-****-5678");
        assert_eq!(copy.pages[0].words[0].text, "영수증 문의 010-****-5678");
        // The original keeps its own, unmasked result.
        let original = given.blobs.get(&first.job_id.result_key()).await.unwrap();
        assert!(String::from_utf8_lossy(&original).contains("1234-5678"));
    }

    #[tokio::test]
    async fn the_same_owners_earlier_bytes_complete_the_job_without_ocr() {
        let given = given();
        let first = completed_original(&given, "영수증").await;

        let second = uploaded(&given, "alice", FileType::Png, PNG.len() as u64, None, PNG).await;
        let outcome = given
            .ingest
            .upload(&second.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Deduplicated {
                job_id: second.job_id.clone(),
                of: first.job_id.clone()
            }
        );
        let done = status(&given, &second).await;
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!(done.text(), Some("영수증"));
        assert_eq!(
            done.result_key().map(str::to_owned),
            Some(second.job_id.result_key())
        );
        let copy: Value =
            serde_json::from_slice(&given.blobs.get(&second.job_id.result_key()).await.unwrap())
                .unwrap();
        assert_eq!(copy["job_id"], second.job_id.as_str());
        assert_eq!(
            given.blobs.head(&second.job_id.upload_key()).await.unwrap(),
            None
        );

        // Another owner's identical bytes are queued for their own read.
        let bobs = uploaded(&given, "bob", FileType::Png, PNG.len() as u64, None, PNG).await;
        assert!(matches!(
            given
                .ingest
                .upload(&bobs.job_id, Timestamp::now())
                .await
                .unwrap(),
            Outcome::Queued { .. }
        ));
    }

    #[tokio::test]
    async fn a_pdf_with_bytes_after_its_end_marker_is_accepted() {
        let given = given();
        let mut trailing = PDF.to_vec();
        trailing.extend(std::iter::repeat_n(b'\n', 4096));
        let job = uploaded(
            &given,
            "alice",
            FileType::Pdf,
            trailing.len() as u64,
            None,
            &trailing,
        )
        .await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Queued { job_id: job.job_id });
    }

    /// A JPEG whose frame header (declaring `width` × `height`) comes after
    /// `padding` metadata segments of 64 KiB each: never decodable, all headers.
    fn jpeg_after(padding: usize, width: u16, height: u16) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        for _ in 0..padding {
            bytes.extend_from_slice(&[0xFF, 0xEF, 0xFF, 0xFF]);
            bytes.extend(std::iter::repeat_n(0x20, 0xFFFF - 2));
        }
        bytes.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8]);
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&[1, 1, 0x11, 0]);
        bytes.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0x12, 0x34]);
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    /// A little-endian TIFF with a directory per page of these sizes.
    fn tiff(pages: &[(u32, u32)]) -> Vec<u8> {
        let mut bytes = b"II*\0\x08\0\0\0".to_vec();
        for (i, (width, height)) in pages.iter().enumerate() {
            let at = bytes.len() as u32;
            bytes.extend_from_slice(&2u16.to_le_bytes());
            for (tag, value) in [(256u16, width), (257, height)] {
                bytes.extend_from_slice(&tag.to_le_bytes());
                bytes.extend_from_slice(&4u16.to_le_bytes());
                bytes.extend_from_slice(&1u32.to_le_bytes());
                bytes.extend_from_slice(&value.to_le_bytes());
            }
            let next = if i + 1 < pages.len() {
                at + 2 + 24 + 4
            } else {
                0
            };
            bytes.extend_from_slice(&next.to_le_bytes());
        }
        bytes
    }

    async fn ingested(given: &Given, kind: FileType, bytes: &[u8]) -> (Outcome, Job) {
        let job = uploaded(given, "alice", kind, bytes.len() as u64, None, bytes).await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        (outcome, status(given, &job).await)
    }

    #[tokio::test]
    async fn a_jpeg_whose_frame_header_sits_past_the_first_64_kib_is_still_measured() {
        let given = given();
        let (outcome, job) = ingested(&given, FileType::Jpeg, &jpeg_after(3, 20_000, 20_000)).await;
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    code: ErrorCode::ImageTooLarge,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert!(job.error.unwrap().message.contains("20000 × 20000"));

        let (outcome, job) = ingested(&given, FileType::Jpeg, &jpeg_after(3, 1000, 800)).await;
        assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");
        assert_eq!(job.status, JobStatus::Queued);
    }

    #[tokio::test]
    async fn every_page_of_a_tiff_is_measured_and_counted_against_the_page_limit() {
        let given = given();
        let (outcome, job) = ingested(&given, FileType::Tiff, &tiff(&[(2480, 3508); 3])).await;
        assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");
        assert_eq!(job.pages, Some(3), "counted at ingest");

        // Two ordinary pages, then one far over the pixel limit.
        let bomb = tiff(&[(2480, 3508), (2480, 3508), (60_000, 60_000)]);
        let (outcome, job) = ingested(&given, FileType::Tiff, &bomb).await;
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    code: ErrorCode::ImageTooLarge,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert!(job.error.unwrap().message.contains("60000 × 60000"));

        let (outcome, job) = ingested(&given, FileType::Tiff, &tiff(&[(100, 100); 11])).await;
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    code: ErrorCode::TooManyPages,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert_eq!(
            job.error.unwrap().message,
            "the TIFF has 11 pages; the limit is 10 pages (split it into smaller files)"
        );

        // Directories that point back at themselves: refused, not followed for ever.
        let mut looped = tiff(&[(100, 100)]);
        let end = looped.len();
        looped[end - 4..].copy_from_slice(&8u32.to_le_bytes());
        let (outcome, job) = ingested(&given, FileType::Tiff, &looped).await;
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    code: ErrorCode::UnreadableDocument,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert!(job.error.unwrap().message.contains("loop"));
    }

    #[tokio::test]
    async fn a_pdf_is_queued_with_its_page_count_and_one_over_the_limit_is_rejected() {
        let given = given();
        let within = pdf::sample(10);
        let job = uploaded(
            &given,
            "alice",
            FileType::Pdf,
            within.len() as u64,
            None,
            &within,
        )
        .await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Queued {
                job_id: job.job_id.clone()
            }
        );
        let queued = status(&given, &job).await;
        assert_eq!(queued.pages, Some(10));
        assert_eq!(
            queued.sha256().cloned(),
            Some(Sha256Hex::of(&within)),
            "hashed from the bytes read"
        );

        let over = pdf::sample(11);
        let job = uploaded(
            &given,
            "alice",
            FileType::Pdf,
            over.len() as u64,
            None,
            &over,
        )
        .await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Rejected {
                job_id: job.job_id.clone(),
                code: ErrorCode::TooManyPages
            }
        );
        let rejected = status(&given, &job).await;
        assert_eq!(
            rejected.error.unwrap().message,
            "the PDF has 11 pages; the limit is 10 pages (split it into smaller files)"
        );
        assert!(
            !given.blobs.keys().contains(&job.job_id.upload_key()),
            "rejected uploads are deleted"
        );
    }

    #[tokio::test]
    async fn a_pdf_without_pages_is_rejected_and_one_the_parser_cannot_follow_goes_on_whole() {
        let given = given();
        let empty = pdf::sample(0);
        let job = uploaded(
            &given,
            "alice",
            FileType::Pdf,
            empty.len() as u64,
            None,
            &empty,
        )
        .await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Rejected {
                job_id: job.job_id.clone(),
                code: ErrorCode::UnreadableDocument
            }
        );
        assert_eq!(
            status(&given, &job).await.error.unwrap().message,
            "the PDF cannot be read: the PDF has no pages"
        );
        let odd = b"%PDF-1.7\n1 0 obj <</Type/Catalog>> endobj\n%%EOF\n";
        let job = uploaded(&given, "alice", FileType::Pdf, odd.len() as u64, None, odd).await;
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Queued {
                job_id: job.job_id.clone()
            }
        );
        assert_eq!(status(&given, &job).await.pages, None);
    }

    #[tokio::test]
    async fn an_upload_put_again_after_a_rejection_is_deleted_when_its_event_arrives() {
        let given = given();
        let job = uploaded(&given, "alice", FileType::Png, 4, None, b"<ht").await;
        let key = job.job_id.upload_key();
        given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(status(&given, &job).await.status, JobStatus::Rejected);
        assert!(given.blobs.head(&key).await.unwrap().is_none());

        // The same URL, used again within its life: the new object must not stay.
        given
            .blobs
            .put(&key, Bytes::from_static(PNG), "image/png")
            .await
            .unwrap();
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();

        assert!(
            matches!(
                outcome,
                Outcome::Duplicate {
                    status: JobStatus::Rejected,
                    ..
                }
            ),
            "{outcome:?}"
        );
        assert!(
            given.blobs.head(&key).await.unwrap().is_none(),
            "the stray upload is gone"
        );
        assert_eq!(status(&given, &job).await.status, JobStatus::Rejected);
    }

    #[tokio::test]
    async fn uploads_without_a_job_are_deleted_and_vanished_objects_ignored() {
        let given = given();
        let orphan = JobId::new();
        given
            .blobs
            .put(&orphan.upload_key(), Bytes::from_static(PNG), "image/png")
            .await
            .unwrap();
        let outcome = given
            .ingest
            .upload(&orphan, Timestamp::now())
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Ignored { .. }));
        assert!(given.blobs.keys().is_empty());

        let job = uploaded(&given, "alice", FileType::Png, PNG.len() as u64, None, PNG).await;
        given.blobs.delete(&job.job_id.upload_key()).await.unwrap();
        let outcome = given
            .ingest
            .upload(&job.job_id, Timestamp::now())
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Ignored { .. }));
        assert_eq!(status(&given, &job).await.status, JobStatus::AwaitingUpload);
    }

    #[tokio::test]
    async fn test_events_and_other_event_names_are_skipped_but_garbage_fails() {
        let given = given();
        let test_event: Value =
            serde_json::from_str(include_str!("../../../events/s3-test-event.json")).unwrap();
        let outcomes = handle(
            LambdaEvent::new(test_event, Context::default()),
            &given.ingest,
        )
        .await
        .unwrap();
        assert_eq!(
            outcomes,
            vec![Outcome::Ignored {
                reason: "s3:TestEvent".into()
            }]
        );

        let mut removed = event_for("uploads%2F6f9619ff-8b86-4011-b42d-00c04fc964ff");
        removed["Records"][0]["eventName"] = Value::String("ObjectRemoved:Delete".into());
        let outcomes = given.ingest.process(removed).await;
        assert!(
            matches!(&outcomes[0], Ok(Outcome::Ignored { reason }) if reason.contains("ObjectRemoved"))
        );

        let garbage = serde_json::json!({"hello": "world"});
        assert!(
            handle(LambdaEvent::new(garbage, Context::default()), &given.ingest)
                .await
                .is_err()
        );
    }
}
