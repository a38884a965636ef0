//! A job taken under this worker's lease: every move its holder may make
//! (fail, release, hand back, progress, complete) goes through the `Lease`,
//! which knows the job as taken, its attempt and the delivery that brought it.

use std::time::Duration;

use ocr_shared::batch::Delivery;
use ocr_shared::domain::{
    Completion, DocumentType, ErrorCode, FileType, Job, JobError, MAX_STORED_TEXT_BYTES, Timestamp,
    Transition, truncate_utf8,
};
use ocr_shared::metrics::{self, Metric};
use ocr_shared::ports::{
    JobMessage, Moved, OcrError, OcrResult, StoreError, announce, transition_or_moved,
    transition_unless_moved,
};
use ocr_shared::redact;
use ocr_shared::retry::retry_delay;
use tracing::{error, info, warn};

use crate::worker::{
    COMPLETION_RETRIES, JobRetry, MAX_POSTPONES, MAX_THROTTLES, Parts, document_type_of, error_of,
};

/// A refusal that hands the job back rather than use up an attempt.
#[derive(Clone, Copy)]
enum Refusal {
    /// The engine refused our credentials (`Postpone`).
    Credentials,
    /// The engine's rate limit refused the call (`Throttle`).
    RateLimit,
}

impl Refusal {
    /// How many of these refusals `job` has met in a row.
    fn so_far(self, job: &Job) -> u32 {
        match self {
            Refusal::Credentials => job.auth_failures,
            Refusal::RateLimit => job.throttles,
        }
    }

    /// The move that hands the job back, counting one more.
    fn step(self, attempt: u32, error: JobError) -> Transition {
        match self {
            Refusal::Credentials => Transition::Postpone { attempt, error },
            Refusal::RateLimit => Transition::Throttle { attempt, error },
        }
    }

    /// How many in a row fail the job: with the backoff's ceiling, hours.
    fn limit(self) -> u32 {
        match self {
            Refusal::Credentials => MAX_POSTPONES,
            Refusal::RateLimit => MAX_THROTTLES,
        }
    }

    /// The job's failure once the refusal has held through its limit.
    fn failure(self, error: &JobError) -> JobError {
        match self {
            Refusal::Credentials => JobError::new(
                ErrorCode::OcrUnauthorized,
                format!(
                    "gave up after the OCR engine refused our credentials {MAX_POSTPONES} times in a row: {}",
                    error.message
                ),
            ),
            Refusal::RateLimit => JobError::new(
                error.code,
                format!(
                    "gave up after the rate limit refused {MAX_THROTTLES} calls in a row: {}",
                    error.message
                ),
            ),
        }
    }

    /// What refused, as the log says it.
    fn why(self) -> &'static str {
        match self {
            Refusal::Credentials => "credentials refused",
            Refusal::RateLimit => "the OCR engine's rate limit",
        }
    }
}

/// The job this worker took, and the message delivery that brought it.
pub struct Lease<'a> {
    pub(crate) worker: &'a Parts,
    /// The job as taken: its `attempts` is this attempt's number.
    pub(crate) job: Job,
    pub(crate) delivery: Delivery<'a>,
    /// The message's clock when the job was taken: releases and hand-backs
    /// are written at it, the other moves at the time they happen.
    pub(crate) taken_at: Timestamp,
}

impl<'a> Lease<'a> {
    pub(crate) fn new(
        worker: &'a Parts,
        job: Job,
        delivery: Delivery<'a>,
        taken_at: Timestamp,
    ) -> Self {
        Self {
            worker,
            job,
            delivery,
            taken_at,
        }
    }

    /// This attempt's number: the lease the store checks every move against.
    pub(crate) fn attempt(&self) -> u32 {
        self.job.attempts
    }

    /// Runs a move of this lease; `None` when the job moved on meanwhile.
    async fn apply(&self, step: &Transition, now: Timestamp) -> Result<Option<Job>, JobRetry> {
        let store = self.worker.jobs.as_ref();
        let moved = transition_unless_moved(store, &self.job.job_id, step, now);
        Ok(moved.await?)
    }

    /// The job fails for good, and its event goes out.
    pub(crate) async fn fail(&self, error: JobError) -> Result<(), JobRetry> {
        let now = Timestamp::now();
        let code = error.code;
        let fail = Transition::Fail {
            attempt: self.attempt(),
            error,
        };
        let Some(failed) = self.apply(&fail, now).await? else {
            return Ok(());
        };
        warn!(%code, attempt = self.attempt(), "job failed");
        metrics::count(Metric::JobsFailed);
        let worker = self.worker;
        announce(worker.events.as_ref(), worker.jobs.as_ref(), &failed, now).await?;
        Ok(())
    }

