use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use ocr_shared::config::{ConfigError, Env, OcrSettings, vars};
use ocr_shared::domain::{
    Completion, DocumentType, Job, JobError, JobStatus, MAX_STORED_TEXT_BYTES, Timestamp,
    Transition, truncate_utf8,
};
use ocr_shared::ports::{
    BlobError, BlobStore, Document, EventPublisher, JobEvent, JobEventType, JobMessage, JobQueue,
    JobStore, OcrEngine, OcrError, OcrResult, QueueError, RateDecision, RateLimiter, StoreError,
};
use tracing::{Instrument, error, info, info_span, warn};

use crate::backoff::retry_delay;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSettings {
    /// OCR attempts before a job fails for good.
    pub max_attempts: u32,
    /// How long a taken job is reserved for its worker; longer than one invocation.
    pub lease: Duration,
    /// The first retry's delay; each further receive doubles it.
    pub retry_base: Duration,
    /// OCR calls per second across every worker instance.
    pub rate_limit_rps: u32,
}

impl WorkerSettings {
    pub fn from_env(env: &Env, ocr: &OcrSettings) -> Result<Self, ConfigError> {
        Ok(Self {
            max_attempts: ocr.max_attempts,
            lease: Duration::from_secs(env.number(vars::OCR_LEASE_SECONDS, 300, 10..=3600)?),
            retry_base: Duration::from_secs(env.number(
                vars::OCR_RETRY_BASE_SECONDS,
                10,
                0..=900,
            )?),
            rate_limit_rps: ocr.rate_limit_rps,
        })
    }
}

pub struct Worker {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn JobQueue>,
    pub events: Arc<dyn EventPublisher>,
    pub engine: Arc<dyn OcrEngine>,
    pub limiter: Arc<dyn RateLimiter>,
    pub settings: WorkerSettings,
}

