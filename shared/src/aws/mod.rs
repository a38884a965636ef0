//! The ports over the AWS SDK: DynamoDB, S3, SQS, SNS and Secrets Manager,
//! each behind the crate feature of its service.

#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(feature = "dynamodb")]
mod rate_limiter;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "secrets")]
mod secrets;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sqs")]
mod sqs;

pub use aws_config::SdkConfig;
#[cfg(feature = "dynamodb")]
pub use dynamodb::{
    BY_HASH_ATTRIBUTES, BY_SEARCH_ATTRIBUTES, DynamoJobStore, INDEX_BY_HASH, INDEX_BY_OWNER,
    INDEX_BY_PENDING, INDEX_BY_SEARCH, by_owner_attributes,
};
#[cfg(feature = "dynamodb")]
pub use rate_limiter::DynamoRateLimiter;
#[cfg(feature = "s3")]
pub use s3::S3BlobStore;
#[cfg(feature = "secrets")]
pub use secrets::SecretsManagerSource;
#[cfg(feature = "sns")]
pub use sns::SnsEventPublisher;
#[cfg(feature = "sqs")]
pub use sqs::SqsJobQueue;

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls;

use crate::config::{AwsSettings, TrustStore};

/// Amazon Trust Services' roots: Amazon Root CA 1 to 4 and the Starfield
/// Services G2 root that cross-signs them.
const AMAZON_TRUST_ROOTS: &str = include_str!("amazon-trust-roots.pem");

/// The shared SDK configuration, loaded once per cold start: region and
/// credentials from the environment, the endpoint overridden for local runs.
/// Every client made from it shares one HTTPS client (aws-lc-rs, as the SDK's
/// default) trusting `settings.trust_store`: each client's construction builds
/// a TLS configuration from it, which costs five certificates with Amazon's
/// roots and the whole system store otherwise.
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(settings.trust_store));
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// An SDK failure with its full cause chain as its message (the SDK's own
/// Display says only "service error").
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct AwsCallError {
    pub operation: &'static str,
    pub detail: String,
}

impl AwsCallError {
    pub fn new(operation: &'static str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            operation,
            detail: crate::telemetry::error_chain(error),
        }
    }
}

/// The SDK's HTTPS client over the given roots.
pub fn https_client(
    trust_store: TrustStore,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    let roots = match trust_store {
        TrustStore::Amazon => tls::TrustStore::empty().with_pem_certificate(AMAZON_TRUST_ROOTS),
        TrustStore::System => tls::TrustStore::default(),
    };
    let context = tls::TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .expect("a trust store without options to refuse");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https()
}

#[cfg(all(test, feature = "dynamodb"))]
mod tests {
    use super::*;

    #[test]
    fn the_amazon_roots_are_the_five_trust_services_certificates() {
        use base64::Engine;
        let certificates: Vec<Vec<u8>> = AMAZON_TRUST_ROOTS
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body = block.split("-----END CERTIFICATE-----").next().unwrap();
                let base64: String = body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(base64)
                    .expect("each block is base64")
            })
            .collect();
        let subjects = [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ];
        assert_eq!(certificates.len(), subjects.len());
        for (der, subject) in certificates.iter().zip(subjects) {
            assert_eq!(der[0], 0x30, "{subject}: a DER sequence");
            let named = der.windows(subject.len()).any(|w| w == subject.as_bytes());
            assert!(named, "{subject} is the certificate's name");
        }
    }

    #[tokio::test]
    async fn clients_are_built_over_either_trust_store() {
        // A client's construction builds its TLS configuration: a root that did
        // not parse would panic here, not at the first request.
        for trust_store in [TrustStore::Amazon, TrustStore::System] {
            let settings = AwsSettings {
                endpoint_url: None,
                trust_store,
            };
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new("ap-northeast-2"))
                .http_client(https_client(settings.trust_store))
                .load()
                .await;
            let _client = aws_sdk_dynamodb::Client::new(&sdk);
        }
    }
}
