//! The pages of an upload and the pixels each declares, read from its headers
//! with ranged reads wherever they sit, never decoding an image: a JPEG's
//! frame header after however many metadata segments, and every page of a
//! TIFF along its chain of directories. What the first 64 KiB hold is read
//! once; past them the file is read in 64 KiB blocks, 4 MiB at most.

use bytes::Bytes;
use ocr_shared::ports::{BlobError, BlobStore};

/// The block size of reads past the head.
const BLOCK: u64 = 64 * 1024;
/// Header bytes read at most, head included: more is a hostile file.
const MAX_HEADER_BYTES: u64 = 4 * 1024 * 1024;

/// Why the headers cannot be read.
#[derive(Debug)]
pub enum Unreadable {
    /// The headers say something a real file never does, or run past the
    /// bounds: the upload is refused with this reason.
    Format(String),
    /// The headers break a limit.
    Refused(ocr_shared::upload_policy::UploadRejection),
    /// Storage failed: the event is tried again.
    Storage(BlobError),
}

impl From<BlobError> for Unreadable {
    fn from(error: BlobError) -> Self {
        Unreadable::Storage(error)
    }
}

fn format(reason: impl Into<String>) -> Unreadable {
    Unreadable::Format(reason.into())
}

/// An object read by blocks, the first of which (the head) is already known.
pub struct Ranged<'a> {
    blobs: &'a dyn BlobStore,
    key: &'a str,
    size: u64,
    blocks: Vec<(u64, Bytes)>,
    read: u64,
}

impl<'a> Ranged<'a> {
    pub fn new(blobs: &'a dyn BlobStore, key: &'a str, size: u64, head: Bytes) -> Self {
        let read = head.len() as u64;
        Self {
            blobs,
            key,
            size,
            blocks: vec![(0, head)],
            read,
        }
    }

    /// `len` bytes at `offset`: a header field past the file's end is a format error.
    async fn bytes(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, Unreadable> {
        if offset.saturating_add(len) > self.size {
            return Err(format(format!(
                "a header at byte {offset} lies past the end of the file"
            )));
        }
        let mut out = Vec::with_capacity(len as usize);
        let mut at = offset;
        while at < offset + len {
            let block = self.block_at(at).await?;
            let (start, bytes) = &self.blocks[block];
            let from = (at - start) as usize;
            let take = ((offset + len - at) as usize).min(bytes.len() - from);
            out.extend_from_slice(&bytes[from..from + take]);
            at += take as u64;
        }
        Ok(out)
    }

    async fn block_at(&mut self, at: u64) -> Result<usize, Unreadable> {
        if let Some(i) = self
            .blocks
            .iter()
            .position(|(start, bytes)| at >= *start && at < start + bytes.len() as u64)
        {
            return Ok(i);
        }
        if self.read >= MAX_HEADER_BYTES {
            return Err(format(format!(
                "its headers run past {} MiB",
                MAX_HEADER_BYTES / (1024 * 1024)
            )));
        }
        let start = at - at % BLOCK;
        let len = BLOCK.min(self.size - start);
        let bytes = self.blobs.read_range(self.key, start, len).await?;
        if bytes.is_empty() {
            return Err(format("a header lies past the end of the file"));
        }
        self.read += bytes.len() as u64;
        self.blocks.push((start, bytes));
        Ok(self.blocks.len() - 1)
    }

    async fn u8(&mut self, offset: u64) -> Result<u8, Unreadable> {
        Ok(self.bytes(offset, 1).await?[0])
    }
}

/// The width and height a JPEG's frame header (SOF) declares, after however
/// many segments before it.
pub async fn jpeg_size(file: &mut Ranged<'_>) -> Result<(u64, u64), Unreadable> {
    let mut at = 2; // after SOI
    loop {
        if file.u8(at).await? != 0xFF {
            return Err(format("a JPEG segment does not start with a marker"));
        }
        // Fill bytes may stand before a marker.
        let mut marker = file.u8(at + 1).await?;
        while marker == 0xFF {
            at += 1;
            marker = file.u8(at + 1).await?;
        }
        match marker {
            // Start of frame, of any coding: precision, height, width.
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let frame = file.bytes(at + 4, 5).await?;
                let height = u64::from(u16::from_be_bytes([frame[1], frame[2]]));
                let width = u64::from(u16::from_be_bytes([frame[3], frame[4]]));
                return Ok((width, height));
            }
            0xDA | 0xD9 => return Err(format("the JPEG has no frame header before its data")),
            // Markers that stand alone, without a length.
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let length = file.bytes(at + 2, 2).await?;
                let length = u64::from(u16::from_be_bytes([length[0], length[1]]));
                if length < 2 {
                    return Err(format("a JPEG segment declares a length under 2"));
                }
                at += 2 + length;
            }
        }
    }
}

