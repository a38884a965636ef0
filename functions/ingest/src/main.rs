use std::sync::Arc;

use ingest::{Ingest, handle};
use lambda_runtime::{Error, run, service_fn};
use ocr_shared::aws::{
    DynamoJobStore, S3BlobStore, SnsEventPublisher, SqsJobQueue, load_sdk_config,
};
use ocr_shared::config::{AwsSettings, Env, ProcessEnv, UploadSettings, vars};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let env = Env::new(&ProcessEnv);
    let limits = UploadSettings::from_env(&env)?.limits;
    let table = env.required(vars::JOBS_TABLE)?;
    let bucket = env.required(vars::DOCUMENTS_BUCKET)?;
    let queue_url = env.required(vars::JOBS_QUEUE_URL)?;
    let topic_arn = env.required(vars::EVENTS_TOPIC_ARN)?;
    let sdk = load_sdk_config(&AwsSettings::from_env(&env)?).await;
    let ingest = Ingest {
        jobs: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            table,
        )),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), bucket)),
        queue: Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url)),
        events: Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&sdk),
            topic_arn,
        )),
        limits,
    };
    run(service_fn(|event| handle(event, &ingest))).await
}
