use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent};
use ocr_shared::domain::{
    Completion, DedupKey, FileType, Job, JobError, JobId, JobStatus, Timestamp, Transition,
};
use ocr_shared::ports::{
    BlobError, BlobStore, EventPublisher, JobEvent, JobEventType, JobMessage, JobQueue, JobStore,
    StoreError,
};
use ocr_shared::upload_policy::{PDF_TAIL_BYTES, SNIFF_BYTES, UploadLimits};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, instrument, warn};

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
    Rejected { job_id: JobId, code: String },
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
    /// Not an S3 notification at all: failing sends it to the function's
    /// failure destination instead of dropping it unseen.
    #[error("the event is not an S3 notification: {0}")]
    NotAnEvent(String),
}

/// Entry point. Every record is handled; if any hit a transient failure the
/// invocation fails so that S3 delivers the event again (all steps are idempotent).
pub async fn handle(event: LambdaEvent<Value>, ingest: &Ingest) -> Result<Vec<Outcome>, Error> {
    let results = ingest.process(event.payload).await;
    let failures = results.iter().filter(|result| result.is_err()).count();
    if failures > 0 {
        return Err(
            format!("{failures} upload(s) could not be processed and will be retried").into(),
        );
    }
    Ok(results.into_iter().filter_map(Result::ok).collect())
}

/// An S3 key as it appears in an event: form-encoded (`+` is a space).
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn new_event(job: &Job, event_type: JobEventType, status: JobStatus, now: Timestamp) -> JobEvent {
    JobEvent {
        id: uuid::Uuid::new_v4().to_string(),
        event_type,
        created_at: now,
        job_id: job.job_id.clone(),
        owner: job.owner.clone(),
        status,
    }
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
                self.queue
                    .send(&JobMessage {
                        job_id: job.job_id.clone(),
                    })
                    .await?;
                Ok(Outcome::Requeued { job_id: job.job_id })
            }
            status => {
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
        let head = if info.size > 0 {
            self.blobs.read_range(&key, 0, SNIFF_BYTES).await?
        } else {
            bytes::Bytes::new()
        };
        let sniffed = FileType::sniff(&head).map(|kind| kind.mime().to_owned());
        let kind =
            match self
                .limits
                .check_upload(job.content_type, job.declared_size, info.size, &head)
            {
                Ok(kind) => kind,
                Err(rejection) => {
                    return self
                        .reject(
                            job,
                            rejection.code(),
                            rejection.to_string(),
                            info.size,
                            sniffed,
                            now,
                        )
                        .await;
                }
            };
        if kind == FileType::Pdf {
            let start = info.size.saturating_sub(PDF_TAIL_BYTES);
            let tail = self.blobs.read_range(&key, start, PDF_TAIL_BYTES).await?;
            if let Err(rejection) = self.limits.check_tail(kind, &tail) {
                return self
                    .reject(
                        job,
                        rejection.code(),
                        rejection.to_string(),
                        info.size,
                        sniffed,
                        now,
                    )
                    .await;
            }
        }
        let sha256 = match info.sha256 {
            Some(verified) => verified,
            None => self.blobs.sha256(&key).await?,
        };
        if let Some(declared) = &job.sha256
            && *declared != sha256
        {
            let message = format!("the file's SHA-256 is {sha256} but {declared} was declared");
            return self
                .reject(job, "checksum_mismatch", message, info.size, sniffed, now)
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
            detected_mime: kind.mime().to_owned(),
        };
        match self.jobs.transition(&job.job_id, &enqueue, now).await {
            Ok(_) => {}
            Err(StoreError::Refused(refused)) => {
                info!(status = %refused.current, "another delivery got there first");
                return Ok(Outcome::Duplicate {
                    job_id: job.job_id,
                    status: refused.current,
                });
            }
            Err(error) => return Err(error.into()),
        }
        self.queue
            .send(&JobMessage {
                job_id: job.job_id.clone(),
            })
            .await?;
        info!(size = info.size, "upload accepted and queued");
        Ok(Outcome::Queued { job_id: job.job_id })
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
        let Some(completion) = self.copy_result(&original, &job.job_id).await? else {
            return Ok(None);
        };
        let transition = Transition::CompleteAsDuplicate {
            of: original.job_id.clone(),
            digest: digest.clone(),
            size,
            completion,
        };
        match self.jobs.transition(&job.job_id, &transition, now).await {
            Ok(_) => {}
            Err(StoreError::Refused(refused)) => {
                return Ok(Some(Outcome::Duplicate {
                    job_id: job.job_id.clone(),
                    status: refused.current,
                }));
            }
            Err(error) => return Err(error.into()),
        }
        self.blobs.delete(&job.job_id.upload_key()).await?;
        self.announce(job, JobEventType::Completed, JobStatus::Completed, now)
            .await;
        info!(of = %original.job_id, "same bytes as an earlier job; completed without OCR");
        Ok(Some(Outcome::Deduplicated {
            job_id: job.job_id.clone(),
            of: original.job_id,
        }))
    }

    /// Copies the original's full result to the new job's own key, so that each
    /// job's result lives and dies with it.
    async fn copy_result(
        &self,
        original: &Job,
        to: &JobId,
    ) -> Result<Option<Completion>, IngestError> {
        let Some(source) = &original.result_key else {
            return Ok(None);
        };
        let body = match self.blobs.get(source).await {
            Ok(body) => body,
            Err(BlobError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let Ok(mut result) = serde_json::from_slice::<Value>(&body) else {
            warn!(of = %original.job_id, "the earlier result is not JSON; not reused");
            return Ok(None);
        };
        result["job_id"] = Value::String(to.to_string());
        let body = serde_json::to_vec(&result).expect("a JSON value serialises");
        self.blobs
            .put(&to.result_key(), body.into(), "application/json")
            .await?;
        Ok(Some(Completion {
            text: original.text.clone().unwrap_or_default(),
            text_truncated: original.text_truncated,
            confidence: original.confidence.unwrap_or_default(),
            pages: original.pages.unwrap_or_default(),
            engine: original.engine.clone().unwrap_or_default(),
            model_version: original.model_version.clone().unwrap_or_default(),
            result_key: to.result_key(),
            document_type: original.document_type.clone(),
        }))
    }

    async fn reject(
        &self,
        job: Job,
        code: &str,
        message: String,
        size: u64,
        detected_mime: Option<String>,
        now: Timestamp,
    ) -> Result<Outcome, IngestError> {
        let transition = Transition::Reject {
            error: JobError::new(code, message),
            size: Some(size),
            detected_mime,
        };
        match self.jobs.transition(&job.job_id, &transition, now).await {
            Ok(_) => {}
            Err(StoreError::Refused(refused)) => {
                return Ok(Outcome::Duplicate {
                    job_id: job.job_id,
                    status: refused.current,
                });
            }
            Err(error) => return Err(error.into()),
        }
        // A rejected upload is never read again; keeping it would only cost.
        self.blobs.delete(&job.job_id.upload_key()).await?;
        self.announce(&job, JobEventType::Rejected, JobStatus::Rejected, now)
            .await;
        info!(code, size, "upload rejected");
        Ok(Outcome::Rejected {
            job_id: job.job_id,
            code: code.to_owned(),
        })
    }

    /// Job events are notifications: a failed publish is logged, never undoes the job's move.
    async fn announce(
        &self,
        job: &Job,
        event_type: JobEventType,
        status: JobStatus,
        now: Timestamp,
    ) {
        if let Err(error) = self
            .events
            .publish(&new_event(job, event_type, status, now))
            .await
        {
            error!(%error, event_type = event_type.as_str(), "job event not published");
        }
    }
}
