//! Images as an engine should get them: upright, whatever their EXIF
//! orientation says (a phone stores a portrait photo sideways and a tag that
//! turns it), and within the engine's pixel budget, aspect ratio kept. The
//! engine's page sizes and word boxes are then mapped back onto the upright
//! original, so that an overlay drawn on the photo as a browser shows it fits.
//!
//! An image that needs neither is sent as it came, undecoded. One that cannot
//! be decoded here is sent as it came too: the engine refuses what it cannot read.
//!
//! Memory is bounded by the image's header, before anything decodes it: an
//! image decoded here is fitted to `MAX_PREPARED_PIXELS` at most; a JPEG is
//! decoded at the smallest of its 1/1, 1/2, 1/4 and 1/8 scales that is still
//! at least that size (so a 100-megapixel photo is never held whole); it is
//! turned after it is fitted, on the small copy; and an image of another
//! format that would take more than `MAX_DECODE_BYTES` to decode is sent as it
//! came. `decode_cost` tells the worker what one preparation holds at its peak,
//! so that it counts it in its memory budget.

use std::io::Cursor;

use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use tracing::{info, warn};

use crate::domain::FileType;
use crate::ports::{Document, OcrResult};

/// Memory one decode may take at most (the decoded pixels, before fitting).
pub const MAX_DECODE_BYTES: u64 = 160 * 1024 * 1024;

/// The most pixels an image decoded here is sent with: 25 megapixels, an A4
/// page at 500 dpi, well past what OCR gains from.
pub const MAX_PREPARED_PIXELS: u64 = 25_000_000;

/// Quality of a JPEG photo re-encoded after turning or fitting: a photo stays
/// a JPEG (a PNG of it would be several times larger, past the engine's file
/// limit for a large one); other images go losslessly as PNG.
const JPEG_QUALITY: u8 = 92;

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

/// What the header says of an image, and what preparing it takes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Plan {
    format: ImageFormat,
    orientation: Orientation,
    width: u32,
    height: u32,
    /// Dimensions it is decoded at (a JPEG's DCT scale; others whole).
    decoded: (u32, u32),
    bytes_per_pixel: u64,
    /// Dimensions it is sent with, before turning.
    fitted: (u32, u32),
}

impl Plan {
    /// The most bytes preparing it holds at once: the decoded pixels beside
    /// their fitted copy, or the fitted pixels beside their turned copy; and
    /// the encoded output (a PNG at most the raw pixels, a JPEG half of them).
    fn peak_bytes(&self) -> u64 {
        let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h) * self.bytes_per_pixel;
        let (decoded, fitted) = (area(self.decoded), area(self.fitted));
        let resized = if self.decoded == self.fitted {
            0
        } else {
            fitted
        };
        let turned = if self.orientation == Orientation::NoTransforms {
            0
        } else {
            fitted
        };
        let output = if self.format == ImageFormat::Jpeg {
            fitted / 2
        } else {
            fitted
        };
        (decoded + resized).max(fitted + turned) + output
    }
}

fn reader(document: &Document, format: ImageFormat) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(&document.bytes[..]), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader
}

/// The plan for `document`, from its header alone; `None` when it goes as it
/// came (upright and within `max_pixels`, unreadable, or too large to decode here).
fn plan(document: &Document, max_pixels: u64) -> image::ImageResult<Option<Plan>> {
    let Some(format) = handled(document.file_type) else {
        return Ok(None);
    };
    let mut decoder = reader(document, format).into_decoder()?;
    let orientation = decoder.orientation()?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if orientation == Orientation::NoTransforms && pixels <= max_pixels {
        return Ok(None);
    }
    let target = max_pixels.clamp(1, MAX_PREPARED_PIXELS);
    let shrink = if pixels > target {
        (target as f64 / pixels as f64).sqrt()
    } else {
        1.0
    };
    let fit = |side: u32| ((f64::from(side) * shrink).floor() as u32).max(1);
    let fitted = (fit(width), fit(height));
    let bytes_per_pixel = u64::from(decoder.color_type().bytes_per_pixel());
    let decoded = if format == ImageFormat::Jpeg {
        jpeg_scaled(width, height, fitted)
    } else {
        (width, height)
    };
    let plan = Plan {
        format,
        orientation,
        width,
        height,
        decoded,
        bytes_per_pixel,
        fitted,
    };
    let decoded_bytes = u64::from(decoded.0) * u64::from(decoded.1) * bytes_per_pixel;
    if decoded_bytes > MAX_DECODE_BYTES {
        warn!(
            width,
            height, "the image would take too much memory to decode here; sent as it came"
        );
        return Ok(None);
    }
    Ok(Some(plan))
}

/// The dimensions a JPEG of `width` × `height` decodes at with the smallest
/// DCT scale (1/8, 1/4, 1/2 or whole) that still covers `fitted`.
fn jpeg_scaled(width: u32, height: u32, fitted: (u32, u32)) -> (u32, u32) {
    for denominator in [8, 4, 2] {
        let (w, h) = (width.div_ceil(denominator), height.div_ceil(denominator));
        if w >= fitted.0 && h >= fitted.1 {
            return (w, h);
        }
    }
    (width, height)
}

/// The bytes preparing `document` holds at its peak; 0 when it goes as it came.
pub fn decode_cost(document: &Document, max_pixels: u64) -> u64 {
    match plan(document, max_pixels) {
        Ok(Some(plan)) => plan.peak_bytes(),
        _ => 0,
    }
}

