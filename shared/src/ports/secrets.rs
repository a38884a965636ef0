//! The secrets port: named secret strings (the Upstage key, the webhook
//! master key), cached by the adapters.

use async_trait::async_trait;
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} has no string value")]
    Empty(String),
    #[error("secret source: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SecretError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        SecretError::Backend(Box::new(error))
    }
}

#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret(&self, id: &str) -> Result<SecretString, SecretError>;

    /// Drops a cached value, so the next read fetches it anew: after the
    /// service it is for refused it (the secret was rotated meanwhile).
    async fn forget(&self, _id: &str) {}
}
