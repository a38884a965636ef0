//! `make bench`: CPU time per job in each handler, OCR excluded. One job's
//! life runs through the real handlers over in-memory adapters: upload-api
//! opens it, ingest checks the one-page PDF, the worker reads it (an engine
//! that answers at once with the recorded Upstage receipt), status-api serves
//! it, the notifier signs and delivers its webhook to a receiver on loopback.
//! Each step is timed by the thread's CPU clock on a single-threaded runtime;
//! the receiver runs on a thread of its own. Prints figures; asserts only that
//! every job went the whole way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use lambda_http::Body;
use lambda_runtime::{Context, LambdaEvent};
use ocr_shared::config::{Env, UploadSettings};
use ocr_shared::domain::{JobId, JobStatus, Timestamp};
use ocr_shared::memory::{
    MemoryBlobStore, MemoryEventPublisher, MemoryJobQueue, MemoryJobStore, MemoryRateLimiter,
    MemorySecrets, ScriptedOcr,
};
use ocr_shared::ports::{BlobStore, JobStore};
use ocr_shared::webhook::{AddressPolicy, SystemResolver};
use serde_json::{Value, json};

const JOBS: usize = 300;
const WARM_UP: usize = 20;
const CREATE: &str = include_str!("../../events/apigw-create-job.json");
const GET: &str = include_str!("../../events/apigw-get-job.json");
const RECEIPT: &str = include_str!("../../shared/tests/fixtures/upstage/response-rotate.json");
const SECRET_ID: &str = "webhook-secret";

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread CPU clock is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A webhook receiver on its own thread, answering 204 to everything.
fn receiver() -> String {
    let (sender, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}/hook", address.recv().unwrap())
}

