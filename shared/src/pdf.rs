//! PDFs by their pages: counted at ingest (from the cross-reference table and
//! the page tree, without reading every object), and cut into chunks of
//! consecutive pages for an engine that reads a limited number per call.
//! Encrypted files that open with the empty user password (an owner password
//! only restricts printing or copying) are read, and their chunks are written
//! in the clear; a file that needs a password to open is refused. A file is
//! encrypted when its last trailer (or cross-reference stream) names an
//! `/Encrypt` dictionary, not when the word appears anywhere in it.
//!
//! Memory is bounded before the parser runs: the object streams a load
//! inflates (`/Type /ObjStm`) are inflated here first, counting, and a file
//! whose object streams inflate past `MAX_OBJECT_STREAM_BYTES`, or declare
//! more than `MAX_OBJECTS` objects, is refused as too complex. A chunk is
//! written from the objects its pages reach, never from a copy of the whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use lopdf::{Dictionary, Object, ObjectId};
use serde::{Deserialize, Serialize};

/// What a PDF's object streams may inflate to at most: they hold objects
/// (dictionaries, the page tree), never page images, so far less than this
/// serves any real file.
pub const MAX_OBJECT_STREAM_BYTES: u64 = 64 * 1024 * 1024;
/// Objects a PDF's object streams may declare at most.
pub const MAX_OBJECTS: u64 = 1_000_000;

/// Why a PDF cannot be counted or cut.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF is protected by a password; remove the password and upload it again")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF's structure cannot be read: {0}")]
    Unreadable(String),
    #[error("the PDF is too complex to read: {0}")]
    TooComplex(String),
}