    /// Attempts are used up: the job fails with the last attempt's reason.
    pub(crate) async fn give_up(&self) -> Result<(), JobRetry> {
        let last = self.job.error.clone().unwrap_or_else(|| {
            JobError::new(ErrorCode::OcrUnavailable, "the OCR engine did not answer")
        });
        let error = JobError::new(
            last.code,
            format!(
                "gave up after {} attempts: {}",
                self.worker.settings.max_attempts, last.message
            ),
        );
        self.fail(error).await
    }

    /// The job goes back to the queue for another attempt, with `error` as its last reason.
    pub(crate) async fn release(&self, error: JobError) -> Result<(), JobRetry> {
        let release = Transition::Release {
            attempt: self.attempt(),
            error,
        };
        self.apply(&release, self.taken_at).await?;
        Ok(())
    }

    /// What an engine's error does: fail, postpone, throttle, or retry later.
    pub(crate) async fn ocr_failed(&self, error: OcrError) -> Result<(), JobRetry> {
        let job_error = error_of(&error);
        match &error {
            OcrError::Rejected { .. } => {
                warn!(code = %job_error.code, "the engine cannot read this document");
                self.fail(job_error).await
            }
            OcrError::Unauthorized { .. } => self.postpone(job_error).await,
            OcrError::RateLimited { retry_after, .. } => {
                metrics::count(Metric::OcrThrottled);
                self.throttle(job_error, *retry_after).await
            }
            OcrError::Retryable { retry_after, .. } => {
                metrics::count(Metric::OcrRetries);
                self.retry_later(job_error, *retry_after).await
            }
        }
    }

    /// A retryable error: the job is released and its message comes back
    /// after the backoff, until the attempts are used up.
    async fn retry_later(
        &self,
        error: JobError,
        retry_after: Option<Duration>,
    ) -> Result<(), JobRetry> {
        let attempt = self.attempt();
        if attempt >= self.worker.settings.max_attempts {
            let error = JobError::new(
                error.code,
                format!("gave up after {attempt} attempts: {}", error.message),
            );
            return self.fail(error).await;
        }
        self.release(error.clone()).await?;
        let delay = retry_delay(
            self.worker.settings.retry_base,
            self.delivery.receive_count,
            retry_after,
            &mut rand::rng(),
        );
        self.worker
            .queue
            .delay_redelivery(self.delivery.receipt, delay)
            .await?;
        Err(JobRetry::Ocr {
            message: error.message,
            delay,
        })
    }

    /// The engine refused our credentials: the job waits without using up an
    /// attempt, until `MAX_POSTPONES` refusals in a row fail it.
    async fn postpone(&self, error: JobError) -> Result<(), JobRetry> {
        // The alarm's metric filter matches this event name.
        error!(
            event = "ocr_auth_failure",
            "the OCR engine refused our credentials"
        );
        self.wait_out(Refusal::Credentials, error, None).await
    }

    /// The engine's rate limit refused the call: the job waits without using
    /// up an attempt (see `wait_out`), never sooner than the engine asked.
    /// Only a limit that holds through `MAX_THROTTLES` backoffs in a row
    /// (hours) fails the job.
    async fn throttle(
        &self,
        error: JobError,
        retry_after: Option<Duration>,
    ) -> Result<(), JobRetry> {
        self.wait_out(Refusal::RateLimit, error, retry_after).await
    }

    /// Credentials refused (`Postpone`) or the engine's rate limit reached
    /// (`Throttle`): not the document's fault, so the job waits without using
    /// up an attempt, until the refusal has held through its limit in a row.
    /// A fresh message (receive count 1, so the queue never dead-letters the
    /// job for this) comes back after a delay that grows with the count the
    /// transition keeps.
    async fn wait_out(
        &self,
        refusal: Refusal,
        error: JobError,
        retry_after: Option<Duration>,
    ) -> Result<(), JobRetry> {
        if refusal.so_far(&self.job) >= refusal.limit() {
            return self.fail(refusal.failure(&error)).await;
        }
        let step = refusal.step(self.attempt(), error);
        let Some(waiting) = self.apply(&step, self.taken_at).await? else {
            return Ok(());
        };
        let count = refusal.so_far(&waiting);
        let delay = retry_delay(
            self.worker.settings.retry_base,
            count,
            retry_after,
            &mut rand::rng(),
        );
        self.worker
            .queue
            .send_later(&JobMessage::of(&waiting), delay)
            .await?;
        warn!(
            count,
            delay_ms = delay.as_millis() as u64,
            "{}; job deferred without using an attempt",
            refusal.why()
        );
        Ok(())
    }

