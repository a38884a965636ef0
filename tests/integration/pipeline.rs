//! The pipeline end to end on moto: real handlers, real adapters, the fake Upstage.

use std::time::Duration;

use ocr_shared::domain::{JobId, JobStatus, MAX_STORED_TEXT_BYTES, Timestamp, Transition};
use ocr_shared::ports::{BlobStore, JobStore};
use ocr_tests::fake_upstage::{Reply, large_response};
use ocr_tests::stack::{Stack, StackOptions};
use serde_json::{Value, json};

const PNG: &[u8] = include_bytes!("../../shared/tests/fixtures/headers/sample.png");
const PDF: &[u8] = include_bytes!("../../shared/tests/fixtures/headers/sample.pdf");
const HTML: &[u8] = include_bytes!("../../shared/tests/fixtures/headers/not-an-image.html");
const SETTLE: Duration = Duration::from_secs(30);

fn job_id(created: &Value) -> JobId {
    JobId::parse(created["job_id"].as_str().expect("a job id")).unwrap()
}

/// Creates a job for `bytes`, uploads them, and runs the pipeline until the job is finished.
async fn submit(stack: &Stack, owner: &str, bytes: &[u8]) -> JobId {
    let created = stack.create(owner, "영수증.png", "image/png", bytes).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(stack.upload(&created.body, bytes.to_vec()).await, 200);
    let id = job_id(&created.body);
    stack.settle(&id, SETTLE).await;
    id
}

#[tokio::test]
async fn an_upload_is_read_and_its_status_and_full_result_are_served() {
    let stack = Stack::start(StackOptions::default()).await;
    let created = stack.create("alice", "영수증.png", "image/png", PNG).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["status"], "awaiting_upload");
    assert_eq!(created.body["upload"]["method"], "PUT");
    assert_eq!(
        created.body["upload"]["headers"]["content-type"],
        "image/png"
    );
    let id = job_id(&created.body);

    let waiting = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(
        (waiting.status, waiting.body["status"].as_str()),
        (200, Some("awaiting_upload"))
    );

    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let job = stack.settle(&id, SETTLE).await;
    assert_eq!(job.status, JobStatus::Completed);

    let status = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(status.status, 200);
    let body = &status.body;
    assert_eq!(body["status"], "completed");
    assert!(body["text"].as_str().unwrap().contains("영수증"), "{body}");
    assert_eq!(body["pages"], 1);
    assert_eq!(body["engine"], "upstage");
    assert_eq!(body["model_version"], "ocr-2.2.1");
    assert_eq!(body["document_type"], "receipt");
    assert_eq!(body["attempts"], 1);
    assert!(body["confidence"].as_f64().unwrap() > 0.5);
    for field in ["created_at", "queued_at", "started_at", "completed_at"] {
        assert!(
            body[field].as_str().is_some_and(|t| t.ends_with('Z')),
            "{field}: {body}"
        );
    }
    let stored = stack.jobs.get(&id).await.unwrap().unwrap();
    assert!(stored.created_at <= stored.queued_at.unwrap());
    assert!(stored.queued_at <= stored.started_at && stored.started_at <= stored.completed_at);

    let full: Value = reqwest::get(body["result_url"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["job_id"], id.as_str());
    assert_eq!(full["engine"], "upstage");
    assert_eq!(full["pages"][0]["page"], 1);
    assert_eq!(full["pages"][0]["words"].as_array().unwrap().len(), 123);
    assert_eq!(
        full["pages"][0]["words"][0]["vertices"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    let redirect = stack
        .call(
            "GET",
            &format!("/v1/jobs/{id}/result"),
            Some("alice"),
            None,
            &[],
        )
        .await;
    assert_eq!(redirect.status, 302);
    assert!(
        redirect.headers["location"]
            .to_str()
            .unwrap()
            .contains(&format!("results/{id}.json"))
    );

    let calls = stack.upstage.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].model.as_str(), calls[0].content_type.as_str()),
        ("ocr", "image/png")
    );
    assert_eq!(calls[0].size, PNG.len());
    assert!(stack.upstage.refused().is_empty());

    let events = stack.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "job.completed");
    assert_eq!(events[0]["job_id"], id.as_str());
    assert_eq!(events[0]["owner"], "alice");
    assert!(events[0].get("text").is_none());
}

