//! One moto server per test process (see `ocr_cli::moto`), stopped when the
//! process ends, however it ends.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_config::SdkConfig;
pub use ocr_cli::moto::{MotoError as HarnessError, MotoServer, REGION};

/// Where `make setup` puts moto's server, unless MOTO_SERVER says otherwise.
pub fn default_binary() -> PathBuf {
    match std::env::var_os("MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"),
    }
}

/// The process's moto server, started on first use. A server that cannot
/// start fails the calling test with the reason: no test is skipped.
pub fn moto() -> &'static MotoServer {
    static SERVER: OnceLock<MotoServer> = OnceLock::new();
    SERVER.get_or_init(|| match MotoServer::start(&default_binary()) {
        Ok(server) => server,
        Err(error) => panic!("the AWS test backend is unavailable: {error}"),
    })
}

/// SDK configuration for moto: fixed region, dummy credentials, moto's endpoint.
pub async fn sdk_config() -> SdkConfig {
    let endpoint = tokio::task::spawn_blocking(|| moto().endpoint().to_owned())
        .await
        .expect("the moto start-up task panicked");
    ocr_cli::moto::sdk_config(&endpoint).await
}

/// An armed fault in the launcher's fault middleware.
pub struct Fault {
    id: String,
}

/// Makes the next `times` DynamoDB `action` requests whose body holds every
/// one of `contains` (a table's name, a field) fail with DynamoDB's 500
/// InternalServerError, through the launcher's fault middleware.
pub async fn inject_dynamodb_fault(action: &str, contains: &[&str], times: u32) -> Fault {
    let fault = serde_json::json!({"target": action, "contains": contains, "times": times});
    let armed = faults_request(reqwest::Method::POST, "", Some(fault)).await;
    Fault {
        id: armed["id"].as_str().unwrap().to_owned(),
    }
}

impl Fault {
    /// Disarms the fault; returns how many requests it failed.
    pub async fn clear(self) -> u64 {
        let cleared = faults_request(reqwest::Method::DELETE, &self.id, None).await;
        cleared["failed"].as_u64().unwrap()
    }
}

async fn faults_request(
    method: reqwest::Method,
    id: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let endpoint = tokio::task::spawn_blocking(|| moto().endpoint().to_owned())
        .await
        .expect("the moto start-up task panicked");
    let url = format!("{endpoint}/lambda-ocr/faults/{id}");
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("moto answers");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("the fault as JSON")
}
