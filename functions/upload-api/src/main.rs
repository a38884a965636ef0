use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use ocr_shared::aws::{DynamoJobStore, DynamoRateLimiter, S3BlobStore, load_sdk_config};
use ocr_shared::config::{AwsSettings, Env, ProcessEnv, vars};
use upload_api::{UploadApi, UploadApiSettings, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let env = Env::new(&ProcessEnv);
    let settings = UploadApiSettings::from_env(&env)?;
    let table = env.required(vars::JOBS_TABLE)?;
    let bucket = env.required(vars::DOCUMENTS_BUCKET)?;
    let sdk = load_sdk_config(&AwsSettings::from_env(&env)?).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let api = UploadApi {
        jobs: Arc::new(DynamoJobStore::new(dynamodb.clone(), &table)),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), bucket)),
        limiter: Arc::new(DynamoRateLimiter::new(dynamodb, table)),
        settings,
    };
    run(service_fn(|request| handle(request, &api))).await
}
