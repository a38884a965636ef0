use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use ocr_shared::aws::{DynamoJobStore, DynamoRateLimiter, S3BlobStore, load_sdk_config};
use ocr_shared::config::{Env, ProcessEnv};
use upload_api::{Config, UploadApi, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.aws).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let api = UploadApi {
        jobs: Arc::new(DynamoJobStore::new(dynamodb.clone(), &config.table)),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), config.bucket)),
        limiter: Arc::new(DynamoRateLimiter::new(dynamodb, config.table)),
        settings: config.settings,
    };
    run(service_fn(|request| handle(request, &api))).await
}
