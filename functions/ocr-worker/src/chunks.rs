//! Long PDFs, read in chunks of `pages_per_call` pages: one job and one status
//! throughout. Each chunk is cut from the PDF here, read within the global OCR
//! quota (several at once when the quota allows), masked, and kept in S3 under
//! `chunks/{job_id}/` until the whole document is merged, so that a retry
//! reads only the chunks no earlier attempt finished. Every finished chunk
//! renews the job's lease and records the pages read so far.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use ocr_shared::domain::{
    DocumentType, ErrorCode, FileType, Job, JobId, PiiCounts, PiiKind, Timestamp,
};
use ocr_shared::pdf::{self, PageRange, Pdf};
use ocr_shared::ports::{
    BlobError, Document, Moved, OcrError, OcrResult, RateDecision, document_text,
};
use ocr_shared::redact;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::lease::Lease;
use crate::worker::{JobRetry, Parts};

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

/// How reading the chunks after the first ended.
enum Rest {
    /// Every chunk started was read (some may be left for a fresh message).
    Read,
    /// The engine failed a chunk: its first error.
    Failed(OcrError),
    /// The job is no longer this attempt's.
    Moved,
}

/// Whether the job's quota token for its first call is still unspent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quota {
    /// The job took one token to start: its first call spends it.
    Taken,
    /// Each further call waits for a token of its own.
    ToWait,
}

/// The document parsed for cutting, when it is a PDF of more pages than
/// one call takes. A PDF this parser cannot follow is read whole: the
/// engine then decides.
pub(crate) async fn splittable(worker: &Parts, job: &Job, document: &Document) -> Option<Arc<Pdf>> {
    let per_call = worker.settings.pages_per_call;
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

/// A long PDF's chunks, those earlier attempts kept and those still to read.
struct Chunks {
    ranges: Vec<PageRange>,
    done: Vec<Option<ChunkResult>>,
    pages_done: u32,
}

impl Chunks {
    fn record(&mut self, index: usize, chunk: ChunkResult) {
        self.pages_done += chunk.range.len();
        self.done[index] = Some(chunk);
    }

    /// The chunks after the first that no attempt has read yet.
    fn missing(&self) -> Vec<(usize, PageRange)> {
        self.done
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, chunk)| chunk.is_none())
            .map(|(index, _)| (index, self.ranges[index]))
            .collect()
    }
}

/// Reads the chunks earlier attempts did not, then merges every chunk into
/// the job's one result.
pub(crate) async fn read_in_chunks(
    lease: &Lease<'_>,
    pdf: Arc<Pdf>,
    deadline: Option<Instant>,
) -> Result<(), JobRetry> {
    let mut chunks = kept_chunks(lease, &pdf).await?;
    // The first chunk tells the document's type, on which the masking depends.
    if chunks.done[0].is_none() {
        match read_chunk(lease, &pdf, chunks.ranges[0], None, Quota::Taken, deadline).await {
            Ok(chunk) => {
                chunks.record(0, chunk);
                if let Err(moved) = lease.progress(chunks.pages_done).await? {
                    forget_if_deleted(lease, moved, &chunks.ranges).await;
                    return Ok(());
                }
            }
            Err(ChunkError::OutOfTime) => return lease.resume_later(chunks.pages_done).await,
            Err(ChunkError::Ocr(error)) => return lease.ocr_failed(error).await,
        }
    }
    let first_type = chunks.done[0].as_ref().map(|first| first.document_type);
    let first_type = first_type.expect("the first chunk was kept or read");
    let kinds = redact::kinds_for(lease.job.redact.as_deref(), first_type);
    match read_the_rest(lease, &pdf, &kinds, &mut chunks, deadline).await? {
        Rest::Read => {}
        Rest::Failed(error) => return lease.ocr_failed(error).await,
        Rest::Moved => return Ok(()),
    }
    if chunks.done.iter().any(Option::is_none) {
        return lease.resume_later(chunks.pages_done).await;
    }
    let ranges = chunks.ranges;
    let read: Vec<ChunkResult> = chunks.done.into_iter().flatten().collect();
    let document_type = lease.job.document_type.unwrap_or(read[0].document_type);
    let result = merge(&lease.job, read);
    lease.finish(result, document_type).await?;
    forget_chunks(lease, &ranges).await;
    Ok(())
}

/// The chunks of `pdf` and what earlier attempts kept of them.
async fn kept_chunks(lease: &Lease<'_>, pdf: &Pdf) -> Result<Chunks, JobRetry> {
    let ranges = pdf::chunks(pdf.pages(), lease.worker.settings.pages_per_call);
    let mut done = Vec::with_capacity(ranges.len());
    for range in &ranges {
        done.push(stored_chunk(lease, *range).await?);
    }
    let kept = done.iter().flatten().count();
    info!(
        pages = pdf.pages(),
        chunks = ranges.len(),
        kept,
        "reading a long PDF in chunks"
    );
    let pages_done = done.iter().flatten().map(|chunk| chunk.range.len()).sum();
    Ok(Chunks {
        ranges,
        done,
        pages_done,
    })
}

