//! Each function's invocations in this run of the local stack, as Lambda's
//! REPORT lines would add them up: how many, how many events they carried, and
//! how long they ran. `ocr dev` prints them when it stops; the cost model of
//! `make bench` reads them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::functions::FunctionName;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Invocations {
    pub count: u64,
    /// Records (SQS messages, S3 notifications, HTTP requests) they carried.
    pub events: u64,
    /// Their summed duration: what Lambda bills, before rounding up to 1 ms each.
    pub busy: Duration,
}

static TALLY: Mutex<BTreeMap<FunctionName, Invocations>> = Mutex::new(BTreeMap::new());

/// Runs one invocation of `function` carrying `events` records, and counts it.
pub async fn timed<T>(
    function: FunctionName,
    events: usize,
    invocation: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let output = invocation.await;
    let elapsed = started.elapsed();
    let mut tally = TALLY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let entry = tally.entry(function).or_default();
    entry.count += 1;
    entry.events += events as u64;
    entry.busy += elapsed;
    output
}

/// The tally so far, by function name.
pub fn tally() -> BTreeMap<FunctionName, Invocations> {
    TALLY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// One line: `upload-api 3 × 1 event 4.1 ms; ocr-worker 2 × 1.5 events 310.0 ms; …`
/// (invocations × events each on average, mean duration).
pub fn summary(tally: &BTreeMap<FunctionName, Invocations>) -> String {
    if tally.is_empty() {
        return "none".to_owned();
    }
    tally
        .iter()
        .map(|(function, invocations)| {
            let count = invocations.count.max(1);
            let events = invocations.events as f64 / count as f64;
            let mean = invocations.busy.as_secs_f64() * 1000.0 / count as f64;
            let unit = if (events - 1.0).abs() < f64::EPSILON {
                "event"
            } else {
                "events"
            };
            format!(
                "{function} {} × {events:.1} {unit} {mean:.1} ms",
                invocations.count
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invocations_are_counted_with_their_events_and_time() {
        // No other test of this binary runs the sweeper.
        let answer = timed(FunctionName::Sweeper, 3, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            7
        })
        .await;
        assert_eq!(answer, 7);
        timed(FunctionName::Sweeper, 1, async {}).await;
        let counted = tally()[&FunctionName::Sweeper];
        assert_eq!(counted.count, 2);
        assert_eq!(counted.events, 4);
        assert!(counted.busy >= Duration::from_millis(20));
        let line = summary(&BTreeMap::from([(FunctionName::Sweeper, counted)]));
        assert!(line.starts_with("sweeper 2 × 2.0 events "), "{line}");
        assert_eq!(summary(&BTreeMap::new()), "none");
    }
}