#[tokio::test]
async fn the_same_s3_event_three_times_calls_upstage_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let created = stack.create("alice", "영수증.png", "image/png", PNG).await;
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let id = job_id(&created.body);

    // S3's own delivery, then the same event twice more, as S3 may deliver it.
    let outcomes = stack.pump_uploads().await;
    assert!(
        outcomes.contains(&ingest::Outcome::Queued { job_id: id.clone() }),
        "{outcomes:?}"
    );
    let record = upload_event(&id);
    for _ in 0..2 {
        let outcomes = stack.invoke_ingest(record.clone()).await.unwrap();
        assert!(matches!(
            outcomes[0],
            ingest::Outcome::Requeued { .. } | ingest::Outcome::Duplicate { .. }
        ));
    }
    let job = stack.settle(&id, SETTLE).await;
    assert_eq!(job.status, JobStatus::Completed);
    // Drain whatever copies are left; none may read the document again.
    while stack.pump_jobs().await > 0 {}
    let again = stack.invoke_ingest(record).await.unwrap();
    assert!(
        matches!(
            again[0],
            ingest::Outcome::Duplicate {
                status: JobStatus::Completed,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(stack.upstage.calls().len(), 1);
    assert_eq!(stack.jobs.get(&id).await.unwrap().unwrap().attempts, 1);
}

#[tokio::test]
async fn the_same_bytes_are_read_once_per_owner() {
    let stack = Stack::start(StackOptions::default()).await;
    let first = submit(&stack, "alice", PNG).await;

    // Same owner, hash not declared: ingest finds the earlier job after the upload.
    let body = json!({"filename": "copy.png", "content_type": "image/png", "size": PNG.len()});
    let created = stack
        .call("POST", "/v1/jobs", Some("alice"), Some(body), &[])
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let second = stack.settle(&job_id(&created.body), SETTLE).await;
    assert_eq!(second.status, JobStatus::Completed);
    assert_eq!(second.deduplicated_from, Some(first.clone()));
    assert_eq!(stack.upstage.calls().len(), 1);
    let status = stack
        .call(
            "GET",
            &format!("/v1/jobs/{}", second.job_id),
            Some("alice"),
            None,
            &[],
        )
        .await;
    assert!(status.body["text"].as_str().unwrap().contains("영수증"));
    let full: Value = reqwest::get(status.body["result_url"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        full["job_id"],
        second.job_id.as_str(),
        "the copy is the new job's own"
    );

    // Same owner, hash declared: answered at once, no upload slot.
    let dedup = stack.create("alice", "again.png", "image/png", PNG).await;
    assert_eq!(dedup.status, 200);
    assert_eq!(dedup.body["deduplicated"], true);
    assert!(dedup.body.get("upload").is_none());
    assert_eq!(dedup.body["status"], "completed");

    // Another owner with the same bytes is read again.
    let bobs = submit(&stack, "bob", PNG).await;
    assert_eq!(
        stack
            .jobs
            .get(&bobs)
            .await
            .unwrap()
            .unwrap()
            .deduplicated_from,
        None
    );
    assert_eq!(stack.upstage.calls().len(), 2);
}

#[tokio::test]
async fn upstage_rate_limits_are_waited_out_without_using_up_attempts() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.upstage.script([
        Reply::Error {
            status: 429,
            retry_after: Some(1),
        },
        Reply::Error {
            status: 429,
            retry_after: Some(1),
        },
    ]);
    let id = submit(&stack, "alice", PNG).await;
    let job = stack.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(
        (job.attempts, job.throttles),
        (1, 0),
        "429s are not attempts"
    );
    assert_eq!(stack.upstage.calls().len(), 3);
}

#[tokio::test]
async fn an_unsupported_document_fails_after_one_call() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.upstage.script([Reply::Error {
        status: 415,
        retry_after: None,
    }]);
    let id = submit(&stack, "alice", PNG).await;
    let status = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(status.body["status"], "failed");
    assert_eq!(status.body["error"]["code"], "unsupported_document");
    assert!(
        status.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("415")
    );
    assert_eq!(stack.upstage.calls().len(), 1);
    assert_eq!(stack.events().await[0]["type"], "job.failed");
}

#[tokio::test]
async fn a_server_that_always_fails_fails_the_job_after_the_last_attempt() {
    let stack = Stack::start(StackOptions::default()).await;
    stack.upstage.script(std::iter::repeat_n(
        Reply::Error {
            status: 500,
            retry_after: None,
        },
        10,
    ));
    let id = submit(&stack, "alice", PNG).await;
    let job = stack.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, 3);
    let error = job.error.unwrap();
    assert_eq!(error.code, "ocr_unavailable");
    assert!(
        error.message.starts_with("gave up after 3 attempts"),
        "{}",
        error.message
    );
    assert_eq!(stack.upstage.calls().len(), 3);
    // The last message was acknowledged: nothing is left to redeliver or dead-letter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.pump_jobs().await, 0);
    assert_eq!(stack.dead_letter_count().await, 0);
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_retried_and_a_malformed_answer_fails_without_a_third_call() {
    let stack = Stack::start(StackOptions {
        upstage_timeout: Duration::from_secs(5),
        ..StackOptions::default()
    })
    .await;
    stack
        .upstage
        .script([Reply::Hang(Duration::from_secs(7)), Reply::Malformed]);
    let id = submit(&stack, "alice", PNG).await;
    let job = stack.jobs.get(&id).await.unwrap().unwrap();
    // The hang was cut off before an answer, so read again; the malformed
    // 200 was an answer (billed), and would be the same again.
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.attempts, 2);
    let error = job.error.unwrap();
    assert_eq!(error.code, "ocr_unavailable");
    assert!(
        error.message.contains("not a document result"),
        "{}",
        error.message
    );
    assert_eq!(stack.upstage.calls().len(), 2);
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_after_the_lease_and_read_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let created = stack.create("alice", "영수증.png", "image/png", PNG).await;
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let id = job_id(&created.body);
    stack.pump_uploads().await;

    // The doomed worker: receives the message (hidden for 4 s), takes a 4 s lease, dies.
    let sqs = aws_sdk_sqs::Client::new(&stack.config);
    let received = sqs
        .receive_message()
        .queue_url(&stack.resources.jobs_queue)
        .visibility_timeout(4)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages().len(), 1);
    let now = Timestamp::now();
    let lease_until = now.plus(Duration::from_secs(4));
    stack
        .jobs
        .transition(&id, &Transition::StartProcessing { lease_until }, now)
        .await
        .unwrap();

    // While the lease is live nothing happens; after it, the redelivery completes the job.
    assert_eq!(stack.pump_jobs().await, 0);
    let job = stack.settle(&id, SETTLE).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.attempts, 2);
    assert_eq!(stack.upstage.calls().len(), 1);
}

