//! Images as an engine should get them: upright, whatever their EXIF
//! orientation says (a phone stores a portrait photo sideways and a tag that
//! turns it), and within the engine's pixel budget, aspect ratio kept. The
//! engine's page sizes and word boxes are then mapped back onto the upright
//! original, so that an overlay drawn on the photo as a browser shows it fits.
//!
//! An image that needs neither is sent as it came, undecoded. One that cannot
//! be decoded here is sent as it came too: the engine refuses what it cannot read.

use std::io::Cursor;

use bytes::Bytes;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use tracing::{info, warn};

use crate::domain::FileType;
use crate::ports::{Document, OcrResult};

/// Memory a decode may take at most: a 100-megapixel RGBA image and some.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// A document made ready for an engine, and how to map its coordinates back.
#[derive(Debug)]
pub struct Prepared {
    pub document: Document,
    /// Upright original pixels per engine pixel (1 when only turned).
    pub scale: f64,
}

/// The image types turned and scaled here. TIFF may hold several pages (the
/// engines read them all) and HEIC is not decoded here, so both go as they are.
fn handled(file_type: FileType) -> Option<ImageFormat> {
    match file_type {
        FileType::Jpeg => Some(ImageFormat::Jpeg),
        FileType::Png => Some(ImageFormat::Png),
        FileType::Webp => Some(ImageFormat::WebP),
        FileType::Bmp => Some(ImageFormat::Bmp),
        _ => None,
    }
}

/// `document` upright and within `max_pixels`, or `None` when it already is
/// (or cannot be read here). CPU-bound: call it off the async runtime.
pub fn prepare(document: &Document, max_pixels: u64) -> Option<Prepared> {
    let format = handled(document.file_type)?;
    match turn_and_fit(document, format, max_pixels) {
        Ok(prepared) => prepared,
        Err(error) => {
            warn!(%error, "the image could not be prepared; sent as it came");
            None
        }
    }
}

fn turn_and_fit(
    document: &Document,
    format: ImageFormat,
    max_pixels: u64,
) -> image::ImageResult<Option<Prepared>> {
    let mut reader = ImageReader::with_format(Cursor::new(&document.bytes[..]), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if orientation == Orientation::NoTransforms && pixels <= max_pixels {
        return Ok(None);
    }
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    let upright_width = image.width();
    if pixels > max_pixels {
        let shrink = (max_pixels as f64 / pixels as f64).sqrt();
        let fitted_width = ((image.width() as f64 * shrink).floor() as u32).max(1);
        let fitted_height = ((image.height() as f64 * shrink).floor() as u32).max(1);
        image = image.resize_exact(fitted_width, fitted_height, FilterType::Triangle);
    }
    let scale = f64::from(upright_width) / f64::from(image.width());
    // Lossless: the engine reads exactly the upright pixels, photo or scan.
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    info!(
        ?orientation,
        from = %format!("{width}x{height}"),
        to = %format!("{}x{}", image.width(), image.height()),
        "image turned upright and fitted for the engine"
    );
    Ok(Some(Prepared {
        document: Document {
            filename: document.filename.clone(),
            file_type: FileType::Png,
            bytes: Bytes::from(bytes),
        },
        scale,
    }))
}

/// Maps an engine's result for a prepared image back onto the upright
/// original: page sizes and every word's vertices times `scale`.
pub fn restore(result: &mut OcrResult, scale: f64) {
    if scale == 1.0 {
        return;
    }
    let at = |value: f64| (value * scale).round();
    for page in &mut result.pages {
        page.width = at(f64::from(page.width)) as u32;
        page.height = at(f64::from(page.height)) as u32;
        for word in &mut page.words {
            for vertex in &mut word.vertices {
                vertex.x = at(vertex.x as f64) as i64;
                vertex.y = at(vertex.y as f64) as i64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, Luma};

    use super::*;
    use crate::ports::Vertex;

    /// A `width` × `height` JPEG, black in its top-left quarter, with an EXIF
    /// orientation tag when `orientation` is given.
    fn jpeg(width: u32, height: u32, orientation: Option<u16>) -> Document {
        let image = GrayImage::from_fn(width, height, |x, y| {
            Luma([if x < width / 2 && y < height / 2 {
                0
            } else {
                255
            }])
        });
        let mut bytes = Vec::new();
        DynamicImage::ImageLuma8(image)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        if let Some(value) = orientation {
            bytes = with_orientation(&bytes, value);
        }
        Document {
            filename: "photo.jpg".into(),
            file_type: FileType::Jpeg,
            bytes: Bytes::from(bytes),
        }
    }

    /// The JPEG with an APP1 EXIF segment holding one orientation entry.
    fn with_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian, IFD at 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
        tiff.extend_from_slice(&value.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn decoded(document: &Document) -> DynamicImage {
        image::load_from_memory(&document.bytes).unwrap()
    }

    #[test]
    fn an_upright_image_within_the_budget_is_sent_as_it_came() {
        assert!(prepare(&jpeg(64, 48, None), 10_000).is_none());
        assert!(prepare(&jpeg(64, 48, Some(1)), 10_000).is_none());
        let pdf = Document {
            filename: "a.pdf".into(),
            file_type: FileType::Pdf,
            bytes: Bytes::from_static(b"%PDF-1.7"),
        };
        assert!(prepare(&pdf, 1).is_none());
        let broken = Document {
            bytes: Bytes::from_static(b"\xFF\xD8\xFF\xE0 not really"),
            ..jpeg(8, 8, None)
        };
        assert!(prepare(&broken, 1).is_none(), "left to the engine");
    }

    #[test]
    fn a_sideways_photo_is_turned_by_its_exif_orientation() {
        // Stored 64 × 48 with orientation 6: shown 48 × 64, turned 90° clockwise,
        // so the stored top-left corner ends at the top right.
        let prepared = prepare(&jpeg(64, 48, Some(6)), 10_000).unwrap();
        assert_eq!(prepared.scale, 1.0);
        let upright = decoded(&prepared.document).to_luma8();
        assert_eq!(upright.dimensions(), (48, 64));
        assert!(upright.get_pixel(40, 8).0[0] < 64, "dark top right");
        assert!(upright.get_pixel(8, 8).0[0] > 192, "light top left");
    }

    #[test]
    fn an_image_over_the_budget_is_scaled_down_keeping_its_aspect_and_boxes_map_back() {
        let prepared = prepare(&jpeg(400, 300, None), 30_000).unwrap();
        let fitted = decoded(&prepared.document);
        assert_eq!((fitted.width(), fitted.height()), (200, 150));
        assert!((prepared.scale - 2.0).abs() < 1e-9);

        let mut result = crate::testing::ocr_result("x");
        result.pages[0].width = 200;
        result.pages[0].height = 150;
        result.pages[0].words[0].vertices = [
            Vertex { x: 10, y: 20 },
            Vertex { x: 60, y: 20 },
            Vertex { x: 60, y: 40 },
            Vertex { x: 10, y: 40 },
        ];
        restore(&mut result, prepared.scale);
        let page = &result.pages[0];
        assert_eq!((page.width, page.height), (400, 300));
        assert_eq!(page.words[0].vertices[2], Vertex { x: 120, y: 80 });
    }
}
