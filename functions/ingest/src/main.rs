use std::sync::Arc;

use ingest::{Config, Ingest, handle};
use lambda_runtime::{Error, run, service_fn};
use ocr_shared::aws::{
    DynamoJobStore, S3BlobStore, SnsEventPublisher, SqsJobQueue, load_sdk_config,
};
use ocr_shared::config::{Env, ProcessEnv};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.aws).await;
    let ingest = Ingest {
        jobs: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table,
        )),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), config.bucket)),
        queue: Arc::new(SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.queue_url,
        )),
        events: Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&sdk),
            config.topic_arn,
        )),
        limits: config.limits,
    };
    run(service_fn(|event| handle(event, &ingest))).await
}
