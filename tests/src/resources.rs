//! Uniquely named AWS resources, created the way the template creates them
//! (by `ocr_cli::provision`, which `ocr dev` uses too).

use aws_config::SdkConfig;
use ocr_cli::provision;

/// `prefix-` and 12 random hex characters: no two tests share a resource.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// The `Jobs` table with its `by_owner` and `by_hash` indexes; returns its name.
pub async fn jobs_table(config: &SdkConfig) -> String {
    let name = unique_name("jobs");
    provision::jobs_table(config, &name)
        .await
        .expect("create the jobs table");
    name
}

pub async fn bucket(config: &SdkConfig) -> String {
    let name = unique_name("documents");
    provision::bucket(config, &name, &[])
        .await
        .expect("create the documents bucket");
    name
}

/// A standard queue; returns its URL.
pub async fn queue(config: &SdkConfig) -> String {
    provision::queue(config, &unique_name("jobs"))
        .await
        .expect("create a queue")
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(config: &SdkConfig, url: &str) -> String {
    provision::queue_arn(config, url)
        .await
        .expect("read the queue's ARN")
}

/// A queue whose messages go to a dead-letter queue of their own after
/// `max_receives`, as the template sets them up; returns (queue URL, DLQ URL).
pub async fn queue_with_dead_letters(
    config: &SdkConfig,
    prefix: &str,
    max_receives: u32,
) -> (String, String) {
    provision::queue_with_dead_letters(config, &unique_name(prefix), max_receives, 30)
        .await
        .expect("create a queue with a DLQ")
}

/// Subscribes the queue at `url` to `topic` with raw message delivery.
pub async fn subscribe(config: &SdkConfig, topic: &str, url: &str) {
    provision::subscribe(config, topic, url)
        .await
        .expect("subscribe a queue to the topic");
}

/// A topic; returns its ARN.
pub async fn topic(config: &SdkConfig) -> String {
    provision::topic(config, &unique_name("job-events"))
        .await
        .expect("create a topic")
}

/// A secret holding `value`; returns its ARN.
pub async fn secret(config: &SdkConfig, value: &str) -> String {
    provision::secret(config, &unique_name("upstage-key"), value)
        .await
        .expect("create a secret")
}
