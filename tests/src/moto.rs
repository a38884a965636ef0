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
