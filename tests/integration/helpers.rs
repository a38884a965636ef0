use std::time::Duration;

use ocr_shared::aws::DynamoJobStore;
use ocr_shared::domain::{Completion, FileType, Job, Sha256Hex, Timestamp, Transition};
use ocr_shared::ports::JobStore;
use ocr_shared::testing;
use ocr_tests::{resources, sdk_config};

/// A job store over a fresh table of its own.
pub async fn job_store() -> DynamoJobStore {
    let config = sdk_config().await;
    let table = resources::jobs_table(&config).await;
    DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&config), table)
}

pub use ocr_shared::testing::{completion, owner};

pub fn sha(byte: u8) -> Sha256Hex {
    Sha256Hex::from_digest([byte; 32])
}

pub fn new_job(owner_name: &str, at: Timestamp) -> Job {
    testing::open(
        testing::request(owner_name, "사업자등록증.pdf", FileType::Pdf, 2048),
        at,
    )
}

/// Creates a job and moves it to `queued` with these bytes.
pub async fn queued_job(
    store: &dyn JobStore,
    owner_name: &str,
    digest: Sha256Hex,
    at: Timestamp,
) -> Job {
    let job = new_job(owner_name, at);
    let enqueue = testing::enqueue(&job, 2048, digest, None);
    testing::create_and_move(store, &job, &[enqueue], at).await
}

/// Creates a job and runs it to `completed` through the lease.
pub async fn completed_job(
    store: &dyn JobStore,
    owner_name: &str,
    digest: Sha256Hex,
    at: Timestamp,
) -> Job {
    completed_reading(
        store,
        owner_name,
        digest,
        at,
        completion("상호 주식회사 예시"),
    )
    .await
}

/// Creates a job and runs it to `completed` with this completion.
pub async fn completed_reading(
    store: &dyn JobStore,
    owner_name: &str,
    digest: Sha256Hex,
    at: Timestamp,
    completion: Completion,
) -> Job {
    let job = queued_job(store, owner_name, digest, at).await;
    let leased = store
        .transition(
            &job.job_id,
            &Transition::StartProcessing {
                lease_until: at.plus(Duration::from_secs(300)),
            },
            at,
        )
        .await
        .unwrap();
    store
        .transition(
            &job.job_id,
            &Transition::Complete {
                attempt: leased.attempts,
                completion,
                pages: 2,
                document_type: Some(ocr_shared::domain::DocumentType::BusinessRegistration),
            },
            at,
        )
        .await
        .unwrap()
}