/// Why a message goes back to the queue (reported as a batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum RetryLater {
    /// The OCR engine failed in a way worth another try; the message waits `delay`.
    #[error("OCR will be tried again in {} s: {message}", delay.as_secs())]
    Ocr { message: String, delay: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Entry point: the batch is processed concurrently; the messages to try
/// again are reported by id, the rest are acknowledged.
pub async fn handle(
    event: LambdaEvent<SqsEvent>,
    worker: &Worker,
) -> Result<SqsBatchResponse, Error> {
    let outcomes = futures::future::join_all(event.payload.records.iter().map(|message| {
        let span = info_span!(
            "message",
            message_id = message.message_id.as_deref().unwrap_or_default()
        );
        async move { (message, worker.message(message).await) }.instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in outcomes {
        if let Err(retry) = outcome {
            warn!(reason = %retry, "message returned to the queue");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

fn error_of(error: &OcrError) -> JobError {
    match error {
        OcrError::Rejected { code, message } => JobError::new(code.clone(), message.clone()),
        OcrError::Retryable { message, .. } => JobError::new("ocr_unavailable", message.clone()),
        OcrError::Unauthorized { message } => JobError::new("ocr_unauthorized", message.clone()),
    }
}

impl Worker {
    /// One message: `Ok` acknowledges it, `Err` sends it back.
    pub async fn message(&self, message: &SqsMessage) -> Result<(), RetryLater> {
        let body = message.body.as_deref().unwrap_or_default();
        let Ok(job) = serde_json::from_str::<JobMessage>(body) else {
            // Nothing can ever make it readable: acknowledge rather than poison the queue.
            error!(
                body_len = body.len(),
                "message is not a job message; dropped"
            );
            return Ok(());
        };
        let receipt = message.receipt_handle.as_deref().unwrap_or_default();
        self.job(&job, receive_count(message), receipt, Timestamp::now())
            .instrument(info_span!("job", job_id = %job.job_id))
            .await
    }

    /// Takes the job under a lease, reads it, and moves it on.
    pub async fn job(
        &self,
        message: &JobMessage,
        receive_count: u32,
        receipt: &str,
        now: Timestamp,
    ) -> Result<(), RetryLater> {
        let Some(job) = self.jobs.get(&message.job_id).await? else {
            info!("job deleted; message dropped");
            return Ok(());
        };
        if job.status.is_final() || job.status == JobStatus::AwaitingUpload {
            info!(status = %job.status, "nothing to do; duplicate or stray message");
            return Ok(());
        }
        if job.lease_is_live(now) {
            info!("another attempt holds the lease; duplicate message dropped");
            return Ok(());
        }
        if let RateDecision::Limited { retry_after } = self
            .limiter
            .acquire(
                "ocr",
                self.settings.rate_limit_rps,
                Duration::from_secs(1),
                now,
            )
            .await?
        {
            // A fresh copy later: waiting for capacity must not use up receives.
            let delay = retry_after + Duration::from_millis(rand::random_range(0..1000));
            self.queue.send_later(message, delay).await?;
            info!(
                delay_ms = delay.as_millis() as u64,
                "OCR capacity in use; job deferred"
            );
            return Ok(());
        }
        let lease_until = now.plus(self.settings.lease);
        let taken = match self
            .jobs
            .transition(
                &job.job_id,
                &Transition::StartProcessing { lease_until },
                now,
            )
            .await
        {
            Ok(taken) => taken,
            Err(StoreError::Refused(refused)) => {
                info!(status = %refused.current, "another delivery took the job first");
                return Ok(());
            }
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let attempt = taken.attempts;
        if attempt > self.settings.max_attempts {
            let error = taken.error.clone().unwrap_or_else(|| {
                JobError::new("ocr_unavailable", "the OCR engine did not answer")
            });
            let error = JobError::new(
                error.code,
                format!(
                    "gave up after {} attempts: {}",
                    self.settings.max_attempts, error.message
                ),
            );
            return self.fail(&taken, attempt, error).await;
        }
        let document = match self.blobs.get(&taken.job_id.upload_key()).await {
            Ok(bytes) => Document {
                filename: taken.filename.clone(),
                file_type: taken.content_type,
                bytes,
            },
            Err(BlobError::NotFound(_)) => {
                let error =
                    JobError::new("upload_missing", "the uploaded file is no longer stored");
                return self.fail(&taken, attempt, error).await;
            }
            Err(error) => {
                self.release(
                    &taken,
                    attempt,
                    JobError::new("storage_unavailable", error.to_string()),
                    now,
                )
                .await?;
                return Err(error.into());
            }
        };
        info!(
            attempt,
            size = document.bytes.len(),
            engine = self.engine.name(),
            "OCR started"
        );
        match self.engine.recognize(&document).await {
            Ok(result) => self.complete(&taken, attempt, result).await,
            Err(error) => {
                self.ocr_failed(&taken, attempt, error, receive_count, receipt, now)
                    .await
            }
        }
    }

    async fn ocr_failed(
        &self,
        job: &Job,
        attempt: u32,
        error: OcrError,
        receive_count: u32,
        receipt: &str,
        now: Timestamp,
    ) -> Result<(), RetryLater> {
        let job_error = error_of(&error);
        let retry_after = match &error {
            OcrError::Rejected { .. } => {
                warn!(code = %job_error.code, "the engine cannot read this document");
                return self.fail(job, attempt, job_error).await;
            }
            OcrError::Unauthorized { .. } => {
                // The alarm's metric filter matches this event name.
                error!(
                    event = "ocr_auth_failure",
                    "the OCR engine refused our credentials"
                );
                None
            }
            OcrError::Retryable { retry_after, .. } => *retry_after,
        };
        if attempt >= self.settings.max_attempts {
            let error = JobError::new(
                job_error.code,
                format!("gave up after {attempt} attempts: {}", job_error.message),
            );
            return self.fail(job, attempt, error).await;
        }
        self.release(job, attempt, job_error.clone(), now).await?;
        let delay = retry_delay(
            self.settings.retry_base,
            receive_count,
            retry_after,
            &mut rand::rng(),
        );
        self.queue.delay_redelivery(receipt, delay).await?;
        Err(RetryLater::Ocr {
            message: job_error.message,
            delay,
        })
    }

    async fn release(
        &self,
        job: &Job,
        attempt: u32,
        error: JobError,
        now: Timestamp,
    ) -> Result<(), RetryLater> {
        match self
            .jobs
            .transition(&job.job_id, &Transition::Release { attempt, error }, now)
            .await
        {
            Ok(_) | Err(StoreError::Refused(_)) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn fail(&self, job: &Job, attempt: u32, error: JobError) -> Result<(), RetryLater> {
        let now = Timestamp::now();
        let code = error.code.clone();
        match self
            .jobs
            .transition(&job.job_id, &Transition::Fail { attempt, error }, now)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Refused(_)) | Err(StoreError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        warn!(%code, attempt, "job failed");
        self.announce(job, JobEventType::Failed, JobStatus::Failed, now)
            .await;
        Ok(())
    }

    async fn complete(
        &self,
        job: &Job,
        attempt: u32,
        mut result: OcrResult,
    ) -> Result<(), RetryLater> {
        let now = Timestamp::now();
        result.job_id = Some(job.job_id.clone());
        let key = job.job_id.result_key();
        let body = serde_json::to_vec(&result).expect("an OCR result serialises");
        self.blobs
            .put(&key, body.into(), "application/json")
            .await?;
        let (text, text_truncated) = truncate_utf8(&result.text, MAX_STORED_TEXT_BYTES);
        let document_type = job
            .document_type
            .clone()
            .unwrap_or_else(|| DocumentType::classify(&result.text).as_str().to_owned());
        let completion = Completion {
            text,
            text_truncated,
            confidence: result.confidence,
            pages: result.pages.len() as u32,
            engine: result.engine.clone(),
            model_version: result.model_version.clone(),
            result_key: key.clone(),
            document_type: Some(document_type),
        };
        match self
            .jobs
            .transition(
                &job.job_id,
                &Transition::Complete {
                    attempt,
                    completion,
                },
                now,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                info!("job deleted while it was read; result discarded");
                self.blobs.delete(&key).await?;
                return Ok(());
            }
            Err(StoreError::Refused(refused)) => {
                warn!(status = %refused.current, "lease lost before completion; the other attempt owns the job");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        info!(
            pages = result.pages.len(),
            confidence = result.confidence,
            text_bytes = result.text.len(),
            text_truncated,
            "job completed"
        );
        self.announce(job, JobEventType::Completed, JobStatus::Completed, now)
            .await;
        Ok(())
    }

    /// Job events are notifications: a failed publish is logged, never undoes the job's move.
    async fn announce(
        &self,
        job: &Job,
        event_type: JobEventType,
        status: JobStatus,
        now: Timestamp,
    ) {
        let event = JobEvent {
            id: uuid::Uuid::new_v4().to_string(),
            event_type,
            created_at: now,
            job_id: job.job_id.clone(),
            owner: job.owner.clone(),
            status,
        };
        if let Err(error) = self.events.publish(&event).await {
            error!(%error, event_type = event_type.as_str(), "job event not published");
        }
    }
}
