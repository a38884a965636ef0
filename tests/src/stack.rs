//! The whole pipeline on moto, wired as `ocr dev` wires it: the stack's
//! resources from `ocr_cli::provision`, the functions from
//! `ocr_cli::functions::Functions::build` over a deployed function's
//! environment, and the queues fed to them by `ocr_cli::pumps` (S3
//! notifications to ingest, Lambda's SQS batch semantics for the worker and
//! the notifier). Tests drive the pumps one poll at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use ingest::Outcome;
use lambda_http::Body;
use lambda_runtime::{Context, LambdaEvent};
use ocr_cli::functions::{FunctionName, Functions, environment};
use ocr_cli::provision::{self, QueueSettings, Resources};
use ocr_cli::pumps::Pump;
use ocr_shared::aws::{DynamoJobStore, S3BlobStore};
use ocr_shared::config::vars;
use ocr_shared::domain::{Job, JobId};
use ocr_shared::ports::JobStore;
use ocr_shared::webhook::{AddressPolicy, Resolver, SystemResolver};
use serde_json::{Value, json};

use crate::fake_upstage::{API_KEY, FakeUpstage};
use crate::{resources, sdk_config, unique_name};

const API_EVENT: &str = include_str!("../../events/apigw-create-job.json");

#[derive(Clone)]
pub struct StackOptions {
    pub max_attempts: u32,
    pub lease: Duration,
    /// The jobs queue's visibility timeout: when a failed delivery comes back.
    pub visibility: Duration,
    pub upstage_timeout: Duration,
    pub max_upload_bytes: u64,
    pub create_per_minute: u32,
    pub webhook_attempts: u32,
    pub webhook_policy: AddressPolicy,
    pub resolver: Arc<dyn Resolver>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            lease: Duration::from_secs(60),
            visibility: Duration::from_secs(30),
            upstage_timeout: Duration::from_secs(5),
            max_upload_bytes: 50 * 1024 * 1024,
            create_per_minute: 1000,
            webhook_attempts: 3,
            webhook_policy: AddressPolicy { allow_local: true },
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl StackOptions {
    /// The variables a deployed function would get for these options.
    fn variables(&self, upstage_url: &str) -> Vec<(String, String)> {
        [
            (vars::UPSTAGE_API_KEY, API_KEY.to_owned()),
            (vars::UPSTAGE_BASE_URL, upstage_url.to_owned()),
            (vars::UPSTAGE_MODEL, "ocr".to_owned()),
            (
                vars::UPSTAGE_TIMEOUT_SECONDS,
                self.upstage_timeout.as_secs().to_string(),
            ),
            (vars::OCR_MAX_ATTEMPTS, self.max_attempts.to_string()),
            (vars::OCR_LEASE_SECONDS, self.lease.as_secs().to_string()),
            (vars::OCR_RETRY_BASE_SECONDS, "0".to_owned()),
            (vars::OCR_RATE_LIMIT_RPS, "1000".to_owned()),
            (vars::MAX_UPLOAD_BYTES, self.max_upload_bytes.to_string()),
            (
                vars::JOB_CREATE_RATE_PER_MINUTE,
                self.create_per_minute.to_string(),
            ),
            (
                vars::WEBHOOK_MAX_ATTEMPTS,
                self.webhook_attempts.to_string(),
            ),
            (
                vars::WEBHOOK_ALLOW_LOCAL,
                self.webhook_policy.allow_local.to_string(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

pub struct Stack {
    pub config: SdkConfig,
    pub resources: Resources,
    pub functions: Functions,
    /// The functions' table and bucket, for the tests' own reads and writes.
    pub jobs: Arc<DynamoJobStore>,
    pub blobs: Arc<S3BlobStore>,
    pub upstage: FakeUpstage,
    /// The master webhook secret the stack was provisioned with.
    pub webhook_secret: String,
    /// A queue subscribed to the events topic: what any subscriber gets.
    pub events_queue: String,
    sqs: aws_sdk_sqs::Client,
}

/// An HTTP answer as the client sees it.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Self {
        let config = sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queues = QueueSettings {
            // More receives than attempts, as the template's Rules require.
            jobs_max_receives: options.max_attempts + 2,
            notifier_max_receives: options.webhook_attempts,
            visibility_seconds: options.visibility.as_secs() as u32,
        };
        let resources = provision::stack(&config, &unique_name("stack"), queues, &[])
            .await
            .expect("the stack's resources are created");
        let events_queue = resources::queue(&config).await;
        resources::subscribe(&config, &resources.topic_arn, &events_queue).await;
        let webhook_secret = aws_sdk_secretsmanager::Client::new(&config)
            .get_secret_value()
            .secret_id(&resources.webhook_secret_arn)
            .send()
            .await
            .expect("the webhook secret is readable")
            .secret_string
            .unwrap_or_default();

        let upstage = FakeUpstage::start().await;
        let endpoint = crate::moto().endpoint().to_owned();
        let variables = environment(options.variables(&upstage.url), &resources, &endpoint);
        let mut functions =
            Functions::build(&config, &variables).expect("the functions read their settings");
        // What an environment variable cannot say: a resolver that maps test
        // names, and webhook retries without waiting.
        functions.notifier.resolver = options.resolver.clone();
        functions.notifier.settings.retry_base = Duration::ZERO;
        functions.notifier.settings.timeout = Duration::from_secs(2);

        Self {
            jobs: Arc::new(DynamoJobStore::connect(&config, resources.table.clone())),
            blobs: Arc::new(S3BlobStore::connect(&config, resources.bucket.clone())),
            config,
            resources,
            functions,
            upstage,
            webhook_secret,
            events_queue,
            sqs,
        }
    }

    /// An API request as API Gateway would deliver it, to the function that serves its route.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        owner: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> ApiResponse {
        let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut event: Value = serde_json::from_str(API_EVENT).unwrap();
        event["routeKey"] = json!(format!("{method} {raw_path}"));
        event["rawPath"] = json!(raw_path);
        event["rawQueryString"] = json!(query);
        if !query.is_empty() {
            let params: HashMap<String, String> = query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            event["queryStringParameters"] = json!(params);
        }
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(raw_path);
        match owner {
            Some(owner) => {
                event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(owner)
            }
            None => {
                event["requestContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorizer");
            }
        }
        match body {
            Some(body) => event["body"] = json!(body.to_string()),
            None => {
                event.as_object_mut().unwrap().remove("body");
            }
        }
        for (name, value) in headers {
            event["headers"][*name] = json!(value);
        }
        let request =
            lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
        let response = if method == "GET" {
            status_api::handle(request, &self.functions.status_api).await
        } else {
            upload_api::handle(request, &self.functions.upload_api).await
        }
        .expect("the handlers answer every request");
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Empty => Value::Null,
            Body::Text(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            Body::Binary(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        ApiResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    /// `POST /v1/jobs` for `bytes`, declaring `content_type` and the real size and hash.
    pub async fn create(
        &self,
        owner: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> ApiResponse {
        use sha2::Digest as _;
        let body = json!({
            "filename": filename,
            "content_type": content_type,
            "size": bytes.len(),
            "sha256": hex::encode(sha2::Sha256::digest(bytes)),
        });
        self.call("POST", "/v1/jobs", Some(owner), Some(body), &[])
            .await
    }

    /// The client's PUT to the presigned URL of a created job.
    pub async fn upload(&self, created: &Value, bytes: Vec<u8>) -> u16 {
        let upload = &created["upload"];
        let mut request = reqwest::Client::new()
            .put(upload["url"].as_str().unwrap())
            .body(bytes);
        for (name, value) in upload["headers"].as_object().unwrap() {
            if name != "content-length" {
                request = request.header(name, value.as_str().unwrap());
            }
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn receive(&self, url: &str, wait: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    async fn delete(&self, url: &str, message: &aws_sdk_sqs::types::Message) {
        self.sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(message.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }

    fn pump(&self, url: &str, function: FunctionName) -> Pump {
        Pump::new(self.sqs.clone(), url, function)
    }

    /// Delivers every pending S3 notification to ingest; returns what it made of them.
    pub async fn pump_uploads(&self) -> Vec<Outcome> {
        let pump = self.pump(&self.resources.uploads_queue, FunctionName::Ingest);
        let mut outcomes = Vec::new();
        loop {
            let polled = pump
                .uploads(0, &self.functions)
                .await
                .expect("the uploads queue answers");
            if polled.received == 0 {
                return outcomes;
            }
            outcomes.extend(polled.outcomes);
        }
    }

    /// One Lambda poll of the jobs queue: a batch of up to 10 to the worker;
    /// acknowledged messages are deleted, reported failures stay. Returns the batch size.
    pub async fn pump_jobs(&self) -> usize {
        self.pump(&self.resources.jobs_queue, FunctionName::OcrWorker)
            .batch(0, |event| {
                ocr_worker::handle(
                    LambdaEvent::new(event, Context::default()),
                    &self.functions.worker,
                )
            })
            .await
            .expect("the jobs queue answers")
    }

    /// One invocation of ingest with `event`, as S3 invokes it.
    pub async fn invoke_ingest(&self, event: Value) -> Result<Vec<Outcome>, ingest::IngestError> {
        let event = LambdaEvent::new(event, Context::default());
        ingest::handle(event, &self.functions.ingest).await
    }

    /// Runs ingest and the worker until the job is finished, or panics after `timeout`.
    pub async fn settle(&self, job_id: &JobId, timeout: Duration) -> Job {
        let started = Instant::now();
        loop {
            self.pump_uploads().await;
            self.pump_jobs().await;
            let job = self
                .jobs
                .get(job_id)
                .await
                .unwrap()
                .expect("the job exists");
            if job.status.is_final() {
                return job;
            }
            assert!(
                started.elapsed() < timeout,
                "job did not finish in {timeout:?}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One Lambda poll of the notifier's queue; returns the batch size.
    pub async fn pump_notifications(&self) -> usize {
        self.pump(&self.resources.notifier_queue, FunctionName::Notifier)
            .batch(0, |event| {
                notifier::handle(
                    LambdaEvent::new(event, Context::default()),
                    &self.functions.notifier,
                )
            })
            .await
            .expect("the notifier's queue answers")
    }

    /// Runs the notifier until its queue is empty (retries included), or `timeout`.
    pub async fn drain_notifications(&self, timeout: Duration) {
        let started = Instant::now();
        let mut idle = 0;
        while started.elapsed() < timeout && idle < 3 {
            if self.pump_notifications().await == 0 {
                idle += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                idle = 0;
            }
        }
    }

    /// Events in the notifier's dead-letter queue.
    pub async fn notifier_dead_letters(&self) -> Vec<Value> {
        self.receive(&self.resources.notifier_dead_letters, 0)
            .await
            .iter()
            .map(|message| serde_json::from_str(message.body().unwrap()).unwrap())
            .collect()
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letter_count(&self) -> usize {
        self.receive(&self.resources.jobs_dead_letters, 0)
            .await
            .len()
    }

    /// Job events delivered to the topic's subscriber so far.
    pub async fn events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let messages = self.receive(&self.events_queue, 0).await;
            if messages.is_empty() {
                return events;
            }
            for message in messages {
                events.push(serde_json::from_str(message.body().unwrap()).unwrap());
                self.delete(&self.events_queue, &message).await;
            }
        }
    }
}
