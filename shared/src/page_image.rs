//! A page image measured and made ready for an engine that reads text lines
//! (the offline engine): how far its lines are turned, how tall its text is,
//! how sharp and how bright it is; then straightened and scaled so that its
//! text lines run level at the height the engine reads best. Every step is
//! kept, so that the engine's word boxes map back onto the original image.
//!
//! The measures come from a copy at most `ANALYSIS_SIDE` pixels on its long
//! side: the ink (pixels darker than their neighbourhood, so that a table
//! around a photographed page is not ink), projected across every direction
//! from -90° to 90°; the direction whose projection has the sharpest peaks is
//! that of the text lines, and the width of those peaks is their height.

use image::{GrayImage, Luma, imageops};

use crate::domain::QualityIssue;
use crate::ports::{PageQuality, Vertex};

/// The long side of the copy the page is measured on.
pub const ANALYSIS_SIDE: u32 = 1200;
/// Text line height the engine reads best at, in pixels: Tesseract's
/// documentation puts the best capital height at 20–40 px.
pub const TARGET_TEXT_HEIGHT: f64 = 34.0;
/// Lines shorter than this are scaled up; taller than `SHRINK_ABOVE`, down.
pub const GROW_BELOW: f64 = 24.0;
pub const SHRINK_ABOVE: f64 = 90.0;
/// The most a page is scaled up.
pub const MAX_GROWTH: f64 = 3.0;
/// Skew under this is left alone: straightening resamples every pixel.
pub const LEVEL_WITHIN_DEGREES: f64 = 0.4;
/// Skew over this is reported as an issue.
pub const SKEWED_OVER_DEGREES: f64 = 3.0;
/// Sharpness under this is `blurry`.
pub const BLURRY_BELOW: f64 = 0.42;
/// Text lines shorter than this, in the original's pixels, are `text_too_small`.
pub const SMALL_TEXT_BELOW: f64 = 12.0;
/// Paper darker than this is `too_dark`.
pub const DARK_BELOW: f64 = 0.45;

/// What a page shows before it is read.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The text lines' angle, counter-clockwise positive, in (-90°, 90°].
    pub skew_degrees: f64,
    pub text_height_px: Option<f64>,
    pub blur: f64,
    pub brightness: f64,
}

impl Measured {
    /// The quality report, with `turned` (a quarter or half turn the engine
    /// found after straightening) added to the skew.
    pub fn quality(&self, turned: f64) -> PageQuality {
        let skew = normalized(self.skew_degrees + turned);
        let mut issues = Vec::new();
        if self.blur < BLURRY_BELOW {
            issues.push(QualityIssue::Blurry);
        }
        let off_level = [0.0, 90.0, -90.0, 180.0, -180.0]
            .iter()
            .map(|right| (skew - right).abs())
            .fold(f64::MAX, f64::min);
        if off_level > SKEWED_OVER_DEGREES {
            issues.push(QualityIssue::Skewed);
        }
        if self.text_height_px.is_some_and(|h| h < SMALL_TEXT_BELOW) {
            issues.push(QualityIssue::TextTooSmall);
        }
        if self.brightness < DARK_BELOW {
            issues.push(QualityIssue::TooDark);
        }
        PageQuality {
            skew_degrees: (skew * 10.0).round() / 10.0,
            blur: (self.blur * 100.0).round() / 100.0,
            text_height_px: self.text_height_px.map(|h| h.round()),
            brightness: (self.brightness * 100.0).round() / 100.0,
            issues,
        }
    }
}

/// An angle in (-180°, 180°].
fn normalized(degrees: f64) -> f64 {
    let mut d = degrees % 360.0;
    if d > 180.0 {
        d -= 360.0;
    }
    if d <= -180.0 {
        d += 360.0;
    }
    d
}

/// One step from the original image to the one the engine reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Turned clockwise by `degrees` about its centre onto a canvas that holds
    /// it all: `from` and `to` are the sizes before and after.
    Turn {
        degrees: f64,
        from: (u32, u32),
        to: (u32, u32),
    },
    /// Both sides times this.
    Scale(f64),
}

