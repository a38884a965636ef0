//! Long PDFs, read in chunks of `pages_per_call` pages: one job and one status
//! throughout. Each chunk is cut from the PDF here, read within the global OCR
//! quota (several at once when the quota allows), masked, and kept in S3 under
//! `chunks/{job_id}/` until the whole document is merged, so that a retry
//! reads only the chunks no earlier attempt finished. Every finished chunk
//! renews the job's lease and records the pages read so far.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use ocr_shared::batch::Delivery;
use ocr_shared::domain::{
    DocumentType, ErrorCode, FileType, Job, JobId, PiiCounts, PiiKind, Timestamp, Transition,
};
use ocr_shared::pdf::{self, PageRange, Pdf};
use ocr_shared::ports::{
    BlobError, Document, JobMessage, OcrError, OcrResult, RateDecision, StoreError, document_text,
    transition_unless_moved,
};
use ocr_shared::redact;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::handler::{JobRetry, Worker};

/// No chunk is started with less of the invocation left than this, or than
/// the engine's own call timeout when it is longer: a call the invocation's
/// end cuts short is paid for and read again.
pub(crate) const CHUNK_TIME: Duration = Duration::from_secs(90);

/// Why a chunk was not read.
enum ChunkError {
    Ocr(OcrError),
    /// Too little of the invocation was left to start its call.
    OutOfTime,
}

impl From<OcrError> for ChunkError {
    fn from(error: OcrError) -> Self {
        ChunkError::Ocr(error)
    }
}

/// Most chunks read at once by one job, whatever the quota: each holds its
/// chunk's bytes and its request body.
const MAX_CHUNKS_IN_FLIGHT: usize = 4;

/// A chunk's partial result as kept between attempts: already masked, with
/// its pages numbered as in the whole document.
#[derive(Debug, Serialize, Deserialize)]
struct ChunkResult {
    job_id: JobId,
    range: PageRange,
    /// Told from this chunk's text before masking; the first chunk's is the document's.
    document_type: DocumentType,
    result: OcrResult,
}

