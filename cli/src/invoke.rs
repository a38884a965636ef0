//! `ocr invoke FUNCTION --event FILE`: one handler, once, against the running
//! local stack, like `sam local invoke`; prints what the handler returned.

use anyhow::{Context as _, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::functions::{self, Functions};
use crate::state::Running;

/// The functions `ocr invoke` knows, by their template names.
pub const FUNCTIONS: &[&str] = &[
    "upload-api",
    "status-api",
    "ingest",
    "ocr-worker",
    "notifier",
    "sweeper",
];

pub async fn run(running: &Running, function: &str, event: Value) -> anyhow::Result<Value> {
    if !FUNCTIONS.contains(&function) {
        bail!("no function {function:?}; one of: {}", FUNCTIONS.join(", "));
    }
    let sdk = crate::moto::sdk_config(&running.endpoint).await;
    let variables = functions::environment(std::env::vars(), &running.resources, &running.endpoint);
    let functions = Functions::build(&sdk, &variables)?;
    let context = Context::default();
    let result = match function {
        "ingest" => {
            let outcomes = ingest::handle(LambdaEvent::new(event, context), &functions.ingest)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            serde_json::to_value(outcomes)?
        }
        "sweeper" => {
            let sweep = sweeper::handle(LambdaEvent::new(event, context), &functions.sweeper)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            serde_json::to_value(sweep)?
        }
        "ocr-worker" | "notifier" => {
            let event: SqsEvent = serde_json::from_value(event).context("not an SQS event")?;
            let event = LambdaEvent::new(event, context);
            let response = if function == "ocr-worker" {
                ocr_worker::handle(event, &functions.worker).await
            } else {
                notifier::handle(event, &functions.notifier).await
            }
            .map_err(|error| anyhow::anyhow!("{error}"))?;
            serde_json::to_value(response)?
        }
        _ => {
            let request = lambda_http::request::from_str(&event.to_string())
                .context("not an API Gateway event")?;
            let response = if function == "status-api" {
                status_api::handle(request, &functions.status_api).await
            } else {
                upload_api::handle(request, &functions.upload_api).await
            }
            .map_err(|error| anyhow::anyhow!("{error}"))?;
            api_gateway_response(response)
        }
    };
    Ok(result)
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
