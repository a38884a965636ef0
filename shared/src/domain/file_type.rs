//! The file types accepted for OCR, recognised by their magic bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The file formats the pipeline accepts: what both OCR engines can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FileType {
    Png,
    Jpeg,
    Tiff,
    Bmp,
    Webp,
    Heic,
    Pdf,
}

impl FileType {
    pub const ALL: [FileType; 7] = [
        FileType::Png,
        FileType::Jpeg,
        FileType::Tiff,
        FileType::Bmp,
        FileType::Webp,
        FileType::Heic,
        FileType::Pdf,
    ];

    /// The canonical media type, as the client must declare and sign it.
    pub const fn mime(self) -> &'static str {
        match self {
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
            FileType::Tiff => "image/tiff",
            FileType::Bmp => "image/bmp",
            FileType::Webp => "image/webp",
            FileType::Heic => "image/heic",
            FileType::Pdf => "application/pdf",
        }
    }

    /// The type a client declared, by media type (parameters and case ignored).
    pub fn from_mime(raw: &str) -> Option<Self> {
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/png" => Some(FileType::Png),
            "image/jpeg" => Some(FileType::Jpeg),
            "image/tiff" => Some(FileType::Tiff),
            "image/bmp" | "image/x-ms-bmp" => Some(FileType::Bmp),
            "image/webp" => Some(FileType::Webp),
            "image/heic" | "image/heif" => Some(FileType::Heic),
            "application/pdf" => Some(FileType::Pdf),
            _ => None,
        }
    }

    /// The real type of a file from its first bytes, whatever its name or declared type says.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        let kind = infer::get(head)?;
        match kind.mime_type() {
            "image/png" => Some(FileType::Png),
            "image/jpeg" => Some(FileType::Jpeg),
            "image/tiff" => Some(FileType::Tiff),
            "image/bmp" => Some(FileType::Bmp),
            "image/webp" => Some(FileType::Webp),
            "image/heif" | "image/heic" => Some(FileType::Heic),
            "application/pdf" => Some(FileType::Pdf),
            _ => None,
        }
    }

    /// What the sniffer saw, for a readable rejection when it is not an allowed type.
    pub fn describe(head: &[u8]) -> String {
        match infer::get(head) {
            Some(kind) => kind.mime_type().to_owned(),
            None if head.is_empty() => "an empty file".to_owned(),
            None => "an unrecognised format".to_owned(),
        }
    }
}

impl TryFrom<String> for FileType {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_mime(&value).ok_or_else(|| format!("{value} is not an accepted file type"))
    }
}

impl From<FileType> for String {
    fn from(kind: FileType) -> Self {
        kind.mime().to_owned()
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}