#[tokio::test]
async fn bad_uploads_are_rejected_with_a_reason_and_never_read() {
    let stack = Stack::start(StackOptions::default()).await;

    let html = stack
        .create("alice", "receipt.png", "image/png", HTML)
        .await;
    assert_eq!(stack.upload(&html.body, HTML.to_vec()).await, 200);

    let truncated = &PDF[..PDF.len() / 2];
    let pdf = stack
        .create("alice", "contract.pdf", "application/pdf", truncated)
        .await;
    assert_eq!(stack.upload(&pdf.body, truncated.to_vec()).await, 200);

    let body = json!({"filename": "big.png", "content_type": "image/png", "size": PNG.len() + 100});
    let sized = stack
        .call("POST", "/v1/jobs", Some("alice"), Some(body), &[])
        .await;
    assert_eq!(stack.upload(&sized.body, PNG.to_vec()).await, 200);

    for (created, code, words) in [
        (&html, "unsupported_type", "text/html"),
        (&pdf, "truncated_file", "no end marker"),
        (&sized, "size_mismatch", "were declared"),
    ] {
        let id = job_id(&created.body);
        let job = stack.settle(&id, SETTLE).await;
        assert_eq!(job.status, JobStatus::Rejected);
        let status = stack
            .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
            .await;
        assert_eq!(status.body["status"], "rejected");
        assert_eq!(status.body["error"]["code"], code);
        let message = status.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{code}: {message}");
        assert_eq!(
            stack.blobs.head(&id.upload_key()).await.unwrap(),
            None,
            "the rejected upload is deleted"
        );
    }
    assert!(stack.upstage.calls().is_empty());
    let events = stack.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "job.rejected")
            .count(),
        3
    );
}

