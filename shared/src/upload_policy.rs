//! What an upload must be to be read: an allowed type, by its bytes as well as
//! by its declaration, a size within the limits, an image's declared pixels,
//! a PDF's or PNG's or JPEG's end marker, and a PDF's page count.

use tracing::info;

use crate::domain::{ErrorCode, FileType};

/// How many leading bytes are read to find an image's dimensions: a JPEG's
/// frame header comes after its EXIF and colour profile blocks.
pub const HEADER_BYTES: u64 = 64 * 1024;
/// Pixels an image may declare: below Upstage's documented 100–200 million
/// per page, far above a 50-megapixel phone photo or an A4 page at 600 dpi.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
/// Pages a PDF may have: ten calls of Upstage's 100 pages each.
pub const DEFAULT_MAX_PAGES: u32 = 1000;
/// How many trailing bytes are searched for a complete file's end marker
/// (PDF, PNG, JPEG). The formats put it at the end, but readers accept bytes
/// appended after it (signature blocks, padding, a mailer's trailer), and so do we.
pub const TAIL_BYTES: u64 = 64 * 1024;

/// The limits an upload is held to, from configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_bytes: u64,
    pub allowed: Vec<FileType>,
    /// Width × height an image may declare; more is refused before decoding.
    pub max_pixels: u64,
    /// Pages a PDF may have; more is refused before any OCR.
    pub max_pages: u32,
}

/// Why an upload (or the request for one) is refused: each has a stable code and a sentence a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadRejection {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {size} bytes; the limit is {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("the file is {actual} bytes but {declared} bytes were declared")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("{declared} is not an accepted type; send one of: {accepted}")]
    DeclaredTypeNotAllowed { declared: String, accepted: String },
    #[error("the file's content is {seen}, which is not an accepted type; send one of: {accepted}")]
    TypeNotAllowed { seen: String, accepted: String },
    #[error("the {kind} is incomplete: it has no end marker (was the upload cut short?)")]
    Truncated { kind: &'static str },
    #[error(
        "the image declares {width} × {height} pixels; the limit is {max} pixels (send a smaller scan or photo)"
    )]
    TooManyPixels { width: u64, height: u64, max: u64 },
    #[error("the {kind} has {pages} pages; the limit is {max} pages (split it into smaller files)")]
    TooManyPages {
        kind: &'static str,
        pages: u32,
        max: u32,
    },
    #[error("the PDF is protected by a password; remove the password and upload it again")]
    EncryptedPdf,
    #[error("the PDF cannot be read: {reason}")]
    UnreadablePdf { reason: String },
    #[error("the image cannot be read: {reason}")]
    UnreadableImage { reason: String },
    #[error("the PDF is too complex to read: {reason}")]
    ComplexPdf { reason: String },
}

impl UploadRejection {
    /// The stable code clients match on.
    pub const fn code(&self) -> ErrorCode {
        match self {
            UploadRejection::Empty => ErrorCode::EmptyFile,
            UploadRejection::TooLarge { .. } => ErrorCode::FileTooLarge,
            UploadRejection::SizeMismatch { .. } => ErrorCode::SizeMismatch,
            UploadRejection::DeclaredTypeNotAllowed { .. }
            | UploadRejection::TypeNotAllowed { .. } => ErrorCode::UnsupportedType,
            UploadRejection::Truncated { .. } => ErrorCode::TruncatedFile,
            UploadRejection::TooManyPixels { .. } => ErrorCode::ImageTooLarge,
            UploadRejection::TooManyPages { .. } => ErrorCode::TooManyPages,
            UploadRejection::EncryptedPdf => ErrorCode::EncryptedDocument,
            UploadRejection::UnreadablePdf { .. } | UploadRejection::UnreadableImage { .. } => {
                ErrorCode::UnreadableDocument
            }
            UploadRejection::ComplexPdf { .. } => ErrorCode::DocumentTooComplex,
        }
    }
}

