//! Uniquely named AWS resources, created the way the template creates them.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use ocr_shared::aws::{INDEX_BY_HASH, INDEX_BY_OWNER};

/// `prefix-` and 12 random hex characters: no two tests share a resource.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("key schema is complete")
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("attribute definition is complete")
}

fn index(name: &str, partition: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(partition, KeyType::Hash))
        .key_schema(key("created_at", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("index is complete")
}

/// The `Jobs` table with its `by_owner` and `by_hash` indexes; returns its name.
pub async fn jobs_table(config: &SdkConfig) -> String {
    let name = unique_name("jobs");
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("job_id", KeyType::Hash))
        .attribute_definitions(attribute("job_id", ScalarAttributeType::S))
        .attribute_definitions(attribute("owner", ScalarAttributeType::S))
        .attribute_definitions(attribute("owner_sha256", ScalarAttributeType::S))
        .attribute_definitions(attribute("created_at", ScalarAttributeType::N))
        .global_secondary_indexes(index(INDEX_BY_OWNER, "owner"))
        .global_secondary_indexes(index(INDEX_BY_HASH, "owner_sha256"))
        .send()
        .await
        .expect("create the jobs table");
    name
}

pub async fn bucket(config: &SdkConfig) -> String {
    let name = unique_name("documents");
    ocr_shared::aws::S3BlobStore::client(config)
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create the documents bucket");
    name
}

/// A standard queue; returns its URL.
pub async fn queue(config: &SdkConfig) -> String {
    aws_sdk_sqs::Client::new(config)
        .create_queue()
        .queue_name(unique_name("jobs"))
        .send()
        .await
        .expect("create a queue")
        .queue_url
        .expect("a created queue has a URL")
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(config: &SdkConfig, url: &str) -> String {
    aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("read the queue's ARN")
        .attributes
        .and_then(|mut attributes| {
            attributes.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        })
        .expect("a queue has an ARN")
}

/// A queue whose messages go to a dead-letter queue of their own after
/// `max_receives`, as the template sets them up; returns (queue URL, DLQ URL).
pub async fn queue_with_dead_letters(
    config: &SdkConfig,
    prefix: &str,
    max_receives: u32,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let dead_letters = queue(config).await;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": queue_arn(config, &dead_letters).await,
        "maxReceiveCount": max_receives,
    });
    let url = aws_sdk_sqs::Client::new(config)
        .create_queue()
        .queue_name(unique_name(prefix))
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("create a queue with a DLQ")
        .queue_url
        .expect("a created queue has a URL");
    (url, dead_letters)
}

/// Subscribes the queue at `url` to `topic` with raw message delivery.
pub async fn subscribe(config: &SdkConfig, topic: &str, url: &str) {
    aws_sdk_sns::Client::new(config)
        .subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(queue_arn(config, url).await)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe a queue to the topic");
}

/// A topic; returns its ARN.
pub async fn topic(config: &SdkConfig) -> String {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(unique_name("job-events"))
        .send()
        .await
        .expect("create a topic")
        .topic_arn
        .expect("a created topic has an ARN")
}

/// A secret holding `value`; returns its ARN.
pub async fn secret(config: &SdkConfig, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(unique_name("upstage-key"))
        .secret_string(value)
        .send()
        .await
        .expect("create a secret")
        .arn
        .expect("a created secret has an ARN")
}