#[tokio::test]
async fn another_owners_job_is_not_found_everywhere() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = submit(&stack, "alice", PNG).await;
    for (method, path) in [
        ("GET", format!("/v1/jobs/{id}")),
        ("GET", format!("/v1/jobs/{id}/result")),
        ("DELETE", format!("/v1/jobs/{id}")),
    ] {
        let response = stack.call(method, &path, Some("mallory"), None, &[]).await;
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(response.body["error"]["code"], "not_found");
        assert!(response.body["error"]["request_id"].is_string());
    }
    let listing = stack
        .call("GET", "/v1/jobs", Some("mallory"), None, &[])
        .await;
    assert_eq!(listing.status, 200);
    assert_eq!(listing.body["jobs"], json!([]));

    // The owner still has everything; then deletes it.
    let listing = stack
        .call("GET", "/v1/jobs", Some("alice"), None, &[])
        .await;
    assert_eq!(listing.body["jobs"][0]["job_id"], id.as_str());
    assert!(
        listing.body["jobs"][0].get("text").is_none(),
        "listings carry no text"
    );
    let deleted = stack
        .call(
            "DELETE",
            &format!("/v1/jobs/{id}"),
            Some("alice"),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(stack.jobs.get(&id).await.unwrap(), None);
    assert_eq!(stack.blobs.head(&id.result_key()).await.unwrap(), None);
    let gone = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn a_text_over_256_kib_is_cut_in_the_table_and_whole_in_the_result() {
    let stack = Stack::start(StackOptions::default()).await;
    stack
        .upstage
        .script([Reply::Ok(large_response(30, 12 * 1024))]);
    let id = submit(&stack, "alice", PNG).await;
    let job = stack.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.completion().unwrap().text_truncated);
    let stored = job.text().unwrap();
    assert!(stored.len() <= MAX_STORED_TEXT_BYTES && stored.len() > MAX_STORED_TEXT_BYTES - 4);
    assert_eq!(job.pages, Some(30));

    let status = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(status.body["text_truncated"], true);
    let full: Value = reqwest::get(status.body["result_url"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let whole = full["text"].as_str().unwrap();
    assert!(whole.len() > 30 * 12 * 1024);
    assert!(whole.starts_with(stored));
}

#[tokio::test]
async fn a_finished_job_has_an_etag_that_answers_not_modified() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = submit(&stack, "alice", PNG).await;
    let first = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let again = stack
        .call(
            "GET",
            &format!("/v1/jobs/{id}"),
            Some("alice"),
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(again.status, 304);
    assert_eq!(again.body, Value::Null);
    let stale = stack
        .call(
            "GET",
            &format!("/v1/jobs/{id}"),
            Some("alice"),
            None,
            &[("if-none-match", "\"other\"")],
        )
        .await;
    assert_eq!(stale.status, 200);
}

#[tokio::test]
async fn job_creation_is_rate_limited_per_owner_with_retry_after() {
    let stack = Stack::start(StackOptions {
        create_per_minute: 2,
        ..StackOptions::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            stack
                .create("alice", "a.png", "image/png", PNG)
                .await
                .status,
            201
        );
    }
    let limited = stack.create("alice", "a.png", "image/png", PNG).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        stack.create("bob", "a.png", "image/png", PNG).await.status,
        201
    );
}

#[tokio::test]
async fn a_batch_answers_each_document_in_order() {
    let stack = Stack::start(StackOptions::default()).await;
    let body = json!({"documents": [
        {"filename": "a.png", "content_type": "image/png", "size": 10},
        {"filename": "b.png", "content_type": "image/png", "size": 10, "webhook_url": "https://169.254.169.254/hook"},
        {"filename": "c.pdf", "content_type": "application/pdf", "size": 1_000_000_000u64},
    ]});
    let response = stack
        .call("POST", "/v1/jobs/batch", Some("alice"), Some(body), &[])
        .await;
    assert_eq!(response.status, 200);
    let results = response.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], 201);
    assert!(results[0]["job"]["upload"]["url"].is_string());
    assert_eq!(
        (
            results[1]["status"].as_u64(),
            results[1]["error"]["code"].as_str()
        ),
        (Some(400), Some("invalid_webhook_url"))
    );
    assert_eq!(
        (
            results[2]["status"].as_u64(),
            results[2]["error"]["code"].as_str()
        ),
        (Some(413), Some("file_too_large"))
    );

    // A document the request schema forbids (a type of no accepted kind)
    // makes the whole batch malformed: 400, and no job opened.
    let malformed = json!({"documents": [
        {"filename": "a.png", "content_type": "image/png", "size": 10},
        {"filename": "b.gif", "content_type": "image/gif", "size": 10},
    ]});
    let response = stack
        .call(
            "POST",
            "/v1/jobs/batch",
            Some("alice"),
            Some(malformed),
            &[],
        )
        .await;
    assert_eq!(response.status, 400, "{:?}", response.body);
    assert_eq!(response.body["error"]["code"], "invalid_batch");
    assert!(
        response.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("documents[1]: image/gif is not an accepted type")
    );
}

