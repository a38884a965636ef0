use std::time::Duration;

use ocr_shared::aws::DynamoJobStore;
use ocr_shared::domain::{
    Completion, DedupKey, FileType, Job, NewJob, Owner, Sha256Hex, Timestamp, Transition,
};
use ocr_shared::ports::JobStore;
use ocr_tests::{resources, sdk_config};

/// A job store over a fresh table of its own.
pub async fn job_store() -> DynamoJobStore {
    let config = sdk_config().await;
    let table = resources::jobs_table(&config).await;
    DynamoJobStore::new(aws_sdk_dynamodb::Client::new(&config), table)
}

pub fn owner(name: &str) -> Owner {
    Owner::parse(name).unwrap()
}

pub fn sha(byte: u8) -> Sha256Hex {
    Sha256Hex::from_digest([byte; 32])
}

pub fn new_job(owner_name: &str, at: Timestamp) -> Job {
    Job::open(
        NewJob {
            owner: owner(owner_name),
            filename: "사업자등록증.pdf".into(),
            content_type: FileType::Pdf,
            declared_size: 2048,
            sha256: None,
            webhook_url: None,
            document_type: None,
        },
        at,
        Duration::from_secs(900),
        Duration::from_secs(30 * 86_400),
    )
}

pub fn completion(text: &str) -> Completion {
    Completion {
        text: text.into(),
        text_truncated: false,
        confidence: 0.93,
        pages: 2,
        engine: "upstage".into(),
        model_version: "ocr-2.2.1".into(),
        result_key: "results/x.json".into(),
        document_type: Some("business_registration".into()),
    }
}

/// Creates a job and moves it to `queued` with these bytes.
pub async fn queued_job(
    store: &impl JobStore,
    owner_name: &str,
    digest: Sha256Hex,
    at: Timestamp,
) -> Job {
    let job = new_job(owner_name, at);
    store.create(&job).await.unwrap();
    store
        .transition(
            &job.job_id,
            &Transition::Enqueue {
                size: 2048,
                digest: DedupKey {
                    owner: owner(owner_name),
                    sha256: digest,
                },
                detected_mime: "application/pdf".into(),
                etag: None,
            },
            at,
        )
        .await
        .unwrap()
}

/// Creates a job and runs it to `completed` through the lease.
pub async fn completed_job(
    store: &impl JobStore,
    owner_name: &str,
    digest: Sha256Hex,
    at: Timestamp,
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
                completion: completion("상호 주식회사 예시"),
            },
            at,
        )
        .await
        .unwrap()
}
