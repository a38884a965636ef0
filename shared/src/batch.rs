//! Lambda's SQS batch contract: every message handled concurrently, the ones
//! to try again reported by their message ids, the rest acknowledged; and
//! what a consumer reads off one message.

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use tracing::{Instrument, error, info_span, warn};

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

/// One receipt of a message: how many times SQS has handed it out (1 the
/// first time) and the handle that changes its visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub receive_count: u32,
    pub receipt: &'a str,
}

impl<'a> Delivery<'a> {
    pub fn of(message: &'a SqsMessage) -> Self {
        Self {
            receive_count: message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|count| count.parse().ok())
                .unwrap_or(1),
            receipt: message.receipt_handle.as_deref().unwrap_or_default(),
        }
    }
}

/// The message's body read by `parse`, with its delivery. A body nothing can
/// ever make readable is logged and `None`: the caller acknowledges it rather
/// than poison the queue.
pub fn read<'a, T>(
    message: &'a SqsMessage,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<(T, Delivery<'a>)> {
    let body = message.body.as_deref().unwrap_or_default();
    match parse(body) {
        Some(parsed) => Some((parsed, Delivery::of(message))),
        None => {
            error!(body_len = body.len(), "unreadable message dropped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, receives: Option<&str>) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.body = Some(body.to_owned());
        message.receipt_handle = Some("r-1".to_owned());
        if let Some(count) = receives {
            message
                .attributes
                .insert("ApproximateReceiveCount".to_owned(), count.to_owned());
        }
        message
    }

    #[test]
    fn a_message_is_read_with_its_receive_count_and_receipt() {
        let message = message("42", Some("3"));
        let (number, delivery) = read(&message, |body| body.parse::<u32>().ok()).unwrap();
        assert_eq!(number, 42);
        assert_eq!(
            delivery,
            Delivery {
                receive_count: 3,
                receipt: "r-1"
            }
        );
        let first = self::message("1", None);
        assert_eq!(Delivery::of(&first).receive_count, 1);
    }

    #[test]
    fn an_unreadable_body_is_none() {
        let message = message("not a number", Some("1"));
        assert!(read(&message, |body| body.parse::<u32>().ok()).is_none());
    }
}
