//! The offline engine: the `tesseract` program (Korean + English), its TSV
//! output mapped to the engine-neutral result. PDFs are rasterised page by
//! page with `pdftoppm`; multi-page TIFFs are read page by page by tesseract.
//! Each page image is measured, straightened, scaled and turned upright
//! before it is read (`read_page`), and its quality reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::process::Command;
use tracing::instrument;

use crate::domain::{ErrorCode, FileType};
use crate::page_image;
use crate::ports::{
    Document, OcrEngine, OcrError, OcrPage, OcrResult, OcrWord, Vertex, document_text,
};

pub const ENGINE_NAME: &str = "tesseract";
/// Korean, the Hangul script model and English (Debian: tesseract-ocr-kor,
/// tesseract-ocr-script-hang, tesseract-ocr-eng).
pub const LANGUAGES: &str = "kor+Hangul+eng";

#[derive(Clone, Debug)]
pub struct TesseractEngine {
    pub languages: String,
    /// Page segmentation: 6 (one uniform block) reads document lines that the default drops.
    pub page_segmentation: u8,
    /// Resolution PDFs are rasterised at.
    pub pdf_dpi: u32,
    /// Longest one document may take.
    pub timeout: Duration,
    /// Pixels of one image read at full size: a 4000 × 3000 photo reads no
    /// better than at 8 megapixels, and twice as slowly.
    pub max_pixels: u64,
}

impl Default for TesseractEngine {
    fn default() -> Self {
        Self {
            // The Hangul script model beside Korean's reads digit groups
            // ("6,500") the Korean model alone drops commas from.
            languages: LANGUAGES.into(),
            page_segmentation: 6,
            pdf_dpi: 200,
            timeout: Duration::from_secs(120),
            max_pixels: 8_000_000,
        }
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("lambda-ocr-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn io_error(what: &str, error: std::io::Error) -> OcrError {
    if error.kind() == std::io::ErrorKind::NotFound {
        OcrError::Retryable {
            message: format!(
                "{what} is not installed (Debian: tesseract-ocr tesseract-ocr-kor poppler-utils)"
            ),
            retry_after: None,
        }
    } else {
        OcrError::Retryable {
            message: format!("{what} could not run: {error}"),
            retry_after: None,
        }
    }
}

async fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, OcrError> {
    let output = Command::new(program)
        .args(args)
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| io_error(program, e))?;
    if !output.status.success() {
        let detail = String::from_utf8_lossy(&output.stderr);
        let detail: String = detail
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        return Err(OcrError::Rejected {
            code: ErrorCode::UnreadableDocument,
            message: format!("the document could not be read ({program}: {detail})"),
        });
    }
    Ok(output.stdout)
}

impl TesseractEngine {
    async fn images(
        &self,
        input: &Path,
        file_type: FileType,
        scratch: &Path,
    ) -> Result<Vec<PathBuf>, OcrError> {
        match file_type {
            FileType::Pdf => {
                let prefix = scratch.join("page");
                let dpi = self.pdf_dpi.to_string();
                run(
                    "pdftoppm",
                    &[
                        "-r".as_ref(),
                        dpi.as_ref(),
                        "-png".as_ref(),
                        input.as_os_str(),
                        prefix.as_os_str(),
                    ],
                )
                .await?;
                let mut pages: Vec<PathBuf> = std::fs::read_dir(scratch)
                    .map_err(|e| io_error("pdftoppm", e))?
                    .filter_map(|entry| entry.ok().map(|e| e.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "png"))
                    .collect();
                // pdftoppm numbers pages page-1.png, page-2.png… (zero-padded to the page count's width).
                pages.sort();
                Ok(pages)
            }
            FileType::Heic => Err(OcrError::Rejected {
                code: ErrorCode::UnsupportedDocument,
                message: "the offline engine cannot read HEIC; send JPEG or PNG".into(),
            }),
            _ => Ok(vec![input.to_owned()]),
        }
    }