fn api_request(
    template: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> lambda_http::Request {
    let mut event: Value = serde_json::from_str(template).unwrap();
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    match body {
        Some(body) => event["body"] = json!(body.to_string()),
        None => {
            event.as_object_mut().unwrap().remove("body");
        }
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn body_of(response: &lambda_http::Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("not a JSON body: {other:?}"),
    }
}

fn sqs_event(body: String) -> SqsEvent {
    let mut record = SqsMessage::default();
    record.message_id = Some("m".into());
    record.receipt_handle = Some("r".into());
    record.body = Some(body);
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    event
}

#[derive(Default)]
struct Spent {
    upload_api: Duration,
    ingest: Duration,
    worker: Duration,
    status_api: Duration,
    notifier: Duration,
}

struct Stack {
    jobs: Arc<MemoryJobStore>,
    blobs: Arc<MemoryBlobStore>,
    events: Arc<MemoryEventPublisher>,
    upload: upload_api::UploadApi,
    ingest: ingest::Ingest,
    worker: ocr_worker::Worker,
    status: status_api::StatusApi,
    notifier: notifier::Notifier,
}

fn stack() -> Stack {
    let jobs = Arc::new(MemoryJobStore::default());
    let blobs = Arc::new(MemoryBlobStore::default());
    let queue = Arc::new(MemoryJobQueue::default());
    let events = Arc::new(MemoryEventPublisher::default());
    let secrets =
        Arc::new(MemorySecrets::default().with(SECRET_ID, "bench-master-secret-0123456789"));
    let env = HashMap::new();
    let env = Env::new(&env);
    let upload = upload_api::UploadApi {
        jobs: jobs.clone(),
        blobs: blobs.clone(),
        limiter: Arc::new(MemoryRateLimiter::default()),
        settings: upload_api::UploadApiSettings {
            upload: UploadSettings::from_env(&env).unwrap(),
            create_per_minute: 100_000,
            webhooks: AddressPolicy { allow_local: true },
        },
    };
    let ingest = ingest::Ingest {
        jobs: jobs.clone(),
        blobs: blobs.clone(),
        queue: queue.clone(),
        events: events.clone(),
        limits: UploadSettings::from_env(&env).unwrap().limits,
    };
    let receipt = ocr_shared::engines::upstage::parse_response(RECEIPT.as_bytes()).unwrap();
    let worker = ocr_worker::Worker {
        parts: ocr_worker::Parts {
            jobs: jobs.clone(),
            blobs: blobs.clone(),
            queue: queue.clone(),
            events: events.clone(),
            engine: Arc::new(ScriptedOcr::new(receipt)),
            limiter: Arc::new(MemoryRateLimiter::default()),
            settings: ocr_worker::WorkerSettings {
                pages_per_call: ocr_worker::DEFAULT_PAGES_PER_CALL,
                max_attempts: 3,
                lease: Duration::from_secs(600),
                retry_base: Duration::from_secs(1),
                rate_limit_rps: 100_000,
                max_bytes_in_flight: ocr_worker::handler::DEFAULT_BYTES_IN_FLIGHT,
                review_below: ocr_worker::DEFAULT_LOW_CONFIDENCE,
            },
        },
        in_flight: ocr_worker::budget::ByteBudget::new(
            ocr_worker::handler::DEFAULT_BYTES_IN_FLIGHT,
        ),
        decoding: ocr_worker::budget::ByteBudget::new(ocr_worker::handler::DECODE_BUDGET),
    };
    let status = status_api::StatusApi {
        jobs: jobs.clone(),
        blobs: blobs.clone(),
        secrets: secrets.clone(),
        webhook_secret_id: SECRET_ID.into(),
    };
    let notifier = notifier::Notifier {
        jobs: jobs.clone(),
        blobs: blobs.clone(),
        queue: queue.clone(),
        secrets,
        secret_id: SECRET_ID.into(),
        resolver: Arc::new(SystemResolver),
        settings: notifier::NotifierSettings {
            max_attempts: 5,
            timeout: Duration::from_secs(5),
            retry_base: Duration::from_secs(30),
            policy: AddressPolicy { allow_local: true },
        },
    };
    Stack {
        jobs,
        blobs,
        events,
        upload,
        ingest,
        worker,
        status,
        notifier,
    }
}

/// One job through every handler; adds each handler's CPU time to `spent`.
async fn one_job(stack: &Stack, n: usize, webhook: &str, spent: &mut Spent) {
    let pdf = ocr_shared::pdf::sample_of(&[format!("영수증 {n} 합계 12,000원")]);
    let create = api_request(
        CREATE,
        "POST",
        "/v1/jobs",
        Some(json!({
            "filename": format!("receipt-{n}.pdf"),
            "content_type": "application/pdf",
            "size": pdf.len(),
            "webhook_url": webhook,
        })),
    );
    let started = thread_cpu();
    let response = upload_api::handle(create, &stack.upload).await.unwrap();
    spent.upload_api += thread_cpu() - started;
    assert_eq!(response.status(), 201, "{:?}", response.body());
    let job_id = JobId::parse(body_of(&response)["job_id"].as_str().unwrap()).unwrap();

    // The browser's upload to S3: not a handler.
    stack
        .blobs
        .put(&job_id.upload_key(), Bytes::from(pdf), "application/pdf")
        .await
        .unwrap();

    let started = thread_cpu();
    let outcome = stack
        .ingest
        .upload(&job_id, Timestamp::now())
        .await
        .unwrap();
    spent.ingest += thread_cpu() - started;
    assert!(
        matches!(outcome, ingest::Outcome::Queued { .. }),
        "{outcome:?}"
    );

    let event = sqs_event(json!({ "job_id": job_id }).to_string());
    let started = thread_cpu();
    let response = ocr_worker::handle(LambdaEvent::new(event, Context::default()), &stack.worker)
        .await
        .unwrap();
    spent.worker += thread_cpu() - started;
    assert!(response.batch_item_failures.is_empty());

    let path = format!("/v1/jobs/{job_id}");
    let get = api_request(GET, "GET", &path, None);
    let started = thread_cpu();
    let response = status_api::handle(get, &stack.status).await.unwrap();
    spent.status_api += thread_cpu() - started;
    assert_eq!(body_of(&response)["status"], "completed");

    let published = stack.events.published.lock().unwrap().pop().unwrap();
    let event = sqs_event(serde_json::to_string(&published).unwrap());
    let started = thread_cpu();
    let response = notifier::handle(LambdaEvent::new(event, Context::default()), &stack.notifier)
        .await
        .unwrap();
    spent.notifier += thread_cpu() - started;
    assert!(response.batch_item_failures.is_empty());
    let job = stack.jobs.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.webhook.is_some(), "the webhook was delivered");
}

fn main() {
    let webhook = receiver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stack = stack();
        let mut warm = Spent::default();
        for n in 0..WARM_UP {
            one_job(&stack, n, &webhook, &mut warm).await;
        }
        let mut spent = Spent::default();
        for n in WARM_UP..WARM_UP + JOBS {
            one_job(&stack, n, &webhook, &mut spent).await;
        }
        let per_job = |total: Duration| total.as_secs_f64() * 1e6 / JOBS as f64;
        println!(
            "CPU per job (thread CPU clock, {JOBS} one-page PDFs after {WARM_UP} to warm up; in-memory adapters, OCR answered at once):"
        );
        println!("  command: cargo bench -p ocr-tests --bench handler_cpu");
        let rows = [
            ("upload-api", "POST /v1/jobs", spent.upload_api),
            ("ingest", "check the upload, enqueue", spent.ingest),
            ("ocr-worker", "read, store result, complete", spent.worker),
            ("status-api", "GET /v1/jobs/{id}", spent.status_api),
            ("notifier", "sign and deliver the webhook", spent.notifier),
        ];
        let mut total = 0.0;
        for (handler, what, time) in rows {
            total += per_job(time);
            println!("  {handler:<11} {what:<30} {:>8.0} µs", per_job(time));
        }
        println!("  {:<42} {total:>8.0} µs", "all handlers");
    });
}