    /// Out of invocation time: the job goes back to the queue with its attempt
    /// handed back, and a fresh message resumes it (a long PDF from its kept chunks).
    pub(crate) async fn resume_later(&self, pages_done: u32) -> Result<(), JobRetry> {
        let step = Transition::Yield {
            attempt: self.attempt(),
        };
        let Some(yielded) = self.apply(&step, Timestamp::now()).await? else {
            return Ok(());
        };
        self.worker
            .queue
            .send_later(&JobMessage::of(&yielded), Duration::ZERO)
            .await?;
        info!(
            pages_done,
            "out of invocation time; the rest resumes from a fresh message"
        );
        Ok(())
    }

    /// Records `pages_done` and renews the lease; `Err(Moved)` when the job
    /// is no longer this attempt's (deleted, or taken over after a lost lease).
    pub(crate) async fn progress(&self, pages_done: u32) -> Result<Result<(), Moved>, JobRetry> {
        let now = Timestamp::now();
        let progress = Transition::Progress {
            attempt: self.attempt(),
            pages_done,
            lease_until: now.plus(self.worker.settings.lease),
        };
        let store = self.worker.jobs.as_ref();
        let moved = transition_or_moved(store, &self.job.job_id, &progress, now).await?;
        if let Err(Moved::Away(status)) = moved {
            warn!(%status, "lease lost; the other attempt owns the job");
        }
        Ok(moved.map(drop))
    }

    /// Masks the personal data the job asks for (resident registration
    /// numbers on every document by default), then stores the full result
    /// and completes the job: the unmasked text lives only in this function's memory.
    pub(crate) async fn complete(&self, mut result: OcrResult) -> Result<(), JobRetry> {
        if let Some(error) = retake_photo(self.job.content_type, &result) {
            return self.fail(error).await;
        }
        result.job_id = Some(self.job.job_id.clone());
        // Told from the unmasked text, once: masking must not change the answer.
        let document_type = document_type_of(&self.job, &result);
        let kinds = redact::kinds_for(self.job.redact.as_deref(), document_type);
        result.redacted = redact::mask_result(&mut result, &kinds);
        self.finish(result, document_type).await
    }

    /// Stores the (masked) full result and completes the job from it.
    pub(crate) async fn finish(
        &self,
        result: OcrResult,
        document_type: DocumentType,
    ) -> Result<(), JobRetry> {
        let body = serde_json::to_vec(&result).expect("an OCR result serialises");
        self.worker
            .blobs
            .put(
                &self.job.job_id.result_key(),
                body.into(),
                "application/json",
            )
            .await?;
        self.record_completion(result, document_type).await
    }

    /// Moves the job to completed from its stored `result`.
    pub(crate) async fn record_completion(
        &self,
        result: OcrResult,
        document_type: DocumentType,
    ) -> Result<(), JobRetry> {
        let now = Timestamp::now();
        let key = self.job.job_id.result_key();
        let transition = Transition::Complete {
            attempt: self.attempt(),
            completion: self.completion_of(&result, key.clone()),
            pages: result.pages.len() as u32,
            document_type: Some(document_type),
        };
        let done = match self.write_completion(&transition, now).await {
            Err(StoreError::ItemTooLarge(_)) => {
                let error = JobError::new(
                    ErrorCode::ResultTooLarge,
                    "the read text is too large to store with the job; the full result could not be kept",
                );
                self.worker.blobs.delete(&key).await?;
                return self.fail(error).await;
            }
            written => written?,
        };
        match done {
            Ok(done) => self.completed(&result, &done, now).await,
            Err(Moved::Deleted) => {
                info!("job deleted while it was read; result discarded");
                self.worker.blobs.delete(&key).await?;
                Ok(())
            }
            Err(Moved::Away(status)) => {
                warn!(%status, "lease lost before completion; the other attempt owns the job");
                Ok(())
            }
        }
    }

    /// What the read leaves on the job, its text cut to what the record
    /// holds and marked for review below the deployment's threshold.
    fn completion_of(&self, result: &OcrResult, result_key: String) -> Completion {
        let review_below = self.worker.settings.review_below;
        let (text, text_truncated) = truncate_utf8(&result.text, MAX_STORED_TEXT_BYTES);
        let needs_review = result.confidence < review_below;
        let review_pages = result
            .pages
            .iter()
            .filter(|page| needs_review && page.confidence < review_below)
            .map(|page| page.page)
            .collect();
        Completion {
            redacted: result.redacted.clone(),
            text: Some(text),
            text_truncated,
            confidence: result.confidence,
            engine: result.engine.clone(),
            model_version: result.model_version.clone(),
            result_key,
            needs_review,
            review_pages,
            quality_issues: result.quality_issues(),
        }
    }

