//! The OCR worker's entry: one SQS message per job. It owns the run of a job
//! from `queued` to `completed` or `failed`: admission (deleted, finished,
//! leased and stale messages are dropped), the bytes-in-flight budget, the
//! global OCR quota, the lease, reading exactly the upload ingest checked,
//! and the engine call; what each outcome does is the `Lease`'s.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use ocr_shared::batch::{self, Delivery, process_batch};
use ocr_shared::domain::{ErrorCode, FileType, Job, JobError, JobStatus, Timestamp, Transition};
use ocr_shared::images;
use ocr_shared::metrics::{self, Metric};
use ocr_shared::ports::{
    BlobError, Document, JobMessage, Moved, OcrResult, RateDecision, announce, transition_or_moved,
};
use tracing::{Instrument, info, info_span, warn};

use crate::budget::ByteBudget;
use crate::chunks;
use crate::lease::Lease;
use crate::worker::document_type_of;
pub use crate::worker::{
    DECODE_BUDGET, DEFAULT_BYTES_IN_FLIGHT, DEFAULT_LOW_CONFIDENCE, DEFAULT_PAGES_PER_CALL,
    JobRetry, MAX_POSTPONES, MAX_THROTTLES, Parts, WorkerSettings,
};

/// The SQS consumer: its parts (`Parts`, which it derefs to), and the
/// budgets that bound the memory of the batch's documents read at once.
pub struct Worker {
    pub parts: Parts,
    /// Bounds the bytes the batch's concurrent jobs hold: see `max_bytes_in_flight`.
    pub in_flight: ByteBudget,
    /// Bounds the decoded pixels of the images prepared at once: see `DECODE_BUDGET`.
    pub decoding: ByteBudget,
}

impl std::ops::Deref for Worker {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.parts
    }
}

/// Entry point: the batch is processed concurrently; the messages to try
/// again are reported by id, the rest are acknowledged.
pub async fn handle(
    event: LambdaEvent<SqsEvent>,
    worker: &Worker,
) -> Result<SqsBatchResponse, Error> {
    let deadline = deadline_of(&event.context);
    Ok(process_batch(&event.payload.records, |message| {
        worker.message(message, deadline)
    })
    .await)
}

/// When the invocation is stopped, from the runtime's epoch milliseconds (0: none).
fn deadline_of(context: &lambda_runtime::Context) -> Option<Instant> {
    if context.deadline == 0 {
        return None;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0);
    Some(Instant::now() + Duration::from_millis(context.deadline.saturating_sub(now_ms)))
}

impl Worker {
    /// One message: `Ok` acknowledges it, `Err` sends it back.
    pub async fn message(
        &self,
        message: &SqsMessage,
        deadline: Option<Instant>,
    ) -> Result<(), JobRetry> {
        let Some((job, delivery)) = batch::read(message, |body| {
            serde_json::from_str::<JobMessage>(body).ok()
        }) else {
            return Ok(());
        };
        self.job_until(&job, delivery, Timestamp::now(), deadline)
            .instrument(info_span!("job", job_id = %job.job_id))
            .await
    }

    /// Takes the job under a lease, reads it, and moves it on, within an
    /// invocation that is stopped at `deadline`: no call is started that it
    /// may not finish, and the rest goes to a fresh message.
    pub async fn job_until(
        &self,
        message: &JobMessage,
        delivery: Delivery<'_>,
        now: Timestamp,
        deadline: Option<Instant>,
    ) -> Result<(), JobRetry> {
        let Some(job) = self.admit(message, now).await? else {
            return Ok(());
        };
        // Waited for before the quota and the lease, so neither runs out while
        // the batch's other documents are read; held until the OCR is done.
        let waiting = Instant::now();
        let _reserved = self.in_flight.reserve(job.size()).await;
        let now = now.plus(waiting.elapsed());
        if !self.within_quota(message, now).await? {
            return Ok(());
        }
        let Some(lease) = self.take(&job, delivery, now).await? else {
            return Ok(());
        };
        self.read(&lease, deadline).await
    }

    /// Reads the leased job: from an earlier attempt's stored result, in
    /// chunks, or in one call.
    async fn read(&self, lease: &Lease<'_>, deadline: Option<Instant>) -> Result<(), JobRetry> {
        let attempt = lease.attempt();
        // An earlier attempt read the document but died before recording it:
        // finish from its result rather than pay for the OCR again. A first
        // attempt has no earlier one, so it spends no read on looking.
        if attempt > 1
            && let Some(result) = self.stored_result(lease).await?
        {
            info!(
                attempt,
                "finishing from the result an earlier attempt stored"
            );
            let document_type = document_type_of(&lease.job, &result);
            return lease.record_completion(result, document_type).await;
        }
        if attempt > self.settings.max_attempts {
            return lease.give_up().await;
        }
        let Some(document) = self.load(lease).await? else {
            return Ok(());
        };
        info!(
            attempt,
            size = document.bytes.len(),
            engine = self.engine.name(),
            "OCR started"
        );
        if let Some(error) = self.beyond_one_call(&lease.job) {
            return lease.fail(error).await;
        }
        if let Some(pdf) = chunks::splittable(&self.parts, &lease.job, &document).await {
            return chunks::read_in_chunks(lease, pdf, deadline).await;
        }
        self.read_whole(lease, document, deadline).await
    }

    /// One call for the whole document, prepared upright.
    async fn read_whole(
        &self,
        lease: &Lease<'_>,
        document: Document,
        deadline: Option<Instant>,
    ) -> Result<(), JobRetry> {
        let (document, scale) = self.upright(document).await;
        // After the waits for memory and quota: a call the invocation's end
        // would cut short is paid for and read again; hand it to a fresh message.
        if self.out_of_time(deadline) {
            return lease.resume_later(0).await;
        }
        match self.recognize(&document).await {
            Ok(mut result) => {
                images::restore(&mut result, scale);
                lease.complete(result).await
            }
            Err(error) => lease.ocr_failed(error).await,
        }
    }

    /// Why a document that is read in one call cannot be: a TIFF (counted at
    /// ingest) with more pages than one call takes. A PDF is cut into chunks.
    fn beyond_one_call(&self, job: &Job) -> Option<JobError> {
        let pages = job.pages.filter(|_| job.content_type == FileType::Tiff)?;
        let most = self.settings.pages_per_call;
        (pages > most).then(|| {
            JobError::new(
                ErrorCode::TooManyPages,
                format!(
                    "the TIFF has {pages} pages and is read in one call of at most {most}; send it as a PDF, which is read in chunks"
                ),
            )
        })
    }

