//! The sweeper on moto: the sparse index of unfinished jobs, the queue and the topic.

use std::sync::Arc;
use std::time::Duration;

use ocr_shared::aws::{DynamoJobStore, S3BlobStore, SnsEventPublisher, SqsJobQueue};
use ocr_shared::domain::{FileType, JobStatus, Timestamp, Transition};
use ocr_shared::ports::{BlobStore, JobMessage, JobStore};
use ocr_tests::{resources, sdk_config};
use serde_json::Value;
use sweeper::{Sweep, SweepSettings, Sweeper};

use crate::helpers::{new_job, owner, queued_job, sha};

async fn bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if received.is_empty() {
            return bodies;
        }
        bodies.extend(received.into_iter().filter_map(|m| m.body));
    }
}

#[tokio::test]
async fn stuck_jobs_are_sent_again_and_abandoned_uploads_expire_once() {
    let config = sdk_config().await;
    let table = resources::jobs_table(&config).await;
    let bucket = resources::bucket(&config).await;
    let jobs_queue = resources::queue(&config).await;
    let topic = resources::topic(&config).await;
    let events_queue = resources::queue(&config).await;
    resources::subscribe(&config, &topic, &events_queue).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let store = Arc::new(DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        table,
    ));
    let sweeper = Sweeper {
        jobs: store.clone(),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&config), bucket)),
        queue: Arc::new(SqsJobQueue::new(sqs.clone(), &jobs_queue)),
        events: Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&config),
            &topic,
        )),
        settings: SweepSettings {
            stale_after: Duration::from_secs(900),
            max_jobs: 100,
        },
    };
    let now = Timestamp::now();
    let hour_ago = Timestamp::from_millis(now.as_millis() - 3_600_000);

    // Queued an hour ago, its message lost.
    let lost = new_job("alice", hour_ago);
    store.create(&lost).await.unwrap();
    store
        .transition(
            &lost.job_id,
            &Transition::Enqueue {
                size: 2048,
                digest: ocr_shared::domain::DedupKey {
                    owner: owner("alice"),
                    sha256: sha(21),
                },
                detected: FileType::Pdf,
                declared: FileType::Pdf,
                etag: None,
                pages: None,
            },
            hour_ago,
        )
        .await
        .unwrap();
    // An upload slot opened an hour ago and never used.
    let abandoned = new_job("alice", hour_ago);
    store.create(&abandoned).await.unwrap();
    // Opened just now: nothing to do yet.
    let fresh = new_job("alice", now);
    store.create(&fresh).await.unwrap();

    let first = sweeper.sweep(now).await.unwrap();
    assert_eq!(first.requeued, vec![lost.job_id.clone()]);
    assert_eq!(first.expired, vec![abandoned.job_id.clone()]);
    assert_eq!(first.failed, 0);

    let sent: Vec<JobMessage> = bodies(&sqs, &jobs_queue)
        .await
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect();
    assert_eq!(
        sent,
        vec![JobMessage {
            job_id: lost.job_id.clone(),
            wake: 0,
        }]
    );
    let expired = store.get(&abandoned.job_id).await.unwrap().unwrap();
    assert_eq!(expired.status, JobStatus::Expired);
    assert!(!expired.unfinished, "out of the sweeper's index");
    let events: Vec<Value> = bodies(&sqs, &events_queue)
        .await
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "job.expired");
    assert_eq!(events[0]["job_id"], abandoned.job_id.as_str());

    // Idempotent: the expired job is gone from the index; the lost one is sent
    // again only because it is still queued and unchanged.
    let second = sweeper.sweep(now).await.unwrap();
    assert_eq!(
        second,
        Sweep {
            requeued: vec![lost.job_id.clone()],
            ..Sweep::default()
        }
    );
    assert_eq!(
        store.get(&fresh.job_id).await.unwrap().unwrap().status,
        JobStatus::AwaitingUpload,
        "a fresh upload slot is left alone"
    );
}

#[tokio::test]
async fn uploads_left_for_ingest_at_the_front_never_hide_the_stuck_job_behind_them() {
    const WAITING: usize = 150;
    let config = sdk_config().await;
    let table = resources::jobs_table(&config).await;
    let bucket = resources::bucket(&config).await;
    let jobs_queue = resources::queue(&config).await;
    let topic = resources::topic(&config).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let store = Arc::new(DynamoJobStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        table,
    ));
    let blobs = Arc::new(S3BlobStore::new(S3BlobStore::client(&config), bucket));
    let sweeper = Sweeper {
        jobs: store.clone(),
        blobs: blobs.clone(),
        queue: Arc::new(SqsJobQueue::new(sqs.clone(), &jobs_queue)),
        events: Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&config),
            &topic,
        )),
        settings: SweepSettings {
            stale_after: Duration::from_secs(sweeper::DEFAULT_STALE_SECONDS),
            max_jobs: sweeper::DEFAULT_MAX_JOBS,
        },
    };
    let now = Timestamp::now();
    let ago = |minutes: i64| Timestamp::from_millis(now.as_millis() - minutes * 60_000);

    // Uploads that arrived two hours ago and were never ingested: the sweeper
    // leaves them for ingest's replay, and they stay first in its index.
    for i in 0..WAITING {
        let waiting = new_job("alice", ago(120).plus(Duration::from_millis(i as u64)));
        store.create(&waiting).await.unwrap();
        blobs
            .put(
                &waiting.job_id.upload_key(),
                bytes::Bytes::from_static(b"%PDF-1.7"),
                "application/pdf",
            )
            .await
            .unwrap();
    }
    // Behind them: a job queued 50 minutes ago whose message was lost.
    let lost = queued_job(store.as_ref(), "bob", sha(7), ago(50)).await;

    let sweep = sweeper.sweep(now).await.unwrap();

    assert_eq!(sweep.requeued, vec![lost.job_id.clone()], "{sweep:?}");
    assert_eq!(sweep.left as usize, WAITING);
    assert_eq!(
        sweep.pending_over_an_hour as usize, WAITING,
        "the uploads waiting for two hours are counted, the lost job is not"
    );
    let sent = bodies(&sqs, &jobs_queue).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
}
