//! The rate limiter port: a fixed-window counter per key shared by every
//! instance (the OCR quota, job creation per owner).

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{Owner, Timestamp};
use std::fmt;

/// Whether one more request fits in the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Over the limit: the window reopens after `retry_after`.
    Limited {
        retry_after: Duration,
    },
}

/// What a counter limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RateScope {
    /// Calls to the OCR engine, across every worker instance.
    Ocr,
    /// Jobs one owner creates.
    Create(Owner),
}

impl fmt::Display for RateScope {
    /// The counter's name in the store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateScope::Ocr => f.write_str("ocr"),
            RateScope::Create(owner) => write!(f, "create#{owner}"),
        }
    }
}

/// A fixed-window counter shared by every instance (one per `scope`).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    async fn acquire(
        &self,
        scope: &RateScope,
        limit: u32,
        window: Duration,
        now: Timestamp,
    ) -> Result<RateDecision, StoreError>;
}

/// The window `now` falls in: its index and how long until it ends.
pub fn window_of(now: Timestamp, window: Duration) -> (i64, Duration) {
    let length = window.as_millis().max(1) as i64;
    let index = now.as_millis().div_euclid(length);
    let ends = (index + 1) * length;
    (
        index,
        Duration::from_millis((ends - now.as_millis()) as u64),
    )
}
