//! The TLS configuration of our own HTTPS clients (Upstage, webhooks): built
//! once per process and shared by every client made from it.
//!
//! The trust roots are Mozilla's, compiled in (`webpki-roots`): nothing is read
//! from disk or parsed at start-up, and a notifier that builds a client per
//! delivery (to pin the addresses it checked) pays nothing per client. On
//! Lambda the system store is the same Mozilla list, so the trust decision does
//! not change; the roots are updated with our releases rather than with the
//! runtime's patches. The AWS SDK has a client of its own
//! (`aws::load_sdk_config`): rustls over aws-lc-rs, trusting Amazon's five
//! root CAs as deployed (`AWS_TRUST_STORE=amazon`) or the system store.

use std::sync::{Arc, LazyLock};

static CONFIG: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc-rs supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth()
});

/// A reqwest builder over the process's TLS configuration.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(CONFIG.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_mozillas_list() {
        assert!(CONFIG.alpn_protocols.is_empty());
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        // Amazon Root CA 1, where the AWS endpoints' chains end.
        assert!(webpki_roots::TLS_SERVER_ROOTS.iter().any(|anchor| {
            String::from_utf8_lossy(anchor.subject.as_ref()).contains("Amazon Root CA 1")
        }));
    }

    #[tokio::test]
    async fn a_client_built_from_it_speaks_plain_http_too() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let client = client_builder().build().unwrap();
        let body = client
            .get(format!("http://{address}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "ok");
    }
}
