//! The stack's AWS resources, created the way `template.yaml` creates them.
//! Every step is idempotent: provisioning an existing stack changes nothing
//! and returns the same names, so `ocr dev` restarted on a kept moto carries on.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    CorsConfiguration, CorsRule, Event, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;
use ocr_shared::aws::{
    AwsCallError, BY_HASH_ATTRIBUTES, BY_SEARCH_ATTRIBUTES, INDEX_BY_HASH, INDEX_BY_OWNER,
    INDEX_BY_PENDING, INDEX_BY_SEARCH, S3BlobStore, by_owner_attributes,
};
use ocr_shared::domain::JobField;
use serde::{Deserialize, Serialize};

/// Every resource of one stack, by the names the functions are configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub table: String,
    pub bucket: String,
    pub jobs_queue: String,
    pub jobs_dead_letters: String,
    /// Where S3 announces new uploads (ingest's trigger locally).
    pub uploads_queue: String,
    pub uploads_dead_letters: String,
    pub topic_arn: String,
    pub notifier_queue: String,
    pub notifier_dead_letters: String,
    pub webhook_secret_arn: String,
}

/// The queue settings the template gives the stack.
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// Receives of a job message before it is dead-lettered (more than OCR attempts).
    pub jobs_max_receives: u32,
    /// Deliveries of a webhook event before it is dead-lettered.
    pub notifier_max_receives: u32,
    /// Seconds a received message stays invisible before it comes back.
    pub visibility_seconds: u32,
}

type Result<T> = std::result::Result<T, AwsCallError>;

fn key(field: JobField, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(field.as_str())
        .key_type(key_type)
        .build()
        .expect("key schema is complete")
}

fn attribute(field: JobField, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(field.as_str())
        .attribute_type(kind)
        .build()
        .expect("attribute definition is complete")
}

/// An index on (`partition`, `sort`) projecting `attributes`, or keys only when there are none.
fn index(
    name: &str,
    partition: JobField,
    sort: JobField,
    attributes: &[JobField],
) -> GlobalSecondaryIndex {
    let projection = if attributes.is_empty() {
        Projection::builder().projection_type(ProjectionType::KeysOnly)
    } else {
        let names = attributes.iter().map(|field| field.as_str().to_owned());
        Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(names.collect()))
    };
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(partition, KeyType::Hash))
        .key_schema(key(sort, KeyType::Range))
        .projection(projection.build())
        .build()
        .expect("index is complete")
}

/// The jobs table's key attributes, with their types.
const KEY_ATTRIBUTES: [(JobField, ScalarAttributeType); 6] = [
    (JobField::JobId, ScalarAttributeType::S),
    (JobField::Owner, ScalarAttributeType::S),
    (JobField::OwnerSha256, ScalarAttributeType::S),
    (JobField::CreatedAt, ScalarAttributeType::N),
    (JobField::SearchAt, ScalarAttributeType::N),
    (JobField::Pending, ScalarAttributeType::S),
];

/// The jobs table with its `by_owner`, `by_hash`, `by_search` and
/// `by_pending` indexes and TTL on `expires_at`.
pub async fn jobs_table(config: &SdkConfig, name: &str) -> Result<()> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let by_owner = by_owner_attributes();
    let mut table = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(JobField::JobId, KeyType::Hash))
        .attribute_definitions(attribute(JobField::UpdatedAt, ScalarAttributeType::N));
    for (field, kind) in KEY_ATTRIBUTES {
        table = table.attribute_definitions(attribute(field, kind));
    }
    let created = table
        .global_secondary_indexes(index(
            INDEX_BY_OWNER,
            JobField::Owner,
            JobField::CreatedAt,
            &by_owner,
        ))
        .global_secondary_indexes(index(
            INDEX_BY_HASH,
            JobField::OwnerSha256,
            JobField::CreatedAt,
            BY_HASH_ATTRIBUTES,
        ))
        .global_secondary_indexes(index(
            INDEX_BY_SEARCH,
            JobField::Owner,
            JobField::SearchAt,
            BY_SEARCH_ATTRIBUTES,
        ))
        .global_secondary_indexes(index(
            INDEX_BY_PENDING,
            JobField::Pending,
            JobField::UpdatedAt,
            &[],
        ))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|error| error.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(error) => return Err(AwsCallError::new("CreateTable", &error)),
    }
    expire_by(&client, name, JobField::ExpiresAt).await
}

/// Switches the table's TTL on, on `field`.
async fn expire_by(client: &aws_sdk_dynamodb::Client, name: &str, field: JobField) -> Result<()> {
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(field.as_str())
                .enabled(true)
                .build()
                .expect("TTL specification is complete"),
        )
        .send()
        .await
        .map_err(|error| AwsCallError::new("UpdateTimeToLive", &error))?;
    Ok(())
}

/// The documents bucket; `browser_origins` may PUT uploads and GET results from a page.
pub async fn bucket(config: &SdkConfig, name: &str, browser_origins: &[String]) -> Result<()> {
    let s3 = S3BlobStore::client(config);
    if let Err(error) = s3.create_bucket().bucket(name).send().await {
        // Already there (ours): fine. Anything else is an error.
        if s3.head_bucket().bucket(name).send().await.is_err() {
            return Err(AwsCallError::new("CreateBucket", &error));
        }
    }
    if !browser_origins.is_empty() {
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(browser_origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3000)
            .build()
            .expect("CORS rule is complete");
        s3.put_bucket_cors()
            .bucket(name)
            .cors_configuration(
                CorsConfiguration::builder()
                    .cors_rules(rule)
                    .build()
                    .expect("CORS configuration is complete"),
            )
            .send()
            .await
            .map_err(|error| AwsCallError::new("PutBucketCors", &error))?;
    }
    Ok(())
}