    /// One tesseract run renders both: the text as tesseract writes it (its
    /// own spacing, Hangul words whole) and the TSV's words with their boxes.
    async fn read_image(&self, image: &Path, psm: u8) -> Result<Vec<OcrPage>, OcrError> {
        let psm = psm.to_string();
        let base = image.with_file_name(format!(
            "{}-read",
            image.file_stem().unwrap_or_default().to_string_lossy()
        ));
        run(
            "tesseract",
            &[
                image.as_os_str(),
                base.as_os_str(),
                "-l".as_ref(),
                self.languages.as_ref(),
                "--psm".as_ref(),
                psm.as_ref(),
                "txt".as_ref(),
                "tsv".as_ref(),
            ],
        )
        .await?;
        let output = |extension: &str| {
            std::fs::read(base.with_extension(extension))
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .map_err(|e| io_error("tesseract's output", e))
        };
        let mut pages = parse_tsv(&output("tsv")?);
        with_texts(&mut pages, &output("txt")?);
        Ok(pages)
    }
}

impl TesseractEngine {
    /// One page image read as this engine reads best: measured, straightened
    /// and scaled to its best text height (`page_image`), turned when
    /// Tesseract's orientation detection finds it sideways or upside down,
    /// and read with the page segmentation that reads more; its words' boxes
    /// mapped back onto the image as it came, its quality reported. An image
    /// this cannot decode (a multi-page TIFF) is read as it came.
    async fn read_page(&self, image: &Path) -> Result<Vec<OcrPage>, OcrError> {
        let path = image.to_owned();
        let max_pixels = self.max_pixels;
        let prepared = tokio::task::spawn_blocking(move || {
            // By its bytes: the scratch copy of an image has no extension.
            let gray = image::ImageReader::open(&path)
                .ok()?
                .with_guessed_format()
                .ok()?
                .decode()
                .ok()?
                .into_luma8();
            let original = gray.dimensions();
            Some((original, page_image::prepare(&gray, max_pixels)))
        })
        .await
        .ok()
        .flatten();
        let Some((original, (measured, page, mut steps))) = prepared else {
            return self.read_image(image, self.page_segmentation).await;
        };
        let ready = image.with_file_name(format!(
            "{}-ready.png",
            image.file_stem().unwrap_or_default().to_string_lossy()
        ));
        let turn = orientation(&save(page, &ready).await?).await;
        if turn != 0.0 {
            let page = image::open(&ready)
                .map_err(|e| io_error("the prepared page", std::io::Error::other(e)))?
                .into_luma8();
            let (turned, step) = page_image::turn(&page, turn);
            steps.0.push(step);
            save(turned, &ready).await?;
        }
        let mut pages = self.best_reading(&ready).await?;
        for page in &mut pages {
            for word in &mut page.words {
                word.vertices = word.vertices.map(|vertex| steps.back(vertex));
            }
            (page.width, page.height) = original;
            page.quality = Some(measured.quality(turn));
        }
        Ok(pages)
    }

    /// The page read with the configured segmentation, and with automatic
    /// segmentation too when that reads it with little confidence (a photo's
    /// scattered blocks): whichever reads more characters with confidence.
    async fn best_reading(&self, image: &Path) -> Result<Vec<OcrPage>, OcrError> {
        let first = self.read_image(image, self.page_segmentation).await?;
        let confidence = first.iter().map(|page| page.confidence).fold(1.0, f64::min);
        if confidence >= SEGMENTATION_RETRY_BELOW || self.page_segmentation == AUTOMATIC {
            return Ok(first);
        }
        let second = self.read_image(image, AUTOMATIC).await?;
        Ok(
            if confident_characters(&second) > confident_characters(&first) {
                second
            } else {
                first
            },
        )
    }
}

/// Tesseract's fully automatic page segmentation, without orientation detection.
const AUTOMATIC: u8 = 3;
/// A page read with less mean confidence than this is read again with
/// `AUTOMATIC` segmentation, and the better reading kept.
pub const SEGMENTATION_RETRY_BELOW: f64 = 0.8;
/// Orientation detection's confidence a turn needs (Tesseract reports about
/// 2 to 9 for pages of text, under 1 when it is guessing).
const ORIENTATION_CONFIDENCE: f64 = 1.5;

/// The characters of the pages' words weighted by their confidence.
fn confident_characters(pages: &[OcrPage]) -> f64 {
    pages
        .iter()
        .flat_map(|page| &page.words)
        .map(|word| word.confidence * word.text.chars().count() as f64)
        .sum()
}

/// `page` written losslessly to `path`, off the runtime.
async fn save(page: image::GrayImage, path: &Path) -> Result<PathBuf, OcrError> {
    let target = path.to_owned();
    tokio::task::spawn_blocking(move || page.save(&target).map(|()| target))
        .await
        .map_err(|e| io_error("the prepared page", std::io::Error::other(e)))?
        .map_err(|e| io_error("the prepared page", std::io::Error::other(e)))
}

/// The clockwise turn (0, 90, 180 or 270 degrees) that Tesseract's
/// orientation detection (`--psm 0`, tesseract-ocr-osd) says makes the page
/// upright; 0 when it is unsure or cannot tell (too few characters).
async fn orientation(image: &Path) -> f64 {
    let Ok(out) = run(
        "tesseract",
        &[
            image.as_os_str(),
            "-".as_ref(),
            "--psm".as_ref(),
            "0".as_ref(),
        ],
    )
    .await
    else {
        return 0.0;
    };
    parse_orientation(&String::from_utf8_lossy(&out))
}

/// The turn in Tesseract's OSD report ("Rotate: 90", "Orientation confidence: 8.7").
fn parse_orientation(report: &str) -> f64 {
    let field = |name: &str| {
        report
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse::<f64>().ok())
    };
    match (field("Rotate:"), field("Orientation confidence:")) {
        (Some(turn), Some(confidence))
            if confidence >= ORIENTATION_CONFIDENCE && [90.0, 180.0, 270.0].contains(&turn) =>
        {
            turn
        }
        _ => 0.0,
    }
}

