//! `make bench`: the peak memory of the OCR worker handling one batch of ten
//! 50 MiB documents read from S3 (moto), with the bytes-in-flight budget as
//! deployed and without one. Prints figures; asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use lambda_runtime::{Context, LambdaEvent};
use ocr_shared::aws::S3BlobStore;
use ocr_shared::domain::{DedupKey, FileType, Sha256Hex, Timestamp, Transition};
use ocr_shared::memory::{MemoryEventPublisher, MemoryJobQueue, MemoryJobStore, MemoryRateLimiter};
use ocr_shared::ports::{BlobStore, Document, JobStore, OcrEngine, OcrError, OcrPage, OcrResult};
use ocr_shared::testing;
use ocr_worker::budget::ByteBudget;
use ocr_worker::handler::{DEFAULT_BYTES_IN_FLIGHT, Worker, WorkerSettings};

const DOCUMENTS: usize = 10;
const SIZE: usize = 50 * 1024 * 1024;

/// Holds each document for a while, as the worker does while Upstage reads it.
struct Slow;

#[async_trait::async_trait]
impl OcrEngine for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }

    async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError> {
        let sample = document.bytes.iter().step_by(4096).fold(0u8, |a, b| a ^ b);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(OcrResult {
            redacted: None,
            job_id: None,
            engine: "slow".into(),
            model_version: "bench".into(),
            confidence: 0.9,
            text: sample.to_string(),
            num_billed_pages: 1,
            pages: vec![OcrPage {
                page: 1,
                width: 1,
                height: 1,
                confidence: 0.9,
                text: sample.to_string(),
                words: Vec::new(),
                quality: None,
            }],
        })
    }
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// Resets the kernel's peak-RSS mark, so that what follows is measured alone.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("the peak RSS mark can be reset");
}

/// Ten queued jobs whose 50 MiB uploads are in the bucket, and the SQS batch naming them.
async fn queued_batch(jobs: &MemoryJobStore, blobs: &S3BlobStore) -> SqsEvent {
    let document = Bytes::from((0..SIZE).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut records = Vec::new();
    for n in 0..DOCUMENTS {
        let job = testing::open(
            testing::request("bench", "large.pdf", FileType::Pdf, SIZE as u64),
            Timestamp::now(),
        );
        jobs.create(&job).await.unwrap();
        let key = job.job_id.upload_key();
        blobs
            .put(&key, document.clone(), "application/pdf")
            .await
            .unwrap();
        let etag = blobs.head(&key).await.unwrap().and_then(|info| info.etag);
        let enqueue = Transition::Enqueue {
            size: SIZE as u64,
            digest: DedupKey {
                owner: job.owner.clone(),
                sha256: Sha256Hex::from_digest([n as u8; 32]),
            },
            detected: FileType::Pdf,
            declared: FileType::Pdf,
            etag,
            pages: None,
        };
        jobs.transition(&job.job_id, &enqueue, Timestamp::now())
            .await
            .unwrap();
        let mut record = SqsMessage::default();
        record.message_id = Some(format!("m{n}"));
        record.receipt_handle = Some(format!("r{n}"));
        record.body = Some(format!("{{\"job_id\":\"{}\"}}", job.job_id));
        records.push(record);
    }
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

/// Peak MiB and seconds of one batch under `budget` bytes in flight.
async fn run(blobs: Arc<S3BlobStore>, budget: u64) -> (u64, f64) {
    let jobs = Arc::new(MemoryJobStore::default());
    let event = queued_batch(&jobs, &blobs).await;
    let worker = Worker {
        parts: ocr_worker::Parts {
            jobs: jobs.clone(),
            blobs,
            queue: Arc::new(MemoryJobQueue::default()),
            events: Arc::new(MemoryEventPublisher::default()),
            engine: Arc::new(Slow),
            limiter: Arc::new(MemoryRateLimiter::default()),
            settings: WorkerSettings {
                pages_per_call: ocr_worker::DEFAULT_PAGES_PER_CALL,
                max_attempts: 3,
                lease: Duration::from_secs(600),
                retry_base: Duration::from_secs(1),
                rate_limit_rps: 1000,
                max_bytes_in_flight: budget,
                review_below: ocr_worker::DEFAULT_LOW_CONFIDENCE,
            },
        },
        in_flight: ByteBudget::new(budget),
        decoding: ByteBudget::new(ocr_worker::handler::DECODE_BUDGET),
    };
    reset_peak();
    let started = Instant::now();
    let response = ocr_worker::handle(LambdaEvent::new(event, Context::default()), &worker)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    (peak_rss_mib(), started.elapsed().as_secs_f64())
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = ocr_tests::sdk_config().await;
        let bucket = ocr_tests::resources::bucket(&config).await;
        let blobs = Arc::new(S3BlobStore::new(S3BlobStore::client(&config), bucket));
        println!(
            "worker batch: {DOCUMENTS} documents of {} MiB read from S3 (moto), 300 ms of OCR each",
            SIZE / (1024 * 1024)
        );
        for (label, budget) in [
            ("budget 200 MiB (deployed)", DEFAULT_BYTES_IN_FLIGHT),
            ("no budget", (DOCUMENTS * SIZE * 2) as u64),
        ] {
            let (peak, seconds) = run(blobs.clone(), budget).await;
            println!("  {label:<26} peak resident {peak:>5} MiB   batch {seconds:.1} s");
        }
    });
}
