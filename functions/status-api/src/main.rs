use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use ocr_shared::aws::{DynamoJobStore, S3BlobStore, load_sdk_config};
use ocr_shared::config::{Env, ProcessEnv};
use status_api::{Config, StatusApi, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.aws).await;
    let api = StatusApi {
        jobs: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table,
        )),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), config.bucket)),
    };
    run(service_fn(|request| handle(request, &api))).await
}