#[async_trait]
impl OcrEngine for TesseractEngine {
    fn name(&self) -> &'static str {
        ENGINE_NAME
    }

    fn max_pixels(&self) -> u64 {
        self.max_pixels
    }

    #[instrument(skip(self, document), fields(size = document.bytes.len(), file_type = %document.file_type))]
    async fn recognize(&self, document: &Document) -> Result<OcrResult, OcrError> {
        let work = async {
            let scratch = Scratch::new().map_err(|e| io_error("the scratch directory", e))?;
            let input = scratch.0.join("document");
            tokio::fs::write(&input, &document.bytes)
                .await
                .map_err(|e| io_error("the scratch directory", e))?;
            let mut pages = Vec::new();
            for image in self.images(&input, document.file_type, &scratch.0).await? {
                pages.extend(self.read_page(&image).await?);
            }
            Ok::<_, OcrError>(pages)
        };
        let pages = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| OcrError::Retryable {
                message: format!(
                    "the offline engine took longer than {} s",
                    self.timeout.as_secs()
                ),
                retry_after: None,
            })??;
        Ok(result(pages, &self.languages))
    }
}

fn result(mut pages: Vec<OcrPage>, languages: &str) -> OcrResult {
    for (index, page) in pages.iter_mut().enumerate() {
        page.page = index as u32 + 1;
    }
    let confidence = pages
        .iter()
        .map(|p| p.confidence)
        .reduce(f64::min)
        .unwrap_or(0.0);
    let text = document_text(&pages);
    OcrResult {
        redacted: None,
        job_id: None,
        engine: ENGINE_NAME.into(),
        model_version: format!("tesseract-5/{languages}"),
        confidence,
        text,
        num_billed_pages: 0,
        pages,
    }
}

/// Gives each page the text tesseract rendered for it: its `txt` output, one
/// page after another, each ended by a form feed.
pub fn with_texts(pages: &mut [OcrPage], txt: &str) {
    let texts = txt.split('\x0c').map(|text| {
        text.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned()
    });
    for (page, text) in pages.iter_mut().zip(texts) {
        page.text = text;
    }
}

/// A page of Tesseract's TSV as its rows are read.
#[derive(Default)]
struct PageRows {
    width: u32,
    height: u32,
    words: Vec<OcrWord>,
    /// Each line's words, by (block, paragraph, line).
    lines: BTreeMap<(u32, u32, u32), Vec<String>>,
}

impl PageRows {
    /// One row, split into its fields: a page's size (level 1) or a word (level 5).
    fn add(&mut self, fields: &[&str]) {
        let number = |i: usize| fields[i].trim().parse::<i64>().unwrap_or(0);
        let (left, top, width, height) = (number(6), number(7), number(8), number(9));
        match number(0) {
            1 => {
                self.width = width as u32;
                self.height = height as u32;
            }
            5 => {
                let text = fields.get(11).map(|t| t.trim()).unwrap_or("");
                let confidence: f64 = fields[10].trim().parse().unwrap_or(-1.0);
                if text.is_empty() || confidence < 0.0 {
                    return;
                }
                let corner = |x, y| Vertex { x, y };
                self.words.push(OcrWord {
                    text: text.to_owned(),
                    confidence: (confidence / 100.0).clamp(0.0, 1.0),
                    vertices: [
                        corner(left, top),
                        corner(left + width, top),
                        corner(left + width, top + height),
                        corner(left, top + height),
                    ],
                });
                self.lines
                    .entry((number(2) as u32, number(3) as u32, number(4) as u32))
                    .or_default()
                    .push(text.to_owned());
            }
            _ => {}
        }
    }

    /// The page: its words, its lines joined, and its words' mean confidence.
    fn into_page(self) -> OcrPage {
        let confidence = if self.words.is_empty() {
            0.0
        } else {
            self.words.iter().map(|w| w.confidence).sum::<f64>() / self.words.len() as f64
        };
        OcrPage {
            page: 0,
            width: self.width,
            height: self.height,
            confidence,
            text: self
                .lines
                .into_values()
                .map(|words| words.join(" "))
                .collect::<Vec<_>>()
                .join("\n"),
            words: self.words,
            quality: None,
        }
    }
}

