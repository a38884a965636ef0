//! The offline engine on rendered Korean documents: character error rate (word
//! spacing counted) and words intact against their ground truth, and the
//! engine-neutral shape of what it returns.

use std::time::Instant;

use bytes::Bytes;
use ocr_shared::domain::FileType;
use ocr_shared::engines::TesseractEngine;
use ocr_shared::ports::{Document, OcrEngine, OcrError};
use ocr_tests::quality::{character_error_rate, words_intact};

/// The bar on the rendered documents: CER with whitespace counted, and the share of words intact.
const MAX_CER: f64 = 0.03;
const MIN_WORDS_INTACT: f64 = 0.95;

async fn read(name: &str, file_type: FileType) -> (ocr_shared::ports::OcrResult, f64) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/documents/");
    let bytes = std::fs::read(format!("{dir}{name}")).unwrap();
    let truth =
        std::fs::read_to_string(format!("{dir}{}.txt", name.rsplit_once('.').unwrap().0)).unwrap();
    let document = Document {
        filename: name.into(),
        file_type,
        bytes: Bytes::from(bytes),
    };
    let started = Instant::now();
    let result = match TesseractEngine::default().recognize(&document).await {
        Ok(result) => result,
        Err(error) => panic!("the offline engine failed on {name}: {error} (run `make setup-ocr`)"),
    };
    let cer = character_error_rate(&result.text, &truth);
    let intact = words_intact(&result.text, &truth);
    println!(
        "{name}: {} page(s), CER {:.2}%, words intact {:.1}%, {:.2} s/page",
        result.pages.len(),
        cer * 100.0,
        intact * 100.0,
        started.elapsed().as_secs_f64() / result.pages.len().max(1) as f64
    );
    assert!(
        cer <= MAX_CER,
        "{name}: CER {cer} over {MAX_CER}:\n{}",
        result.text
    );
    assert!(
        intact >= MIN_WORDS_INTACT,
        "{name}: {intact} of the words intact, under {MIN_WORDS_INTACT}:\n{}",
        result.text
    );
    (result, cer)
}

