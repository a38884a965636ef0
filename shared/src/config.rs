//! Typed settings, read once at start-up from the environment. A missing or
//! malformed variable is an error that names it; secrets never print.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::FileType;
use crate::upload_policy::{DEFAULT_MAX_PAGES, DEFAULT_MAX_PIXELS, UploadLimits};

/// The names of every variable the functions read, in one place.
pub mod vars {
    pub const JOBS_TABLE: &str = "JOBS_TABLE";
    pub const DOCUMENTS_BUCKET: &str = "DOCUMENTS_BUCKET";
    pub const JOBS_QUEUE_URL: &str = "JOBS_QUEUE_URL";
    pub const EVENTS_TOPIC_ARN: &str = "EVENTS_TOPIC_ARN";
    pub const UPSTAGE_SECRET_ARN: &str = "UPSTAGE_SECRET_ARN";
    pub const UPSTAGE_API_KEY: &str = "UPSTAGE_API_KEY";
    pub const UPSTAGE_BASE_URL: &str = "UPSTAGE_BASE_URL";
    pub const UPSTAGE_MODEL: &str = "UPSTAGE_MODEL";
    pub const OCR_ENGINE: &str = "OCR_ENGINE";
    pub const MAX_UPLOAD_BYTES: &str = "MAX_UPLOAD_BYTES";
    pub const ALLOWED_TYPES: &str = "ALLOWED_TYPES";
    pub const MAX_IMAGE_PIXELS: &str = "MAX_IMAGE_PIXELS";
    pub const MAX_PDF_PAGES: &str = "MAX_PDF_PAGES";
    pub const UPLOAD_URL_TTL_SECONDS: &str = "UPLOAD_URL_TTL_SECONDS";
    pub const OCR_MAX_ATTEMPTS: &str = "OCR_MAX_ATTEMPTS";
    pub const OCR_RATE_LIMIT_RPS: &str = "OCR_RATE_LIMIT_RPS";
    pub const WEBHOOK_SECRET_ARN: &str = "WEBHOOK_SECRET_ARN";
    pub const RETENTION_DAYS: &str = "RETENTION_DAYS";
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    pub const AWS_TRUST_STORE: &str = "AWS_TRUST_STORE";
    /// Set by Lambda in every function's environment.
    pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
    pub const JOB_CREATE_RATE_PER_MINUTE: &str = "JOB_CREATE_RATE_PER_MINUTE";
    pub const OCR_LEASE_SECONDS: &str = "OCR_LEASE_SECONDS";
    pub const OCR_RETRY_BASE_SECONDS: &str = "OCR_RETRY_BASE_SECONDS";
    pub const LOW_CONFIDENCE_THRESHOLD: &str = "LOW_CONFIDENCE_THRESHOLD";
    /// `ocr dev` only: more browser origins for the API and the bucket (CORS).
    pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
    pub const UPSTAGE_TIMEOUT_SECONDS: &str = "UPSTAGE_TIMEOUT_SECONDS";
    pub const WEBHOOK_ALLOW_LOCAL: &str = "WEBHOOK_ALLOW_LOCAL";
    pub const WEBHOOK_MAX_ATTEMPTS: &str = "WEBHOOK_MAX_ATTEMPTS";
    pub const NOTIFIER_QUEUE_URL: &str = "NOTIFIER_QUEUE_URL";
    pub const SWEEP_STALE_SECONDS: &str = "SWEEP_STALE_SECONDS";
    pub const SWEEP_MAX_JOBS: &str = "SWEEP_MAX_JOBS";
    pub const OCR_MAX_BYTES_IN_FLIGHT: &str = "OCR_MAX_BYTES_IN_FLIGHT";
    pub const OCR_PAGES_PER_CALL: &str = "OCR_PAGES_PER_CALL";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set")]
    Missing { name: &'static str },
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where settings come from: the process environment in a function, a map in tests.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Reads and checks variables; an empty value counts as unset.
pub struct Env<'a>(&'a dyn EnvSource);

impl<'a> Env<'a> {
    pub fn new(source: &'a dyn EnvSource) -> Self {
        Self(source)
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.0
            .var(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing { name })
    }