impl Step {
    /// A point of the image after this step, where it was before it.
    fn back(&self, (x, y): (f64, f64)) -> (f64, f64) {
        match *self {
            Step::Scale(factor) => (x / factor, y / factor),
            Step::Turn { degrees, from, to } => {
                let (sin, cos) = degrees.to_radians().sin_cos();
                let (dx, dy) = (x - f64::from(to.0) / 2.0, y - f64::from(to.1) / 2.0);
                (
                    f64::from(from.0) / 2.0 + cos * dx + sin * dy,
                    f64::from(from.1) / 2.0 - sin * dx + cos * dy,
                )
            }
        }
    }
}

/// The steps taken, in order; they map the engine's coordinates back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Steps(pub Vec<Step>);

impl Steps {
    /// `vertex` of the engine's image on the original.
    pub fn back(&self, vertex: Vertex) -> Vertex {
        let point = self
            .0
            .iter()
            .rev()
            .fold((vertex.x as f64, vertex.y as f64), |point, step| {
                step.back(point)
            });
        Vertex {
            x: point.0.round() as i64,
            y: point.1.round() as i64,
        }
    }

    /// Whether the page went to the engine as it came.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `image` measured (see the module's documentation).
pub fn measure(image: &GrayImage) -> Measured {
    let long = image.width().max(image.height()).max(1);
    let factor = (f64::from(long) / f64::from(ANALYSIS_SIDE)).max(1.0);
    let small = if factor > 1.0 {
        let w = (f64::from(image.width()) / factor).round().max(1.0) as u32;
        let h = (f64::from(image.height()) / factor).round().max(1.0) as u32;
        imageops::resize(image, w, h, imageops::FilterType::Triangle)
    } else {
        image.clone()
    };
    let (low, brightness) = percentiles(&small);
    let ink = ink(&small);
    let (skew, height) = lines(&ink);
    Measured {
        skew_degrees: skew,
        text_height_px: height.map(|h| h * factor),
        blur: sharpness(&small, f64::from(brightness) - f64::from(low)),
        brightness: f64::from(brightness) / 255.0,
    }
}

/// The 1st and 90th percentiles of luminance: the ink's and the paper's (a
/// page of text is mostly paper).
fn percentiles(image: &GrayImage) -> (u8, u8) {
    let mut histogram = [0u64; 256];
    for pixel in image.pixels() {
        histogram[usize::from(pixel.0[0])] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let at = |share: f64| {
        let mut seen = 0;
        for (value, count) in histogram.iter().enumerate() {
            seen += count;
            if seen as f64 >= share * total as f64 {
                return value as u8;
            }
        }
        255
    };
    (at(0.01), at(0.9))
}

/// The ink's pixels: darker than their neighbourhood's mean by a share of it.
fn ink(image: &GrayImage) -> Vec<(f32, f32)> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    // An integral image: each neighbourhood's sum in four reads.
    let mut sums = vec![0u64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u64;
        for x in 0..w {
            row += u64::from(image.get_pixel(x as u32, y as u32).0[0]);
            sums[(y + 1) * (w + 1) + x + 1] = sums[y * (w + 1) + x + 1] + row;
        }
    }
    let radius = (w.max(h) / 60).max(6);
    let mut points = Vec::new();
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(radius), (y + radius + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(radius), (x + radius + 1).min(w));
            let area = ((y1 - y0) * (x1 - x0)) as u64;
            let sum = sums[y1 * (w + 1) + x1] + sums[y0 * (w + 1) + x0]
                - sums[y0 * (w + 1) + x1]
                - sums[y1 * (w + 1) + x0];
            let mean = sum as f64 / area as f64;
            let value = f64::from(image.get_pixel(x as u32, y as u32).0[0]);
            if value < mean * 0.8 - 8.0 {
                points.push((x as f32, y as f32));
            }
        }
    }
    points
}

