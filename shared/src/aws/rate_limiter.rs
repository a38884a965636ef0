//! The rate limiter on DynamoDB: an atomic counter item per key and window,
//! expiring by TTL.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use tracing::instrument;

use super::AwsCallError;
use crate::domain::{JobField, Timestamp};
use crate::ports::{RateDecision, RateLimiter, RateScope, StoreError, window_of};

/// The counter item's count of calls in its window.
const HITS: &str = "hits";

/// Fixed-window counters as items of the jobs table, keyed `rate#{scope}#{window}`
/// (no job id can take that form) and expired by the table's TTL.
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

impl DynamoRateLimiter {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    #[instrument(skip(self, now))]
    async fn acquire(
        &self,
        scope: &RateScope,
        limit: u32,
        window: Duration,
        now: Timestamp,
    ) -> Result<RateDecision, StoreError> {
        let (index, remaining) = window_of(now, window);
        let expires = now
            .plus(remaining)
            .plus(Duration::from_secs(3600))
            .as_epoch_seconds();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                JobField::JobId.as_str(),
                AttributeValue::S(format!("rate#{scope}#{index}")),
            )
            .update_expression("SET #expires = :expires ADD #hits :one")
            .condition_expression("attribute_not_exists(#hits) OR #hits < :limit")
            .expression_attribute_names("#expires", JobField::ExpiresAt.as_str())
            .expression_attribute_names("#hits", HITS)
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(RateDecision::Allowed),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(RateDecision::Limited {
                    retry_after: remaining,
                })
            }
            Err(e) => Err(StoreError::backend(AwsCallError::new("UpdateItem", &e))),
        }
    }
}
