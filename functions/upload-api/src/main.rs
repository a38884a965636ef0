use lambda_http::{Error, run, service_fn};
use ocr_shared::aws::load_sdk_config;
use ocr_shared::config::{Env, ProcessEnv};
use upload_api::{Config, UploadApi, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    ocr_shared::metrics::install();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.stack.aws).await;
    let api = UploadApi::connect(&sdk, config);
    run(service_fn(|request| {
        ocr_shared::metrics::flushed(handle(request, &api))
    }))
    .await
}