fn read_error(bytes: &[u8], error: lopdf::Error) -> PdfError {
    match error {
        lopdf::Error::InvalidPassword
        | lopdf::Error::Decryption(_)
        | lopdf::Error::UnsupportedSecurityHandler(_) => PdfError::Encrypted,
        // A file whose trailer names an encryption dictionary and does not
        // open is one whose password we do not have, whatever the parser tripped on.
        other if encrypted(bytes) => {
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

/// Whether the file's last trailer names an `/Encrypt` dictionary: the
/// trailer dictionary after the `xref` table `startxref` points at, or the
/// dictionary of the cross-reference stream there.
fn encrypted(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    let Some(at) = rfind(tail, b"startxref") else {
        return false;
    };
    let digits: String = tail[at + 9..]
        .iter()
        .map(|b| *b as char)
        .skip_while(|c| c.is_ascii_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    let Ok(offset) = digits.parse::<usize>() else {
        return false;
    };
    let Some(from) = bytes.get(offset..) else {
        return false;
    };
    // A table: its trailer follows it. A stream: its own dictionary.
    let dictionary_at = if from.starts_with(b"xref") {
        find(from, b"trailer").map(|t| t + 7)
    } else {
        find(&from[..from.len().min(1024)], b"<<")
    };
    dictionary_at
        .and_then(|start| dictionary(&from[start..]))
        .is_some_and(|dict| contains(dict, b"/Encrypt"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// The dictionary `<< … >>` that opens `from` (after white space), nested ones included.
fn dictionary(from: &[u8]) -> Option<&[u8]> {
    let start = find(&from[..from.len().min(64)], b"<<")?;
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < from.len() {
        match &from[i..i + 2] {
            b"<<" => {
                depth += 1;
                i += 2;
            }
            b">>" => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(&from[start..i]);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Inflates every object stream of the file, counting, before a parser does:
/// `TooComplex` past `MAX_OBJECT_STREAM_BYTES` or `MAX_OBJECTS`.
fn check_object_streams(bytes: &[u8]) -> Result<(), PdfError> {
    let (mut inflated, mut objects) = (0u64, 0u64);
    let mut at = 0;
    while let Some(found) = find(&bytes[at..], b"/ObjStm") {
        let here = at + found;
        at = here + 7;
        // The stream's data follows its dictionary's `stream` keyword and one end of line.
        let Some(keyword) = find(&bytes[here..bytes.len().min(here + 4096)], b"stream") else {
            continue;
        };
        let declared = dictionary_before(&bytes[..here]).and_then(|dict| number_after(dict, b"/N"));
        objects += declared.unwrap_or(0);
        let mut data = here + keyword + 6;
        if bytes.get(data) == Some(&b'\r') {
            data += 1;
        }
        if bytes.get(data) == Some(&b'\n') {
            data += 1;
        }
        let left = MAX_OBJECT_STREAM_BYTES.saturating_sub(inflated);
        let mut decoder = flate2::read::ZlibDecoder::new(&bytes[data..]).take(left + 1);
        let counted = std::io::copy(&mut decoder, &mut std::io::sink()).unwrap_or(0);
        inflated += counted;
        if inflated > MAX_OBJECT_STREAM_BYTES {
            return Err(PdfError::TooComplex(format!(
                "its object streams inflate past {} MiB",
                MAX_OBJECT_STREAM_BYTES / (1024 * 1024)
            )));
        }
        if objects > MAX_OBJECTS {
            return Err(PdfError::TooComplex(format!(
                "its object streams declare over {MAX_OBJECTS} objects"
            )));
        }
    }
    Ok(())
}

/// The dictionary that `/ObjStm` at the end of `before` stands in (its `<<`).
fn dictionary_before(before: &[u8]) -> Option<&[u8]> {
    let from = before.len().saturating_sub(1024);
    let open = rfind(&before[from..], b"<<")?;
    Some(&before[from + open..])
}

/// The integer after `key` in `dict`, as in `/N 250`.
fn number_after(dict: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(dict, key)? + key.len();
    let digits: String = dict[at..]
        .iter()
        .map(|b| *b as char)
        .skip_while(|c| c.is_ascii_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The number of pages `bytes` holds, from the page tree alone. An encrypted
/// file is opened whole, to know whether it opens without a password.
pub fn page_count(bytes: &[u8]) -> Result<u32, PdfError> {
    check_object_streams(bytes)?;
    if encrypted(bytes) {
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
        check_object_streams(bytes)?;
        let document =
            lopdf::Document::load_mem(bytes).map_err(|error| read_error(bytes, error))?;
        let pages = document.get_pages().len() as u32;
        // Still encrypted after loading: the empty user password did not open it.
        if document.trailer.has(b"Encrypt") || (pages == 0 && encrypted(bytes)) {
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
        let source = &self.document;
        let pages = source.get_pages();
        let mut part = lopdf::Document::with_version(source.version.as_str());
        let tree_id = (source.max_id + 1, 0);
        let mut reached = BTreeSet::new();
        let mut kids = Vec::new();
        for number in range.first..=range.last {
            let id = pages[&number];
            let mut page = source
                .get_dictionary(id)
                .map_err(|error| PdfError::Unreadable(error.to_string()))?
                .clone();
            inherit(source, id, &mut page);
            page.set("Parent", tree_id);
            for (_, value) in page.iter() {
                reach(source, value, &mut reached);
            }
            part.objects.insert(id, Object::Dictionary(page));
            kids.push(Object::Reference(id));
        }
        for id in reached {
            if let (false, Ok(object)) = (part.objects.contains_key(&id), source.get_object(id)) {
                part.objects.insert(id, object.clone());
            }
        }
        let count = kids.len() as i64;
        let tree = lopdf::dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count };
        part.objects.insert(tree_id, Object::Dictionary(tree));
        part.max_id = tree_id.0;
        let catalog =
            part.add_object(lopdf::dictionary! { "Type" => "Catalog", "Pages" => tree_id });
        part.trailer.set("Root", catalog);
        let mut bytes = Vec::new();
        part.save_to(&mut bytes)
            .map_err(|error| PdfError::Unreadable(error.to_string()))?;
        Ok(bytes)
    }
}

/// The attributes a page takes from its ancestors in the page tree, set on it.
fn inherit(document: &lopdf::Document, page: ObjectId, into: &mut Dictionary) {
    let mut parent = document
        .get_dictionary(page)
        .ok()
        .and_then(|dict| dict.get(b"Parent").ok())
        .and_then(|parent| parent.as_reference().ok());
    let mut seen = BTreeSet::new();
    while let Some(id) = parent.filter(|id| seen.insert(*id)) {
        let Ok(node) = document.get_dictionary(id) else {
            break;
        };
        for key in [&b"Resources"[..], b"MediaBox", b"CropBox", b"Rotate"] {
            if !into.has(key)
                && let Ok(value) = node.get(key)
            {
                into.set(key.to_vec(), value.clone());
            }
        }
        parent = node.get(b"Parent").ok().and_then(|p| p.as_reference().ok());
    }
}

/// Every object `value` refers to, and what those refer to, leaving out the
/// page tree (`/Parent`): what a chunk of pages carries.
fn reach(document: &lopdf::Document, value: &Object, reached: &mut BTreeSet<ObjectId>) {
    let mut stack = vec![value];
    let mut visited: BTreeMap<ObjectId, ()> = BTreeMap::new();
    while let Some(value) = stack.pop() {
        match value {
            Object::Reference(id) => {
                if visited.insert(*id, ()).is_none()
                    && reached.insert(*id)
                    && let Ok(object) = document.get_object(*id)
                {
                    stack.push(object);
                }
            }
            Object::Array(items) => stack.extend(items.iter()),
            Object::Dictionary(dict) => stack.extend(
                dict.iter()
                    .filter(|(key, _)| key.as_slice() != b"Parent")
                    .map(|(_, value)| value),
            ),
            Object::Stream(stream) => stack.extend(
                stream
                    .dict
                    .iter()
                    .filter(|(key, _)| key.as_slice() != b"Parent")
                    .map(|(_, value)| value),
            ),
            _ => {}
        }
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

    /// A file with object streams inflating to `mib` MiB each (zeros), `count` of them.
    fn object_stream_bomb(count: usize, mib: usize) -> Vec<u8> {
        use std::io::Write;
        let mut zeros = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zeros.write_all(&vec![0; mib * 1024 * 1024]).unwrap();
        let data = zeros.finish().unwrap();
        let mut bytes = b"%PDF-1.5\n".to_vec();
        for n in 1..=count {
            bytes.extend_from_slice(
                format!("{n} 0 obj\n<< /Type /ObjStm /N 1 /First 0 /Filter /FlateDecode /Length {} >>\nstream\n", data.len())
                    .as_bytes(),
            );
            bytes.extend_from_slice(&data);
            bytes.extend_from_slice(b"\nendstream\nendobj\n");
        }
        // Named in a comment only: not an encrypted file.
        bytes.extend_from_slice(b"% /Encrypt\n%%EOF\n");
        bytes
    }

    #[test]
    fn object_streams_that_inflate_past_the_cap_are_refused_before_any_parser_runs() {
        let bomb = object_stream_bomb(2, 40);
        assert!(bomb.len() < 1024 * 1024, "{} bytes on disk", bomb.len());
        for refused in [page_count(&bomb), Pdf::open(&bomb).map(|pdf| pdf.pages())] {
            assert!(
                matches!(&refused, Err(PdfError::TooComplex(reason)) if reason.contains("64 MiB")),
                "{refused:?}"
            );
        }
        // Within the cap, the check lets the parser decide.
        assert!(!matches!(
            page_count(&object_stream_bomb(1, 1)),
            Err(PdfError::TooComplex(_))
        ));
    }

    #[test]
    fn encryption_is_read_from_the_trailer_not_from_a_word_anywhere() {
        let mut commented = sample(3);
        commented.extend_from_slice(b"% /Encrypt << /Filter /Standard >>\n");
        assert!(!encrypted(&commented));
        assert_eq!(page_count(&commented), Ok(3));
        assert!(!encrypted(&sample(3)));
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
