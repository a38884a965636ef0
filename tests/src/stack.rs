//! The whole pipeline on moto: the real handlers over the real AWS adapters,
//! S3 notifications delivered to ingest through SQS as in AWS, and the jobs
//! queue fed to the worker with Lambda's batch semantics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use ingest::{Ingest, Outcome};
use lambda_http::Body;
use lambda_runtime::{Context, LambdaEvent};
use notifier::{Notifier, NotifierSettings};
use ocr_shared::aws::{
    DynamoJobStore, DynamoRateLimiter, S3BlobStore, SecretsManagerSource, SnsEventPublisher,
    SqsJobQueue,
};
use ocr_shared::config::UploadSettings;
use ocr_shared::domain::{FileType, Job, JobId};
use ocr_shared::engines::{UpstageEngine, UpstageKeySource};
use ocr_shared::ports::JobStore;
use ocr_shared::upload_policy::UploadLimits;
use ocr_shared::webhook::{AddressPolicy, Resolver, SystemResolver};
use ocr_worker::{Worker, WorkerSettings};
use secrecy::SecretString;
use serde_json::{Value, json};
use status_api::StatusApi;
use upload_api::{UploadApi, UploadApiSettings};

use crate::fake_upstage::{API_KEY, FakeUpstage};
use crate::{resources, sdk_config};

const API_EVENT: &str = include_str!("../../events/apigw-create-job.json");

#[derive(Clone)]
pub struct StackOptions {
    pub max_attempts: u32,
    pub lease: Duration,
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
            upstage_timeout: Duration::from_secs(5),
            max_upload_bytes: 50 * 1024 * 1024,
            create_per_minute: 1000,
            webhook_attempts: 3,
            webhook_policy: AddressPolicy { allow_local: true },
            resolver: Arc::new(SystemResolver),
        }
    }
}

pub struct Stack {
    pub config: SdkConfig,
    pub jobs: Arc<DynamoJobStore>,
    pub blobs: Arc<S3BlobStore>,
    pub upload_api: UploadApi,
    pub ingest: Ingest,
    pub worker: Worker,
    pub status_api: StatusApi,
    pub notifier: Notifier,
    pub upstage: FakeUpstage,
    pub notifier_queue: String,
    pub notifier_dead_letters: String,
    pub webhook_secret: String,
    pub jobs_queue: String,
    pub dead_letters: String,
    pub uploads_queue: String,
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
        let table = resources::jobs_table(&config).await;
        let bucket = resources::bucket(&config).await;
        let topic = resources::topic(&config).await;

        // Jobs queue with a DLQ after more receives than attempts, as the template sets it.
        let (jobs_queue, dead_letters) =
            resources::queue_with_dead_letters(&config, "jobs", options.max_attempts + 2).await;

        // S3 → SQS notifications of new uploads: what invokes ingest in AWS.
        let uploads_queue = resources::queue(&config).await;
        ocr_cli::provision::notify_uploads(&config, &bucket, &uploads_queue)
            .await
            .expect("S3 notifies the uploads queue");
        let s3 = S3BlobStore::client(&config);

        // A queue on the topic, to see the events subscribers get.
        let events_queue = resources::queue(&config).await;
        resources::subscribe(&config, &topic, &events_queue).await;

        // The notifier's queue on the topic, with its own DLQ after the configured attempts.
        let (notifier_queue, notifier_dead_letters) =
            resources::queue_with_dead_letters(&config, "notifier", options.webhook_attempts).await;
        resources::subscribe(&config, &topic, &notifier_queue).await;
        let webhook_secret = "whsec_test_0123456789abcdef".to_owned();
        let secret_arn = resources::secret(&config, &webhook_secret).await;