#[tokio::test]
async fn a_job_deleted_while_the_worker_reads_it_leaves_nothing_behind() {
    let stack = Stack::start(StackOptions::default()).await;
    // The read takes a second: long enough to delete the job meanwhile.
    stack.upstage.script([Reply::Hang(Duration::from_secs(1))]);
    let created = stack.create("alice", "영수증.png", "image/png", PNG).await;
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let id = job_id(&created.body);
    stack.pump_uploads().await;

    let reading = async { while stack.pump_jobs().await > 0 {} };
    let deleting = async {
        // Wait until the worker holds the job, then delete it through the API.
        loop {
            let job = stack.jobs.get(&id).await.unwrap().unwrap();
            if job.status == JobStatus::Processing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stack
            .call(
                "DELETE",
                &format!("/v1/jobs/{id}"),
                Some("alice"),
                None,
                &[],
            )
            .await
            .status
    };
    let ((), deleted) = tokio::join!(reading, deleting);
    assert_eq!(deleted, 204);

    assert_eq!(
        stack.upstage.calls().len(),
        1,
        "the read in flight finished"
    );
    assert!(
        stack.jobs.get(&id).await.unwrap().is_none(),
        "the job stays deleted"
    );
    for key in [id.upload_key(), id.result_key()] {
        assert!(
            stack.blobs.head(&key).await.unwrap().is_none(),
            "{key} is gone"
        );
    }
    let status = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(status.status, 404);
}

#[tokio::test]
async fn the_same_bytes_after_the_earlier_result_was_deleted_are_read_again() {
    let stack = Stack::start(StackOptions::default()).await;
    let first = submit(&stack, "alice", PNG).await;
    // The earlier result is gone (the lifecycle rule, or a hand in the bucket)
    // while its job record is still there.
    stack.blobs.delete(&first.result_key()).await.unwrap();

    // Hash declared: not answered from a result that is gone, but given an upload slot.
    let created = stack.create("alice", "again.png", "image/png", PNG).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let again = stack.settle(&job_id(&created.body), SETTLE).await;
    // Read again, into a result of its own.
    assert_eq!(again.status, JobStatus::Completed);
    assert_eq!(again.deduplicated_from, None);
    assert_eq!(stack.upstage.calls().len(), 2);
    assert!(
        stack
            .blobs
            .head(&again.job_id.result_key())
            .await
            .unwrap()
            .is_some()
    );

    // Hash not declared: ingest finds the same job with its result gone and reads it too.
    let body = json!({"filename": "third.png", "content_type": "image/png", "size": PNG.len()});
    let created = stack
        .call("POST", "/v1/jobs", Some("alice"), Some(body), &[])
        .await;
    stack
        .blobs
        .delete(&again.job_id.result_key())
        .await
        .unwrap();
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    let third = stack.settle(&job_id(&created.body), SETTLE).await;
    assert_eq!(third.status, JobStatus::Completed);
    assert_eq!(third.deduplicated_from, None);
    assert_eq!(stack.upstage.calls().len(), 3);
}

/// The S3 notification of `id`'s upload, as S3 sends it.
fn upload_event(id: &JobId) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T06:06:40.123Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "documents", "arn": "arn:aws:s3:::documents"},
               "object": {"key": format!("uploads%2F{id}"), "size": PNG.len()}}
    }]})
}

#[tokio::test]
async fn reordered_and_repeated_s3_events_read_each_upload_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let mut ids = Vec::new();
    for owner in ["alice", "bob"] {
        let created = stack.create(owner, "영수증.png", "image/png", PNG).await;
        assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
        ids.push(job_id(&created.body));
    }
    // The later upload's event first, then the earlier one's, then S3's own
    // deliveries of both behind them.
    for id in ids.iter().rev() {
        let outcomes = stack.invoke_ingest(upload_event(id)).await.unwrap();
        assert_eq!(outcomes, [ingest::Outcome::Queued { job_id: id.clone() }]);
    }
    // S3's own deliveries find the jobs queued: each sends its message again, reads nothing.
    let repeated: Vec<_> = stack
        .pump_uploads()
        .await
        .into_iter()
        .filter(|outcome| !matches!(outcome, ingest::Outcome::Ignored { .. }))
        .collect();
    assert_eq!(repeated.len(), 2, "{repeated:?}");
    assert!(
        repeated
            .iter()
            .all(|outcome| matches!(outcome, ingest::Outcome::Requeued { .. })),
        "{repeated:?}"
    );
    for id in &ids {
        let job = stack.settle(id, SETTLE).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Completed, 1));
    }
    while stack.pump_jobs().await > 0 {}
    assert_eq!(
        stack.upstage.calls().len(),
        2,
        "each owner's upload read once"
    );
}