/// How a TIFF writes its numbers and directories.
struct TiffLayout {
    big_endian: bool,
    /// BigTIFF: 8-byte offsets and counts, 20-byte entries.
    big: bool,
}

impl TiffLayout {
    /// The layout the file's 8-byte header declares.
    fn of(header: &[u8]) -> Result<Self, Unreadable> {
        let big_endian = match &header[..2] {
            b"II" => false,
            b"MM" => true,
            _ => return Err(format("the TIFF's byte order is neither II nor MM")),
        };
        let mut layout = Self {
            big_endian,
            big: false,
        };
        layout.big = match layout.number(&header[2..4]) {
            42 => false,
            43 => true,
            _ => return Err(format("the TIFF's header is neither TIFF nor BigTIFF")),
        };
        Ok(layout)
    }

    /// An unsigned number of `bytes.len()` bytes, in the file's byte order.
    fn number(&self, bytes: &[u8]) -> u64 {
        let mut value = 0u64;
        for i in 0..bytes.len() {
            let byte = if self.big_endian {
                bytes[i]
            } else {
                bytes[bytes.len() - 1 - i]
            };
            value = (value << 8) | u64::from(byte);
        }
        value
    }

    /// Sizes of a directory's fields: offsets, entry counts and entries.
    fn sizes(&self) -> (u64, u64, u64) {
        if self.big { (8, 8, 20) } else { (4, 2, 12) }
    }

    /// The width and height a directory's entries declare, where they do.
    fn dimensions(&self, entries: &[u8]) -> (Option<u64>, Option<u64>) {
        let (_, _, entry_size) = self.sizes();
        let value_at = if self.big { 12 } else { 8 };
        let (mut width, mut height) = (None, None);
        for entry in entries.chunks_exact(entry_size as usize) {
            let tag = self.number(&entry[0..2]);
            // A SHORT sits in the value field's first bytes; LONG and LONG8 fill more of it.
            let value = match self.number(&entry[2..4]) {
                3 => self.number(&entry[value_at..value_at + 2]),
                4 => self.number(&entry[value_at..value_at + 4]),
                16 if self.big => self.number(&entry[value_at..value_at + 8]),
                _ => continue,
            };
            match tag {
                256 => width = Some(value),
                257 => height = Some(value),
                _ => {}
            }
        }
        (width, height)
    }
}

/// The width and height of each page of a TIFF (classic or BigTIFF), along
/// its chain of image directories; more than `max_pages` is not followed further.
pub async fn tiff_pages(
    file: &mut Ranged<'_>,
    max_pages: u32,
) -> Result<Vec<(u64, u64)>, Unreadable> {
    let header = file.bytes(0, 8).await?;
    let layout = TiffLayout::of(&header)?;
    let (offset_size, count_size, entry_size) = layout.sizes();
    let mut next = if layout.big {
        layout.number(&file.bytes(8, 8).await?)
    } else {
        layout.number(&header[4..8])
    };
    let mut pages = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while next != 0 {
        if !seen.insert(next) {
            return Err(format("the TIFF's directories form a loop"));
        }
        if pages.len() as u32 > max_pages {
            break;
        }
        let count = layout.number(&file.bytes(next, count_size).await?);
        if count > 4096 {
            return Err(format(format!("a TIFF directory declares {count} entries")));
        }
        let entries = file.bytes(next + count_size, count * entry_size).await?;
        let (Some(width), Some(height)) = layout.dimensions(&entries) else {
            return Err(format(format!(
                "page {} of the TIFF has no width or height",
                pages.len() + 1
            )));
        };
        pages.push((width, height));
        let next_at = next + count_size + count * entry_size;
        next = layout.number(&file.bytes(next_at, offset_size).await?);
    }
    if pages.is_empty() {
        return Err(format("the TIFF has no pages"));
    }
    Ok(pages)
}
