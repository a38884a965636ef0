//! `make bench`: ingest's peak memory checking and hashing a 50 MiB upload
//! read from S3 (moto): a JPEG, which is streamed through the hash, and a PDF,
//! which is read whole (its page tree may be anywhere in the file); and the
//! SHA-256 of the streaming path against `sha256sum` on the same bytes.
//! Prints figures; asserts only that each upload was accepted.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ocr_shared::aws::S3BlobStore;
use ocr_shared::config::{Env, UploadSettings};
use ocr_shared::domain::{FileType, Timestamp};
use ocr_shared::memory::{MemoryEventPublisher, MemoryJobQueue, MemoryJobStore};
use ocr_shared::ports::{BlobStore, JobStore};
use ocr_shared::testing;
use sha2::{Digest, Sha256};

const SIZE: usize = 50 * 1024 * 1024;
const SAMPLE_JPEG: &[u8] = include_bytes!("../fixtures/documents/business-registration.jpg");

/// (resident, peak resident) of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the kernel's peak-RSS mark, so that what follows is measured alone.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("the peak RSS mark can be reset");
}

/// Bytes no compressor shrinks, as a scan's are.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A real JPEG's header and scan, padded to `len` before its end marker.
fn large_jpeg(len: usize) -> Vec<u8> {
    let body = &SAMPLE_JPEG[..SAMPLE_JPEG.len() - 2];
    let mut bytes = body.to_vec();
    bytes.resize(len - 2, 0);
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// A one-page PDF carrying an embedded stream that brings it to about `len` bytes.
fn large_pdf(len: usize) -> Vec<u8> {
    let sample = ocr_shared::pdf::sample_of(&["스캔 50 MiB".to_owned()]);
    let mut document = lopdf::Document::load_mem(&sample).unwrap();
    let padding = len.saturating_sub(sample.len() + 256);
    let stream = lopdf::Stream::new(lopdf::Dictionary::new(), noise(padding));
    document.add_object(stream);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).unwrap();
    bytes
}

/// Peak and rise of resident memory, in MiB, while ingest checks one upload.
async fn ingest_one(
    blobs: Arc<S3BlobStore>,
    name: &str,
    kind: FileType,
    bytes: Vec<u8>,
) -> (f64, f64, f64) {
    let jobs = Arc::new(MemoryJobStore::default());
    let env = std::collections::HashMap::new();
    let ingest = ingest::Ingest {
        jobs: jobs.clone(),
        blobs: blobs.clone(),
        queue: Arc::new(MemoryJobQueue::default()),
        events: Arc::new(MemoryEventPublisher::default()),
        limits: UploadSettings::from_env(&Env::new(&env)).unwrap().limits,
    };
    let size = bytes.len() as u64;
    let job = testing::open(
        testing::request("bench", name, kind, size),
        Timestamp::now(),
    );
    jobs.create(&job).await.unwrap();
    blobs
        .put(&job.job_id.upload_key(), Bytes::from(bytes), kind.mime())
        .await
        .unwrap();
    // The upload's bytes are in the bucket only: what follows is ingest's alone.
    reset_peak();
    let (before, _) = rss_kib();
    let started = Instant::now();
    let outcome = ingest.upload(&job.job_id, Timestamp::now()).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let (_, peak) = rss_kib();
    assert!(
        matches!(outcome, ingest::Outcome::Queued { .. }),
        "{name}: {outcome:?}"
    );
    (
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0,
        seconds,
    )
}

/// MB/s of the streaming hash (64 KiB chunks, as S3's body arrives) and of `sha256sum`.
fn sha256_throughput() -> (f64, f64) {
    const HASHED: usize = 512 * 1024 * 1024;
    let bytes = noise(HASHED);
    let mut ours = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut hasher = Sha256::new();
        for chunk in bytes.chunks(64 * 1024) {
            hasher.update(chunk);
        }
        std::hint::black_box(hasher.finalize());
        ours = ours.min(started.elapsed().as_secs_f64());
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes).unwrap();
    file.flush().unwrap();
    let mut theirs = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let status = std::process::Command::new("sha256sum")
            .arg(file.path())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("sha256sum (coreutils) runs");
        assert!(status.success());
        theirs = theirs.min(started.elapsed().as_secs_f64());
    }
    let megabytes = HASHED as f64 / 1e6;
    (megabytes / ours, megabytes / theirs)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = ocr_tests::sdk_config().await;
        // The process as ingest's would be before its first event: runtime,
        // SDK clients, no upload yet. The heap the test's own uploads leave
        // behind is not ingest's, so each check's rise is added to this.
        let _ = S3BlobStore::client(&config);
        let (base, _) = rss_kib();
        let base = base as f64 / 1024.0;
        let bucket = ocr_tests::resources::bucket(&config).await;
        let blobs = Arc::new(S3BlobStore::new(S3BlobStore::client(&config), bucket));
        println!(
            "ingest, one 50 MiB upload read from S3 (moto); peak resident memory of the process:"
        );
        println!("  command: cargo bench -p ocr-tests --bench ingest_memory");
        for (name, kind, bytes) in [
            ("large.jpg", FileType::Jpeg, large_jpeg(SIZE)),
            ("large.pdf", FileType::Pdf, large_pdf(SIZE)),
        ] {
            let (_, rise, seconds) = ingest_one(blobs.clone(), name, kind, bytes).await;
            let peak = base + rise;
            let how = if kind == FileType::Pdf {
                "read whole, pages counted"
            } else {
                "head and tail read, body streamed through SHA-256"
            };
            println!(
                "  {name:<10} peak resident {peak:>6.1} MiB ({base:.1} before the event + {rise:.1} during the check; budget 48 MiB: {})   {seconds:.2} s   {how}",
                if peak <= 48.0 { "met" } else { "missed" }
            );
        }
    });
    let (ours, theirs) = sha256_throughput();
    println!("SHA-256 of 512 MiB in memory, best of 3:");
    println!(
        "  streaming path (sha2, 64 KiB chunks) {ours:>7.0} MB/s   sha256sum {theirs:>7.0} MB/s   ratio {:.0}%",
        100.0 * ours / theirs
    );
}