    /// A number (or other `FromStr` value) within `range`, or `default` when unset.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.optional(name) else {
            return Ok(default);
        };
        let value: T = raw.parse().map_err(|_| ConfigError::Invalid {
            name,
            value: raw.clone(),
            reason: "not a number".into(),
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: format!("must be between {} and {}", range.start(), range.end()),
            });
        }
        Ok(value)
    }

    /// `true` or `false` (also `1`/`0`), `false` when unset.
    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self
            .optional(name)
            .map(|raw| raw.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name,
                value: other.to_owned(),
                reason: "must be true or false".into(),
            }),
        }
    }

    fn url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.optional(name).unwrap_or_else(|| default.to_owned());
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(value.trim_end_matches('/').to_owned())
        } else {
            Err(ConfigError::Invalid {
                name,
                value,
                reason: "must be an http(s) URL".into(),
            })
        }
    }
}

/// Where the AWS clients connect: AWS itself, or a local endpoint (moto).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub endpoint_url: Option<String>,
    pub trust_store: TrustStore,
}

/// The roots the AWS clients' TLS trusts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrustStore {
    /// Amazon Trust Services' five roots, compiled in: every AWS endpoint's
    /// chain ends in one of them, and a start reads and parses no system store.
    /// The default in Lambda when no endpoint is overridden.
    Amazon,
    /// The operating system's store: elsewhere, with an endpoint override, or
    /// behind a proxy that presents its own certificates.
    #[default]
    System,
}

impl AwsSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let endpoint_url = match env.optional(vars::AWS_ENDPOINT_URL) {
            Some(_) => Some(env.url(vars::AWS_ENDPOINT_URL, "")?),
            None => None,
        };
        let in_lambda = env.optional(vars::AWS_LAMBDA_FUNCTION_NAME).is_some();
        let trust_store = match env.optional(vars::AWS_TRUST_STORE).as_deref() {
            None if in_lambda && endpoint_url.is_none() => TrustStore::Amazon,
            None => TrustStore::System,
            Some("amazon") => TrustStore::Amazon,
            Some("system") => TrustStore::System,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: vars::AWS_TRUST_STORE,
                    value: other.to_owned(),
                    reason: "must be amazon or system".into(),
                });
            }
        };
        Ok(Self {
            endpoint_url,
            trust_store,
        })
    }
}

/// What every function reads to find the stack: the AWS endpoint (set for
/// local runs only), the jobs table and the documents bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackConfig {
    pub aws: AwsSettings,
    pub table: String,
    pub bucket: String,
}

impl StackConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            table: env.required(vars::JOBS_TABLE)?,
            bucket: env.required(vars::DOCUMENTS_BUCKET)?,
        })
    }
}

/// Where a job goes on from the functions that move it (ingest, the worker,
/// the sweeper): the OCR queue, and the topic of its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOutlets {
    pub queue_url: String,
    pub topic_arn: String,
}

impl JobOutlets {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            queue_url: env.required(vars::JOBS_QUEUE_URL)?,
            topic_arn: env.required(vars::EVENTS_TOPIC_ARN)?,
        })
    }
}

/// The upload rules and how long things live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSettings {
    pub limits: UploadLimits,
    pub upload_url_ttl: Duration,
    pub retention: Duration,
}

pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

impl UploadSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_bytes = env.number(
            vars::MAX_UPLOAD_BYTES,
            DEFAULT_MAX_UPLOAD_BYTES,
            1..=5 * 1024 * 1024 * 1024,
        )?;
        let allowed = match env.optional(vars::ALLOWED_TYPES) {
            None => FileType::ALL.to_vec(),
            Some(raw) => parse_types(&raw)?,
        };
        let max_pixels = env.number(
            vars::MAX_IMAGE_PIXELS,
            DEFAULT_MAX_PIXELS,
            1_000_000..=1_000_000_000,
        )?;
        let max_pages = env.number(vars::MAX_PDF_PAGES, DEFAULT_MAX_PAGES, 1..=100_000)?;
        let ttl = env.number(vars::UPLOAD_URL_TTL_SECONDS, 900u64, 60..=7 * 86_400)?;
        let days = env.number(vars::RETENTION_DAYS, 30u64, 1..=3650)?;
        Ok(Self {
            limits: UploadLimits {
                max_bytes,
                allowed,
                max_pixels,
                max_pages,
            },
            upload_url_ttl: Duration::from_secs(ttl),
            retention: Duration::from_secs(days * 86_400),
        })
    }
}