#[test]
fn the_measures_count_word_spacing() {
    assert_eq!(character_error_rate("영수증", "영수증"), 0.0);
    assert!((character_error_rate("영 수 증", "영수증") - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        character_error_rate("영수증 \n\n 합계  20,500원", "영수증\n합계 20,500원"),
        0.0
    );
    assert!((character_error_rate("영수", "영수증") - 1.0 / 3.0).abs() < 1e-9);
    assert!((character_error_rate("양수증x", "영수증") - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(words_intact("주식회사 한빛문서", "주식회사 한빛문서"), 1.0);
    assert_eq!(
        words_intact("주식회사 한 빛 문서", "주식회사 한빛문서"),
        0.5
    );
    assert_eq!(
        words_intact("가 가", "가 가 가 나"),
        0.5,
        "each read word matches once"
    );
}

#[tokio::test]
async fn a_rendered_receipt_is_read_with_few_errors() {
    let (result, _) = read("receipt.png", FileType::Png).await;
    assert_eq!(result.engine, "tesseract");
    let page = &result.pages[0];
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/documents/receipt.png"
    ))
    .unwrap();
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!(
        (page.page, page.width, page.height),
        (1, size(16), size(20)),
        "the image's own size (PNG IHDR)"
    );
    assert!(page.words.iter().any(|w| w.text.contains("합계")));
    for word in &page.words {
        assert!((0.0..=1.0).contains(&word.confidence));
        let [tl, tr, br, bl] = word.vertices;
        assert!(
            tl.x <= tr.x
                && tl.y <= bl.y
                && br.x <= i64::from(page.width)
                && br.y <= i64::from(page.height)
        );
    }
}

#[tokio::test]
async fn a_jpeg_certificate_and_a_two_page_pdf_contract_are_read() {
    let (certificate, _) = read("business-registration.jpg", FileType::Jpeg).await;
    assert!(
        certificate.text.contains("사업자등록증"),
        "{}",
        certificate.text
    );

    let (contract, _) = read("contract.pdf", FileType::Pdf).await;
    assert_eq!(
        contract.pages.iter().map(|p| p.page).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        contract.pages[1].text.contains("임차인"),
        "{}",
        contract.pages[1].text
    );
    // The pages stay apart: page 1's last line, a blank line, page 2's first.
    assert!(
        contract.text.contains("지불한다.\n\n제4조"),
        "{}",
        contract.text
    );
}

#[tokio::test]
async fn a_multi_page_tiff_is_read_as_its_pages_in_order() {
    let (result, _) = read("contract.tif", FileType::Tiff).await;
    assert_eq!(result.pages.len(), 2);
    let numbers: Vec<u32> = result.pages.iter().map(|page| page.page).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(
        result.pages[0].text.contains("제1조"),
        "{}",
        result.pages[0].text
    );
    assert!(
        result.pages[1].text.contains("제4조"),
        "{}",
        result.pages[1].text
    );
    assert!(result.pages.iter().all(|page| !page.words.is_empty()));
}

#[tokio::test]
async fn an_undecodable_file_is_refused_not_retried() {
    let document = Document {
        filename: "broken.png".into(),
        file_type: FileType::Png,
        bytes: Bytes::from_static(b"\x89PNG\r\n\x1a\nnot really a png"),
    };
    let error = TesseractEngine::default()
        .recognize(&document)
        .await
        .unwrap_err();
    assert!(matches!(error, OcrError::Rejected { .. }), "{error:?}");
}

/// Each rendered document as users send it (tools/degrade_documents.py):
/// read by the offline engine, scored against its truth per condition.
#[tokio::test]
async fn documents_photographed_tilted_blurred_dark_or_small_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let documents = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/documents");
    ocr_tests::dev_process::run_tool(
        "degrade_documents.py",
        &[documents.as_ref(), dir.path().as_os_str()],
    );
    let listing = std::fs::read_to_string(dir.path().join("conditions.tsv")).unwrap();
    let mut scores = Vec::new();
    for row in listing.lines().skip(1) {
        let [file, document, condition] = row.split('\t').collect::<Vec<_>>()[..] else {
            panic!("{row}");
        };
        let truth = std::fs::read_to_string(format!("{documents}/{document}.txt")).unwrap();
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let file_type = FileType::sniff(&bytes).unwrap();
        let started = Instant::now();
        let result = TesseractEngine::default()
            .recognize(&Document {
                filename: file.into(),
                file_type,
                bytes: Bytes::from(bytes),
            })
            .await
            .unwrap_or_else(|error| panic!("{file}: {error}"));
        let quality = result.pages[0]
            .quality
            .clone()
            .expect("an image page is measured");
        let score = ocr_tests::quality::Score {
            document: document.to_owned(),
            condition: condition.to_owned(),
            cer: character_error_rate(&result.text, &truth),
            intact: words_intact(&result.text, &truth),
            seconds: started.elapsed().as_secs_f64(),
            issues: quality
                .issues
                .iter()
                .map(|issue| format!("{issue:?}"))
                .collect(),
            skew: quality.skew_degrees,
        };
        println!("{score}");
        scores.push(score);
    }
    // Clean scans: every word of each document intact. (CER counts the
    // ID card's photo, read as a few stray characters: 8% on its own.)
    for score in scores.iter().filter(|score| score.condition == "clean") {
        assert!(score.intact == 1.0 && score.cer <= 0.1, "{score}");
    }
    // Photos and small scans: words intact over the three documents.
    for (condition, min_intact) in [
        ("small-600px", 0.9),
        ("tilt-5-blur", 0.9),
        ("tilt-12-blur", 0.9),
        ("tilt-20-blur", 0.9),
        ("tilt-30", 0.85),
        ("perspective", 0.9),
        ("blur", 0.9),
        ("jpeg-noise", 0.9),
        ("upside-down", 0.9),
        ("sideways", 0.9),
    ] {
        let of: Vec<f64> = scores
            .iter()
            .filter(|score| score.condition == condition)
            .map(|score| score.intact)
            .collect();
        assert_eq!(of.len(), 3, "{condition}");
        let mean = of.iter().sum::<f64>() / of.len() as f64;
        assert!(
            mean >= min_intact,
            "{condition}: {mean} of the words intact, under {min_intact}"
        );
    }
    // Each page says what is wrong with it.
    let issues_of = |condition: &str| {
        scores
            .iter()
            .filter(|score| score.condition == condition)
            .map(|score| score.issues.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        issues_of("tilt-20-blur")
            .iter()
            .all(|issues| issues.contains(&"Skewed".to_owned()))
    );
    assert!(
        issues_of("clean").iter().all(Vec::is_empty),
        "{:?}",
        issues_of("clean")
    );
    assert!(
        issues_of("blur")
            .iter()
            .filter(|issues| issues.contains(&"Blurry".to_owned()))
            .count()
            >= 2
    );
}