/// Reads the missing chunks after the first, several at once within the
/// quota, and records each. After a failure, or too close
/// to the invocation's end, no chunk is started, but the ones in flight are
/// read to the end and kept: they are paid for.
async fn read_the_rest(
    lease: &Lease<'_>,
    pdf: &Arc<Pdf>,
    kinds: &[PiiKind],
    chunks: &mut Chunks,
    deadline: Option<Instant>,
) -> Result<Rest, JobRetry> {
    let worker = lease.worker;
    let in_flight = (worker.settings.rate_limit_rps as usize).clamp(1, MAX_CHUNKS_IN_FLIGHT);
    let stopped = AtomicBool::new(false);
    let mut reads = futures::stream::iter(chunks.missing())
        .take_while(|_| {
            std::future::ready(!stopped.load(Ordering::Relaxed) && !worker.out_of_time(deadline))
        })
        .map(|(index, range)| async move {
            let chunk = read_chunk(lease, pdf, range, Some(kinds), Quota::ToWait, deadline).await;
            (index, chunk)
        })
        .buffer_unordered(in_flight);
    let mut first_error = None;
    // Progress is recorded here, one chunk after another, so that it only rises.
    while let Some((index, read)) = reads.next().await {
        match read {
            Ok(chunk) => {
                chunks.record(index, chunk);
                if first_error.is_none()
                    && let Err(moved) = lease.progress(chunks.pages_done).await?
                {
                    drop(reads);
                    forget_if_deleted(lease, moved, &chunks.ranges).await;
                    return Ok(Rest::Moved);
                }
            }
            Err(ChunkError::OutOfTime) => stopped.store(true, Ordering::Relaxed),
            Err(ChunkError::Ocr(error)) => {
                stopped.store(true, Ordering::Relaxed);
                first_error.get_or_insert(error);
            }
        }
    }
    Ok(first_error.map_or(Rest::Read, Rest::Failed))
}

/// The job moved on while it was read: a deleted job's chunks go with it;
/// a job taken over keeps them for the attempt that owns it now.
async fn forget_if_deleted(lease: &Lease<'_>, moved: Moved, ranges: &[PageRange]) {
    if moved == Moved::Deleted {
        info!("job deleted while it was read; its chunks are deleted");
        forget_chunks(lease, ranges).await;
    }
}

/// The partial result an earlier attempt kept for `range`, if it is whole.
async fn stored_chunk(
    lease: &Lease<'_>,
    range: PageRange,
) -> Result<Option<ChunkResult>, JobRetry> {
    let job = &lease.job;
    let key = job.job_id.chunk_key(range.first, range.last);
    let body = match lease.worker.blobs.get(&key).await {
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

/// Cuts `range` from the PDF, reads it within the quota, masks it (`kinds`,
/// or those of its own document type for the first chunk) and keeps it.
async fn read_chunk(
    lease: &Lease<'_>,
    pdf: &Arc<Pdf>,
    range: PageRange,
    kinds: Option<&[PiiKind]>,
    quota: Quota,
    deadline: Option<Instant>,
) -> Result<ChunkResult, ChunkError> {
    let worker = lease.worker;
    if quota == Quota::ToWait {
        wait_for_quota(worker).await?;
    }
    // Checked after the quota's wait, which may have been long.
    if worker.out_of_time(deadline) {
        return Err(ChunkError::OutOfTime);
    }
    let document = cut(pdf, range).await?;
    let started = Instant::now();
    let mut result = worker.recognize(&document).await?;
    if result.pages.len() as u32 != range.len() {
        warn!(%range, read = result.pages.len(), "the engine returned another number of pages");
    }
    for (offset, page) in result.pages.iter_mut().enumerate() {
        page.page = range.first + offset as u32;
    }
    let job = &lease.job;
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
    keep(lease, &chunk).await?;
    info!(%range, ms = started.elapsed().as_millis() as u64, "chunk read");
    Ok(chunk)
}

/// The pages of `range` as a PDF of their own (cut off the runtime).
async fn cut(pdf: &Arc<Pdf>, range: PageRange) -> Result<Document, OcrError> {
    let pdf = Arc::clone(pdf);
    match tokio::task::spawn_blocking(move || pdf.extract(range)).await {
        Ok(Ok(bytes)) => Ok(Document {
            filename: format!("pages-{range}.pdf"),
            file_type: FileType::Pdf,
            bytes: bytes.into(),
        }),
        Ok(Err(error)) => Err(OcrError::Rejected {
            code: ErrorCode::UnreadableDocument,
            message: format!("pages {range} could not be cut from the PDF: {error}"),
        }),
        Err(panic) => Err(OcrError::Retryable {
            message: format!("cutting pages {range} failed: {panic}"),
            retry_after: None,
        }),
    }
}

/// Keeps a read chunk for the attempts after this one.
async fn keep(lease: &Lease<'_>, chunk: &ChunkResult) -> Result<(), OcrError> {
    let range = chunk.range;
    let body = serde_json::to_vec(chunk).expect("a chunk serialises");
    let key = lease.job.job_id.chunk_key(range.first, range.last);
    lease
        .worker
        .blobs
        .put(&key, body.into(), "application/json")
        .await
        .map_err(|error| OcrError::Retryable {
            message: format!("pages {range} were read but could not be kept: {error}"),
            retry_after: None,
        })
}

/// Waits in-process for a token of the global OCR quota: the job's lease
/// is held, and the chunks already read are not lost by waiting.
async fn wait_for_quota(worker: &Parts) -> Result<(), OcrError> {
    loop {
        let decision =
            worker
                .ocr_quota(Timestamp::now())
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

/// Deletes the partial results once merged (the bucket's lifecycle rule
/// removes any a crash leaves behind).
async fn forget_chunks(lease: &Lease<'_>, ranges: &[PageRange]) {
    for range in ranges {
        let key = lease.job.job_id.chunk_key(range.first, range.last);
        if let Err(error) = lease.worker.blobs.delete(&key).await {
            warn!(%error, %range, "a merged chunk was not deleted; the lifecycle rule will");
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