/// Tesseract's TSV (level, page, block, paragraph, line, word, left, top,
/// width, height, confidence 0–100, text) as pages of words and lines.
pub fn parse_tsv(tsv: &str) -> Vec<OcrPage> {
    let mut pages: BTreeMap<u32, PageRows> = BTreeMap::new();
    for row in tsv.lines().skip(1) {
        let fields: Vec<&str> = row.splitn(12, '\t').collect();
        if fields.len() < 11 {
            continue;
        }
        let page = fields[1].trim().parse::<i64>().unwrap_or(0) as u32;
        pages.entry(page).or_default().add(&fields);
    }
    pages.into_values().map(PageRows::into_page).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t1000\t1200\t-1\t
5\t1\t1\t1\t1\t1\t420\t110\t160\t60\t96.5\t영수증
5\t1\t1\t1\t2\t1\t110\t240\t90\t40\t91\t상호:
5\t1\t1\t1\t2\t2\t200\t240\t180\t40\t88\t한빛커피
5\t1\t1\t1\t2\t3\t390\t240\t10\t40\t-1\t
1\t2\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t
5\t2\t1\t1\t1\t1\t10\t20\t30\t40\t50\tTotal
";

    #[test]
    fn orientation_is_read_from_the_osd_report_only_when_it_is_sure() {
        let report = |turn, confidence| {
            format!(
                "Page number: 0\nOrientation in degrees: 270\nRotate: {turn}\nOrientation confidence: {confidence}\nScript: Korean\n"
            )
        };
        assert_eq!(parse_orientation(&report(90, 8.68)), 90.0);
        assert_eq!(parse_orientation(&report(180, 2.7)), 180.0);
        assert_eq!(
            parse_orientation(&report(180, 0.4)),
            0.0,
            "a guess is not a turn"
        );
        assert_eq!(parse_orientation(&report(0, 7.9)), 0.0);
        assert_eq!(
            parse_orientation("Too few characters. Skipping this page"),
            0.0
        );
    }

    #[test]
    fn tsv_rows_become_pages_lines_and_boxed_words() {
        let pages = parse_tsv(TSV);
        assert_eq!(pages.len(), 2);
        assert_eq!((pages[0].width, pages[0].height), (1000, 1200));
        assert_eq!(pages[0].text, "영수증\n상호: 한빛커피");
        assert_eq!(pages[0].words.len(), 3, "empty and -1 rows are not words");
        assert_eq!(pages[0].words[0].confidence, 0.965);
        assert_eq!(
            pages[0].words[0].vertices,
            [
                Vertex { x: 420, y: 110 },
                Vertex { x: 580, y: 110 },
                Vertex { x: 580, y: 170 },
                Vertex { x: 420, y: 170 }
            ]
        );
        assert!((pages[0].confidence - (0.965 + 0.91 + 0.88) / 3.0).abs() < 1e-9);
        let done = result(pages, LANGUAGES);
        assert_eq!(done.model_version, "tesseract-5/kor+Hangul+eng");
        assert_eq!(
            done.pages.iter().map(|p| p.page).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(done.confidence, 0.5);
        assert_eq!(
            done.text, "영수증\n상호: 한빛커피\n\nTotal",
            "pages apart by a blank line"
        );
    }

    #[test]
    fn each_page_reads_as_tesseract_wrote_it_not_as_its_fragments() {
        // The TSV reports Hangul in fragments; the txt rendering keeps the words whole.
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t1000\t1200\t-1\t
5\t1\t1\t1\t1\t1\t10\t10\t40\t40\t90\t한
5\t1\t1\t1\t1\t2\t50\t10\t40\t40\t90\t빛
5\t1\t1\t1\t1\t3\t90\t10\t80\t40\t90\t문서
1\t2\t0\t0\t0\t0\t0\t0\t1000\t1200\t-1\t
5\t2\t1\t1\t1\t1\t10\t10\t40\t40\t90\t김
5\t2\t1\t1\t1\t2\t50\t10\t80\t40\t90\t서연
";
        let mut pages = parse_tsv(tsv);
        assert_eq!(
            pages[0].text, "한 빛 문서",
            "what the fragments alone would give"
        );
        with_texts(&mut pages, "주식회사 한빛문서  \n\x0c김서연\n\x0c");
        assert_eq!(pages[0].text, "주식회사 한빛문서");
        assert_eq!(pages[1].text, "김서연");
        assert_eq!(pages[0].words.len(), 3, "the boxes still come from the TSV");
        assert_eq!(result(pages, LANGUAGES).text, "주식회사 한빛문서\n\n김서연");
    }
}
