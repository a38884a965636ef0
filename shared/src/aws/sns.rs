//! Job events on SNS, with the event type as a message attribute so that
//! subscribers can filter.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use tracing::instrument;

use super::AwsCallError;
use crate::ports::{EventPublisher, JobEvent, PublishError};

pub struct SnsEventPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsEventPublisher {
    /// Over the topic `topic_arn`, with a client of the shared SDK configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), topic_arn)
    }

    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl EventPublisher for SnsEventPublisher {
    #[instrument(skip(self, event), fields(job_id = %event.job_id, event_type = event.event_type.as_str()))]
    async fn publish(&self, event: &JobEvent) -> Result<(), PublishError> {
        let body = serde_json::to_string(event).expect("a JobEvent always serialises");
        // The type as a message attribute lets subscribers filter without parsing the body.
        let event_type = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(event.event_type.as_str())
            .build()
            .map_err(|e| PublishError::backend(AwsCallError::new("Publish", &e)))?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            .message_attributes("type", event_type)
            .send()
            .await
            .map_err(|e| PublishError::backend(AwsCallError::new("Publish", &e)))?;
        Ok(())
    }
}
