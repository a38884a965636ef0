//! The notifier: job events from SNS (through its own SQS queue) to the job's
//! webhook. It owns the delivery: the body (the event and the job's public
//! view, text capped), the per-owner HMAC signature, the address policy that
//! keeps requests out of private networks, the retries by message visibility
//! and the webhook state recorded on the job.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use ocr_shared::batch::{self, Delivery, process_batch};
use ocr_shared::domain::{Job, Timestamp, WebhookState, WebhookStatus, WebhookUrl, truncate_utf8};
use ocr_shared::metrics::{self, Metric};
use ocr_shared::ports::{BlobStore, JobEvent, JobQueue, JobStore, SecretSource, StoreError};
use ocr_shared::retry::retry_delay;
use ocr_shared::view::{JobView, RESULT_URL_TTL};
use ocr_shared::webhook::{
    AddressPolicy, Destination, EVENT_ID_HEADER, Resolver, SIGNATURE_HEADER, WebhookUrlError,
    owner_key, sign,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

/// Text in a webhook body is capped; the full text is behind `result_url`.
pub const MAX_WEBHOOK_TEXT_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifierSettings {
    /// Deliveries of one event before it is given up (and dead-lettered).
    pub max_attempts: u32,
    pub timeout: Duration,
    /// The first retry's delay; doubles with each receive.
    pub retry_base: Duration,
    pub policy: AddressPolicy,
}

pub struct Notifier {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// The notifier's own queue: retries wait there, by visibility.
    pub queue: Arc<dyn JobQueue>,
    pub secrets: Arc<dyn SecretSource>,
    pub secret_id: String,
    pub resolver: Arc<dyn Resolver>,
    pub settings: NotifierSettings,
}

/// Why an event goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryRetry {
    #[error("webhook not delivered: {0}")]
    Delivery(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the signing key could not be read: {0}")]
    Secret(String),
    #[error("the retry could not be scheduled: {0}")]
    Queue(String),
}

/// Entry point: every event of the batch concurrently; undelivered ones are reported by id.
pub async fn handle(
    event: LambdaEvent<SqsEvent>,
    notifier: &Notifier,
) -> Result<SqsBatchResponse, Error> {
    Ok(process_batch(&event.payload.records, |message| notifier.message(message)).await)
}

/// The job event in a message: raw (RawMessageDelivery) or inside an SNS envelope.
pub fn event_of(body: &str) -> Option<JobEvent> {
    let value: Value = serde_json::from_str(body).ok()?;
    let inner = match value.get("Message").and_then(Value::as_str) {
        Some(message) if value.get("Type").and_then(Value::as_str) == Some("Notification") => {
            serde_json::from_str(message).ok()?
        }
        _ => value,
    };
    serde_json::from_value(inner).ok()
}

/// Whether a failed delivery can succeed later.
enum Failure {
    /// The destination is not allowed or not a URL: no retry helps.
    Refused(WebhookUrlError),
    Transient(String),
}

impl Notifier {
    pub async fn message(&self, message: &SqsMessage) -> Result<(), DeliveryRetry> {
        let Some((event, delivery)) = batch::read(message, event_of) else {
            return Ok(());
        };
        self.event(&event, delivery)
            .instrument(info_span!("job", job_id = %event.job_id))
            .await
    }

    /// Delivers one event to its job's webhook; its receive count is the attempt.
    pub async fn event(
        &self,
        event: &JobEvent,
        delivery: Delivery<'_>,
    ) -> Result<(), DeliveryRetry> {
        let Some(job) = self.jobs.get(&event.job_id).await? else {
            info!("job deleted; nothing to notify");
            return Ok(());
        };
        let Some(url) = job.webhook_url().map(WebhookUrl::as_str) else {
            return Ok(());
        };
        // A job has one terminal event: once delivered, a repeat of it is a duplicate.
        if job
            .webhook
            .as_ref()
            .is_some_and(|webhook| webhook.state.status == WebhookStatus::Delivered)
        {
            info!("already delivered; duplicate event");
            return Ok(());
        }
        let body = self.body(event, &job).await?;
        let now = Timestamp::now();
        let signature = self.signature(&job, now, &body).await?;
        let delivered = self.deliver(url, &event.id, &signature, body).await;
        self.delivered(&job, delivered, delivery, now).await
    }

    /// The body's signature, with the job owner's key (derived from the
    /// deployment's secret) at `now`.
    async fn signature(
        &self,
        job: &Job,
        now: Timestamp,
        body: &[u8],
    ) -> Result<String, DeliveryRetry> {
        let secret = self
            .secrets
            .secret(&self.secret_id)
            .await
            .map_err(|e| DeliveryRetry::Secret(e.to_string()))?;
        let key = owner_key(secret.expose_secret().as_bytes(), &job.owner);
        Ok(sign(key.as_bytes(), now.as_epoch_seconds(), body))
    }

    /// Records how the delivery went; a transient failure comes back after
    /// the backoff, its last time at once so that the queue's redrive moves
    /// it to the DLQ.
    async fn delivered(
        &self,
        job: &Job,
        delivered: Result<(), Failure>,
        delivery: Delivery<'_>,
        now: Timestamp,
    ) -> Result<(), DeliveryRetry> {
        let attempt = delivery.receive_count;
        match delivered {
            Ok(()) => {
                info!(attempt, "webhook delivered");
                metrics::count(Metric::WebhooksDelivered);
                self.record(job, WebhookStatus::Delivered, attempt, None, Some(now))
                    .await
            }
            Err(Failure::Refused(error)) => {
                warn!(code = error.code(), "webhook destination refused");
                metrics::count(Metric::WebhooksFailed);
                self.record(
                    job,
                    WebhookStatus::Failed,
                    attempt,
                    Some(error.to_string()),
                    None,
                )
                .await
            }
            Err(Failure::Transient(error)) => {
                let last = attempt >= self.settings.max_attempts;
                let status = if last {
                    WebhookStatus::Failed
                } else {
                    WebhookStatus::Pending
                };
                warn!(attempt, last, %error, "webhook not delivered");
                if last {
                    metrics::count(Metric::WebhooksFailed);
                }
                self.record(job, status, attempt, Some(error.clone()), None)
                    .await?;
                let delay = if last {
                    Duration::ZERO
                } else {
                    retry_delay(self.settings.retry_base, attempt, None, &mut rand::rng())
                };
                self.queue
                    .delay_redelivery(delivery.receipt, delay)
                    .await
                    .map_err(|e| DeliveryRetry::Queue(e.to_string()))?;
                Err(DeliveryRetry::Delivery(error))
            }
        }
    }

    async fn record(
        &self,
        job: &Job,
        status: WebhookStatus,
        attempts: u32,
        last_error: Option<String>,
        delivered_at: Option<Timestamp>,
    ) -> Result<(), DeliveryRetry> {
        let state = WebhookState {
            status,
            attempts,
            last_error,
            delivered_at,
        };
        match self.jobs.record_webhook(&job.job_id, &state).await {
            Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The JSON body: the event and the job as the status API shows it, text capped.
    async fn body(&self, event: &JobEvent, job: &Job) -> Result<Vec<u8>, DeliveryRetry> {
        let result_url = match job.result_key() {
            Some(key) => self
                .blobs
                .presign_download(key, RESULT_URL_TTL)
                .await
                .ok()
                .map(|presigned| presigned.url),
            _ => None,
        };
        let mut view = JobView::full(job, Timestamp::now(), result_url);
        if let Some(text) = &view.text {
            let (capped, cut) = truncate_utf8(text, MAX_WEBHOOK_TEXT_BYTES);
            if cut {
                view.text = Some(capped);
                view.text_truncated = Some(true);
            }
        }
        let body = json!({
            "id": event.id,
            "type": event.event_type,
            "created_at": event.created_at.to_rfc3339(),
            "job": view,
        });
        Ok(serde_json::to_vec(&body).expect("a JSON value serialises"))
    }

    /// Resolves and checks the destination, then POSTs to the checked addresses only.
    async fn deliver(
        &self,
        url: &str,
        event_id: &str,
        signature: &str,
        body: Vec<u8>,
    ) -> Result<(), Failure> {
        let destination =
            match Destination::resolve(url, self.settings.policy, self.resolver.as_ref()).await {
                Ok(destination) => destination,
                Err(error @ WebhookUrlError::Unresolved { .. }) => {
                    return Err(Failure::Transient(error.to_string()));
                }
                Err(error) => return Err(Failure::Refused(error)),
            };
        // The client connects to the addresses just checked: no second lookup can redirect it.
        // It is made per delivery, but over the process's one TLS configuration.
        let client = ocr_shared::tls::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.timeout)
            .resolve_to_addrs(&destination.host, &destination.addresses)
            .no_proxy()
            .build()
            .map_err(|e| Failure::Transient(e.to_string()))?;
        let response = client
            .post(destination.url)
            .header("content-type", "application/json")
            .header("user-agent", "lambda-ocr-webhooks/1")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, event_id)
            .body(body)
            .send()
            .await
            .map_err(unsent)?;
        answer_of(response.status())
    }
}

/// Why a request got no answer, said without its URL, which may carry the
/// receiver's secrets (never in `last_error` or the logs).
fn unsent(error: reqwest::Error) -> Failure {
    Failure::Transient(if error.is_timeout() {
        "the receiver did not answer within 5 s".to_owned()
    } else if error.is_connect() {
        "the receiver could not be reached".to_owned()
    } else {
        let error = error.without_url();
        format!(
            "the request failed: {}",
            ocr_shared::telemetry::error_chain(&error)
        )
    })
}

/// What the receiver's answer means: a success, or a failure worth another try.
fn answer_of(status: reqwest::StatusCode) -> Result<(), Failure> {
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(Failure::Transient(format!(
            "the receiver answered {} (a redirect); redirects are not followed",
            status.as_u16()
        )))
    } else {
        Err(Failure::Transient(format!(
            "the receiver answered {}",
            status.as_u16()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQS: &str = include_str!("../../../events/sqs-notifier-batch.json");

    #[test]
    fn events_are_read_raw_or_from_an_sns_envelope() {
        let batch: SqsEvent = serde_json::from_str(SQS).unwrap();
        let bodies: Vec<&str> = batch
            .records
            .iter()
            .map(|record| record.body.as_deref().unwrap())
            .collect();
        let raw = event_of(bodies[0]).expect("raw delivery");
        assert_eq!(raw.job_id.as_str(), "6f9619ff-8b86-4011-b42d-00c04fc964ff");
        let enveloped = event_of(bodies[1]).expect("an SNS envelope");
        assert_eq!(
            enveloped.job_id.as_str(),
            "0b7a6f0e-2c55-4a7e-9d1a-3f0c0d1e2f3a"
        );
        let envelope =
            json!({"Type": "Notification", "MessageId": "m", "Message": bodies[0]}).to_string();
        assert_eq!(event_of(&envelope), Some(raw));
        assert_eq!(event_of("not json"), None);
        assert_eq!(event_of(r#"{"Type":"Notification","Message":"{}"}"#), None);
    }
}
