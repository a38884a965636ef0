//! Instants as the pipeline stores and shows them (RFC 3339, epoch seconds).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC instant in milliseconds since the Unix epoch: how the job table stores time,
/// so that the `created_at` sort keys order numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        Self((at.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, the unit DynamoDB's TTL reads.
    pub const fn as_epoch_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus(self, by: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// An RFC 3339 instant (`2026-11-27T09:00:00Z`, any offset), to the millisecond.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        OffsetDateTime::parse(raw, &Rfc3339)
            .ok()
            .map(Self::from_datetime)
    }

    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc_and_converts_to_ttl_seconds() {
        let at = Timestamp::from_millis(1_764_050_792_123);
        assert_eq!(at.to_rfc3339(), "2025-11-25T06:06:32.123Z");
        assert_eq!(at.as_epoch_seconds(), 1_764_050_792);
        assert_eq!(
            at.plus(Duration::from_secs(2)).as_millis(),
            1_764_050_794_123
        );
    }
}
