//! Identifiers: job ids (UUID v4), owners (the token's subject) and SHA-256
//! digests, each parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("job id must be a lowercase UUID v4")]
    JobId,
    #[error("owner must be 1 to 256 visible characters")]
    Owner,
    #[error("sha256 must be 64 hexadecimal characters")]
    Sha256,
    #[error(
        "filename must be 1 to {MAX_FILENAME_CHARS} characters with no control characters or direction overrides"
    )]
    Filename,
}

/// The longest filename a job keeps, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;

/// A client's name for its file, checked once at the API: 1 to 255 characters
/// once trimmed, none of them a control character. Metadata only: no key is
/// ever built from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filename(String);

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069): in a name they make `receipt\u{202E}gnp.exe` show as
/// `receiptexe.png`.
fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl Filename {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let name = raw.trim();
        if name.is_empty()
            || name.chars().count() > MAX_FILENAME_CHARS
            || name.chars().any(|c| c.is_control() || is_bidi_override(c))
        {
            return Err(IdError::Filename);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Filename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A webhook URL that passed the address rules when its job was opened
/// (`webhook::check_url`); the notifier checks where it resolves again at
/// every delivery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// The URL `check_url` accepted.
    pub fn checked(url: &url::Url) -> Self {
        Self(url.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job identifier: a random UUID v4 (122 random bits), so that holding one
/// id tells nothing about any other job.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    pub fn new() -> Self {
        Self(Uuid::new_v4().hyphenated().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let id = Uuid::try_parse(raw).map_err(|_| IdError::JobId)?;
        let canonical = id.hyphenated().to_string();
        if id.get_version_num() != 4 || canonical != raw {
            return Err(IdError::JobId);
        }
        Ok(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the client's upload lands: built from the id alone, never from the filename.
    pub fn upload_key(&self) -> String {
        format!("uploads/{}", self.0)
    }

    pub fn result_key(&self) -> String {
        format!("results/{}.json", self.0)
    }

    /// Where the partial results of a document read in chunks are kept until
    /// they are merged: `chunks/{job_id}/`.
    pub fn chunks_prefix(&self) -> String {
        format!("chunks/{}/", self.0)
    }

    /// The partial result of pages `first`–`last` (zero-padded, so that keys sort by page).
    pub fn chunk_key(&self, first: u32, last: u32) -> String {
        format!("{}{first:05}-{last:05}.json", self.chunks_prefix())
    }

    /// The job id of an `uploads/{job_id}` key, or `None` for any other key.
    pub fn from_upload_key(key: &str) -> Option<Self> {
        key.strip_prefix("uploads/")
            .and_then(|id| Self::parse(id).ok())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl FromStr for JobId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for JobId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

/// The tenant a job belongs to: the `sub` claim of the caller's token.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Owner(String);

impl Owner {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let valid = !raw.is_empty()
            && raw.chars().count() <= 256
            && raw.chars().all(|c| !c.is_control() && !c.is_whitespace());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(IdError::Owner)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Owner {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Owner> for String {
    fn from(owner: Owner) -> Self {
        owner.0
    }
}

/// A SHA-256 digest as 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(IdError::Sha256)
        }
    }

    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    /// The digest of `bytes` held in memory.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_digest(sha2::Sha256::digest(bytes).into())
    }

    /// S3's `x-amz-checksum-sha256` form: base64 of the 32 raw bytes.
    pub fn from_base64(raw: &str) -> Result<Self, IdError> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| IdError::Sha256)?;
        let digest: [u8; 32] = bytes.try_into().map_err(|_| IdError::Sha256)?;
        Ok(Self::from_digest(digest))
    }

    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        let bytes = hex::decode(&self.0).expect("a Sha256Hex is always valid hex");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({})", self.0)
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sha256Hex> for String {
    fn from(sha: Sha256Hex) -> Self {
        sha.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filename_is_trimmed_and_refused_when_empty_too_long_or_with_control_characters() {
        assert_eq!(
            Filename::parse("  사업자등록증 사본.pdf ")
                .unwrap()
                .as_str(),
            "사업자등록증 사본.pdf"
        );
        let longest = "가".repeat(MAX_FILENAME_CHARS);
        assert!(Filename::parse(&longest).is_ok());
        for bad in [
            "",
            "   ",
            "a\u{0}b.png",
            "a\nb.png",
            "receipt\u{202E}gnp.exe",
            "a\u{2066}b.png",
            &format!("{longest}가"),
        ] {
            assert_eq!(Filename::parse(bad), Err(IdError::Filename), "{bad:?}");
        }
        let json = serde_json::to_string(&Filename::parse("a.png").unwrap()).unwrap();
        assert_eq!(json, "\"a.png\"");
    }

    #[test]
    fn new_job_ids_are_distinct_v4_uuids_that_parse_back() {
        let a = JobId::new();
        let b = JobId::new();
        assert_ne!(a, b);
        assert_eq!(JobId::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(JobId::from_upload_key(&a.upload_key()), Some(a));
    }

    #[test]
    fn job_id_refuses_anything_but_a_canonical_v4_uuid() {
        for raw in [
            "",
            "../etc/passwd",
            "6F9619FF-8B86-4011-B42D-00C04FC964FF",
            "6f9619ff8b864011b42d00c04fc964ff",
            "6f9619ff-8b86-1011-b42d-00c04fc964ff",
        ] {
            assert_eq!(JobId::parse(raw), Err(IdError::JobId), "{raw:?}");
        }
        assert!(JobId::parse("6f9619ff-8b86-4011-b42d-00c04fc964ff").is_ok());
        assert_eq!(
            JobId::from_upload_key("results/6f9619ff-8b86-4011-b42d-00c04fc964ff"),
            None
        );
    }

    #[test]
    fn owner_refuses_empty_blank_and_overlong_names() {
        assert!(Owner::parse("user-1").is_ok());
        assert!(Owner::parse("사용자").is_ok());
        for raw in ["", "a b", "line\nbreak"] {
            assert_eq!(Owner::parse(raw), Err(IdError::Owner), "{raw:?}");
        }
        assert_eq!(Owner::parse(&"x".repeat(257)), Err(IdError::Owner));
    }

    #[test]
    fn sha256_is_normalised_to_lowercase_and_round_trips_through_base64() {
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let sha = Sha256Hex::parse(upper).unwrap();
        assert_eq!(sha.as_str(), upper.to_ascii_lowercase());
        assert_eq!(
            sha.to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(Sha256Hex::from_base64(&sha.to_base64()), Ok(sha));
        assert_eq!(Sha256Hex::parse("abc"), Err(IdError::Sha256));
        assert_eq!(Sha256Hex::parse(&"g".repeat(64)), Err(IdError::Sha256));
        assert_eq!(Sha256Hex::from_base64("AAAA"), Err(IdError::Sha256));
    }
}
