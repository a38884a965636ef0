//! How long a message waits before it is tried again: one backoff for the
//! worker's OCR retries and the notifier's webhook retries.

use std::time::Duration;

use rand::Rng;

/// The longest a retry waits.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// How long to wait before the `receive_count`-th delivery is tried again:
/// exponential from `base`, with jitter over the upper half so that a burst of
/// failures spreads out, never less than the server's `retry_after`.
pub fn retry_delay(
    base: Duration,
    receive_count: u32,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> Duration {
    let exponent = receive_count.saturating_sub(1).min(16);
    let ceiling = base.saturating_mul(1 << exponent).min(MAX_DELAY);
    let jittered = if ceiling.is_zero() {
        ceiling
    } else {
        let half = ceiling / 2;
        half + Duration::from_millis(rng.random_range(0..=(ceiling - half).as_millis() as u64))
    };
    jittered.max(retry_after.unwrap_or_default()).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn delays_double_with_each_receive_within_jitter_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_secs(10);
        for (receive, ceiling) in [(1, 10), (2, 20), (3, 40), (4, 80)] {
            for _ in 0..50 {
                let delay = retry_delay(base, receive, None, &mut rng);
                let ceiling = Duration::from_secs(ceiling);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "receive {receive}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_and_fifteen_minutes_a_ceiling() {
        let mut rng = StdRng::seed_from_u64(1);
        let base = Duration::from_secs(1);
        assert!(
            retry_delay(base, 1, Some(Duration::from_secs(30)), &mut rng)
                >= Duration::from_secs(30)
        );
        assert!(retry_delay(base, 40, None, &mut rng) <= MAX_DELAY);
        assert_eq!(
            retry_delay(base, 1, Some(Duration::from_secs(3600)), &mut rng),
            MAX_DELAY
        );
        assert_eq!(
            retry_delay(Duration::ZERO, 3, None, &mut rng),
            Duration::ZERO
        );
    }
}