/// Created and uploaded, and through ingest: queued for the worker.
async fn queued(stack: &Stack, owner: &str) -> JobId {
    let created = stack.create(owner, "영수증.png", "image/png", PNG).await;
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    stack.pump_uploads().await;
    job_id(&created.body)
}

#[tokio::test]
async fn a_dynamodb_error_on_completion_is_retried_and_the_job_completes_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = queued(&stack, "alice").await;
    // The completion's write (the only one that sets the result's key) fails
    // twice, as DynamoDB's 500s do; the client's retries ride it out.
    let table = stack.resources.table.clone();
    let fault =
        ocr_tests::moto::inject_dynamodb_fault("UpdateItem", &[&table, "result_key"], 2).await;
    let job = stack.settle(&id, SETTLE).await;
    assert_eq!(fault.clear().await, 2, "both faults were met");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.attempts, 1);
    assert_eq!(stack.upstage.calls().len(), 1);
    let events = stack.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "job.completed");
}

#[tokio::test]
async fn a_dynamodb_outage_on_completion_finishes_from_the_stored_result_without_a_second_read() {
    let stack = Stack::start(StackOptions {
        lease: Duration::from_secs(10),
        visibility: Duration::from_secs(12),
        ..StackOptions::default()
    })
    .await;
    let id = queued(&stack, "alice").await;
    let table = stack.resources.table.clone();
    let fault =
        ocr_tests::moto::inject_dynamodb_fault("UpdateItem", &[&table, "result_key"], 1000).await;
    // The read succeeds and its result is stored; recording it fails through
    // every retry, so the delivery fails and the message comes back.
    assert_eq!(stack.pump_jobs().await, 1);
    let failed = fault.clear().await;
    assert!(failed >= 4, "every retry met the outage: {failed}");
    println!("the completion's write failed {failed} times before the delivery gave up");
    let stuck = stack.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(stuck.status, JobStatus::Processing);
    assert!(
        stack.blobs.get(&id.result_key()).await.is_ok(),
        "the result was kept"
    );

    // After the visibility timeout (past the lease) the next delivery takes
    // the job over and records the kept result: no second OCR call.
    let job = stack.settle(&id, SETTLE).await;
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.attempts, 2);
    assert_eq!(stack.upstage.calls().len(), 1, "read once");
    let events = stack.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "job.completed");
    assert_eq!(stack.dead_letter_count().await, 0);
}

#[tokio::test]
async fn a_queued_message_whose_job_was_deleted_is_dropped_without_a_read() {
    let stack = Stack::start(StackOptions::default()).await;
    let id = queued(&stack, "alice").await;
    let path = format!("/v1/jobs/{id}");
    let deleted = stack.call("DELETE", &path, Some("alice"), None, &[]).await;
    assert_eq!(deleted.status, 204);

    // The job's message is still in the queue: one delivery acknowledges it.
    assert_eq!(stack.pump_jobs().await, 1);
    let counts = aws_sdk_sqs::Client::new(&stack.config)
        .get_queue_attributes()
        .queue_url(&stack.resources.jobs_queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let count = |name| counts.attributes().unwrap()[&name].clone();
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    assert_eq!(
        (
            count(ApproximateNumberOfMessages),
            count(ApproximateNumberOfMessagesNotVisible)
        ),
        ("0".to_owned(), "0".to_owned()),
        "acknowledged: neither waiting nor in flight"
    );
    assert!(stack.upstage.calls().is_empty(), "nothing was read");
    assert!(
        stack.jobs.get(&id).await.unwrap().is_none(),
        "nothing was written back"
    );
    assert!(stack.blobs.head(&id.result_key()).await.unwrap().is_none());
    assert!(stack.events().await.is_empty(), "nothing was announced");
    assert_eq!(stack.dead_letter_count().await, 0);
}
