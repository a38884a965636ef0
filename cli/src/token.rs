//! HS256 bearer tokens for the local stack, standing in for the JWT authorizer
//! (Cognito or any OIDC issuer) that API Gateway runs in AWS.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

/// The issuer of local tokens; `ocr dev` accepts no other.
pub const ISSUER: &str = "lambda-ocr-local";

/// A token for `sub`, valid for `ttl`.
pub fn mint(key: &[u8], sub: &str, ttl: Duration) -> Result<String, jsonwebtoken::errors::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": ISSUER,
        "sub": sub,
        "iat": now,
        "exp": now + ttl.as_secs() as i64,
        "token_use": "access",
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
}

/// The claims of a valid token, as API Gateway hands them to a function: every
/// value a string. Signature, algorithm, issuer and expiry are checked.
pub fn verify(
    key: &[u8],
    token: &str,
) -> Result<HashMap<String, String>, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(key),
        &validation,
    )?;
    Ok(data
        .claims
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (name, value)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_minted_token_verifies_with_its_claims() {
        let token = mint(KEY, "alice", Duration::from_secs(60)).unwrap();
        let claims = verify(KEY, &token).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iss"], ISSUER);
    }

    #[test]
    fn wrong_key_tampering_expiry_and_other_algorithms_are_refused() {
        let token = mint(KEY, "alice", Duration::from_secs(60)).unwrap();
        assert!(verify(b"another key, another key, another", &token).is_err());

        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = json!({"iss": ISSUER, "sub": "bob", "exp": 4_000_000_000u64});
        parts[1] = base64_url(forged.to_string().as_bytes());
        assert!(
            verify(KEY, &parts.join(".")).is_err(),
            "a changed payload must not verify"
        );

        let expired = json!({"iss": ISSUER, "sub": "alice", "exp": 1_000_000_000u64});
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(verify(KEY, &expired).is_err());

        let unsigned = format!("{}.{}.", base64_url(br#"{"alg":"none"}"#), parts[1]);
        assert!(verify(KEY, &unsigned).is_err());

        let foreign = json!({"iss": "someone-else", "sub": "alice", "exp": 4_000_000_000u64});
        let foreign = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &foreign,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(verify(KEY, &foreign).is_err());
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}
