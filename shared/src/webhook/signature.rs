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
    if (now - timestamp).abs() > tolerance_seconds {
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
    fn the_signature_matches_an_independent_hmac() {
        // HMAC-SHA256("key", "1.") computed with `openssl dgst -sha256 -hmac key`.
        let header = sign(b"key", 1, b"");
        assert_eq!(
            header,
            "t=1,v1=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f"
        );
    }
}
