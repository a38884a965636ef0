//! Secrets from AWS Secrets Manager, cached for a while per process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use secrecy::SecretString;
use tokio::sync::Mutex;
use tracing::instrument;

use super::AwsCallError;
use crate::ports::{SecretError, SecretSource};

/// Secrets Manager with a per-container cache: one read per secret per `ttl`,
/// so a rotated secret is picked up within `ttl` without a call per job.
pub struct SecretsManagerSource {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (SecretString, Instant)>>,
}

impl SecretsManagerSource {
    /// With a client of the shared SDK configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, ttl: Duration) -> Self {
        Self::new(Client::new(sdk), ttl)
    }

    pub fn new(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    #[instrument(skip(self))]
    async fn secret(&self, id: &str) -> Result<SecretString, SecretError> {
        let mut cache = self.cache.lock().await;
        if let Some((value, fetched)) = cache.get(id)
            && fetched.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError::backend(AwsCallError::new("GetSecretValue", &e)))?;
        let value = output
            .secret_string()
            .filter(|value| !value.is_empty())
            .map(|value| SecretString::from(value.to_owned()))
            .ok_or_else(|| SecretError::Empty(id.to_owned()))?;
        cache.insert(id.to_owned(), (value.clone(), Instant::now()));
        Ok(value)
    }

    async fn forget(&self, id: &str) {
        self.cache.lock().await.remove(id);
    }
}
