//! Integration tests against moto's server: one binary, a module per port.

mod blob_store;
mod harness;
mod helpers;
mod iam;
mod job_store;
mod notifications;
mod pdf;
mod pipeline;
mod queue_and_events;
mod rate_limiter;
mod search;
mod secrets;
mod sweeper;
mod template;
mod tesseract;
mod upstage_client;
mod vocabulary;
