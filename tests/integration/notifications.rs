//! Job events to webhooks on moto: signed, retried by visibility, dead-lettered,
//! and never sent to an internal address.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use ocr_shared::domain::{FileType, Job, JobId, JobStatus, NewJob, Timestamp, WebhookStatus};
use ocr_shared::ports::{JobEvent, JobEventType, JobStore};
use ocr_shared::testing;
use ocr_shared::webhook::{AddressPolicy, Destination, Resolver, WebhookUrlError};
use ocr_tests::receiver::{Answer, Receiver, Tripwire};
use ocr_tests::stack::{Stack, StackOptions};
use serde_json::{Value, json};
use sha2::Sha256;

const PNG: &[u8] = include_bytes!("../../shared/tests/fixtures/headers/sample.png");
const SETTLE: Duration = Duration::from_secs(30);

/// The receiver's side, written from the README's description alone:
/// header `t=<ts>,v1=<hex>`, HMAC-SHA256 over "<ts>.<body>".
fn receiver_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    let fields: HashMap<&str, &str> = header
        .split(',')
        .filter_map(|part| part.split_once('='))
        .collect();
    let (Some(ts), Some(v1)) = (fields.get("t"), fields.get("v1")) else {
        return false;
    };
    let Ok(expected) = hex::decode(v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Opens a job with `webhook_url`, uploads, reads it, and delivers its event.
async fn completed_with_webhook(stack: &Stack, webhook_url: &str) -> JobId {
    let id = uploaded_with_webhook(stack, webhook_url).await;
    assert_eq!(stack.settle(&id, SETTLE).await.status, JobStatus::Completed);
    stack.drain_notifications(SETTLE).await;
    id
}

/// Opens a job with `webhook_url` and uploads its document.
async fn uploaded_with_webhook(stack: &Stack, webhook_url: &str) -> JobId {
    use sha2::Digest as _;
    let body = json!({
        "filename": "영수증.png", "content_type": "image/png", "size": PNG.len(),
        "sha256": hex::encode(Sha256::digest(PNG)), "webhook_url": webhook_url,
    });
    let created = stack
        .call("POST", "/v1/jobs", Some("alice"), Some(body), &[])
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(stack.upload(&created.body, PNG.to_vec()).await, 200);
    JobId::parse(created.body["job_id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_webhook_gets_one_signed_post_per_event() {
    let stack = Stack::start(StackOptions::default()).await;
    let receiver = Receiver::start().await;
    let id = completed_with_webhook(&stack, &receiver.url).await;

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let post = &received[0];
    let signature = post.headers["lambda-ocr-signature"].to_str().unwrap();
    // Signed with alice's own key, as she reads it from the API, and nobody else's.
    let alice = stack
        .call("GET", "/v1/webhooks/key", Some("alice"), None, &[])
        .await;
    assert_eq!(alice.status, 200, "{:?}", alice.body);
    let alice_key = alice.body["key"].as_str().unwrap().to_owned();
    let bob = stack
        .call("GET", "/v1/webhooks/key", Some("bob"), None, &[])
        .await;
    let bob_key = bob.body["key"].as_str().unwrap();
    assert!(receiver_verifies(&alice_key, signature, &post.body));
    assert!(
        !receiver_verifies(bob_key, signature, &post.body),
        "bob cannot forge alice's events"
    );
    assert!(
        !receiver_verifies(&stack.webhook_secret, signature, &post.body),
        "the master secret itself signs nothing"
    );
    let tampered = String::from_utf8(post.body.to_vec())
        .unwrap()
        .replace("completed", "failed");
    assert!(!receiver_verifies(
        &alice_key,
        signature,
        tampered.as_bytes()
    ));
    assert!(!receiver_verifies("another-secret", signature, &post.body));

    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        post.headers["lambda-ocr-event-id"].to_str().unwrap(),
        body["id"]
    );
    assert_eq!(post.headers["content-type"], "application/json");
    assert_eq!(body["type"], "job.completed");
    assert_eq!(body["job"]["job_id"], id.as_str());
    assert_eq!(body["job"]["status"], "completed");
    assert_eq!(body["job"]["document_type"], "receipt");
    assert!(body["job"]["text"].as_str().unwrap().contains("영수증"));
    assert_eq!(body["job"]["text_truncated"], false);
    let full: Value = reqwest::get(body["job"]["result_url"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["job_id"], id.as_str());

    let status = stack
        .call("GET", &format!("/v1/jobs/{id}"), Some("alice"), None, &[])
        .await;
    assert_eq!(status.body["webhook"]["status"], "delivered");
    assert_eq!(status.body["webhook"]["attempts"], 1);
    assert!(status.body["webhook"]["delivered_at"].is_string());
}

#[tokio::test]
async fn the_same_job_message_five_times_reads_once_and_posts_one_webhook() {
    use ocr_shared::ports::{JobMessage, JobQueue};
    let stack = Stack::start(StackOptions::default()).await;
    let receiver = Receiver::start().await;
    let id = uploaded_with_webhook(&stack, &receiver.url).await;
    // Ingest sends the job's message; four more copies join it, as SQS's
    // at-least-once delivery and a repeated S3 event may make them.
    stack.pump_uploads().await;
    let queue =
        ocr_shared::aws::SqsJobQueue::connect(&stack.config, stack.resources.jobs_queue.clone());
    for _ in 0..4 {
        queue
            .send(&JobMessage {
                job_id: id.clone(),
                wake: 0,
            })
            .await
            .unwrap();
    }
    let job = stack.settle(&id, SETTLE).await;
    while stack.pump_jobs().await > 0 {}
    stack.drain_notifications(SETTLE).await;

    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(stack.upstage.calls().len(), 1, "one OCR call");
    assert_eq!(stack.jobs.get(&id).await.unwrap().unwrap().attempts, 1);
    assert_eq!(receiver.received().len(), 1, "one webhook");
    let completed = stack
        .events()
        .await
        .into_iter()
        .filter(|event| event["job_id"] == id.as_str())
        .count();
    assert_eq!(completed, 1, "one job event");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_answers() {
    let stack = Stack::start(StackOptions::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer([Answer::Status(500), Answer::Status(500)]);
    let id = completed_with_webhook(&stack, &receiver.url).await;
    assert_eq!(receiver.received().len(), 3);
    let job = stack.jobs.get(&id).await.unwrap().unwrap();
    let webhook = job.webhook.unwrap().state;
    assert_eq!(
        (webhook.status.as_str(), webhook.attempts),
        ("delivered", 3)
    );
    assert!(stack.notifier_dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_receiver_that_is_down_fails_the_webhook_not_the_job_and_the_event_is_dead_lettered() {
    let stack = Stack::start(StackOptions::default()).await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let id = completed_with_webhook(&stack, &format!("http://127.0.0.1:{closed_port}/hook")).await;
    let job = stack.jobs.get(&id).await.unwrap().unwrap();
    assert_eq!(
        job.status,
        JobStatus::Completed,
        "a webhook never changes the OCR status"
    );
    let webhook = job.webhook.unwrap().state;
    assert_eq!((webhook.status.as_str(), webhook.attempts), ("failed", 3));
    assert!(webhook.last_error.unwrap().contains("could not be reached"));
    let dead = stack.notifier_dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["job_id"], id.as_str());
}

/// Names this test controls: what they resolve to at delivery time.
struct Table(HashMap<String, Vec<IpAddr>>);

#[async_trait]
impl Resolver for Table {
    async fn lookup(&self, host: &str, _: u16) -> io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in the test's table"))
    }
}

#[tokio::test]
async fn internal_destinations_are_refused_with_a_reason_and_never_connected() {
    let tripwire = Tripwire::start().await;
    let port = tripwire.port;
    let table = Table(HashMap::from([
        (
            "hooks.example.test".to_owned(),
            vec!["127.0.0.1".parse().unwrap()],
        ),
        (
            "localhost".to_owned(),
            vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        ),
    ]));
    let strict = AddressPolicy { allow_local: false };
    let stack = Stack::start(StackOptions {
        webhook_policy: strict,
        resolver: Arc::new(table),
        ..StackOptions::default()
    })
    .await;

    let literal = [
        format!("https://127.0.0.1:{port}/"),
        format!("https://localhost:{port}/"),
        format!("https://0.0.0.0:{port}/"),
        "https://10.0.0.1/".to_owned(),
        "https://172.16.0.1/".to_owned(),
        "https://192.168.1.1/".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://100.64.0.1/".to_owned(),
        format!("https://[::1]:{port}/"),
        "https://[fd00:ec2::254]/".to_owned(),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
        format!("https://2130706433:{port}/"),
        format!("https://0x7f000001:{port}/"),
    ];
    let mut matrix = Vec::new();
    for url in &literal {
        // Refused before any connection can exist: checked first, so a wrong
        // answer stops the test before the notifier could reach out.
        let checked =
            Destination::resolve(url, strict, stack.functions.notifier.resolver.as_ref()).await;
        let reason = match checked {
            Err(error @ WebhookUrlError::Blocked { .. }) => error.to_string(),
            other => panic!("{url} was not refused as internal: {other:?}"),
        };
        // At creation the API refuses the literal ones too.
        let body = json!({"filename": "a.png", "content_type": "image/png", "size": 10, "webhook_url": url});
        let created = stack
            .call("POST", "/v1/jobs", Some("alice"), Some(body), &[])
            .await;
        let at_creation = created.status;
        // At delivery (a record written before the rule, or by hand) the notifier refuses it as well.
        let state = deliver_directly(&stack, url).await;
        matrix.push((url.clone(), at_creation, state.0, state.1, reason));
    }

    // A name that was public when the job was created but resolves to loopback at delivery.
    let renamed = format!("https://hooks.example.test:{port}/hook");
    let body = json!({"filename": "a.png", "content_type": "image/png", "size": 10, "webhook_url": renamed});
    let created = stack
        .call("POST", "/v1/jobs", Some("alice"), Some(body), &[])
        .await;
    assert_eq!(created.status, 201, "names are not resolved at creation");
    let (status, error) = deliver_directly(&stack, &renamed).await;
    matrix.push((renamed, created.status, status, error, String::new()));

    for (url, at_creation, status, error, reason) in &matrix {
        println!("{url:48} creation {at_creation}  delivery {status}: {error}");
        assert_eq!(*status, WebhookStatus::Failed, "{url}");
        assert!(
            error.contains("public addresses"),
            "{url}: {error} ({reason})"
        );
    }
    for (url, at_creation, ..) in &matrix[..literal.len()] {
        if url.contains("localhost") {
            // A name: the API cannot know where it points until delivery.
            continue;
        }
        assert_eq!(*at_creation, 400, "{url}");
    }
    assert_eq!(
        tripwire.connections(),
        0,
        "no delivery reached the listener"
    );
}

/// A completed job with `webhook_url` written straight to the table, and its
/// event delivered once: the delivery's own result, and the job after it.
async fn deliver_once(stack: &Stack, webhook_url: &str) -> (Result<(), String>, Job) {
    let request = NewJob {
        // As a record written by hand reads back: no check made at creation.
        webhook_url: Some(serde_json::from_value(json!(webhook_url)).unwrap()),
        ..testing::request("alice", "a.png", FileType::Png, 10)
    };
    let mut job = testing::open(request, Timestamp::now());
    job.status = JobStatus::Completed;
    stack.jobs.create(&job).await.unwrap();
    let event = JobEvent {
        id: "evt-1".into(),
        event_type: JobEventType::Completed,
        created_at: Timestamp::now(),
        job_id: job.job_id.clone(),
        owner: job.owner.clone(),
        status: JobStatus::Completed,
    };
    let delivered = stack
        .functions
        .notifier
        .event(
            &event,
            ocr_shared::batch::Delivery {
                receive_count: 1,
                receipt: "receipt",
            },
        )
        .await
        .map_err(|error| error.to_string());
    (
        delivered,
        stack.jobs.get(&job.job_id).await.unwrap().unwrap(),
    )
}

/// A delivery that must end at once (delivered or refused): its webhook state.
async fn deliver_directly(stack: &Stack, webhook_url: &str) -> (WebhookStatus, String) {
    let (delivered, job) = deliver_once(stack, webhook_url).await;
    if let Err(error) = delivered {
        panic!("{webhook_url}: {error}");
    }
    let state = job.webhook.unwrap().state;
    (state.status, state.last_error.unwrap_or_default())
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let tripwire = Tripwire::start().await;
    let stack = Stack::start(StackOptions::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer(std::iter::repeat_n(
        Answer::Redirect(format!("http://127.0.0.1:{}/", tripwire.port)),
        5,
    ));
    let id = completed_with_webhook(&stack, &receiver.url).await;
    let webhook = stack
        .jobs
        .get(&id)
        .await
        .unwrap()
        .unwrap()
        .webhook
        .unwrap()
        .state;
    assert_eq!(webhook.status, WebhookStatus::Failed);
    assert!(
        webhook
            .last_error
            .unwrap()
            .contains("redirects are not followed")
    );
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(tripwire.connections(), 0);
}

#[tokio::test]
async fn a_failed_delivery_never_records_or_logs_the_webhook_url() {
    // A receiver that answers with something that is not HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        }
    });
    let stack = Stack::start(StackOptions::default()).await;
    let secret_path = "/hooks/tenant-token-s3cr3t";
    let url = format!("http://127.0.0.1:{port}{secret_path}?sig=abc123");
    let (delivered, job) = deliver_once(&stack, &url).await;
    let logged = delivered.err().unwrap_or_default();
    let state = job.webhook.unwrap().state;
    let recorded = state.last_error.unwrap_or_default();
    assert!(recorded.contains("the request failed"), "{recorded}");
    for text in [&recorded, &logged] {
        assert!(!text.contains("s3cr3t"), "the URL leaked: {text}");
        assert!(!text.contains("abc123"), "the URL leaked: {text}");
    }
}
