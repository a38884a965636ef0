//! PDFs by their pages: counted at ingest (from the cross-reference table and
//! the page tree, without reading every object), and cut into chunks of
//! consecutive pages for an engine that reads a limited number per call.
//! Encrypted files that open with the empty user password (an owner password
//! only restricts printing or copying) are read, and their chunks are written
//! in the clear; a file that needs a password to open is refused.

use serde::{Deserialize, Serialize};

/// Why a PDF cannot be counted or cut.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF is protected by a password; remove the password and upload it again")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF's structure cannot be read: {0}")]
    Unreadable(String),
}

fn read_error(bytes: &[u8], error: lopdf::Error) -> PdfError {
    match error {
        lopdf::Error::InvalidPassword
        | lopdf::Error::Decryption(_)
        | lopdf::Error::UnsupportedSecurityHandler(_) => PdfError::Encrypted,
        // A file that names an encryption dictionary and does not open is
        // one whose password we do not have, whatever the parser tripped on.
        other if contains(bytes, b"/Encrypt") => {
            tracing::debug!(error = %other, "encrypted PDF did not open");
            PdfError::Encrypted
        }
        other => PdfError::Unreadable(other.to_string()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The number of pages `bytes` holds, from the page tree alone. An encrypted
/// file is opened whole, to know whether it opens without a password.
pub fn page_count(bytes: &[u8]) -> Result<u32, PdfError> {
    if contains(bytes, b"/Encrypt") {
        return Pdf::open(bytes).map(|pdf| pdf.pages());
    }
    let metadata =
        lopdf::Document::load_metadata_mem(bytes).map_err(|error| read_error(bytes, error))?;
    match metadata.page_count {
        0 => Err(PdfError::NoPages),
        pages => Ok(pages),
    }
}

/// Consecutive pages, 1-based and inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageRange {
    pub first: u32,
    pub last: u32,
}

impl PageRange {
    pub fn len(&self) -> u32 {
        self.last - self.first + 1
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    pub fn contains(&self, page: u32) -> bool {
        (self.first..=self.last).contains(&page)
    }
}

impl std::fmt::Display for PageRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// `pages` cut into runs of at most `per_chunk`, in order.
pub fn chunks(pages: u32, per_chunk: u32) -> Vec<PageRange> {
    let per_chunk = per_chunk.max(1);
    (0..pages.div_ceil(per_chunk))
        .map(|index| PageRange {
            first: index * per_chunk + 1,
            last: ((index + 1) * per_chunk).min(pages),
        })
        .collect()
}

/// A PDF held parsed, to cut chunks from.
pub struct Pdf {
    document: lopdf::Document,
    pages: u32,
}

impl Pdf {
    pub fn open(bytes: &[u8]) -> Result<Self, PdfError> {
        let document =
            lopdf::Document::load_mem(bytes).map_err(|error| read_error(bytes, error))?;
        let pages = document.get_pages().len() as u32;
        // Still encrypted after loading: the empty user password did not open it.
        if document.trailer.has(b"Encrypt") || (pages == 0 && contains(bytes, b"/Encrypt")) {
            return Err(PdfError::Encrypted);
        }
        if pages == 0 {
            return Err(PdfError::NoPages);
        }
        Ok(Self { document, pages })
    }

    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// A PDF of `range`'s pages alone, in order, with only the objects they use.
    pub fn extract(&self, range: PageRange) -> Result<Vec<u8>, PdfError> {
        if range.is_empty() || range.first == 0 || range.last > self.pages {
            return Err(PdfError::Unreadable(format!(
                "pages {range} are not within 1-{}",
                self.pages
            )));
        }
        let mut part = self.document.clone();
        let others: Vec<u32> = (1..=self.pages)
            .filter(|page| !range.contains(*page))
            .collect();
        part.delete_pages(&others);
        part.prune_objects();
        let mut bytes = Vec::new();
        part.save_to(&mut bytes)
            .map_err(|error| PdfError::Unreadable(error.to_string()))?;
        Ok(bytes)
    }
}

/// A PDF of `pages` pages whose page n shows "PAGE n" in Helvetica: for tests.
#[cfg(any(test, feature = "testing"))]
pub fn sample(pages: u32) -> Vec<u8> {
    let texts: Vec<String> = (1..=pages).map(|number| format!("PAGE {number}")).collect();
    sample_of(&texts)
}

/// A PDF with one page per text (ASCII, in Helvetica): for tests.
#[cfg(any(test, feature = "testing"))]
pub fn sample_of(texts: &[String]) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Object, Stream, dictionary};

    let mut document = lopdf::Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = document.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let kids: Vec<Object> = texts
        .iter()
        .map(|text| {
            let content = Content {
                operations: vec![
                    Operation::new("BT", vec![]),
                    Operation::new("Tf", vec!["F1".into(), 36.into()]),
                    Operation::new("Td", vec![100.into(), 600.into()]),
                    Operation::new("Tj", vec![Object::string_literal(text.as_str())]),
                    Operation::new("ET", vec![]),
                ],
            };
            let stream = Stream::new(
                dictionary! {},
                content.encode().expect("a content stream encodes"),
            );
            let content_id = document.add_object(stream);
            document
                .add_object(dictionary! {
                    "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
                })
                .into()
        })
        .collect();
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => texts.len() as i64,
            "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).expect("a sample PDF saves");
    bytes
}

/// The text of each page of `bytes`, in order: for tests.
#[cfg(any(test, feature = "testing"))]
pub fn page_texts(bytes: &[u8]) -> Vec<String> {
    let document = lopdf::Document::load_mem(bytes).expect("a readable PDF");
    let pages = document.get_pages();
    pages
        .keys()
        .map(|number| {
            document
                .extract_text(&[*number])
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_page_once_in_order() {
        assert_eq!(chunks(0, 100), vec![]);
        assert_eq!(chunks(1, 100), vec![PageRange { first: 1, last: 1 }]);
        assert_eq!(
            chunks(100, 100),
            vec![PageRange {
                first: 1,
                last: 100
            }]
        );
        assert_eq!(
            chunks(250, 100),
            vec![
                PageRange {
                    first: 1,
                    last: 100
                },
                PageRange {
                    first: 101,
                    last: 200
                },
                PageRange {
                    first: 201,
                    last: 250
                },
            ]
        );
        for (pages, per) in [(7, 3), (1000, 100), (5, 1), (3, 0)] {
            let ranges = chunks(pages, per);
            let covered: Vec<u32> = ranges.iter().flat_map(|r| r.first..=r.last).collect();
            assert_eq!(covered, (1..=pages).collect::<Vec<_>>(), "{pages} by {per}");
        }
    }

    #[test]
    fn a_pdf_is_counted_and_cut_into_its_pages_in_order() {
        let bytes = sample(7);
        assert_eq!(page_count(&bytes), Ok(7));
        let pdf = Pdf::open(&bytes).unwrap();
        assert_eq!(pdf.pages(), 7);
        let middle = pdf.extract(PageRange { first: 3, last: 5 }).unwrap();
        assert_eq!(page_count(&middle), Ok(3));
        assert_eq!(page_texts(&middle), ["PAGE 3", "PAGE 4", "PAGE 5"]);
        let last = pdf.extract(PageRange { first: 7, last: 7 }).unwrap();
        assert_eq!(page_texts(&last), ["PAGE 7"]);
        // A chunk keeps only what its pages use: far smaller than the whole.
        let whole = sample(200);
        let one = Pdf::open(&whole)
            .unwrap()
            .extract(PageRange { first: 1, last: 1 })
            .unwrap();
        assert!(
            one.len() * 20 < whole.len(),
            "{} of {}",
            one.len(),
            whole.len()
        );
        assert!(pdf.extract(PageRange { first: 6, last: 8 }).is_err());
    }

    #[test]
    fn broken_and_empty_pdfs_are_refused_with_a_reason() {
        assert!(matches!(
            page_count(b"%PDF-1.4\nnot a pdf at all\n%%EOF\n"),
            Err(PdfError::Unreadable(_))
        ));
        assert!(matches!(
            Pdf::open(b"%PDF-1.4\ngarbage"),
            Err(PdfError::Unreadable(_))
        ));
        assert_eq!(page_count(&sample(0)), Err(PdfError::NoPages));
    }
}
