//! Webhooks: the signature a receiver verifies, and the rules that keep a
//! delivery from reaching anything but the public internet.

mod address;
mod signature;

pub use address::{
    AddressPolicy, Destination, MAX_WEBHOOK_URL_CHARS, Resolver, SystemResolver, WebhookUrlError,
    blocked_reason, check_url,
};
pub use signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, owner_key, sign, verify};