/// S3 tells the queue at `queue_url` of every object created in `bucket`.
pub async fn notify_uploads(config: &SdkConfig, bucket: &str, queue_url: &str) -> Result<()> {
    let queue = QueueConfiguration::builder()
        .queue_arn(queue_arn(config, queue_url).await?)
        .events(Event::S3ObjectCreated)
        // As the template's: only uploads are ingest's (results and chunks are ours).
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value("uploads/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("queue configuration is complete");
    S3BlobStore::client(config)
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .map_err(|error| AwsCallError::new("PutBucketNotificationConfiguration", &error))?;
    Ok(())
}

/// A standard queue named `name` (created or found); returns its URL.
pub async fn queue(config: &SdkConfig, name: &str) -> Result<String> {
    aws_sdk_sqs::Client::new(config)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|error| AwsCallError::new("CreateQueue", &error))
        .map(|created| created.queue_url.unwrap_or_default())
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(config: &SdkConfig, url: &str) -> Result<String> {
    let attributes = aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|error| AwsCallError::new("GetQueueAttributes", &error))?;
    Ok(attributes
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default())
}

/// `name` with a dead-letter queue `name-dlq` after `max_receives`; returns both URLs.
pub async fn queue_with_dead_letters(
    config: &SdkConfig,
    name: &str,
    max_receives: u32,
    visibility_seconds: u32,
) -> Result<(String, String)> {
    let dead_letters = queue(config, &format!("{name}-dlq")).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": queue_arn(config, &dead_letters).await?,
        "maxReceiveCount": max_receives,
    });
    let sqs = aws_sdk_sqs::Client::new(config);
    let url = queue(config, name).await?;
    // Set (again) on an existing queue too, so changed settings apply.
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|error| AwsCallError::new("SetQueueAttributes", &error))?;
    Ok((url, dead_letters))
}

/// A topic named `name` (created or found); returns its ARN.
pub async fn topic(config: &SdkConfig, name: &str) -> Result<String> {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(name)
        .send()
        .await
        .map_err(|error| AwsCallError::new("CreateTopic", &error))
        .map(|created| created.topic_arn.unwrap_or_default())
}

/// Subscribes the queue at `url` to `topic` with raw message delivery, once.
pub async fn subscribe(config: &SdkConfig, topic: &str, url: &str) -> Result<()> {
    let sns = aws_sdk_sns::Client::new(config);
    let endpoint = queue_arn(config, url).await?;
    let existing = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic)
        .send()
        .await
        .map_err(|error| AwsCallError::new("ListSubscriptionsByTopic", &error))?;
    if existing
        .subscriptions()
        .iter()
        .any(|subscription| subscription.endpoint() == Some(endpoint.as_str()))
    {
        return Ok(());
    }
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(endpoint)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .map_err(|error| AwsCallError::new("Subscribe", &error))?;
    Ok(())
}

/// A secret named `name` holding `value` unless it exists (its value is kept); returns its ARN.
pub async fn secret(config: &SdkConfig, name: &str, value: &str) -> Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    match client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(created) => Ok(created.arn.unwrap_or_default()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|error| error.is_resource_exists_exception()) =>
        {
            client
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|error| AwsCallError::new("DescribeSecret", &error))
                .map(|secret| secret.arn.unwrap_or_default())
        }
        Err(error) => Err(AwsCallError::new("CreateSecret", &error)),
    }
}

/// The whole stack under `prefix`: table, bucket (with CORS for `browser_origins`
/// and upload notifications), jobs/uploads/notifier queues with their DLQs, the
/// events topic with the notifier subscribed, and the webhook signing key.
pub async fn stack(
    config: &SdkConfig,
    prefix: &str,
    settings: QueueSettings,
    browser_origins: &[String],
) -> Result<Resources> {
    let table = format!("{prefix}-jobs");
    jobs_table(config, &table).await?;
    let bucket_name = format!("{prefix}-documents");
    bucket(config, &bucket_name, browser_origins).await?;
    let (jobs_queue, jobs_dead_letters) = queue_with_dead_letters(
        config,
        &format!("{prefix}-jobs"),
        settings.jobs_max_receives,
        settings.visibility_seconds,
    )
    .await?;
    // S3 invokes ingest with 2 retries in AWS: three receives, then the DLQ.
    let (uploads_queue, uploads_dead_letters) = queue_with_dead_letters(
        config,
        &format!("{prefix}-uploads"),
        3,
        settings.visibility_seconds,
    )
    .await?;
    notify_uploads(config, &bucket_name, &uploads_queue).await?;
    let topic_arn = topic(config, &format!("{prefix}-events")).await?;
    let (notifier_queue, notifier_dead_letters) = queue_with_dead_letters(
        config,
        &format!("{prefix}-notifier"),
        settings.notifier_max_receives,
        settings.visibility_seconds,
    )
    .await?;
    subscribe(config, &topic_arn, &notifier_queue).await?;
    let signing_key = hex::encode(rand::random::<[u8; 32]>());
    let webhook_secret_arn = secret(
        config,
        &format!("{prefix}/webhook-signing-key"),
        &format!("whsec_{signing_key}"),
    )
    .await?;
    Ok(Resources {
        table,
        bucket: bucket_name,
        jobs_queue,
        jobs_dead_letters,
        uploads_queue,
        uploads_dead_letters,
        topic_arn,
        notifier_queue,
        notifier_dead_letters,
        webhook_secret_arn,
    })
}
