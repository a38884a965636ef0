//! The OCR queue on SQS: sends, delayed sends and visibility changes.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use tracing::instrument;

use super::AwsCallError;
use crate::ports::{JobMessage, JobQueue, QueueError};

/// SQS's ceiling for a message's visibility timeout: 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// SQS's ceiling for a message's delivery delay: 15 minutes.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

pub struct SqsJobQueue {
    client: Client,
    queue_url: String,
}

impl SqsJobQueue {
    /// Over the queue `queue_url`, with a client of the shared SDK configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), queue_url)
    }

    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError> {
        self.send_later(message, Duration::ZERO).await
    }

    #[instrument(skip(self, message), fields(job_id = %message.job_id, delay_s = delay.as_secs()))]
    async fn send_later(&self, message: &JobMessage, delay: Duration) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).expect("a JobMessage always serialises");
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay.min(MAX_DELAY).as_secs() as i32)
            .send()
            .await
            .map_err(|e| QueueError::backend(AwsCallError::new("SendMessage", &e)))?;
        Ok(())
    }

    #[instrument(skip(self, receipt_handle))]
    async fn delay_redelivery(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let seconds = delay.min(MAX_VISIBILITY).as_secs() as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| QueueError::backend(AwsCallError::new("ChangeMessageVisibility", &e)))?;
        Ok(())
    }
}