    /// Writes the completion; a store that does not answer is asked again
    /// in-process, since the OCR is paid for already.
    async fn write_completion(
        &self,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<Result<Job, Moved>, StoreError> {
        let store = self.worker.jobs.as_ref();
        let id = &self.job.job_id;
        let mut written = transition_or_moved(store, id, transition, now).await;
        for pause in COMPLETION_RETRIES {
            if !matches!(written, Err(StoreError::Backend(_))) {
                break;
            }
            warn!(
                pause_ms = pause.as_millis() as u64,
                "the completion was not recorded; trying again"
            );
            tokio::time::sleep(pause).await;
            written = transition_or_moved(store, id, transition, now).await;
        }
        written
    }

    /// The completed job's metrics and event.
    async fn completed(
        &self,
        result: &OcrResult,
        done: &Job,
        now: Timestamp,
    ) -> Result<(), JobRetry> {
        let text_truncated = done
            .completion
            .as_ref()
            .is_some_and(|completion| completion.text_truncated);
        info!(
            pages = result.pages.len(),
            confidence = result.confidence,
            text_bytes = result.text.len(),
            text_truncated,
            "job completed"
        );
        metrics::count(Metric::JobsCompleted);
        metrics::record(Metric::Pages, result.pages.len() as f64);
        metrics::record(Metric::Confidence, result.confidence);
        let end_to_end = now
            .as_millis()
            .saturating_sub(self.job.created_at.as_millis());
        metrics::record(Metric::EndToEnd, end_to_end as f64);
        let worker = self.worker;
        announce(worker.events.as_ref(), worker.jobs.as_ref(), done, now).await?;
        Ok(())
    }
}

/// Fewer usable words than this in a photo with quality issues: take it again.
pub(crate) const RETAKE_BELOW_WORDS: usize = 3;

/// A photo that gave (almost) no usable text and whose image shows why
/// (blurry, too dark, ...) fails `retake_photo`, its message naming the
/// issues, so that an app can ask for another photo. A scan (PDF, TIFF), or
/// a photo with no issue found, completes with what was read.
pub(crate) fn retake_photo(file_type: FileType, result: &OcrResult) -> Option<JobError> {
    let photo = !matches!(file_type, FileType::Pdf | FileType::Tiff);
    let issues = result.quality_issues();
    if !photo || issues.is_empty() || result.usable_words() >= RETAKE_BELOW_WORDS {
        return None;
    }
    let named: Vec<&str> = issues.iter().map(|issue| issue.label()).collect();
    Some(JobError::new(
        ErrorCode::RetakePhoto,
        format!(
            "사진을 다시 찍어 주세요 · take the photo again: no text could be read ({})",
            named.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use ocr_shared::domain::QualityIssue;
    use ocr_shared::ports::{OcrPage, OcrWord, PageQuality, Vertex};

    use super::*;

    fn read(words: &[(&str, f64)], issues: Vec<QualityIssue>) -> OcrResult {
        let corner = Vertex { x: 0, y: 0 };
        OcrResult {
            job_id: None,
            engine: "tesseract".into(),
            model_version: "test".into(),
            confidence: 0.3,
            text: String::new(),
            num_billed_pages: 0,
            redacted: None,
            pages: vec![OcrPage {
                page: 1,
                width: 10,
                height: 10,
                confidence: 0.3,
                text: String::new(),
                words: words
                    .iter()
                    .map(|(text, confidence)| OcrWord {
                        text: (*text).into(),
                        confidence: *confidence,
                        vertices: [corner; 4],
                    })
                    .collect(),
                quality: Some(PageQuality {
                    skew_degrees: 0.0,
                    blur: 0.1,
                    text_height_px: None,
                    brightness: 0.3,
                    issues,
                }),
            }],
        }
    }

    #[test]
    fn a_photo_with_no_usable_text_and_issues_is_to_be_taken_again() {
        let blurry_dark = vec![QualityIssue::Blurry, QualityIssue::TooDark];
        let unreadable = read(&[("~", 0.9), ("eee", 0.2)], blurry_dark.clone());
        let error = retake_photo(FileType::Jpeg, &unreadable).expect("retake");
        assert_eq!(error.code, ErrorCode::RetakePhoto);
        assert!(
            error.message.contains("흐립니다 · blurry"),
            "{}",
            error.message
        );
        assert!(error.message.contains("too dark"), "{}", error.message);
        // Read text, a scan, or no issue to name: completed with what was read.
        let readable = read(
            &[("영수증", 0.9), ("합계", 0.8), ("20,500원", 0.7)],
            blurry_dark.clone(),
        );
        assert_eq!(retake_photo(FileType::Jpeg, &readable), None);
        assert_eq!(retake_photo(FileType::Pdf, &unreadable), None);
        assert_eq!(retake_photo(FileType::Png, &read(&[], vec![])), None);
    }
}
