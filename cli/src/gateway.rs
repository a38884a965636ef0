//! The local API Gateway: an HTTP request becomes the API Gateway v2 event the
//! deployed API would send, with the claims of a verified bearer token, and goes
//! to the function that serves its route (GET → status-api, else upload-api).
//! No token, or a bad one, is 401 before any function runs, as in AWS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::functions::FunctionName;

use crate::functions::Functions;
use crate::{token, web};

pub struct Gateway {
    pub functions: Arc<Functions>,
    pub signing_key: Vec<u8>,
    /// Browser origins the API answers (CORS), as the template's `AllowedOrigins`.
    pub origins: Vec<String>,
}

/// The HTTP API's CORS configuration in the template, for `origins`.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

/// The whole local front: the API under `/v1` and the demo page.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let cors = cors(&gateway.origins);
    Router::new()
        .route("/", get(web::index))
        .route("/app.js", get(web::script))
        .route("/style.css", get(web::style))
        .route("/health", get(|| async { "ok" }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(api)
        // API Gateway's payload quota: a larger request never reaches a function.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
        .layer(cors)
        .with_state(gateway)
}

/// The largest request body API Gateway passes on (its 10 MB payload quota).
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// The route key API Gateway would match for `method path`, if the API has one.
pub fn route_key(method: &Method, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let route = match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "jobs"]) => "POST /v1/jobs",
        ("POST", ["v1", "jobs", "batch"]) => "POST /v1/jobs/batch",
        ("GET", ["v1", "jobs"]) => "GET /v1/jobs",
        ("GET", ["v1", "jobs", _]) => "GET /v1/jobs/{id}",
        ("GET", ["v1", "jobs", _, "result"]) => "GET /v1/jobs/{id}/result",
        ("DELETE", ["v1", "jobs", _]) => "DELETE /v1/jobs/{id}",
        ("GET", ["v1", "webhooks", "key"]) => "GET /v1/webhooks/key",
        _ => return None,
    };
    Some(route.to_owned())
}

/// The request's headers as API Gateway v2 passes them: one value each,
/// repeated ones joined with commas.
fn joined_headers(headers: &HeaderMap) -> serde_json::Map<String, Value> {
    let mut joined = serde_json::Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        joined
            .entry(name.as_str().to_owned())
            .and_modify(|earlier| {
                if let Value::String(earlier) = earlier {
                    earlier.push(',');
                    earlier.push_str(&value);
                }
            })
            .or_insert(Value::String(value));
    }
    joined
}

/// The API Gateway v2 (HTTP API) event of a request whose caller has `claims`.
pub fn event(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    route: &str,
    claims: &HashMap<String, String>,
) -> Value {
    let header_map = joined_headers(headers);
    let query = uri.query().unwrap_or("");
    let parameters: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let path = uri.path();
    let id = path.split('/').nth(3).filter(|_| route.contains("{id}"));
    let now = time::OffsetDateTime::now_utc();
    let request_id = format!("local-{}", hex::encode(rand::random::<[u8; 8]>()));
    let (body, encoded) = body_of(body);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "authorizer": { "jwt": { "claims": claims, "scopes": null } },
            "domainName": headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or("127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get(header::USER_AGENT).and_then(|agent| agent.to_str().ok()).unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": route,
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": now.unix_timestamp() * 1000 + i64::from(now.millisecond()),
        },
        "isBase64Encoded": encoded,
    });
    if !parameters.is_empty() {
        event["queryStringParameters"] = json!(parameters);
    }
    if let Some(id) = id {
        event["pathParameters"] = json!({ "id": id });
    }
    if !body.is_empty() {
        event["body"] = json!(body);
    }
    event
}

/// The body as the event carries it: text as it is, anything else in base64
/// (and then `isBase64Encoded`).
fn body_of(body: &[u8]) -> (String, bool) {
    match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn api(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(route) = route_key(&method, uri.path()) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(body) = body else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let claims = match bearer(&headers).map(|token| token::verify(&gateway.signing_key, token)) {
        Some(Ok(claims)) => claims,
        _ => {
            let mut response = message(StatusCode::UNAUTHORIZED, "Unauthorized");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    };
    let event = event(&method, &uri, &headers, &body, &route, &claims);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            return message(StatusCode::BAD_REQUEST, &format!("Bad Request: {error}"));
        }
    };
    let answer = if method == Method::GET {
        let invocation = status_api::handle(request, &gateway.functions.status_api);
        crate::invocations::timed(FunctionName::StatusApi, 1, invocation).await
    } else {
        let invocation = upload_api::handle(request, &gateway.functions.upload_api);
        crate::invocations::timed(FunctionName::UploadApi, 1, invocation).await
    };
    match answer {
        Ok(response) => lambda_response(response),
        // A function error is API Gateway's 500, with nothing of the error shown.
        Err(error) => {
            tracing::error!(error = %error, route, "function error");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// A function's response as API Gateway sends it on.
pub fn lambda_response(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    let mut response = Response::new(axum::body::Body::from(bytes));
    *response.status_mut() = parts.status;
    *response.headers_mut() = parts.headers;
    response
}

#[cfg(test)]
mod tests {
    use lambda_http::RequestExt as _;

    use super::*;

    #[test]
    fn routes_are_the_apis_and_nothing_else() {
        let id = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
        assert_eq!(
            route_key(&Method::GET, &format!("/v1/jobs/{id}")).as_deref(),
            Some("GET /v1/jobs/{id}")
        );
        assert_eq!(
            route_key(&Method::POST, "/v1/jobs/").as_deref(),
            Some("POST /v1/jobs")
        );
        assert_eq!(
            route_key(&Method::DELETE, &format!("/v1/jobs/{id}")).as_deref(),
            Some("DELETE /v1/jobs/{id}")
        );
        assert_eq!(route_key(&Method::PUT, "/v1/jobs"), None);
        assert_eq!(route_key(&Method::GET, "/v2/jobs"), None);
        assert_eq!(route_key(&Method::GET, "/v1/jobs/a/b/c"), None);
    }

    #[test]
    fn a_request_becomes_the_event_api_gateway_would_send() {
        let id = "6f9619ff-8b86-4011-b42d-00c04fc964ff";
        let uri: Uri = format!("/v1/jobs/{id}?status=completed&limit=5")
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        headers.insert("if-none-match", HeaderValue::from_static("\"abc\""));
        let claims = HashMap::from([("sub".to_owned(), "alice".to_owned())]);
        let event = event(
            &Method::GET,
            &uri,
            &headers,
            b"",
            "GET /v1/jobs/{id}",
            &claims,
        );

        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), format!("/v1/jobs/{id}"));
        assert_eq!(request.headers()["if-none-match"], "\"abc\"");
        let query = request.query_string_parameters();
        assert_eq!(query.first("status"), Some("completed"));
        assert_eq!(query.first("limit"), Some("5"));
        assert_eq!(request.path_parameters().first("id"), Some(id));
        assert_eq!(ocr_shared::api::caller(&request).unwrap().as_str(), "alice");
    }

    #[test]
    fn a_body_that_is_not_text_travels_base64_encoded() {
        let uri: Uri = "/v1/jobs".parse().unwrap();
        let event = event(
            &Method::POST,
            &uri,
            &HeaderMap::new(),
            &[0xff, 0xfe, 0x00],
            "POST /v1/jobs",
            &HashMap::new(),
        );
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "//4A");
    }
}