        let upstage = FakeUpstage::start().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let jobs = Arc::new(DynamoJobStore::new(dynamodb.clone(), &table));
        let blobs = Arc::new(S3BlobStore::new(s3, &bucket));
        let limiter = Arc::new(DynamoRateLimiter::new(dynamodb, &table));
        let queue = Arc::new(SqsJobQueue::new(sqs.clone(), &jobs_queue));
        let events = Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&config),
            &topic,
        ));
        let mut upload =
            UploadSettings::from_env(&ocr_shared::config::Env::new(&EmptyEnv)).unwrap();
        upload.limits = UploadLimits {
            max_bytes: options.max_upload_bytes,
            allowed: FileType::ALL.to_vec(),
        };
        let engine = UpstageEngine::new(
            &upstage.url,
            "ocr",
            UpstageKeySource::Inline(SecretString::from(API_KEY)),
            options.upstage_timeout,
        )
        .unwrap();

        Self {
            upload_api: UploadApi {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                limiter: limiter.clone(),
                settings: UploadApiSettings {
                    upload: upload.clone(),
                    create_per_minute: options.create_per_minute,
                    webhooks: options.webhook_policy,
                },
            },
            ingest: Ingest {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                queue: queue.clone(),
                events: events.clone(),
                limits: upload.limits.clone(),
            },
            worker: Worker {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                queue,
                events,
                engine: Arc::new(engine),
                limiter,
                settings: WorkerSettings {
                    max_attempts: options.max_attempts,
                    lease: options.lease,
                    retry_base: Duration::ZERO,
                    rate_limit_rps: 1000,
                    max_bytes_in_flight: ocr_worker::handler::DEFAULT_BYTES_IN_FLIGHT,
                },
                in_flight: ocr_worker::budget::ByteBudget::new(
                    ocr_worker::handler::DEFAULT_BYTES_IN_FLIGHT,
                ),
            },
            status_api: StatusApi {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                secrets: Arc::new(SecretsManagerSource::new(
                    aws_sdk_secretsmanager::Client::new(&config),
                    Duration::from_secs(60),
                )),
                webhook_secret_id: secret_arn.clone(),
            },
            notifier: Notifier {
                jobs: jobs.clone(),
                blobs: blobs.clone(),
                queue: Arc::new(SqsJobQueue::new(sqs.clone(), &notifier_queue)),
                secrets: Arc::new(SecretsManagerSource::new(
                    aws_sdk_secretsmanager::Client::new(&config),
                    Duration::from_secs(60),
                )),
                secret_id: secret_arn,
                resolver: options.resolver.clone(),
                settings: NotifierSettings {
                    max_attempts: options.webhook_attempts,
                    timeout: Duration::from_secs(2),
                    retry_base: Duration::ZERO,
                    policy: options.webhook_policy,
                },
            },
            notifier_queue,
            notifier_dead_letters,
            webhook_secret,
            config,
            jobs,
            blobs,
            upstage,
            jobs_queue,
            dead_letters,
            uploads_queue,
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
            status_api::handle(request, &self.status_api).await
        } else {
            upload_api::handle(request, &self.upload_api).await
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

    /// Delivers every pending S3 notification to ingest; returns what it made of them.
    pub async fn pump_uploads(&self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        loop {
            let messages = self.receive(&self.uploads_queue, 0).await;
            if messages.is_empty() {
                return outcomes;
            }
            for message in messages {
                let payload: Value = serde_json::from_str(message.body().unwrap()).unwrap();
                let results = self.ingest.process(payload).await;
                if results.iter().all(Result::is_ok) {
                    self.delete(&self.uploads_queue, &message).await;
                }
                outcomes.extend(results.into_iter().filter_map(Result::ok));
            }
        }
    }

    /// One Lambda poll of the jobs queue: a batch of up to 10 to the worker;
    /// acknowledged messages are deleted, reported failures stay. Returns the batch size.
    pub async fn pump_jobs(&self) -> usize {
        self.poll(&self.jobs_queue, |event| async {
            ocr_worker::handle(LambdaEvent::new(event, Context::default()), &self.worker).await
        })
        .await
    }

    /// One Lambda poll of `url` with SQS event-source semantics: up to 10
    /// messages to the handler, acknowledged ones deleted, reported failures left
    /// to their visibility timeout. Returns the batch size.
    async fn poll<F, Fut>(&self, url: &str, handler: F) -> usize
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = Result<SqsBatchResponse, lambda_runtime::Error>>,
    {
        let messages = self.receive(url, 0).await;
        if messages.is_empty() {
            return 0;
        }
        let response = handler(ocr_cli::pumps::sqs_event(&messages, url))
            .await
            .expect("the consumers answer every batch");
        for message in &messages {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|failure| Some(failure.item_identifier.as_str()) == message.message_id());
            if !failed {
                self.delete(url, message).await;
            }
        }
        messages.len()
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
        self.poll(&self.notifier_queue, |event| async {
            notifier::handle(LambdaEvent::new(event, Context::default()), &self.notifier).await
        })
        .await
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
        self.receive(&self.notifier_dead_letters, 0)
            .await
            .iter()
            .map(|message| serde_json::from_str(message.body().unwrap()).unwrap())
            .collect()
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letter_count(&self) -> usize {
        self.receive(&self.dead_letters, 0).await.len()
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

/// No variables: every setting at its default.
struct EmptyEnv;

impl ocr_shared::config::EnvSource for EmptyEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}