/// How peaked the projection of `points` across direction `degrees` is (the
/// sum of squared bin counts), with the projection itself.
fn projection(points: &[(f32, f32)], degrees: f64) -> (f64, Vec<u32>) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (sin, cos) = (sin as f32, cos as f32);
    let offset = points
        .iter()
        .map(|&(x, y)| x * sin + y * cos)
        .fold(f32::MAX, f32::min);
    let mut bins: Vec<u32> = Vec::new();
    for &(x, y) in points {
        let bin = (x * sin + y * cos - offset) as usize;
        if bin >= bins.len() {
            bins.resize(bin + 1, 0);
        }
        bins[bin] += 1;
    }
    let score = bins.iter().map(|&n| f64::from(n) * f64::from(n)).sum();
    (score, bins)
}

/// The text lines' direction and height, from the ink: every degree from
/// -90° to 90°, then tenths around the best.
fn lines(ink: &[(f32, f32)]) -> (f64, Option<f64>) {
    if ink.len() < 50 {
        return (0.0, None);
    }
    // Enough of the ink for the angle: every nth point.
    let step = (ink.len() / 60_000).max(1);
    let sample: Vec<(f32, f32)> = ink.iter().step_by(step).copied().collect();
    let best = |angles: &mut dyn Iterator<Item = f64>| {
        angles
            .map(|angle| (projection(&sample, angle).0, angle))
            .fold((f64::MIN, 0.0), |a, b| if b.0 > a.0 { b } else { a })
            .1
    };
    let coarse = best(&mut (-89..=90).map(f64::from));
    let fine = best(&mut (-10..=10).map(|tenth| coarse + f64::from(tenth) / 10.0));
    // The direction of the lines is the one whose normal the projection is
    // taken along: angle 0 projects onto the vertical, for level lines.
    let (_, bins) = projection(ink, fine);
    (normalized_half(fine), line_height(&bins))
}

/// An angle in (-90°, 90°].
fn normalized_half(degrees: f64) -> f64 {
    let mut d = degrees;
    while d > 90.0 {
        d -= 180.0;
    }
    while d <= -90.0 {
        d += 180.0;
    }
    d
}

/// The median width of the projection's peaks: the runs of bins holding a
/// twentieth of the tallest bin's ink or more (a line's rows from its
/// tallest glyph's top to its lowest one's foot), two bins or more.
fn line_height(bins: &[u32]) -> Option<f64> {
    let top = bins.iter().copied().max()?;
    let floor = (top / 20).max(2);
    let mut runs = Vec::new();
    let mut run = 0usize;
    for &n in bins.iter().chain(std::iter::once(&0)) {
        if n >= floor {
            run += 1;
        } else {
            if run >= 2 {
                runs.push(run);
            }
            run = 0;
        }
    }
    if runs.is_empty() {
        return None;
    }
    runs.sort_unstable();
    Some(runs[runs.len() / 2] as f64)
}

/// Edge sharpness: the 90th percentile of the gradient over the contrast,
/// among the pixels on an edge (a gradient of a tenth of the contrast or more).
fn sharpness(image: &GrayImage, contrast: f64) -> f64 {
    if contrast < 1.0 || image.width() < 3 || image.height() < 3 {
        return 0.0;
    }
    let mut histogram = [0u64; 512];
    for y in 1..image.height() - 1 {
        for x in 1..image.width() - 1 {
            let at = |dx: i32, dy: i32| {
                i32::from(
                    image
                        .get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32)
                        .0[0],
                )
            };
            let gradient = ((at(1, 0) - at(-1, 0)).abs() + (at(0, 1) - at(0, -1)).abs()) / 2;
            histogram[gradient.min(511) as usize] += 1;
        }
    }
    let edge = (contrast / 10.0).ceil() as usize;
    let total: u64 = histogram[edge.min(511)..].iter().sum();
    let mut seen = 0;
    for (gradient, count) in histogram.iter().enumerate().skip(edge) {
        seen += count;
        if seen as f64 >= 0.9 * total as f64 {
            return (gradient as f64 / contrast).min(1.5);
        }
    }
    0.0
}

