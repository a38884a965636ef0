//! The PDF splitter on the structures real files have, written by another
//! PDF library (pikepdf, over qpdf): a classic cross-reference table,
//! linearized, encrypted with an owner password only, encrypted with a user
//! password, and with an incremental update appended.

use std::path::Path;

use ocr_shared::pdf::{self, PageRange, Pdf, PdfError};
use ocr_tests::dev_process::render;

fn variants() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    render(&["--pdf-variants".as_ref(), dir.path().as_os_str()]);
    dir
}

fn pages(bytes: &[u8]) -> Vec<String> {
    pdf::page_texts(bytes)
}

/// Counted, and cut into pages 2–4 and 5 that read as those pages.
fn splits(path: &Path, page_two: &str) {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    assert_eq!(pdf::page_count(&bytes), Ok(5), "{name}");
    let document = Pdf::open(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(document.pages(), 5, "{name}");
    let middle = document.extract(PageRange { first: 2, last: 4 }).unwrap();
    assert_eq!(pages(&middle), [page_two, "PAGE 3", "PAGE 4"], "{name}");
    let last = document.extract(PageRange { first: 5, last: 5 }).unwrap();
    assert_eq!(pages(&last), ["PAGE 5"], "{name}");
    // A chunk is a plain PDF: whatever reads it needs no password.
    assert!(
        !String::from_utf8_lossy(&middle).contains("/Encrypt"),
        "{name}"
    );
}

#[test]
fn classic_linearized_and_owner_password_pdfs_are_counted_and_cut() {
    let dir = variants();
    for name in ["plain.pdf", "linearized.pdf", "owner-password.pdf"] {
        splits(&dir.path().join(name), "PAGE 2");
    }
}

#[test]
fn an_incremental_update_is_read_as_revised() {
    let dir = variants();
    splits(&dir.path().join("incremental.pdf"), "PAGE 2 REVISED");
}

#[test]
fn a_pdf_that_needs_a_password_to_open_is_refused_as_encrypted() {
    let dir = variants();
    let bytes = std::fs::read(dir.path().join("user-password.pdf")).unwrap();
    assert_eq!(pdf::page_count(&bytes), Err(PdfError::Encrypted));
    assert!(matches!(Pdf::open(&bytes), Err(PdfError::Encrypted)));
}