fn parse_types(raw: &str) -> Result<Vec<FileType>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            FileType::from_mime(item).ok_or_else(|| ConfigError::Invalid {
                name: vars::ALLOWED_TYPES,
                value: raw.to_owned(),
                reason: format!("{item} is not a supported type"),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|types| {
            if types.is_empty() {
                Err(ConfigError::Invalid {
                    name: vars::ALLOWED_TYPES,
                    value: raw.to_owned(),
                    reason: "lists no type".into(),
                })
            } else {
                Ok(types)
            }
        })
}

/// Where the Upstage key comes from: Secrets Manager in AWS, the environment locally.
#[derive(Clone, Debug)]
pub enum UpstageKey {
    Secret { arn: String },
    Inline(SecretString),
}

#[derive(Clone, Debug)]
pub struct UpstageSettings {
    pub key: UpstageKey,
    pub base_url: String,
    pub model: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Upstage,
    Tesseract,
}

#[derive(Clone, Debug)]
pub struct OcrSettings {
    pub engine: EngineKind,
    /// Present whenever a key is configured (always when the engine is Upstage).
    pub upstage: Option<UpstageSettings>,
    pub max_attempts: u32,
    pub rate_limit_rps: u32,
}

impl OcrSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let key = match (
            env.optional(vars::UPSTAGE_SECRET_ARN),
            env.optional(vars::UPSTAGE_API_KEY),
        ) {
            (Some(arn), _) => Some(UpstageKey::Secret { arn }),
            (None, Some(key)) => Some(UpstageKey::Inline(SecretString::from(key))),
            (None, None) => None,
        };
        let upstage = match key {
            Some(key) => Some(UpstageSettings {
                key,
                base_url: env.url(vars::UPSTAGE_BASE_URL, "https://api.upstage.ai")?,
                model: env
                    .optional(vars::UPSTAGE_MODEL)
                    .unwrap_or_else(|| "ocr".into()),
            }),
            None => None,
        };
        let engine = match env.optional(vars::OCR_ENGINE).as_deref() {
            Some("upstage") => EngineKind::Upstage,
            Some("tesseract") => EngineKind::Tesseract,
            None if upstage.is_some() => EngineKind::Upstage,
            None => EngineKind::Tesseract,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: vars::OCR_ENGINE,
                    value: other.to_owned(),
                    reason: "must be upstage or tesseract".into(),
                });
            }
        };
        if engine == EngineKind::Upstage && upstage.is_none() {
            return Err(ConfigError::Missing {
                name: vars::UPSTAGE_SECRET_ARN,
            });
        }
        Ok(Self {
            engine,
            upstage,
            max_attempts: env.number(vars::OCR_MAX_ATTEMPTS, 5, 1..=50)?,
            rate_limit_rps: env.number(vars::OCR_RATE_LIMIT_RPS, 3, 1..=1000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_optional_variables_are_unset() {
        let source = env(&[]);
        let settings = UploadSettings::from_env(&Env::new(&source)).unwrap();
        assert_eq!(settings.limits.max_bytes, 50 * 1024 * 1024);
        assert_eq!(settings.limits.allowed, FileType::ALL.to_vec());
        assert_eq!(settings.upload_url_ttl, Duration::from_secs(900));
        assert_eq!(settings.retention, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        let source = env(&[(vars::JOBS_TABLE, "  ")]);
        let error = Env::new(&source).required(vars::JOBS_TABLE).unwrap_err();
        assert_eq!(error.to_string(), "JOBS_TABLE is not set");
    }

    #[test]
    fn malformed_values_are_named_with_the_reason() {
        let source = env(&[(vars::MAX_UPLOAD_BYTES, "50MB")]);
        let error = UploadSettings::from_env(&Env::new(&source)).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"MAX_UPLOAD_BYTES="50MB" is not valid: not a number"#
        );

        let source = env(&[(vars::ALLOWED_TYPES, "image/png, text/html")]);
        let error = UploadSettings::from_env(&Env::new(&source)).unwrap_err();
        assert!(error.to_string().starts_with("ALLOWED_TYPES="), "{error}");
        assert!(
            error
                .to_string()
                .contains("text/html is not a supported type")
        );

        let source = env(&[(vars::OCR_MAX_ATTEMPTS, "0")]);
        let error = OcrSettings::from_env(&Env::new(&source)).unwrap_err();
        assert!(error.to_string().contains("between 1 and 50"), "{error}");

        let source = env(&[(vars::AWS_ENDPOINT_URL, "localhost:5000")]);
        assert!(AwsSettings::from_env(&Env::new(&source)).is_err());
    }

    #[test]
    fn the_engine_follows_the_key_unless_chosen() {
        let none = env(&[]);
        let settings = OcrSettings::from_env(&Env::new(&none)).unwrap();
        assert_eq!(settings.engine, EngineKind::Tesseract);

        let with_key = env(&[(vars::UPSTAGE_API_KEY, "up_secret_value")]);
        let settings = OcrSettings::from_env(&Env::new(&with_key)).unwrap();
        assert_eq!(settings.engine, EngineKind::Upstage);
        let upstage = settings.upstage.unwrap();
        assert_eq!(upstage.base_url, "https://api.upstage.ai");
        assert_eq!(upstage.model, "ocr");
        match &upstage.key {
            UpstageKey::Inline(key) => assert_eq!(key.expose_secret(), "up_secret_value"),
            other => panic!("unexpected key source {other:?}"),
        }

        let forced = env(&[(vars::OCR_ENGINE, "upstage")]);
        let error = OcrSettings::from_env(&Env::new(&forced)).unwrap_err();
        assert_eq!(error.to_string(), "UPSTAGE_SECRET_ARN is not set");
    }

    #[test]
    fn the_sdk_trusts_amazons_roots_in_lambda_and_the_system_store_elsewhere() {
        let settings = |pairs: &[(&str, &str)]| {
            let source: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            AwsSettings::from_env(&Env::new(&source)).map(|s| s.trust_store)
        };
        let lambda = (vars::AWS_LAMBDA_FUNCTION_NAME, "lambda-ocr-worker");
        assert_eq!(settings(&[lambda]).unwrap(), TrustStore::Amazon);
        assert_eq!(settings(&[]).unwrap(), TrustStore::System);
        let moto = (vars::AWS_ENDPOINT_URL, "http://127.0.0.1:5000");
        assert_eq!(settings(&[lambda, moto]).unwrap(), TrustStore::System);
        let system = (vars::AWS_TRUST_STORE, "system");
        assert_eq!(settings(&[lambda, system]).unwrap(), TrustStore::System);
        let amazon = (vars::AWS_TRUST_STORE, "amazon");
        assert_eq!(settings(&[amazon]).unwrap(), TrustStore::Amazon);
        let error = settings(&[(vars::AWS_TRUST_STORE, "mine")]).unwrap_err();
        assert!(error.to_string().contains("amazon or system"), "{error}");
    }

    #[test]
    fn flags_are_true_or_false() {
        let source = env(&[(vars::WEBHOOK_ALLOW_LOCAL, "TRUE")]);
        assert_eq!(Env::new(&source).flag(vars::WEBHOOK_ALLOW_LOCAL), Ok(true));
        let source = env(&[]);
        assert_eq!(Env::new(&source).flag(vars::WEBHOOK_ALLOW_LOCAL), Ok(false));
        let source = env(&[(vars::WEBHOOK_ALLOW_LOCAL, "yes")]);
        assert!(Env::new(&source).flag(vars::WEBHOOK_ALLOW_LOCAL).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let source = env(&[(vars::UPSTAGE_API_KEY, "up_secret_value")]);
        let settings = OcrSettings::from_env(&Env::new(&source)).unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("up_secret_value"), "{printed}");
    }
}