/// `image` turned clockwise by `degrees` about its centre, on a white canvas
/// that holds it all (bilinear sampling).
pub fn turn(image: &GrayImage, degrees: f64) -> (GrayImage, Step) {
    let from = image.dimensions();
    let quarter = (degrees / 90.0).round();
    if (degrees - quarter * 90.0).abs() < 1e-9 {
        let turned = match (quarter as i64).rem_euclid(4) {
            1 => imageops::rotate90(image),
            2 => imageops::rotate180(image),
            3 => imageops::rotate270(image),
            _ => image.clone(),
        };
        let to = turned.dimensions();
        return (turned, Step::Turn { degrees, from, to });
    }
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (f64::from(from.0), f64::from(from.1));
    let to = (
        (w * cos.abs() + h * sin.abs()).ceil() as u32,
        (w * sin.abs() + h * cos.abs()).ceil() as u32,
    );
    let step = Step::Turn { degrees, from, to };
    let mut turned = GrayImage::from_pixel(to.0, to.1, Luma([255]));
    for (x, y, pixel) in turned.enumerate_pixels_mut() {
        let (sx, sy) = step.back((f64::from(x) + 0.5, f64::from(y) + 0.5));
        *pixel = Luma([sample(image, sx - 0.5, sy - 0.5)]);
    }
    (turned, step)
}

