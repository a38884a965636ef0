//! Lambda's SQS batch contract: every message handled concurrently, the ones
//! to try again reported by their message ids, the rest acknowledged.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use tracing::{Instrument, info_span, warn};

/// Runs `handle` on each message at once; an `Err` puts its message back.
pub async fn process_batch<'a, F, Fut, E>(messages: &'a [SqsMessage], handle: F) -> SqsBatchResponse
where
    F: Fn(&'a SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), E>> + 'a,
    E: Display,
{
    let outcomes = futures::future::join_all(messages.iter().map(|message| {
        let span = info_span!(
            "message",
            message_id = message.message_id.as_deref().unwrap_or_default()
        );
        let outcome = handle(message);
        async move { (message, outcome.await) }.instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, outcome) in outcomes {
        if let Err(reason) = outcome {
            warn!(%reason, "message returned to the queue");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
