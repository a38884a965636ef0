//! The codes a rejected or failed job carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a job was rejected or failed, as programs match on it. The spec's enum
/// (`openapi.yaml`) and the demo page's labels are checked against [`ErrorCode::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Ingest: the upload itself.
    UnsupportedType,
    /// No longer issued: earlier releases refused content of another accepted
    /// type than the declared one, which is now read as what it is. Kept so
    /// that jobs rejected then still read.
    TypeMismatch,
    SizeMismatch,
    EmptyFile,
    FileTooLarge,
    TruncatedFile,
    ChecksumMismatch,
    /// An image declaring more pixels than `MAX_IMAGE_PIXELS` (a decompression bomb).
    ImageTooLarge,
    /// A PDF of more pages than `MAX_PDF_PAGES`.
    TooManyPages,
    /// A PDF that opens only with a password.
    EncryptedDocument,
    // The OCR engine: the document.
    UnsupportedDocument,
    DocumentTooLarge,
    UnreadableDocument,
    DocumentTooComplex,
    /// A photo that yields no usable text and shows why (blurry, too dark…):
    /// the user should take it again.
    RetakePhoto,
    // The OCR engine: the service.
    OcrUnavailable,
    OcrUnauthorized,
    // The worker.
    StorageUnavailable,
    UploadMissing,
    UploadChanged,
    ResultTooLarge,
    // The sweeper.
    UploadExpired,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::UnsupportedType,
        ErrorCode::TypeMismatch,
        ErrorCode::SizeMismatch,
        ErrorCode::EmptyFile,
        ErrorCode::FileTooLarge,
        ErrorCode::TruncatedFile,
        ErrorCode::ChecksumMismatch,
        ErrorCode::ImageTooLarge,
        ErrorCode::TooManyPages,
        ErrorCode::EncryptedDocument,
        ErrorCode::UnsupportedDocument,
        ErrorCode::DocumentTooLarge,
        ErrorCode::UnreadableDocument,
        ErrorCode::DocumentTooComplex,
        ErrorCode::OcrUnavailable,
        ErrorCode::OcrUnauthorized,
        ErrorCode::RetakePhoto,
        ErrorCode::StorageUnavailable,
        ErrorCode::UploadMissing,
        ErrorCode::UploadChanged,
        ErrorCode::ResultTooLarge,
        ErrorCode::UploadExpired,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnsupportedType => "unsupported_type",
            ErrorCode::TypeMismatch => "type_mismatch",
            ErrorCode::SizeMismatch => "size_mismatch",
            ErrorCode::EmptyFile => "empty_file",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::TruncatedFile => "truncated_file",
            ErrorCode::ChecksumMismatch => "checksum_mismatch",
            ErrorCode::ImageTooLarge => "image_too_large",
            ErrorCode::TooManyPages => "too_many_pages",
            ErrorCode::EncryptedDocument => "encrypted_document",
            ErrorCode::UnsupportedDocument => "unsupported_document",
            ErrorCode::DocumentTooLarge => "document_too_large",
            ErrorCode::UnreadableDocument => "unreadable_document",
            ErrorCode::DocumentTooComplex => "document_too_complex",
            ErrorCode::OcrUnavailable => "ocr_unavailable",
            ErrorCode::OcrUnauthorized => "ocr_unauthorized",
            ErrorCode::RetakePhoto => "retake_photo",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::UploadMissing => "upload_missing",
            ErrorCode::UploadChanged => "upload_changed",
            ErrorCode::ResultTooLarge => "result_too_large",
            ErrorCode::UploadExpired => "upload_expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == raw)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serialises_as_its_name_and_parses_back() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
