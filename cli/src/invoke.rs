//! `ocr invoke FUNCTION --event FILE`: one handler, once, against the running
//! local stack, like `sam local invoke`; prints what the handler returned.

use anyhow::Context as _;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::functions::{self, FunctionName, Functions};
use crate::state::Running;

pub async fn run(running: &Running, function: FunctionName, event: Value) -> anyhow::Result<Value> {
    let sdk = crate::moto::sdk_config(&running.endpoint).await;
    let variables = functions::environment(std::env::vars(), &running.resources, &running.endpoint);
    let functions = Functions::build(&sdk, &variables)?;
    let event = LambdaEvent::new(event, Context::default());
    let result = match function {
        FunctionName::Ingest => serde_json::to_value(
            ingest::handle(event, &functions.ingest)
                .await
                .map_err(failed)?,
        )?,
        FunctionName::Sweeper => serde_json::to_value(
            sweeper::handle(event, &functions.sweeper)
                .await
                .map_err(failed)?,
        )?,
        FunctionName::OcrWorker => {
            let event = sqs(event)?;
            serde_json::to_value(
                ocr_worker::handle(event, &functions.worker)
                    .await
                    .map_err(failed)?,
            )?
        }
        FunctionName::Notifier => {
            let event = sqs(event)?;
            serde_json::to_value(
                notifier::handle(event, &functions.notifier)
                    .await
                    .map_err(failed)?,
            )?
        }
        FunctionName::StatusApi => {
            let response = status_api::handle(http(&event.payload)?, &functions.status_api);
            api_gateway_response(response.await.map_err(failed)?)
        }
        FunctionName::UploadApi => {
            let response = upload_api::handle(http(&event.payload)?, &functions.upload_api);
            api_gateway_response(response.await.map_err(failed)?)
        }
    };
    Ok(result)
}

/// A handler's error, as the command reports it.
fn failed(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// The event as an SQS batch, as Lambda's event source hands one over.
fn sqs(event: LambdaEvent<Value>) -> anyhow::Result<LambdaEvent<SqsEvent>> {
    let batch: SqsEvent = serde_json::from_value(event.payload).context("not an SQS event")?;
    Ok(LambdaEvent::new(batch, event.context))
}

/// The event as an API Gateway request.
fn http(event: &Value) -> anyhow::Result<lambda_http::Request> {
    lambda_http::request::from_str(&event.to_string()).context("not an API Gateway event")
}

/// A function's HTTP response in API Gateway v2's payload format.
fn api_gateway_response(response: lambda_http::Response<lambda_http::Body>) -> Value {
    let (parts, body) = response.into_parts();
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                json!(String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect();
    let body = match body {
        lambda_http::Body::Text(text) => text,
        lambda_http::Body::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    };
    json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": body,
        "isBase64Encoded": false,
    })
}
