//! What AWS does between the functions, done against the local queues:
//! S3's notifications of uploads to ingest, and Lambda's SQS event source
//! for the worker and the notifier (batches of up to 10, acknowledged messages
//! deleted, reported failures left to their visibility timeout, the queue's
//! redrive policy moving a message to its DLQ after its last receive).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::functions::{FunctionName, Functions};
use crate::provision::Resources;

/// Worker batches in flight at once: the template's `MaximumConcurrency` default.
const WORKER_CONCURRENCY: usize = 2;
/// How long one receive waits for a message.
const LONG_POLL_SECONDS: i32 = 1;

/// The ARN of a queue from its URL (`…/{account}/{name}`).
fn queue_arn(queue_url: &str) -> String {
    let mut segments = queue_url.trim_end_matches('/').rsplit('/');
    let name = segments.next().unwrap_or_default();
    let account = segments.next().unwrap_or_default();
    format!("arn:aws:sqs:{}:{account}:{name}", crate::moto::REGION)
}

/// Received messages of the queue at `queue_url` as Lambda's SQS event source
/// hands them to a function.
pub fn sqs_event(messages: &[Message], queue_url: &str) -> SqsEvent {
    let queue_arn = queue_arn(queue_url);
    let records: Vec<Value> = messages
        .iter()
        .map(|message| {
            let attributes: HashMap<String, String> = message
                .attributes()
                .map(|attributes| {
                    attributes
                        .iter()
                        .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": message.message_id(),
                "receiptHandle": message.receipt_handle(),
                "body": message.body(),
                "md5OfBody": message.md5_of_body(),
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": &queue_arn,
                "awsRegion": crate::moto::REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event is well-formed")
}

/// One queue feeding one function.
pub struct Pump {
    sqs: Client,
    url: String,
    /// The function it feeds, for the invocation tally.
    function: FunctionName,
}

/// A queue that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the queue {url} could not be read: {detail}")]
pub struct PumpError {
    pub url: String,
    pub detail: String,
}

impl Pump {
    pub fn new(sqs: Client, url: &str, function: FunctionName) -> Self {
        Self {
            sqs,
            url: url.to_owned(),
            function,
        }
    }

    async fn receive(&self, wait: i32) -> Result<Vec<Message>, PumpError> {
        self.sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map(|output| output.messages.unwrap_or_default())
            .map_err(|error| PumpError {
                url: self.url.clone(),
                detail: ocr_shared::telemetry::error_chain(&error),
            })
    }

    async fn delete(&self, message: &Message) {
        let Some(handle) = message.receipt_handle() else {
            return;
        };
        if let Err(error) = self
            .sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(handle)
            .send()
            .await
        {
            warn!(error = %ocr_shared::telemetry::error_chain(&error), "a handled message could not be deleted; it will come back");
        }
    }

    /// One poll: a batch to `handler`; returns how many messages it held.
    pub async fn batch<F, Fut>(&self, wait: i32, handler: F) -> Result<usize, PumpError>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = Result<SqsBatchResponse, lambda_runtime::Error>>,
    {
        let messages = self.receive(wait).await?;
        if messages.is_empty() {
            return Ok(0);
        }
        // A function error leaves the whole batch to its visibility timeout.
        let invocation = handler(sqs_event(&messages, &self.url));
        let answer = crate::invocations::timed(self.function, messages.len(), invocation).await;
        let failed: Vec<String> = match answer {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|failure| failure.item_identifier)
                .collect(),
            Err(error) => {
                warn!(error = %error, "the function failed the batch");
                return Ok(messages.len());
            }
        };
        for message in &messages {
            if !failed
                .iter()
                .any(|id| Some(id.as_str()) == message.message_id())
            {
                self.delete(message).await;
            }
        }
        Ok(messages.len())
    }

    /// One poll of S3 notifications: each message is one asynchronous
    /// invocation of ingest; an error leaves it for a retry (S3's, in AWS).
    pub async fn uploads(&self, wait: i32, functions: &Functions) -> Result<Uploads, PumpError> {
        let messages = self.receive(wait).await?;
        let mut outcomes = Vec::new();
        for message in &messages {
            let payload: Value = match message.body().map(serde_json::from_str) {
                Some(Ok(payload)) => payload,
                _ => {
                    warn!("an S3 notification that is not JSON was dropped");
                    self.delete(message).await;
                    continue;
                }
            };
            let event = LambdaEvent::new(payload, Context::default());
            let invocation = ingest::handle(event, &functions.ingest);
            match crate::invocations::timed(FunctionName::Ingest, 1, invocation).await {
                Ok(handled) => {
                    for outcome in &handled {
                        info!(outcome = %serde_json::to_string(outcome).unwrap_or_default(), "ingest");
                    }
                    outcomes.extend(handled);
                    self.delete(message).await;
                }
                Err(error) => warn!(error = %error, "ingest failed; S3 will retry"),
            }
        }
        Ok(Uploads {
            received: messages.len(),
            outcomes,
        })
    }
}

/// What one poll of the uploads queue did.
pub struct Uploads {
    /// S3 notifications received.
    pub received: usize,
    /// What ingest made of the records it handled.
    pub outcomes: Vec<ingest::Outcome>,
}

/// How often `ocr dev` runs the sweeper (the template schedules it every 5 minutes).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs every pump until the task is aborted: the worker with as many batches
/// in flight as the template's default `MaximumConcurrency`, the others one.
pub async fn run(sqs: Client, resources: Resources, functions: Arc<Functions>) {
    let uploads = async {
        let pump = Pump::new(sqs.clone(), &resources.uploads_queue, FunctionName::Ingest);
        loop {
            let polled = pump.uploads(LONG_POLL_SECONDS, &functions).await;
            report(polled.map(|uploads| uploads.received)).await;
        }
    };
    let jobs = (0..WORKER_CONCURRENCY).map(|_| async {
        let pump = Pump::new(sqs.clone(), &resources.jobs_queue, FunctionName::OcrWorker);
        loop {
            let result = pump
                .batch(LONG_POLL_SECONDS, |event| {
                    ocr_worker::handle(
                        LambdaEvent::new(event, Context::default()),
                        &functions.worker,
                    )
                })
                .await;
            report(result).await;
        }
    });
    let notifications = async {
        let pump = Pump::new(
            sqs.clone(),
            &resources.notifier_queue,
            FunctionName::Notifier,
        );
        loop {
            let result = pump
                .batch(LONG_POLL_SECONDS, |event| {
                    notifier::handle(
                        LambdaEvent::new(event, Context::default()),
                        &functions.notifier,
                    )
                })
                .await;
            report(result).await;
        }
    };
    tokio::join!(
        uploads,
        futures::future::join_all(jobs),
        notifications,
        sweeps(&functions)
    );
}

/// EventBridge's schedule, here a timer: the sweeper runs once a minute.
async fn sweeps(functions: &Functions) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        let event = LambdaEvent::new(serde_json::json!({}), Context::default());
        let invocation = sweeper::handle(event, &functions.sweeper);
        if let Err(error) = crate::invocations::timed(FunctionName::Sweeper, 1, invocation).await {
            tracing::warn!(%error, "sweep");
        }
    }
}

/// A queue that cannot be read is logged, and tried again a second later.
async fn report(result: Result<usize, PumpError>) {
    if let Err(error) = result {
        warn!(error = %error, "a queue could not be read");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