    /// The document upright and within the engine's pixel budget, with the
    /// scale that maps the engine's boxes back onto it (decoded off the runtime).
    async fn upright(&self, document: Document) -> (Document, f64) {
        let max_pixels = self.engine.max_pixels();
        let cost = images::decode_cost(&document, max_pixels);
        let _decoding = if cost > 0 {
            Some(self.decoding.reserve(cost).await)
        } else {
            None
        };
        let original = document.clone();
        let prepared = tokio::task::spawn_blocking(move || images::prepare(&document, max_pixels));
        match prepared.await {
            Ok(Some(prepared)) => (prepared.document, prepared.scale),
            Ok(None) | Err(_) => (original, 1.0),
        }
    }

    /// The job if this message should run it: not deleted, not finished (a
    /// finished job whose event was never published is announced now), uploaded,
    /// the job's live message, and not held by a live lease.
    async fn admit(&self, message: &JobMessage, now: Timestamp) -> Result<Option<Job>, JobRetry> {
        let Some(job) = self.jobs.get(&message.job_id).await? else {
            info!("job deleted; message dropped");
            return Ok(None);
        };
        if job.status.is_final() && !job.announced {
            // An earlier delivery finished the job but could not publish its event.
            announce(self.events.as_ref(), self.jobs.as_ref(), &job, now).await?;
            return Ok(None);
        }
        if job.status.is_final() || job.status == JobStatus::AwaitingUpload {
            info!(status = %job.status, "nothing to do; duplicate or stray message");
            return Ok(None);
        }
        if message.wake != job.wake {
            info!(
                message = message.wake,
                live = job.wake,
                "a fresh message was sent for the job since; stale message dropped"
            );
            return Ok(None);
        }
        if job.lease_is_live(now) {
            info!("another attempt holds the lease; duplicate message dropped");
            return Ok(None);
        }
        Ok(Some(job))
    }

    /// Whether the OCR quota has room now; if not, a fresh copy of the message
    /// comes back later (waiting for capacity must not use up receives).
    async fn within_quota(&self, message: &JobMessage, now: Timestamp) -> Result<bool, JobRetry> {
        let decision = self.ocr_quota(now).await?;
        let RateDecision::Limited { retry_after } = decision else {
            return Ok(true);
        };
        let delay = retry_after + Duration::from_millis(rand::random_range(0..1000));
        self.queue.send_later(message, delay).await?;
        info!(
            delay_ms = delay.as_millis() as u64,
            "OCR capacity in use; job deferred"
        );
        Ok(false)
    }

