//! The ports over the AWS SDK: DynamoDB, S3, SQS, SNS and Secrets Manager,
//! each behind the crate feature of its service.

#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(feature = "dynamodb")]
mod rate_limiter;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "secrets")]
mod secrets;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sqs")]
mod sqs;

pub use aws_config::SdkConfig;
#[cfg(feature = "dynamodb")]
pub use dynamodb::{
    BY_HASH_ATTRIBUTES, BY_OWNER_ATTRIBUTES, BY_SEARCH_ATTRIBUTES, DynamoJobStore, INDEX_BY_HASH,
    INDEX_BY_OWNER, INDEX_BY_PENDING, INDEX_BY_SEARCH,
};
#[cfg(feature = "dynamodb")]
pub use rate_limiter::DynamoRateLimiter;
#[cfg(feature = "s3")]
pub use s3::S3BlobStore;
#[cfg(feature = "secrets")]
pub use secrets::SecretsManagerSource;
#[cfg(feature = "sns")]
pub use sns::SnsEventPublisher;
#[cfg(feature = "sqs")]
pub use sqs::SqsJobQueue;

use aws_config::BehaviorVersion;

use crate::config::AwsSettings;

/// The shared SDK configuration, loaded once per cold start: region and
/// credentials from the environment, the endpoint overridden for local runs.
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// An SDK failure with its full cause chain as its message (the SDK's own
/// Display says only "service error").
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct AwsCallError {
    pub operation: &'static str,
    pub detail: String,
}

impl AwsCallError {
    pub fn new(operation: &'static str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            operation,
            detail: crate::telemetry::error_chain(error),
        }
    }
}