impl Worker {
    /// Whether a call started now might outlast the invocation.
    pub(crate) fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        let call = self
            .engine
            .call_timeout()
            .unwrap_or(CHUNK_TIME)
            .max(CHUNK_TIME);
        deadline.is_some_and(|end| Instant::now() + call > end)
    }

    /// The document parsed for cutting, when it is a PDF of more pages than
    /// one call takes. A PDF this parser cannot follow is read whole: the
    /// engine then decides.
    pub(crate) async fn splittable(&self, job: &Job, document: &Document) -> Option<Arc<Pdf>> {
        let per_call = self.settings.pages_per_call;
        if document.file_type != FileType::Pdf || job.pages.is_some_and(|pages| pages <= per_call) {
            return None;
        }
        let bytes = document.bytes.clone();
        match tokio::task::spawn_blocking(move || Pdf::open(&bytes)).await {
            Ok(Ok(pdf)) if pdf.pages() > per_call => Some(Arc::new(pdf)),
            Ok(Ok(_)) => None,
            Ok(Err(error)) => {
                warn!(%error, "PDF not split; read whole");
                None
            }
            Err(_) => None,
        }
    }

    /// Reads the chunks earlier attempts did not, then merges every chunk into
    /// the job's one result.
    pub(crate) async fn read_in_chunks(
        &self,
        job: &Job,
        attempt: u32,
        pdf: Arc<Pdf>,
        delivery: Delivery<'_>,
        now: Timestamp,
        deadline: Option<Instant>,
    ) -> Result<(), JobRetry> {
        let ranges = pdf::chunks(pdf.pages(), self.settings.pages_per_call);
        let mut done = Vec::with_capacity(ranges.len());
        for range in &ranges {
            done.push(self.stored_chunk(job, *range).await?);
        }
        let kept = done.iter().flatten().count();
        info!(
            pages = pdf.pages(),
            chunks = ranges.len(),
            kept,
            "reading a long PDF in chunks"
        );
        let mut pages_done: u32 = done.iter().flatten().map(|chunk| chunk.range.len()).sum();
        // The job took one quota token to start: its first call spends it.
        let mut token = Some(());
        // The first chunk tells the document's type, on which the masking depends.
        let first = match done[0].take() {
            Some(first) => first,
            None => {
                let read = self
                    .read_chunk(job, &pdf, ranges[0], None, token.take(), deadline)
                    .await;
                match read {
                    Ok(chunk) => {
                        pages_done += chunk.range.len();
                        if !self.progress(job, attempt, pages_done).await? {
                            return Ok(());
                        }
                        chunk
                    }
                    Err(ChunkError::OutOfTime) => {
                        return self.resume_later(job, attempt, pages_done).await;
                    }
                    Err(ChunkError::Ocr(error)) => {
                        return self.ocr_failed(job, attempt, error, delivery, now).await;
                    }
                }
            }
        };
        let kinds = redact::kinds_for(job.redact.as_deref(), first.document_type);
        let missing: Vec<(usize, PageRange)> = done
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, chunk)| chunk.is_none())
            .map(|(index, _)| (index, ranges[index]))
            .collect();
        let in_flight = (self.settings.rate_limit_rps as usize).clamp(1, MAX_CHUNKS_IN_FLIGHT);
        // After a failure no chunk is started, but the ones in flight are
        // read to the end and kept: they are paid for.
        let failed = std::sync::atomic::AtomicBool::new(false);
        let mut reads = futures::stream::iter(missing)
            .take_while(|_| {
                std::future::ready(!failed.load(Ordering::Relaxed) && !self.out_of_time(deadline))
            })
            .map(|(index, range)| {
                let token = token.take();
                let (pdf, kinds) = (&pdf, &kinds);
                async move {
                    let chunk = self
                        .read_chunk(job, pdf, range, Some(kinds), token, deadline)
                        .await;
                    (index, chunk)
                }
            })
            .buffer_unordered(in_flight);
        let mut first_error = None;
        // Progress is recorded here, one chunk after another, so that it only rises.
        while let Some((index, read)) = reads.next().await {
            match read {
                Ok(chunk) => {
                    pages_done += chunk.range.len();
                    done[index] = Some(chunk);
                    if first_error.is_none() && !self.progress(job, attempt, pages_done).await? {
                        return Ok(());
                    }
                }
                Err(ChunkError::OutOfTime) => failed.store(true, Ordering::Relaxed),
                Err(ChunkError::Ocr(error)) => {
                    failed.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(error);
                }
            }
        }
        drop(reads);
        if let Some(error) = first_error {
            return self.ocr_failed(job, attempt, error, delivery, now).await;
        }
        if done.iter().skip(1).any(Option::is_none) {
            return self.resume_later(job, attempt, pages_done).await;
        }
        done[0] = Some(first);
        let chunks: Vec<ChunkResult> = done.into_iter().flatten().collect();
        let document_type = job.document_type.unwrap_or(chunks[0].document_type);
        let result = merge(job, chunks);
        self.finish(job, attempt, result, document_type).await?;
        self.forget_chunks(job, &ranges).await;
        Ok(())
    }

    /// Out of invocation time: the job goes back to the queue with its attempt
    /// handed back, and a fresh message resumes it from the kept chunks.
    pub(crate) async fn resume_later(
        &self,
        job: &Job,
        attempt: u32,
        pages_done: u32,
    ) -> Result<(), JobRetry> {
        let now = Timestamp::now();
        let step = Transition::Yield { attempt };
        let Some(yielded) =
            transition_unless_moved(self.jobs.as_ref(), &job.job_id, &step, now).await?
        else {
            return Ok(());
        };
        self.queue
            .send_later(&JobMessage::of(&yielded), Duration::ZERO)
            .await?;
        info!(
            pages_done,
            "out of invocation time; the rest resumes from a fresh message"
        );
        Ok(())
    }

    /// The partial result an earlier attempt kept for `range`, if it is whole.
    async fn stored_chunk(
        &self,
        job: &Job,
        range: PageRange,
    ) -> Result<Option<ChunkResult>, JobRetry> {
        let key = job.job_id.chunk_key(range.first, range.last);
        let body = match self.blobs.get(&key).await {
            Ok(body) => body,
            Err(BlobError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        match serde_json::from_slice::<ChunkResult>(&body) {
            Ok(chunk) if chunk.job_id == job.job_id && chunk.range == range => Ok(Some(chunk)),
            _ => {
                warn!(%range, "a kept chunk is not whole; reading it again");
                Ok(None)
            }
        }
    }

    /// Cuts `range` from the PDF, reads it within the quota (`token`: one
    /// already taken), masks it (`kinds`, or those of its own document type
    /// for the first chunk) and keeps it.
    async fn read_chunk(
        &self,
        job: &Job,
        pdf: &Arc<Pdf>,
        range: PageRange,
        kinds: Option<&[PiiKind]>,
        token: Option<()>,
        deadline: Option<Instant>,
    ) -> Result<ChunkResult, ChunkError> {
        if token.is_none() {
            self.wait_for_quota().await?;
        }
        // Checked after the quota's wait, which may have been long.
        if self.out_of_time(deadline) {
            return Err(ChunkError::OutOfTime);
        }
        let cut = {
            let pdf = Arc::clone(pdf);
            tokio::task::spawn_blocking(move || pdf.extract(range)).await
        };
        let bytes = match cut {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) => {
                return Err(ChunkError::Ocr(OcrError::Rejected {
                    code: ErrorCode::UnreadableDocument,
                    message: format!("pages {range} could not be cut from the PDF: {error}"),
                }));
            }
            Err(panic) => {
                return Err(ChunkError::Ocr(OcrError::Retryable {
                    message: format!("cutting pages {range} failed: {panic}"),
                    retry_after: None,
                }));
            }
        };
        let document = Document {
            filename: format!("pages-{range}.pdf"),
            file_type: FileType::Pdf,
            bytes: bytes.into(),
        };
        let started = std::time::Instant::now();
        let mut result = self.recognize(&document).await?;
        if result.pages.len() as u32 != range.len() {
            warn!(%range, read = result.pages.len(), "the engine returned another number of pages");
        }
        for (offset, page) in result.pages.iter_mut().enumerate() {
            page.page = range.first + offset as u32;
        }
        let document_type = job
            .document_type
            .unwrap_or_else(|| DocumentType::classify(&result.text));
        let kinds = match kinds {
            Some(kinds) => kinds.to_vec(),
            None => redact::kinds_for(job.redact.as_deref(), document_type),
        };
        result.job_id = Some(job.job_id.clone());
        result.redacted = redact::mask_result(&mut result, &kinds);
        let chunk = ChunkResult {
            job_id: job.job_id.clone(),
            range,
            document_type,
            result,
        };
        let body = serde_json::to_vec(&chunk).expect("a chunk serialises");
        let key = job.job_id.chunk_key(range.first, range.last);
        self.blobs
            .put(&key, body.into(), "application/json")
            .await
            .map_err(|error| OcrError::Retryable {
                message: format!("pages {range} were read but could not be kept: {error}"),
                retry_after: None,
            })?;
        info!(%range, ms = started.elapsed().as_millis() as u64, "chunk read");
        Ok(chunk)
    }

    /// Waits in-process for a token of the global OCR quota: the job's lease
    /// is held, and the chunks already read are not lost by waiting.
    async fn wait_for_quota(&self) -> Result<(), OcrError> {
        loop {
            let decision =
                self.ocr_quota(Timestamp::now())
                    .await
                    .map_err(|error| OcrError::Retryable {
                        message: format!("the OCR quota could not be checked: {error}"),
                        retry_after: None,
                    })?;
            match decision {
                RateDecision::Allowed => return Ok(()),
                RateDecision::Limited { retry_after } => {
                    let jitter = Duration::from_millis(rand::random_range(0..200));
                    tokio::time::sleep(retry_after + jitter).await;
                }
            }
        }
    }

    /// Records `pages_done` and renews the lease; `false` when the job is no
    /// longer this attempt's (deleted, or taken over after a lost lease).
    async fn progress(&self, job: &Job, attempt: u32, pages_done: u32) -> Result<bool, JobRetry> {
        let now = Timestamp::now();
        let progress = Transition::Progress {
            attempt,
            pages_done,
            lease_until: now.plus(self.settings.lease),
        };
        match self.jobs.transition(&job.job_id, &progress, now).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound(_)) => {
                info!("job deleted while it was read; chunks discarded");
                let ranges = pdf::chunks(job.pages.unwrap_or(0), self.settings.pages_per_call);
                self.forget_chunks(job, &ranges).await;
                Ok(false)
            }
            Err(StoreError::Refused(refused)) => {
                warn!(status = %refused.current, "lease lost; the other attempt owns the job");
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Deletes the partial results once merged (the bucket's lifecycle rule
    /// removes any a crash leaves behind).
    async fn forget_chunks(&self, job: &Job, ranges: &[PageRange]) {
        for range in ranges {
            let key = job.job_id.chunk_key(range.first, range.last);
            if let Err(error) = self.blobs.delete(&key).await {
                warn!(%error, %range, "a merged chunk was not deleted; the lifecycle rule will");
            }
        }
    }
}

/// One result of the chunks, in page order: pages numbered through, the text
/// joined page by page, counts summed, and the confidence the lowest chunk's
/// (as Upstage's document confidence is its lowest page's).
fn merge(job: &Job, chunks: Vec<ChunkResult>) -> OcrResult {
    let first = &chunks[0].result;
    let (engine, model_version) = (first.engine.clone(), first.model_version.clone());
    let mut pages = Vec::new();
    let mut redacted: Option<PiiCounts> = None;
    let mut billed = 0;
    let mut confidence = f64::INFINITY;
    for chunk in chunks {
        let result = chunk.result;
        billed += result.num_billed_pages;
        confidence = confidence.min(result.confidence);
        if let Some(counts) = result.redacted {
            let total = redacted.get_or_insert_with(PiiCounts::new);
            for (kind, count) in counts {
                *total.entry(kind).or_insert(0) += count;
            }
        }
        pages.extend(result.pages);
    }
    let confidence = if confidence.is_finite() {
        confidence
    } else {
        0.0
    };
    OcrResult {
        job_id: Some(job.job_id.clone()),
        engine,
        model_version,
        confidence,
        text: document_text(&pages),
        num_billed_pages: billed,
        pages,
        redacted,
    }
}
