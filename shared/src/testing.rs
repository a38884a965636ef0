//! Fixtures for tests: a job request, an opened job, the steps a job takes
//! and a completion. Behind the `testing` feature, with the in-memory
//! adapters, so that no Lambda binary carries them.

use std::time::Duration;

use crate::domain::{
    Completion, DedupKey, DocumentType, FileType, Filename, Job, NewJob, Owner, Sha256Hex,
    Timestamp, Transition,
};
use crate::ports::{JobStore, OcrPage, OcrResult, OcrWord, Vertex};

/// How long a test job's upload URL lasts.
pub const UPLOAD_TTL: Duration = Duration::from_secs(900);
/// How long a test job is kept: long enough for any test's clock.
pub const RETENTION: Duration = Duration::from_secs(30 * 86_400);

pub fn owner(name: &str) -> Owner {
    Owner::parse(name).expect("a test owner is a valid subject")
}

/// What a client asks for, without a hash, webhook or document type (set them with `..`).
pub fn request(owner_name: &str, filename: &str, content_type: FileType, size: u64) -> NewJob {
    NewJob {
        owner: owner(owner_name),
        filename: Filename::parse(filename).expect("a test filename is valid"),
        content_type,
        declared_size: size,
        sha256: None,
        webhook_url: None,
        document_type: None,
        redact: None,
    }
}

/// The job `request` opens at `at`, with the test upload TTL and retention.
pub fn open(request: NewJob, at: Timestamp) -> Job {
    Job::open(request, at, UPLOAD_TTL, RETENTION)
}

/// `awaiting_upload → queued` for `size` bytes hashing to `sha256`, of the declared type.
pub fn enqueue(job: &Job, size: u64, sha256: Sha256Hex, etag: Option<String>) -> Transition {
    Transition::Enqueue {
        size,
        digest: DedupKey {
            owner: job.owner.clone(),
            sha256,
        },
        detected: job.content_type,
        declared: job.content_type,
        etag,
        pages: None,
    }
}

/// What an OCR run of `text` leaves on a job.
pub fn completion(text: &str) -> Completion {
    Completion {
        text: Some(text.into()),
        text_truncated: false,
        confidence: 0.93,
        engine: "upstage".into(),
        model_version: "ocr-2.2.1".into(),
        result_key: "results/x.json".into(),
        redacted: None,
        needs_review: false,
        review_pages: Vec::new(),
        quality_issues: Vec::new(),
    }
}

/// `processing → completed` for the lease of `attempt`, with `completion`
/// of a two-page business registration.
pub fn complete(attempt: u32, completion: Completion) -> Transition {
    Transition::Complete {
        attempt,
        completion,
        pages: 2,
        document_type: Some(DocumentType::BusinessRegistration),
    }
}

/// A PNG signature and header chunk declaring `width` × `height`, and no
/// pixels: what a decompression bomb shows a header reader.
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 0, 0, 0, 0]);
    png.extend_from_slice(&[0; 4]); // the chunk's CRC: no header reader checks it
    png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    png
}

/// A one-page result of `text`, read as one word.
pub fn ocr_result(text: &str) -> OcrResult {
    OcrResult {
        job_id: None,
        engine: "upstage".into(),
        model_version: "ocr-2.2.1".into(),
        confidence: 0.91,
        text: text.into(),
        num_billed_pages: 1,
        pages: vec![OcrPage {
            page: 1,
            width: 100,
            height: 50,
            confidence: 0.91,
            text: text.into(),
            words: vec![OcrWord {
                text: text.into(),
                confidence: 0.91,
                vertices: [Vertex { x: 0, y: 0 }; 4],
            }],
            quality: None,
        }],
        redacted: None,
    }
}

/// Creates `job` in `store` and applies `steps` in order at `at`: the job after the last.
pub async fn create_and_move(
    store: &dyn JobStore,
    job: &Job,
    steps: &[Transition],
    at: Timestamp,
) -> Job {
    store.create(job).await.expect("the test job is created");
    let mut current = job.clone();
    for step in steps {
        current = store
            .transition(&job.job_id, step, at)
            .await
            .unwrap_or_else(|error| panic!("{step:?}: {error}"));
    }
    current
}