/// `document` upright and within `max_pixels`, or `None` when it already is
/// (or cannot be read here). CPU-bound: call it off the async runtime.
pub fn prepare(document: &Document, max_pixels: u64) -> Option<Prepared> {
    let prepared = plan(document, max_pixels).and_then(|plan| match plan {
        Some(plan) => turn_and_fit(document, &plan).map(Some),
        None => Ok(None),
    });
    match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            warn!(%error, "the image could not be prepared; sent as it came");
            None
        }
    }
}

/// A JPEG decoded at the plan's DCT scale.
fn decode_jpeg(document: &Document, plan: &Plan) -> image::ImageResult<DynamicImage> {
    let failed = |error: jpeg_decoder::Error| {
        image::ImageError::Decoding(image::error::DecodingError::new(
            ImageFormat::Jpeg.into(),
            error,
        ))
    };
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(&document.bytes[..]));
    let (w, h) = plan.decoded;
    let (w, h) = decoder
        .scale(
            w.min(u32::from(u16::MAX)) as u16,
            h.min(u32::from(u16::MAX)) as u16,
        )
        .map_err(failed)?;
    let pixels = decoder.decode().map_err(failed)?;
    let info = decoder
        .info()
        .ok_or_else(|| failed(jpeg_decoder::Error::Format("no frame header".into())))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let unsupported = || {
        failed(jpeg_decoder::Error::Format(
            "unexpected pixel layout".into(),
        ))
    };
    Ok(match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels).ok_or_else(unsupported)?)
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(unsupported)?)
        }
        // A CMYK scan or a 16-bit one: rare, and left to the engine as it came.
        jpeg_decoder::PixelFormat::CMYK32 | jpeg_decoder::PixelFormat::L16 => {
            return Err(unsupported());
        }
    })
}

fn turn_and_fit(document: &Document, plan: &Plan) -> image::ImageResult<Prepared> {
    let image = if plan.format == ImageFormat::Jpeg {
        decode_jpeg(document, plan)?
    } else {
        DynamicImage::from_decoder(reader(document, plan.format).into_decoder()?)?
    };
    let (fitted_width, fitted_height) = plan.fitted;
    let mut image = if (image.width(), image.height()) == plan.fitted {
        image
    } else {
        image.resize_exact(fitted_width, fitted_height, FilterType::Triangle)
    };
    image.apply_orientation(plan.orientation);
    let upright_width = match plan.orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => plan.height,
        _ => plan.width,
    };
    let scale = f64::from(upright_width) / f64::from(image.width());
    let (sent_width, sent_height) = (image.width(), image.height());
    let mut bytes = Vec::new();
    let file_type = if plan.format == ImageFormat::Jpeg {
        let encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
        image.into_rgb8().write_with_encoder(encoder)?;
        FileType::Jpeg
    } else {
        // Lossless: the engine reads exactly the upright pixels of a scan.
        image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
        FileType::Png
    };
    info!(
        orientation = ?plan.orientation,
        from = %format!("{}x{}", plan.width, plan.height),
        decoded = %format!("{}x{}", plan.decoded.0, plan.decoded.1),
        to = %format!("{sent_width}x{sent_height}"),
        bytes = bytes.len(),
        "image turned upright and fitted for the engine"
    );
    Ok(Prepared {
        document: Document {
            filename: document.filename.clone(),
            file_type,
            bytes: Bytes::from(bytes),
        },
        scale,
    })
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

    /// An RGB JPEG's header declaring `width` × `height`, with orientation 6:
    /// enough for a plan, never decoded.
    fn declaring(width: u16, height: u16) -> Document {
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::new(16, 16))
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        Document {
            filename: "bomb.jpg".into(),
            file_type: FileType::Jpeg,
            bytes: Bytes::from(with_orientation(&bytes, 6)),
        }
    }

    #[test]
    fn a_sideways_100_megapixel_photo_is_decoded_at_half_its_sides_and_fitted_before_it_turns() {
        let bomb = declaring(10_000, 10_000);
        let planned = plan(&bomb, 100_000_000).unwrap().unwrap();
        assert_eq!(planned.decoded, (5000, 5000), "1/2 DCT scale, not 100 MP");
        assert_eq!(planned.fitted, (5000, 5000));
        let mib = planned.peak_bytes() / (1024 * 1024);
        assert!(mib <= 200, "{mib} MiB at its peak");
        assert_eq!(decode_cost(&bomb, 100_000_000), planned.peak_bytes());

        // A taller one past the engine's own budget: decoded at 1/4.
        let tall = plan(&declaring(12_000, 16_000), 8_000_000)
            .unwrap()
            .unwrap();
        assert_eq!(tall.decoded, (3000, 4000));
        assert_eq!(tall.fitted, (2449, 3265));
    }

    #[test]
    fn a_large_sideways_photo_is_read_at_a_dct_scale_and_stays_a_jpeg() {
        let prepared = prepare(&jpeg(3000, 2000, Some(6)), 1_000_000).unwrap();
        assert_eq!(prepared.document.file_type, FileType::Jpeg);
        let upright = decoded(&prepared.document).to_luma8();
        assert_eq!(
            upright.dimensions(),
            (816, 1224),
            "turned, and fitted to 1 MP"
        );
        assert!((prepared.scale - 2000.0 / 816.0).abs() < 1e-9);
        assert!(upright.get_pixel(700, 100).0[0] < 64, "dark top right");
        assert!(upright.get_pixel(100, 100).0[0] > 192, "light top left");
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