    /// The job under this worker's lease, or `None` when another delivery took it first.
    async fn take<'a>(
        &'a self,
        job: &Job,
        delivery: Delivery<'a>,
        now: Timestamp,
    ) -> Result<Option<Lease<'a>>, JobRetry> {
        let start = Transition::StartProcessing {
            lease_until: now.plus(self.settings.lease),
        };
        let taken = match transition_or_moved(self.jobs.as_ref(), &job.job_id, &start, now).await? {
            Ok(taken) => taken,
            Err(Moved::Away(status)) => {
                info!(%status, "another delivery took the job first");
                return Ok(None);
            }
            Err(Moved::Deleted) => return Ok(None),
        };
        if let Some(queued_at) = taken.queued_at {
            let waited = now.as_millis().saturating_sub(queued_at.as_millis());
            metrics::record(Metric::QueueWait, waited as f64);
        }
        Ok(Some(Lease::new(&self.parts, taken, delivery, now)))
    }

    /// The checked upload; `None` once the job has failed for want of it.
    async fn load(&self, lease: &Lease<'_>) -> Result<Option<Document>, JobRetry> {
        let job = &lease.job;
        let key = job.job_id.upload_key();
        let etag = job
            .upload
            .as_ref()
            .and_then(|upload| upload.upload_etag.as_ref());
        let read = match etag {
            Some(etag) => self.blobs.get_if_match(&key, etag).await,
            None => self.blobs.get(&key).await,
        };
        let error = match read {
            Ok(bytes) => {
                return Ok(Some(Document {
                    filename: job.filename.to_string(),
                    file_type: job.content_type,
                    bytes,
                }));
            }
            Err(BlobError::NotFound(_)) => JobError::new(
                ErrorCode::UploadMissing,
                "the uploaded file is no longer stored",
            ),
            Err(BlobError::Changed(_)) => JobError::new(
                ErrorCode::UploadChanged,
                "the uploaded file was replaced after it was checked; upload it as a new job",
            ),
            Err(error) => {
                let storage = JobError::new(ErrorCode::StorageUnavailable, error.to_string());
                lease.release(storage).await?;
                return Err(error.into());
            }
        };
        lease.fail(error).await?;
        Ok(None)
    }

    /// The full result an earlier attempt of this job stored, if it is there and whole.
    async fn stored_result(&self, lease: &Lease<'_>) -> Result<Option<OcrResult>, JobRetry> {
        let job = &lease.job;
        let body = match self.blobs.get(&job.job_id.result_key()).await {
            Ok(body) => body,
            Err(BlobError::NotFound(_)) => return Ok(None),
            Err(error) => {
                let storage = JobError::new(ErrorCode::StorageUnavailable, error.to_string());
                lease.release(storage).await?;
                return Err(error.into());
            }
        };
        match serde_json::from_slice::<OcrResult>(&body) {
            Ok(result) if result.job_id.as_ref() == Some(&job.job_id) => Ok(Some(result)),
            _ => {
                warn!("a stored result is not this job's whole result; reading again");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_lambda_events::event::sqs::SqsEvent;
    use bytes::Bytes;
    use lambda_runtime::{Context, LambdaEvent};
    use ocr_shared::domain::{FileType, JobId, NewJob, PiiCounts, PiiKind, Sha256Hex};
    use ocr_shared::memory::{
        MemoryBlobStore, MemoryEventPublisher, MemoryJobQueue, MemoryJobStore, MemoryRateLimiter,
        ScriptedOcr,
    };

    use std::sync::Arc;

    use super::*;
    use crate::budget::ByteBudget;
    use ocr_shared::domain::DocumentType;
    use ocr_shared::ports::{BlobStore, JobEventType, JobStore, OcrEngine, OcrError};
    use ocr_shared::testing;

    fn result(text: &str) -> OcrResult {
        testing::ocr_result(text)
    }

    struct Given {
        jobs: Arc<MemoryJobStore>,
        blobs: Arc<MemoryBlobStore>,
        queue: Arc<MemoryJobQueue>,
        events: Arc<MemoryEventPublisher>,
        engine: Arc<ScriptedOcr>,
        worker: Worker,
    }

    fn given(engine: ScriptedOcr, rate_limit_rps: u32) -> Given {
        let jobs = Arc::new(MemoryJobStore::default());
        let blobs = Arc::new(MemoryBlobStore::default());
        let queue = Arc::new(MemoryJobQueue::default());
        let events = Arc::new(MemoryEventPublisher::default());
        let engine = Arc::new(engine);
        let worker = Worker {
            parts: Parts {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                queue: queue.clone(),
                events: events.clone(),
                engine: engine.clone(),
                limiter: Arc::new(MemoryRateLimiter::default()),
                settings: WorkerSettings {
                    max_attempts: 3,
                    lease: Duration::from_secs(60),
                    retry_base: Duration::from_secs(10),
                    rate_limit_rps,
                    max_bytes_in_flight: DEFAULT_BYTES_IN_FLIGHT,
                    pages_per_call: DEFAULT_PAGES_PER_CALL,
                    review_below: DEFAULT_LOW_CONFIDENCE,
                },
            },
            in_flight: ByteBudget::new(DEFAULT_BYTES_IN_FLIGHT),
            decoding: ByteBudget::new(DECODE_BUDGET),
        };
        Given {
            jobs,
            blobs,
            queue,
            events,
            engine,
            worker,
        }
    }

    fn scripted() -> ScriptedOcr {
        ScriptedOcr::new(result("영수증 합계 12,000원"))
    }

    /// A queued job whose upload is stored.
    async fn queued(given: &Given, document_type: Option<DocumentType>) -> Job {
        queued_bytes(given, document_type, Bytes::from_static(b"png")).await
    }

    /// A queued job whose upload, `upload`, is stored and was checked by ingest.
    async fn queued_bytes(
        given: &Given,
        document_type: Option<DocumentType>,
        upload: Bytes,
    ) -> Job {
        let request = NewJob {
            document_type,
            ..testing::request("alice", "r.png", FileType::Png, 3)
        };
        queued_request(given, request, upload).await
    }

    /// The job `request` opens, queued with `upload` stored and checked as ingest does.
    async fn queued_request(given: &Given, request: NewJob, upload: Bytes) -> Job {
        let size = upload.len() as u64;
        let job = testing::open(request, Timestamp::now());
        given.jobs.create(&job).await.unwrap();
        given
            .blobs
            .put(&job.job_id.upload_key(), upload, "image/png")
            .await
            .unwrap();
        // As ingest does: the version it checked is the one the worker may read.
        let checked = given.blobs.head(&job.job_id.upload_key()).await.unwrap();
        let etag = checked.and_then(|info| info.etag);
        let enqueue = testing::enqueue(&job, size, Sha256Hex::from_digest([1; 32]), etag);
        given
            .jobs
            .transition(&job.job_id, &enqueue, Timestamp::now())
            .await
            .unwrap()
    }

    /// A queued job whose client asked `redact`.
    async fn queued_asking(given: &Given, redact: Option<Vec<PiiKind>>) -> Job {
        let request = NewJob {
            redact,
            ..testing::request("alice", "r.png", FileType::Png, 3)
        };
        queued_request(given, request, Bytes::from_static(b"png")).await
    }

    /// The delays of the fresh messages the worker sent, in order.
    fn sent_delays(given: &Given) -> Vec<Duration> {
        let sent = given.queue.sent.lock().unwrap();
        sent.iter().map(|(_, delay)| *delay).collect()
    }

    /// Delivers the job's live message: ingest's, or the last one the worker sent.
    async fn run(given: &Given, job: &Job, receive_count: u32) -> Result<(), JobRetry> {
        let live = given.jobs.get(&job.job_id).await.unwrap();
        let message = JobMessage::of(live.as_ref().unwrap_or(job));
        deliver(given, &message, receive_count).await
    }

    async fn deliver(
        given: &Given,
        message: &JobMessage,
        receive_count: u32,
    ) -> Result<(), JobRetry> {
        given
            .worker
            .job_until(
                message,
                Delivery {
                    receive_count,
                    receipt: "receipt-1",
                },
                Timestamp::now(),
                None,
            )
            .await
    }

    async fn stored(given: &Given, job: &Job) -> Job {
        given.jobs.get(&job.job_id).await.unwrap().unwrap()
    }

    fn published(given: &Given) -> Vec<JobEventType> {
        given
            .events
            .published
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_type)
            .collect()
    }

    #[tokio::test]
    async fn a_read_completes_the_job_stores_the_result_and_announces_it() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        run(&given, &job, 1).await.unwrap();

        let done = stored(&given, &job).await;
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!(done.attempts, 1);
        assert_eq!(done.text(), Some("영수증 합계 12,000원"));
        assert_eq!(
            done.document_type,
            Some(DocumentType::Receipt),
            "told from the text"
        );
        assert_eq!(
            done.result_key().map(str::to_owned),
            Some(job.job_id.result_key())
        );
        let body = given.blobs.get(&job.job_id.result_key()).await.unwrap();
        let full: OcrResult = serde_json::from_slice(&body).unwrap();
        assert_eq!(full.job_id, Some(job.job_id.clone()));
        assert_eq!(published(&given), vec![JobEventType::Completed]);
        assert_eq!(given.engine.calls(), 1);
    }

    #[tokio::test]
    async fn an_event_that_could_not_be_published_is_published_on_the_next_delivery() {
        let given = given(scripted(), 100);
        *given.events.failures.lock().unwrap() = 1;
        let job = queued(&given, None).await;
        assert!(matches!(
            run(&given, &job, 1).await,
            Err(JobRetry::Publish(_))
        ));
        let done = stored(&given, &job).await;
        assert_eq!((done.status, done.announced), (JobStatus::Completed, false));
        assert!(published(&given).is_empty());

        run(&given, &job, 2).await.unwrap();
        assert!(stored(&given, &job).await.announced);
        assert_eq!(published(&given), vec![JobEventType::Completed]);
        run(&given, &job, 3).await.unwrap();
        assert_eq!(published(&given).len(), 1, "announced once");
        assert_eq!(given.engine.calls(), 1, "the document was read once");
    }

    #[tokio::test]
    async fn an_id_card_is_stored_with_its_registration_number_masked_and_counted() {
        let card = "주민등록증\n홍길동\n900101-1234568\n연락처 010-1234-5678";
        let given = given(ScriptedOcr::new(result(card)), 100);
        let job = queued(&given, None).await;
        run(&given, &job, 1).await.unwrap();
        let done = stored(&given, &job).await;
        assert_eq!(done.document_type, Some(DocumentType::IdCard));
        let text = done.text().unwrap().to_owned();
        assert_eq!(
            text,
            "주민등록증\n홍길동\n900101-1******\n연락처 010-****-5678"
        );
        let counts = done.redacted().cloned().unwrap();
        assert_eq!(counts[&PiiKind::Rrn], 1);
        assert_eq!(counts[&PiiKind::Phone], 1);
        assert_eq!(counts[&PiiKind::Passport], 0, "every kind is listed");
        let body = given.blobs.get(&job.job_id.result_key()).await.unwrap();
        let stored_result: OcrResult = serde_json::from_slice(&body).unwrap();
        assert_eq!(stored_result.text, text);
        assert_eq!(stored_result.redacted, done.redacted().cloned());
        assert!(!String::from_utf8_lossy(&body).contains("1234568"));
    }

    #[tokio::test]
    async fn a_job_that_asks_for_no_masking_keeps_its_text_and_others_mask_only_what_they_ask() {
        let card = "주민등록증 900101-1234568 010-1234-5678";
        let given = given(ScriptedOcr::new(result(card)), 100);
        let none = queued_asking(&given, Some(Vec::new())).await;
        let phone = queued_asking(&given, Some(vec![PiiKind::Phone])).await;
        run(&given, &none, 1).await.unwrap();
        run(&given, &phone, 1).await.unwrap();
        let none = stored(&given, &none).await;
        assert_eq!(none.text(), Some(card));
        assert_eq!(none.redacted().cloned(), None);
        let phone = stored(&given, &phone).await;
        assert_eq!(
            phone.text(),
            Some("주민등록증 900101-1234568 010-****-5678")
        );
        assert_eq!(
            phone.redacted().cloned(),
            Some(PiiCounts::from([(PiiKind::Phone, 1)]))
        );
    }

    #[tokio::test]
    async fn a_document_read_below_the_threshold_needs_review_with_its_weak_pages() {
        let mut weak = testing::ocr_result("흐릿한 영수증");
        let mut second = weak.pages[0].clone();
        second.page = 2;
        second.confidence = 0.42;
        weak.pages[0].confidence = 0.93;
        weak.pages.push(second.clone());
        second.page = 3;
        second.confidence = 0.69;
        weak.pages.push(second);
        weak.confidence = 0.42;
        let engine = scripted().then(Ok(weak));
        let given = given(engine, 100);
        let weak_job = queued(&given, None).await;
        run(&given, &weak_job, 1).await.unwrap();
        let done = stored(&given, &weak_job).await;
        assert!(done.needs_review());
        assert_eq!(
            done.completion().unwrap().review_pages,
            [2, 3],
            "the pages below 0.7"
        );

        // The default reply (0.91) is above the threshold: nothing to review.
        let fine = queued_bytes(&given, None, Bytes::from_static(b"another png")).await;
        run(&given, &fine, 1).await.unwrap();
        let done = stored(&given, &fine).await;
        assert!(!done.needs_review());
        assert!(done.completion().unwrap().review_pages.is_empty());
    }

    #[tokio::test]
    async fn a_client_given_document_type_is_kept() {
        let given = given(scripted(), 100);
        let job = queued(&given, Some(DocumentType::Contract)).await;
        run(&given, &job, 1).await.unwrap();
        assert_eq!(
            stored(&given, &job).await.document_type,
            Some(DocumentType::Contract)
        );
    }

    #[tokio::test]
    async fn an_unreadable_document_fails_at_once() {
        let engine = scripted().then(Err(OcrError::Rejected {
            code: ErrorCode::UnsupportedDocument,
            message: "Upstage could not read the document (415)".into(),
        }));
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        run(&given, &job, 1).await.unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error.unwrap().code, "unsupported_document");
        assert_eq!(published(&given), vec![JobEventType::Failed]);
    }

    #[tokio::test]
    async fn a_retryable_error_releases_the_job_and_delays_the_message() {
        let engine = scripted().then(Err(OcrError::Retryable {
            message: "Upstage failed (503)".into(),
            retry_after: Some(Duration::from_secs(30)),
        }));
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        let retry = run(&given, &job, 1).await.unwrap_err();
        assert!(matches!(retry, JobRetry::Ocr { delay, .. } if delay >= Duration::from_secs(30)));
        let released = stored(&given, &job).await;
        assert_eq!(released.status, JobStatus::Queued);
        assert_eq!(released.lease_until, None);
        assert_eq!(released.error.unwrap().code, "ocr_unavailable");
        let delayed = given.queue.delayed.lock().unwrap().clone();
        assert_eq!(delayed.len(), 1);
        assert_eq!(delayed[0].0, "receipt-1");
        assert!(delayed[0].1 >= Duration::from_secs(30));
        assert!(published(&given).is_empty());
    }

    #[tokio::test]
    async fn refused_credentials_are_retried_not_failed() {
        let engine = scripted().then(Err(OcrError::Unauthorized {
            message: "Upstage refused the API key (401)".into(),
        }));
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        run(&given, &job, 1).await.unwrap();
        let released = stored(&given, &job).await;
        assert_eq!(released.status, JobStatus::Queued);
        assert_eq!(released.error.unwrap().code, "ocr_unauthorized");
    }

    #[tokio::test]
    async fn a_rotated_key_never_uses_up_a_jobs_attempts() {
        let mut engine = scripted();
        for _ in 0..5 {
            engine = engine.then(Err(OcrError::Unauthorized {
                message: "Upstage refused the API key (401)".into(),
            }));
        }
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        // More refusals than OCR_MAX_ATTEMPTS (3), each delivery a fresh message.
        for refusal in 1..=5 {
            run(&given, &job, 1).await.unwrap();
            let waiting = stored(&given, &job).await;
            assert_eq!(waiting.status, JobStatus::Queued, "refusal {refusal}");
            assert_eq!((waiting.attempts, waiting.auth_failures), (0, refusal));
        }
        let delays = sent_delays(&given);
        assert_eq!(delays.len(), 5, "one fresh message per refusal");
        assert!(delays[4] > delays[0], "the wait grows: {delays:?}");
        assert!(
            given.queue.delayed.lock().unwrap().is_empty(),
            "the refused message is acknowledged, not redelivered"
        );

        // The key is fixed: the job completes on its first counted attempt.
        run(&given, &job, 1).await.unwrap();
        let done = stored(&given, &job).await;
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!((done.attempts, done.auth_failures), (1, 0));
    }

    #[tokio::test]
    async fn credentials_refused_for_hours_fail_the_job_with_ocr_unauthorized() {
        let mut engine = scripted();
        for _ in 0..=MAX_POSTPONES {
            engine = engine.then(Err(OcrError::Unauthorized {
                message: "Upstage refused the API key (401)".into(),
            }));
        }
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        for refusal in 1..=MAX_POSTPONES {
            run(&given, &job, 1).await.unwrap();
            let waiting = stored(&given, &job).await;
            assert_eq!(waiting.status, JobStatus::Queued, "refusal {refusal}");
        }
        assert_eq!(sent_delays(&given).len() as u32, MAX_POSTPONES);

        // One refusal past the cap: failed, announced, and no message more.
        run(&given, &job, 1).await.unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        let error = failed.error.unwrap();
        assert_eq!(error.code, "ocr_unauthorized");
        assert!(
            error
                .message
                .contains("refused our credentials 24 times in a row"),
            "{}",
            error.message
        );
        assert_eq!(published(&given), vec![JobEventType::Failed]);
        assert_eq!(sent_delays(&given).len() as u32, MAX_POSTPONES);
    }

    #[tokio::test]
    async fn a_copy_sent_before_a_hand_back_is_stale_and_the_job_keeps_one_live_message() {
        let engine = scripted().then(Err(OcrError::RateLimited {
            message: "Upstage's rate limit was reached".into(),
            retry_after: None,
        }));
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        // Ingest's message, and a duplicate of it (SQS delivers at least once).
        let first = JobMessage::of(&job);
        deliver(&given, &first, 1).await.unwrap();
        let waiting = stored(&given, &job).await;
        assert_eq!((waiting.status, waiting.wake), (JobStatus::Queued, 1));
        assert_eq!(
            sent_delays(&given).len(),
            1,
            "the hand-back's fresh message"
        );

        // The duplicate comes in while the job waits: dropped unread, and it
        // sends nothing, so copies never multiply.
        deliver(&given, &first, 1).await.unwrap();
        assert_eq!(
            stored(&given, &job).await,
            waiting,
            "the duplicate moved nothing"
        );
        assert_eq!(sent_delays(&given).len(), 1);

        // The live one reads the job.
        deliver(&given, &JobMessage::of(&waiting), 1).await.unwrap();
        assert_eq!(stored(&given, &job).await.status, JobStatus::Completed);
        assert_eq!(sent_delays(&given).len(), 1);
    }

    #[tokio::test]
    async fn the_engines_rate_limit_never_uses_up_attempts_until_it_holds_for_hours() {
        let limited = || {
            Err(OcrError::RateLimited {
                message: "Upstage's rate limit was reached: slow down".into(),
                retry_after: Some(Duration::from_secs(3)),
            })
        };
        let mut engine = scripted();
        for _ in 0..=MAX_THROTTLES {
            engine = engine.then(limited());
        }
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        // Far more refusals than OCR_MAX_ATTEMPTS, each delivery a fresh message.
        for throttle in 1..=MAX_THROTTLES {
            run(&given, &job, 1).await.unwrap();
            let waiting = stored(&given, &job).await;
            assert_eq!(waiting.status, JobStatus::Queued, "throttle {throttle}");
            assert_eq!((waiting.attempts, waiting.throttles), (0, throttle));
            assert_eq!(waiting.error.unwrap().code, "ocr_unavailable");
        }
        let delays = sent_delays(&given);
        assert_eq!(delays.len() as u32, MAX_THROTTLES, "one fresh message each");
        assert!(
            delays.iter().all(|delay| *delay >= Duration::from_secs(3)),
            "never sooner than the engine asked: {delays:?}"
        );
        assert!(delays[5] > delays[0], "the wait grows: {delays:?}");
        assert!(given.queue.delayed.lock().unwrap().is_empty());
        assert!(published(&given).is_empty());

        // One refusal more than the limit fails the job, with its reason.
        run(&given, &job, 1).await.unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        let error = failed.error.unwrap();
        assert!(
            error
                .message
                .contains("rate limit refused 24 calls in a row"),
            "{}",
            error.message
        );
        assert_eq!(published(&given), vec![JobEventType::Failed]);
    }

    #[tokio::test]
    async fn a_throttle_between_successes_is_forgotten_on_completion() {
        let engine = scripted().then(Err(OcrError::RateLimited {
            message: "Upstage's rate limit was reached".into(),
            retry_after: None,
        }));
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        run(&given, &job, 1).await.unwrap();
        run(&given, &job, 1).await.unwrap();
        let done = stored(&given, &job).await;
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!((done.attempts, done.throttles), (1, 0));
    }

    #[tokio::test]
    async fn the_last_attempt_fails_the_job_and_acknowledges_the_message() {
        let failing = || {
            Err(OcrError::Retryable {
                message: "Upstage failed (500)".into(),
                retry_after: None,
            })
        };
        let given = given(
            scripted().then(failing()).then(failing()).then(failing()),
            100,
        );
        let job = queued(&given, None).await;
        assert!(run(&given, &job, 1).await.is_err());
        assert!(run(&given, &job, 2).await.is_err());
        run(&given, &job, 3).await.unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!((failed.status, failed.attempts), (JobStatus::Failed, 3));
        assert!(
            failed
                .error
                .unwrap()
                .message
                .starts_with("gave up after 3 attempts")
        );
        assert_eq!(given.engine.calls(), 3);
    }

    #[tokio::test]
    async fn a_job_past_its_attempts_fails_without_another_read() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        // Three attempts that crashed: each took the lease and never came back.
        let mut now = Timestamp::now();
        for _ in 0..3 {
            let lease_until = now.plus(Duration::from_secs(1));
            given
                .jobs
                .transition(
                    &job.job_id,
                    &Transition::StartProcessing { lease_until },
                    now,
                )
                .await
                .unwrap();
            now = now.plus(Duration::from_secs(2));
        }
        let message = JobMessage {
            job_id: job.job_id.clone(),
            wake: 0,
        };
        given
            .worker
            .job_until(
                &message,
                Delivery {
                    receive_count: 4,
                    receipt: "receipt",
                },
                now,
                None,
            )
            .await
            .unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(given.engine.calls(), 0);
    }

    #[tokio::test]
    async fn finished_missing_and_leased_jobs_are_acknowledged_without_a_read() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        run(&given, &job, 1).await.unwrap();
        run(&given, &job, 1).await.unwrap(); // finished: nothing to do
        let missing = JobMessage {
            job_id: JobId::new(),
            wake: 0,
        };
        given
            .worker
            .job_until(
                &missing,
                Delivery {
                    receive_count: 1,
                    receipt: "r",
                },
                Timestamp::now(),
                None,
            )
            .await
            .unwrap();

        let leased = queued(&given, None).await;
        let now = Timestamp::now();
        given
            .jobs
            .transition(
                &leased.job_id,
                &Transition::StartProcessing {
                    lease_until: now.plus(Duration::from_secs(60)),
                },
                now,
            )
            .await
            .unwrap();
        run(&given, &leased, 1).await.unwrap();
        assert_eq!(
            stored(&given, &leased).await.attempts,
            1,
            "the live lease was left alone"
        );
        assert_eq!(given.engine.calls(), 1);
    }

    #[tokio::test]
    async fn a_result_stored_by_an_attempt_that_died_is_finished_without_another_read() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        // The first attempt took the job, stored its result, and died before recording it.
        let lapsed = Timestamp::from_millis(Timestamp::now().as_millis() - 1000);
        given
            .jobs
            .transition(
                &job.job_id,
                &Transition::StartProcessing {
                    lease_until: lapsed,
                },
                lapsed,
            )
            .await
            .unwrap();
        let mut earlier = result("사업자등록번호 123-45-67890");
        earlier.job_id = Some(job.job_id.clone());
        given
            .blobs
            .put(
                &job.job_id.result_key(),
                serde_json::to_vec(&earlier).unwrap().into(),
                "application/json",
            )
            .await
            .unwrap();
        run(&given, &job, 2).await.unwrap();
        let done = stored(&given, &job).await;
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!(done.text(), Some("사업자등록번호 123-45-67890"));
        assert_eq!(given.engine.calls(), 0, "the OCR was paid for once");
        assert_eq!(published(&given), vec![JobEventType::Completed]);
    }

    #[tokio::test]
    async fn a_stored_result_of_another_job_or_cut_short_is_read_again() {
        for body in [
            serde_json::to_vec(&result("남의 결과")).unwrap(),
            br#"{"job_id": "#.to_vec(),
        ] {
            let given = given(scripted(), 100);
            let job = queued(&given, None).await;
            given
                .blobs
                .put(&job.job_id.result_key(), body.into(), "application/json")
                .await
                .unwrap();
            run(&given, &job, 1).await.unwrap();
            assert_eq!(given.engine.calls(), 1);
            assert_eq!(
                stored(&given, &job).await.text(),
                Some("영수증 합계 12,000원")
            );
        }
    }

    #[tokio::test]
    async fn a_completion_the_store_missed_is_recorded_in_process() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        given.jobs.fail_transitions_to(JobStatus::Completed, 2);
        run(&given, &job, 1).await.unwrap();
        assert_eq!(stored(&given, &job).await.status, JobStatus::Completed);
        assert_eq!(given.engine.calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_upload_fails_the_job_with_a_reason() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        given.blobs.delete(&job.job_id.upload_key()).await.unwrap();
        run(&given, &job, 1).await.unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error.unwrap().code, "upload_missing");
    }

    #[tokio::test]
    async fn an_upload_replaced_after_its_check_is_never_read() {
        let given = given(scripted(), 100);
        let job = queued(&given, None).await;
        given
            .blobs
            .put(
                &job.job_id.upload_key(),
                Bytes::from_static(b"other bytes"),
                "image/png",
            )
            .await
            .unwrap();
        run(&given, &job, 1).await.unwrap();
        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error.unwrap().code, "upload_changed");
        assert_eq!(given.engine.calls(), 0, "unchecked bytes never reach OCR");
    }

    #[tokio::test]
    async fn over_the_rate_limit_the_job_is_deferred_without_a_lease() {
        let given = given(scripted(), 1);
        let first = queued(&given, None).await;
        let second = queued(&given, None).await;
        let now = Timestamp::from_millis(1_800_000_000_000);
        for job in [&first, &second] {
            let message = JobMessage {
                job_id: job.job_id.clone(),
                wake: 0,
            };
            given
                .worker
                .job_until(
                    &message,
                    Delivery {
                        receive_count: 1,
                        receipt: "r",
                    },
                    now,
                    None,
                )
                .await
                .unwrap();
        }
        assert_eq!(given.engine.calls(), 1);
        let deferred = stored(&given, &second).await;
        assert_eq!((deferred.status, deferred.attempts), (JobStatus::Queued, 0));
        let sent = given.queue.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0.job_id, second.job_id);
        assert!(sent[0].1 >= Duration::from_secs(1));
    }

    /// An engine that notes the most document bytes it held at once.
    #[derive(Default)]
    struct Gauge {
        holding: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl OcrEngine for Gauge {
        fn name(&self) -> &'static str {
            "gauge"
        }

        async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.holding.fetch_add(document.bytes.len(), SeqCst) + document.bytes.len();
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.holding.fetch_sub(document.bytes.len(), SeqCst);
            Ok(result("읽음"))
        }
    }

    #[tokio::test]
    async fn a_batch_of_large_documents_holds_no_more_bytes_than_its_budget() {
        let gauge = Arc::new(Gauge::default());
        let mut given = given(scripted(), 1000);
        given.worker.parts.engine = gauge.clone();
        given.worker.in_flight = ByteBudget::new(2 * 40 * 1024);
        let mut event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/sqs-jobs-batch.json")).unwrap();
        let template = event.records[0].clone();
        event.records.clear();
        for n in 0..10 {
            let job = queued_bytes(&given, None, Bytes::from(vec![n; 40 * 1024])).await;
            let mut record = template.clone();
            record.message_id = Some(format!("m{n}"));
            record.body = Some(format!("{{\"job_id\":\"{}\"}}", job.job_id));
            event.records.push(record);
        }
        let response = handle(LambdaEvent::new(event, Context::default()), &given.worker)
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
        let most = gauge.most.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            most,
            2 * 40 * 1024,
            "two 40 KiB documents at a time, never more"
        );
    }

    #[tokio::test]
    async fn a_batch_reports_only_the_messages_to_retry_by_their_ids() {
        let engine = scripted().then(Err(OcrError::Retryable {
            message: "busy".into(),
            retry_after: None,
        }));
        let given = given(engine, 100);
        let job = queued(&given, None).await;
        let mut event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/sqs-jobs-batch.json")).unwrap();
        // The first record names our job; the second a job that does not exist; the third is not JSON.
        event.records[0].body = Some(format!("{{\"job_id\":\"{}\"}}", job.job_id));
        let response = handle(LambdaEvent::new(event, Context::default()), &given.worker)
            .await
            .unwrap();
        let ids: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|failure| failure.item_identifier.as_str())
            .collect();
        assert_eq!(ids, vec!["059f36b4-87a3-44ab-83d2-661975830a7d"]);
    }

    /// An engine that reads a PDF's text layer, one page each, as Upstage
    /// would read its pixels; it refuses more pages than one call takes, notes
    /// the pages of each call and the job's progress when the call came, and
    /// fails the calls it is told to.
    struct Pages {
        per_call: u32,
        watch: Option<(Arc<MemoryJobStore>, JobId)>,
        fail_calls: Vec<usize>,
        calls: std::sync::Mutex<Vec<(Vec<String>, Option<u32>)>>,
        /// How long each call takes.
        took: Duration,
    }

    impl Pages {
        fn new(per_call: u32) -> Self {
            Self {
                per_call,
                watch: None,
                fail_calls: vec![],
                calls: Default::default(),
                took: Duration::ZERO,
            }
        }

        fn calls(&self) -> Vec<(Vec<String>, Option<u32>)> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl OcrEngine for Pages {
        fn name(&self) -> &'static str {
            "pages"
        }

        async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError> {
            tokio::time::sleep(self.took).await;
            let texts = ocr_shared::pdf::page_texts(&document.bytes);
            assert!(
                texts.len() as u32 <= self.per_call,
                "{} pages in one call",
                texts.len()
            );
            let progress = match &self.watch {
                Some((jobs, id)) => {
                    Some(jobs.get(id).await.unwrap().unwrap().pages_done).filter(|done| *done > 0)
                }
                None => None,
            };
            let call = {
                let mut calls = self.calls.lock().unwrap();
                calls.push((texts.clone(), progress));
                calls.len()
            };
            if self.fail_calls.contains(&call) {
                return Err(OcrError::Retryable {
                    message: "busy".into(),
                    retry_after: None,
                });
            }
            let pages: Vec<_> = texts
                .iter()
                .enumerate()
                .map(|(index, text)| ocr_shared::ports::OcrPage {
                    page: index as u32 + 1,
                    width: 595,
                    height: 842,
                    confidence: 0.9,
                    text: text.clone(),
                    words: vec![],
                    quality: None,
                })
                .collect();
            Ok(OcrResult {
                num_billed_pages: pages.len() as u32,
                text: texts.concat(),
                pages,
                ..result("")
            })
        }
    }

    /// A queued PDF job of `texts`, one page each, counted by ingest.
    async fn queued_pdf(given: &Given, texts: &[String], redact: Option<Vec<PiiKind>>) -> Job {
        let bytes = ocr_shared::pdf::sample_of(texts);
        let request = NewJob {
            redact,
            ..testing::request("alice", "long.pdf", FileType::Pdf, bytes.len() as u64)
        };
        let job = testing::open(request, Timestamp::now());
        given.jobs.create(&job).await.unwrap();
        let key = job.job_id.upload_key();
        given
            .blobs
            .put(&key, bytes.clone().into(), "application/pdf")
            .await
            .unwrap();
        let etag = given
            .blobs
            .head(&key)
            .await
            .unwrap()
            .and_then(|info| info.etag);
        let mut enqueue = testing::enqueue(&job, bytes.len() as u64, Sha256Hex::of(&bytes), etag);
        if let Transition::Enqueue { pages, .. } = &mut enqueue {
            *pages = Some(texts.len() as u32);
        }
        given
            .jobs
            .transition(&job.job_id, &enqueue, Timestamp::now())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_tiff_of_more_pages_than_one_call_takes_fails_with_its_reason_unread() {
        let mut given = given(scripted(), 100);
        given.worker.parts.settings.pages_per_call = 3;
        let request = testing::request("alice", "scan.tif", FileType::Tiff, 4);
        let job = testing::open(request, Timestamp::now());
        given.jobs.create(&job).await.unwrap();
        let mut enqueue = testing::enqueue(&job, 4, Sha256Hex::from_digest([2; 32]), None);
        if let Transition::Enqueue { pages, .. } = &mut enqueue {
            *pages = Some(4);
        }
        given
            .jobs
            .transition(&job.job_id, &enqueue, Timestamp::now())
            .await
            .unwrap();
        given
            .blobs
            .put(
                &job.job_id.upload_key(),
                Bytes::from_static(b"II*\0"),
                "image/tiff",
            )
            .await
            .unwrap();

        run(&given, &job, 1).await.unwrap();

        let failed = stored(&given, &job).await;
        assert_eq!(failed.status, JobStatus::Failed);
        let error = failed.error.unwrap();
        assert_eq!(error.code, "too_many_pages");
        assert!(error.message.contains("4 pages"), "{}", error.message);
        assert_eq!(published(&given), vec![JobEventType::Failed]);
    }

    #[tokio::test]
    async fn with_too_little_of_the_invocation_left_no_call_is_started_and_nothing_is_paid_twice() {
        let mut given = given(scripted(), 100);
        given.worker.parts.settings.pages_per_call = 3;
        let engine = Arc::new(Pages::new(3));
        given.worker.parts.engine = engine.clone();
        let delivery = Delivery {
            receive_count: 1,
            receipt: "r",
        };
        let soon = || Some(Instant::now() + Duration::from_secs(5));
        // A long PDF's first chunk, and a one-page document.
        let long = queued_pdf(&given, &numbered(7), None).await;
        let short = queued_pdf(&given, &numbered(1), None).await;
        for job in [&long, &short] {
            given
                .worker
                .job_until(&JobMessage::of(job), delivery, Timestamp::now(), soon())
                .await
                .unwrap();
            let waiting = stored(&given, job).await;
            assert_eq!(
                (waiting.status, waiting.attempts, waiting.wake),
                (JobStatus::Queued, 0, 1),
                "handed back to a fresh message, its attempt returned"
            );
        }
        assert!(engine.calls().is_empty(), "no call was started");
        assert_eq!(given.queue.sent.lock().unwrap().len(), 2);
        // With time, each is read once.
        for job in [&long, &short] {
            run(&given, job, 1).await.unwrap();
            assert_eq!(stored(&given, job).await.status, JobStatus::Completed);
        }
        assert_eq!(engine.calls().len(), 3 + 1);
    }

    fn numbered(pages: u32) -> Vec<String> {
        (1..=pages).map(|n| format!("PAGE {n}")).collect()
    }

    fn chunks_kept(given: &Given) -> Vec<String> {
        given
            .blobs
            .keys()
            .into_iter()
            .filter(|key| key.starts_with("chunks/"))
            .collect()
    }

    #[tokio::test]
    async fn a_long_pdf_is_read_in_chunks_with_progress_and_merged_in_page_order() {
        // One OCR call a second: the chunks are read one after another.
        let mut given = given(scripted(), 1);
        given.worker.parts.settings.pages_per_call = 3;
        let job = queued_pdf(&given, &numbered(7), None).await;
        let engine = Arc::new(Pages {
            watch: Some((given.jobs.clone(), job.job_id.clone())),
            ..Pages::new(3)
        });
        given.worker.parts.engine = engine.clone();
        assert_eq!(job.pages, Some(7));
        run(&given, &job, 1).await.unwrap();

        let calls = engine.calls();
        let read: Vec<Vec<String>> = calls.iter().map(|(texts, _)| texts.clone()).collect();
        assert_eq!(
            read,
            [
                vec!["PAGE 1", "PAGE 2", "PAGE 3"],
                vec!["PAGE 4", "PAGE 5", "PAGE 6"],
                vec!["PAGE 7"]
            ]
        );
        let progress: Vec<Option<u32>> = calls.iter().map(|(_, progress)| *progress).collect();
        assert_eq!(
            progress,
            [None, Some(3), Some(6)],
            "progress rises chunk by chunk"
        );

        let done = stored(&given, &job).await;
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!((done.pages, done.pages_done), (Some(7), 0));
        let body = given.blobs.get(&job.job_id.result_key()).await.unwrap();
        let result: OcrResult = serde_json::from_slice(&body).unwrap();
        let pages: Vec<(u32, &str)> = result
            .pages
            .iter()
            .map(|p| (p.page, p.text.as_str()))
            .collect();
        assert_eq!(
            pages,
            (1..=7)
                .map(|n| (
                    n,
                    [
                        "PAGE 1", "PAGE 2", "PAGE 3", "PAGE 4", "PAGE 5", "PAGE 6", "PAGE 7"
                    ][n as usize - 1]
                ))
                .collect::<Vec<_>>()
        );
        assert_eq!(result.text, numbered(7).join("\n\n"));
        assert_eq!(result.num_billed_pages, 7);
        assert!(chunks_kept(&given).is_empty(), "merged chunks are deleted");
        assert_eq!(published(&given), [JobEventType::Completed]);
    }

    #[tokio::test]
    async fn a_retry_reads_only_the_chunks_no_attempt_finished_and_none_is_kept_unmasked() {
        let mut given = given(scripted(), 1);
        given.worker.parts.settings.pages_per_call = 3;
        let mut texts = numbered(7);
        texts[1] = "RRN 900101-1234567".into();
        texts[6] = "RRN 850505-2345678".into();
        let job = queued_pdf(&given, &texts, Some(vec![PiiKind::Rrn])).await;
        let engine = Arc::new(Pages {
            fail_calls: vec![2],
            ..Pages::new(3)
        });
        given.worker.parts.engine = engine.clone();

        let retry = run(&given, &job, 1).await;
        assert!(matches!(retry, Err(JobRetry::Ocr { .. })), "{retry:?}");
        let released = stored(&given, &job).await;
        assert_eq!(
            (released.status, released.pages_done),
            (JobStatus::Queued, 3)
        );
        let kept = chunks_kept(&given);
        assert_eq!(kept, [job.job_id.chunk_key(1, 3)]);
        let chunk = given.blobs.get(&kept[0]).await.unwrap();
        let chunk = String::from_utf8(chunk.to_vec()).unwrap();
        assert!(!chunk.contains("1234567"), "kept masked: {chunk}");
        assert!(chunk.contains("900101-1******"));

        // The next delivery comes after its delay, in a later window of the quota.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        run(&given, &job, 2).await.unwrap();
        let firsts: Vec<String> = engine
            .calls()
            .iter()
            .map(|(texts, _)| texts[0].clone())
            .collect();
        assert_eq!(
            firsts,
            ["PAGE 1", "PAGE 4", "PAGE 4", "RRN 850505-2345678"],
            "pages 1-3 were not read again"
        );
        let done = stored(&given, &job).await;
        assert_eq!(
            (done.status, done.attempts, done.pages),
            (JobStatus::Completed, 2, Some(7))
        );
        assert_eq!(
            done.redacted().cloned(),
            Some(PiiCounts::from([(PiiKind::Rrn, 2)]))
        );
        let text = done.text().unwrap();
        assert!(
            text.contains("900101-1******") && text.contains("850505-2******"),
            "{text}"
        );
        assert!(chunks_kept(&given).is_empty());
    }

    #[tokio::test]
    async fn a_pdf_within_one_call_is_read_whole() {
        let mut given = given(scripted(), 100);
        given.worker.parts.settings.pages_per_call = 3;
        let job = queued_pdf(&given, &numbered(3), None).await;
        let engine = Arc::new(Pages::new(3));
        given.worker.parts.engine = engine.clone();
        run(&given, &job, 1).await.unwrap();
        assert_eq!(engine.calls().len(), 1);
        assert_eq!(stored(&given, &job).await.status, JobStatus::Completed);
    }

    #[tokio::test]
    async fn out_of_invocation_time_a_long_pdf_hands_the_rest_to_a_fresh_message() {
        let mut given = given(scripted(), 100);
        given.worker.parts.settings.pages_per_call = 3;
        let job = queued_pdf(&given, &numbered(7), None).await;
        let engine = Arc::new(Pages {
            took: Duration::from_millis(1500),
            ..Pages::new(3)
        });
        given.worker.parts.engine = engine.clone();
        let message = JobMessage {
            job_id: job.job_id.clone(),
            wake: 0,
        };
        let delivery = Delivery {
            receive_count: 1,
            receipt: "r",
        };
        // Time for one call: the first chunk is read, then the invocation
        // starts no chunk it might not finish.
        let deadline = Instant::now() + crate::worker::CALL_TIME + Duration::from_secs(1);
        given
            .worker
            .job_until(&message, delivery, Timestamp::now(), Some(deadline))
            .await
            .unwrap();
        assert_eq!(engine.calls().len(), 1);
        let waiting = stored(&given, &job).await;
        assert_eq!(
            (
                waiting.status,
                waiting.attempts,
                waiting.pages_done,
                waiting.lease_until
            ),
            (JobStatus::Queued, 0, 3, None),
            "the attempt is handed back: it made progress"
        );
        let sent = given.queue.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (&sent[0].0, sent[0].1),
            (&JobMessage::of(&waiting), Duration::ZERO),
            "the fresh message is the job's live one"
        );

        // The message that yielded is stale now: the fresh one resumes.
        given
            .worker
            .job_until(&sent[0].0, delivery, Timestamp::now(), None)
            .await
            .unwrap();
        // The resumed run reads the two chunks left, at once (in either order).
        let mut firsts: Vec<String> = engine
            .calls()
            .iter()
            .map(|(texts, _)| texts[0].clone())
            .collect();
        firsts[1..].sort();
        assert_eq!(firsts, ["PAGE 1", "PAGE 4", "PAGE 7"]);
        let done = stored(&given, &job).await;
        assert_eq!(
            (done.status, done.attempts, done.pages),
            (JobStatus::Completed, 1, Some(7))
        );
    }
}
