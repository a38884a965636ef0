//! Webhook signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over the
//! timestamp and the raw body, and their verification with a tolerance.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
pub const SIGNATURE_HEADER: &str = "Lambda-OCR-Signature";
pub const EVENT_ID_HEADER: &str = "Lambda-OCR-Event-Id";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The key that signs `owner`'s webhooks: derived from the master secret, so
/// that no receiver can sign for another tenant and no per-owner key is stored.
pub fn owner_key(master: &[u8], owner: &crate::domain::Owner) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC takes a key of any length");
    mac.update(b"lambda-ocr webhook key v1\0");
    mac.update(owner.as_str().as_bytes());
    format!("whsec_{}", hex::encode(mac.finalize().into_bytes()))
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Whether `header` signs `body` with `secret`, no older than `tolerance_seconds` at `now`.
/// Comparison is constant-time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_seconds: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    // abs_diff: an extreme `t` must not overflow the subtraction.
    if now.abs_diff(timestamp) > tolerance_seconds.unsigned_abs() {
        return false;
    }
    signatures
        .iter()
        .any(|signature| mac(secret, timestamp, body).verify_slice(signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"e1","type":"job.completed"}"#;
        let header = sign(b"whsec_test", 1_800_000_000, body);
        assert!(header.starts_with("t=1800000000,v1="));
        assert_eq!(header.len(), "t=1800000000,v1=".len() + 64);
        assert!(verify(b"whsec_test", &header, body, 1_800_000_010, 300));
        assert!(!verify(
            b"whsec_test",
            &header,
            br#"{"id":"e1","type":"job.failed"}"#,
            1_800_000_010,
            300
        ));
        assert!(!verify(b"other", &header, body, 1_800_000_010, 300));
        assert!(
            !verify(b"whsec_test", &header, body, 1_800_000_301, 300),
            "a replay after 5 minutes"
        );
        assert!(!verify(b"whsec_test", "v1=abc", body, 1_800_000_000, 300));
    }

    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        let body = b"{}";
        for t in [i64::MIN, i64::MAX, -1] {
            let header = sign(b"k", t, body);
            assert!(!verify(b"k", &header, body, 1_800_000_000, 300), "t={t}");
        }
        let header = format!("t={},v1=00", i64::MIN);
        assert!(!verify(b"k", &header, body, i64::MAX, 300));
    }

    #[test]
    fn each_owner_has_a_key_of_their_own() {
        let owner = |name: &str| crate::domain::Owner::parse(name).unwrap();
        let alice = owner_key(b"master", &owner("alice"));
        assert!(alice.starts_with("whsec_"), "{alice}");
        assert_eq!(alice.len(), "whsec_".len() + 64);
        assert_eq!(alice, owner_key(b"master", &owner("alice")), "stable");
        assert_ne!(alice, owner_key(b"master", &owner("bob")));
        assert_ne!(alice, owner_key(b"other master", &owner("alice")));
        let body = b"{}";
        let header = sign(alice.as_bytes(), 1_800_000_000, body);
        let bob = owner_key(b"master", &owner("bob"));
        assert!(!verify(bob.as_bytes(), &header, body, 1_800_000_000, 300));
    }

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // HMAC-SHA256("key", "1.") computed with `openssl dgst -sha256 -hmac key`.
        let header = sign(b"key", 1, b"");
        assert_eq!(
            header,
            "t=1,v1=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f"
        );
    }
}
