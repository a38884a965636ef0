use std::time::Duration;

use ocr_shared::aws::DynamoRateLimiter;
use ocr_shared::domain::Timestamp;
use ocr_shared::ports::{RateDecision, RateLimiter, RateScope};
use ocr_shared::testing::owner;
use ocr_tests::{resources, sdk_config};

#[tokio::test]
async fn a_fixed_window_admits_the_limit_then_says_when_to_come_back() {
    let config = sdk_config().await;
    let table = resources::jobs_table(&config).await;
    let limiter = DynamoRateLimiter::new(aws_sdk_dynamodb::Client::new(&config), table);
    let window = Duration::from_secs(60);
    // 10 s into a minute (1_800_000_000_000 ms is a whole minute).
    let now = Timestamp::from_millis(1_800_000_010_000);

    for _ in 0..5 {
        assert_eq!(
            limiter
                .acquire(&RateScope::Create(owner("alice")), 5, window, now)
                .await
                .unwrap(),
            RateDecision::Allowed
        );
    }
    assert_eq!(
        limiter
            .acquire(&RateScope::Create(owner("alice")), 5, window, now)
            .await
            .unwrap(),
        RateDecision::Limited {
            retry_after: Duration::from_secs(50)
        }
    );
    // Another owner has a counter of its own; the next window starts afresh.
    assert_eq!(
        limiter
            .acquire(&RateScope::Create(owner("bob")), 5, window, now)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
    let next = now.plus(Duration::from_secs(50));
    assert_eq!(
        limiter
            .acquire(&RateScope::Create(owner("alice")), 5, window, next)
            .await
            .unwrap(),
        RateDecision::Allowed
    );
}