impl UploadLimits {
    fn accepted(&self) -> String {
        self.allowed
            .iter()
            .map(|kind| kind.mime())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn check_size(&self, size: u64) -> Result<(), UploadRejection> {
        if size == 0 {
            return Err(UploadRejection::Empty);
        }
        if size > self.max_bytes {
            return Err(UploadRejection::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// What a client declares when it asks for an upload slot.
    pub fn check_declaration(
        &self,
        content_type: &str,
        size: u64,
    ) -> Result<FileType, UploadRejection> {
        let declared = FileType::from_mime(content_type)
            .filter(|kind| self.allowed.contains(kind))
            .ok_or_else(|| UploadRejection::DeclaredTypeNotAllowed {
                declared: content_type.to_owned(),
                accepted: self.accepted(),
            })?;
        self.check_size(size)?;
        Ok(declared)
    }

    /// What actually arrived: its size against the declaration and the limit,
    /// and the type its first bytes show, which must be an accepted one. A
    /// file is read as what it is: a PNG declared as a JPEG (a browser names
    /// the type from the file's name) is read as a PNG.
    pub fn check_upload(
        &self,
        declared: FileType,
        declared_size: u64,
        actual_size: u64,
        head: &[u8],
    ) -> Result<FileType, UploadRejection> {
        self.check_size(actual_size)?;
        if actual_size != declared_size {
            return Err(UploadRejection::SizeMismatch {
                declared: declared_size,
                actual: actual_size,
            });
        }
        let detected = FileType::sniff(head)
            .filter(|kind| self.allowed.contains(kind))
            .ok_or_else(|| UploadRejection::TypeNotAllowed {
                seen: FileType::describe(head),
                accepted: self.accepted(),
            })?;
        if detected != declared {
            info!(
                declared = declared.mime(),
                detected = detected.mime(),
                "read as its content shows"
            );
        }
        Ok(detected)
    }

    /// An image's declared dimensions, read from its header (`head`: its first
    /// `HEADER_BYTES`), against `max_pixels`: a decompression bomb is refused
    /// before anything decodes it. A header that cannot be read here is left to
    /// the engine, which refuses what it cannot decode.
    pub fn check_pixels(&self, kind: FileType, head: &[u8]) -> Result<(), UploadRejection> {
        if kind == FileType::Pdf {
            return Ok(());
        }
        let Ok(size) = imagesize::blob_size(head) else {
            return Ok(());
        };
        self.check_page_pixels(&[(size.width as u64, size.height as u64)])
    }

    /// A PDF's page count against `max_pages`.
    pub fn check_pages(&self, pages: u32) -> Result<(), UploadRejection> {
        self.check_pages_of("PDF", pages)
    }

    /// A document's page count (a PDF's, a TIFF's) against `max_pages`.
    pub fn check_pages_of(&self, kind: &'static str, pages: u32) -> Result<(), UploadRejection> {
        if pages > self.max_pages {
            return Err(UploadRejection::TooManyPages {
                kind,
                pages,
                max: self.max_pages,
            });
        }
        Ok(())
    }

    /// Each page's declared width × height against `max_pixels`.
    pub fn check_page_pixels(&self, pages: &[(u64, u64)]) -> Result<(), UploadRejection> {
        for &(width, height) in pages {
            if width.saturating_mul(height) > self.max_pixels {
                return Err(UploadRejection::TooManyPixels {
                    width,
                    height,
                    max: self.max_pixels,
                });
            }
        }
        Ok(())
    }

    /// The last bytes (`TAIL_BYTES`) of a file whose format ends with a
    /// marker: PDF's `%%EOF`, PNG's `IEND` chunk, JPEG's end-of-image. Bytes
    /// after the marker are allowed (signatures, padding, a camera's extras),
    /// as readers allow them. Other formats are not checked here.
    pub fn check_tail(&self, kind: FileType, tail: &[u8]) -> Result<(), UploadRejection> {
        let (marker, name): (&[u8], _) = match kind {
            FileType::Pdf => (b"%%EOF", "PDF"),
            // The IEND chunk's type and its fixed CRC.
            FileType::Png => (b"IEND\xaeB`\x82", "PNG"),
            FileType::Jpeg => (b"\xff\xd9", "JPEG"),
            _ => return Ok(()),
        };
        if tail.windows(marker.len()).any(|window| window == marker) {
            Ok(())
        } else {
            Err(UploadRejection::Truncated { kind: name })
        }
    }

    /// Whether `check_tail` reads anything of this type.
    pub fn has_end_marker(kind: FileType) -> bool {
        matches!(kind, FileType::Pdf | FileType::Png | FileType::Jpeg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> UploadLimits {
        UploadLimits {
            max_bytes: 50 * 1024 * 1024,
            allowed: FileType::ALL.to_vec(),
            max_pixels: DEFAULT_MAX_PIXELS,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/headers/",
                $name
            ))
            .as_slice()
        };
    }

    fn upload(declared: FileType, bytes: &[u8]) -> Result<FileType, UploadRejection> {
        let len = bytes.len() as u64;
        // What ingest reads of an upload before it checks it.
        let head = &bytes[..bytes.len().min(HEADER_BYTES as usize)];
        limits().check_upload(declared, len, len, head)
    }

    #[test]
    fn real_files_of_every_allowed_type_are_recognised() {
        let samples = [
            (FileType::Png, fixture!("sample.png")),
            (FileType::Jpeg, fixture!("sample.jpg")),
            (FileType::Tiff, fixture!("sample.tiff")),
            (FileType::Bmp, fixture!("sample.bmp")),
            (FileType::Webp, fixture!("sample.webp")),
            (FileType::Heic, fixture!("sample.heic")),
            (FileType::Pdf, fixture!("sample.pdf")),
        ];
        for (kind, bytes) in samples {
            assert_eq!(FileType::sniff(bytes), Some(kind), "{kind}");
            assert_eq!(upload(kind, bytes), Ok(kind), "{kind}");
            assert_eq!(limits().check_declaration(kind.mime(), 10), Ok(kind));
        }
    }

    #[test]
    fn markup_archives_and_empty_files_are_refused_whatever_they_claim() {
        for (bytes, seen) in [
            (fixture!("not-an-image.html"), "text/html"),
            (fixture!("not-an-image.svg"), "text/xml"),
            (fixture!("not-an-image.zip"), "application/zip"),
        ] {
            let refused = upload(FileType::Png, bytes).unwrap_err();
            assert_eq!(refused.code(), "unsupported_type", "{seen}");
            assert!(refused.to_string().contains(seen), "{refused}");
        }
        assert_eq!(upload(FileType::Png, b""), Err(UploadRejection::Empty));
    }

    #[test]
    fn a_file_is_read_as_what_its_bytes_are_whatever_it_was_declared() {
        // A PNG named `.jpg`, a JPEG sent as a PDF: both read by their content.
        assert_eq!(
            upload(FileType::Jpeg, fixture!("sample.png")),
            Ok(FileType::Png)
        );
        assert_eq!(
            upload(FileType::Pdf, fixture!("sample.jpg")),
            Ok(FileType::Jpeg)
        );
        // Content of a type not accepted is refused, whatever the declaration.
        let limits = UploadLimits {
            allowed: vec![FileType::Pdf, FileType::Jpeg],
            ..limits()
        };
        let png = fixture!("sample.png");
        let refused = limits
            .check_upload(FileType::Jpeg, png.len() as u64, png.len() as u64, png)
            .unwrap_err();
        assert_eq!(refused.code(), "unsupported_type");
        assert!(refused.to_string().contains("image/png"), "{refused}");
    }

    #[test]
    fn sizes_are_held_to_the_declaration_and_the_limit() {
        let png = fixture!("sample.png");
        let small = UploadLimits {
            max_bytes: 100,
            allowed: vec![FileType::Png],
            max_pixels: DEFAULT_MAX_PIXELS,
            max_pages: DEFAULT_MAX_PAGES,
        };
        assert_eq!(
            small.check_upload(FileType::Png, 1000, 1000, png),
            Err(UploadRejection::TooLarge {
                size: 1000,
                max: 100
            })
        );
        assert_eq!(
            limits().check_upload(FileType::Png, 10, 498, png),
            Err(UploadRejection::SizeMismatch {
                declared: 10,
                actual: 498
            })
        );
        assert_eq!(
            small.check_declaration("image/png", 0),
            Err(UploadRejection::Empty)
        );
        assert_eq!(
            small
                .check_declaration("image/png", 101)
                .unwrap_err()
                .code(),
            "file_too_large"
        );
    }

    #[test]
    fn declarations_outside_the_allowed_list_are_refused() {
        let png_only = UploadLimits {
            max_bytes: 100,
            allowed: vec![FileType::Png],
            max_pixels: DEFAULT_MAX_PIXELS,
            max_pages: DEFAULT_MAX_PAGES,
        };
        let refused = png_only
            .check_declaration("application/pdf", 10)
            .unwrap_err();
        assert_eq!(refused.code(), "unsupported_type");
        assert!(refused.to_string().contains("image/png"));
        assert!(limits().check_declaration("text/html", 10).is_err());
        assert_eq!(
            limits().check_declaration("IMAGE/PNG; charset=binary", 10),
            Ok(FileType::Png)
        );
    }

    #[test]
    fn a_png_or_jpeg_cut_short_is_refused_and_a_whole_one_passes() {
        for (kind, whole) in [
            (FileType::Png, fixture!("sample.png").to_vec()),
            (FileType::Jpeg, fixture!("sample.jpg").to_vec()),
        ] {
            assert_eq!(limits().check_tail(kind, &whole), Ok(()), "{kind:?}");
            let mut padded = whole.clone();
            padded.extend_from_slice(&[0; 100]);
            assert_eq!(
                limits().check_tail(kind, &padded),
                Ok(()),
                "{kind:?} padded"
            );
            let cut = &whole[..whole.len() - 3];
            let refused = limits().check_tail(kind, cut).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::TruncatedFile);
            assert!(refused.to_string().contains("is incomplete"), "{refused}");
        }
    }

    #[test]
    fn a_pdf_cut_short_is_refused_and_a_complete_one_passes() {
        let pdf = fixture!("sample.pdf");
        let tail = &pdf[pdf.len().saturating_sub(TAIL_BYTES as usize)..];
        assert_eq!(limits().check_tail(FileType::Pdf, tail), Ok(()));
        let cut = &pdf[..pdf.len() / 2];
        assert_eq!(
            limits().check_tail(FileType::Pdf, &cut[cut.len() - 200..]),
            Err(UploadRejection::Truncated { kind: "PDF" })
        );
        // Formats without an end marker are not judged by their tail.
        assert_eq!(limits().check_tail(FileType::Tiff, b"anything"), Ok(()));
    }

    #[test]
    fn an_image_declaring_more_pixels_than_the_limit_is_refused_before_decoding() {
        let bomb = crate::testing::png_declaring(60_000, 60_000);
        assert_eq!(
            limits().check_pixels(FileType::Png, &bomb),
            Err(UploadRejection::TooManyPixels {
                width: 60_000,
                height: 60_000,
                max: DEFAULT_MAX_PIXELS
            })
        );
        assert_eq!(
            UploadRejection::TooManyPixels {
                width: 1,
                height: 1,
                max: 1
            }
            .code(),
            ErrorCode::ImageTooLarge
        );
        // A 4000 × 3000 phone photo, the real samples, and what cannot be read are let through.
        assert_eq!(
            limits().check_pixels(FileType::Png, &crate::testing::png_declaring(4000, 3000)),
            Ok(())
        );
        for (kind, bytes) in [
            (FileType::Png, fixture!("sample.png")),
            (FileType::Jpeg, fixture!("sample.jpg")),
            (FileType::Tiff, fixture!("sample.tiff")),
            (FileType::Webp, fixture!("sample.webp")),
            (FileType::Pdf, fixture!("sample.pdf")),
        ] {
            assert_eq!(limits().check_pixels(kind, bytes), Ok(()), "{kind}");
        }
        assert_eq!(limits().check_pixels(FileType::Png, b"\x89PNG"), Ok(()));
    }
}
