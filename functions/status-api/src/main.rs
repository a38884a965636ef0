use std::sync::Arc;

use lambda_http::{Error, run, service_fn};
use ocr_shared::aws::{DynamoJobStore, S3BlobStore, load_sdk_config};
use ocr_shared::config::{AwsSettings, Env, ProcessEnv, vars};
use status_api::{StatusApi, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let env = Env::new(&ProcessEnv);
    let table = env.required(vars::JOBS_TABLE)?;
    let bucket = env.required(vars::DOCUMENTS_BUCKET)?;
    let sdk = load_sdk_config(&AwsSettings::from_env(&env)?).await;
    let api = StatusApi {
        jobs: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            table,
        )),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), bucket)),
    };
    run(service_fn(|request| handle(request, &api))).await
}