/// The image's value at (x, y), bilinear; white outside it.
fn sample(image: &GrayImage, x: f64, y: f64) -> u8 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f64, yi: f64| {
        if xi < 0.0 || yi < 0.0 || xi >= f64::from(image.width()) || yi >= f64::from(image.height())
        {
            255.0
        } else {
            f64::from(image.get_pixel(xi as u32, yi as u32).0[0])
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

/// How much to scale a page whose text lines are `height` px tall, so that
/// they reach the engine's best height within `max_pixels` for the page.
pub fn scale_for(height: Option<f64>, (w, h): (u32, u32), max_pixels: u64) -> f64 {
    let Some(height) = height.filter(|h| *h > 0.0) else {
        return 1.0;
    };
    let wanted = if !(GROW_BELOW..=SHRINK_ABOVE).contains(&height) {
        (TARGET_TEXT_HEIGHT / height).min(MAX_GROWTH)
    } else {
        1.0
    };
    let room = (max_pixels as f64 / (f64::from(w) * f64::from(h)).max(1.0)).sqrt();
    wanted.min(room.clamp(1.0, MAX_GROWTH)).max(0.25)
}

/// `image` measured, straightened and scaled for the engine, with the steps
/// taken. A page within `LEVEL_WITHIN_DEGREES` of level and of a good text
/// height comes back untouched, with no steps.
pub fn prepare(image: &GrayImage, max_pixels: u64) -> (Measured, GrayImage, Steps) {
    let measured = measure(image);
    let mut steps = Vec::new();
    let mut page = None;
    if measured.skew_degrees.abs() > LEVEL_WITHIN_DEGREES {
        // Clockwise by the lines' counter-clockwise angle levels them.
        let (turned, step) = turn(image, measured.skew_degrees);
        steps.push(step);
        page = Some(turned);
    }
    let current = page.as_ref().unwrap_or(image);
    let factor = scale_for(measured.text_height_px, current.dimensions(), max_pixels);
    if (factor - 1.0).abs() > 0.05 {
        let w = (f64::from(current.width()) * factor).round().max(1.0) as u32;
        let h = (f64::from(current.height()) * factor).round().max(1.0) as u32;
        let scaled = imageops::resize(current, w, h, imageops::FilterType::CatmullRom);
        steps.push(Step::Scale(f64::from(w) / f64::from(current.width())));
        page = Some(scaled);
    }
    let page = page.unwrap_or_else(|| image.clone());
    (measured, page, Steps(steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of `lines` black bars (text lines `height` px tall), 800 px wide.
    fn bars(lines: u32, height: u32) -> GrayImage {
        let mut page = GrayImage::from_pixel(800, lines * height * 3 + 100, Luma([250]));
        for line in 0..lines {
            let top = 50 + line * height * 3;
            for y in top..top + height {
                // Words: bars with gaps, as text has.
                for x in 60..740 {
                    if (x / 40) % 4 != 3 && (x % 7) != 0 {
                        page.put_pixel(x, y, Luma([20]));
                    }
                }
            }
        }
        page
    }

    #[test]
    fn level_lines_measure_level_with_their_height() {
        let measured = measure(&bars(12, 20));
        assert!(measured.skew_degrees.abs() < 0.3, "{measured:?}");
        let height = measured.text_height_px.unwrap();
        assert!((18.0..=22.0).contains(&height), "{measured:?}");
        assert!(measured.blur > BLURRY_BELOW, "{measured:?}");
        assert!(measured.quality(0.0).issues.is_empty(), "{measured:?}");
    }

    #[test]
    fn turned_lines_measure_at_their_angle_and_prepare_levels_them() {
        for degrees in [-30.0, -12.0, 5.0, 20.0, 45.0, 90.0] {
            let (turned, _) = turn(&bars(12, 20), -degrees);
            let measured = measure(&turned);
            assert!(
                (normalized_half(measured.skew_degrees - degrees)).abs() < 0.6,
                "{degrees}: {measured:?}"
            );
            let (_, level, steps) = prepare(&turned, 50_000_000);
            assert!(measure(&level).skew_degrees.abs() < 0.6, "{degrees}");
            assert!(!steps.is_empty());
        }
    }

    #[test]
    fn small_text_is_scaled_to_the_engines_height_and_points_map_back() {
        let page = bars(10, 8);
        let (measured, prepared, steps) = prepare(&page, 50_000_000);
        assert!(
            measured
                .quality(0.0)
                .issues
                .contains(&QualityIssue::TextTooSmall)
        );
        assert!(
            prepared.width() >= 2 * page.width(),
            "{:?}",
            prepared.dimensions()
        );
        let corner = steps.back(Vertex {
            x: i64::from(prepared.width()),
            y: i64::from(prepared.height()),
        });
        assert_eq!((corner.x, corner.y), (800, i64::from(page.height())));
    }

    #[test]
    fn a_turn_maps_its_points_back_onto_the_original() {
        let page = bars(4, 20);
        let (turned, step) = turn(&page, 20.0);
        let steps = Steps(vec![step]);
        // The turned image's centre is the original's.
        let centre = steps.back(Vertex {
            x: i64::from(turned.width() / 2),
            y: i64::from(turned.height() / 2),
        });
        assert!(
            (centre.x - 400).abs() <= 1 && (centre.y - i64::from(page.height() / 2)).abs() <= 1
        );
        // A quarter turn clockwise: the turned image's top-right corner was the original's top-left.
        let (quarter, step) = turn(&page, 90.0);
        let corner = Steps(vec![step]).back(Vertex {
            x: i64::from(quarter.width()),
            y: 0,
        });
        assert_eq!((corner.x, corner.y), (0, 0));
    }

    #[test]
    fn a_dark_soft_page_reports_its_issues() {
        let mut page = bars(12, 20);
        for pixel in page.pixels_mut() {
            pixel.0[0] = (f64::from(pixel.0[0]) * 0.35) as u8;
        }
        let soft = imageops::blur(&page, 3.0);
        let quality = measure(&soft).quality(0.0);
        assert!(
            quality.issues.contains(&QualityIssue::TooDark),
            "{quality:?}"
        );
        assert!(
            quality.issues.contains(&QualityIssue::Blurry),
            "{quality:?}"
        );
    }
}
