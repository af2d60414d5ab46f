// SPDX-License-Identifier: GPL-2.0

//! The zstd seekable format of compressed chunk blobs.
//!
//! `puzzlefs build -c` stores a chunk as independent zstd frames of (upstream) at most 4 KiB of
//! uncompressed data each, followed by a seek table in a skippable frame, so that a reader can
//! decompress only the frames covering the bytes it needs. The layout, from the end of the
//! blob backwards (all integers little-endian):
//!
//! ```text
//! frames...                         the compressed frames, back to back
//! u32 0x184D2A5E                    skippable frame magic (variant 0xE)
//! u32 frame size                    = table bytes + 9
//! per frame: u32 compressed size,   the seek table, in frame order
//!            u32 decompressed size,
//!            [u32 checksum]         (if the checksum flag is set: XXH64 low 32 bits)
//! u32 number of frames              the footer (9 bytes)
//! u8  descriptor                    bit 7: checksum flag; bits 2-6 reserved (zero)
//! u32 0x8F92EAB1                    seekable magic
//! ```
//!
//! Whether a chunk is compressed is only known from the `compressed` flag of its `BlobRef`
//! (upstream writes a chunk raw, with the flag clear, when compressing does not help).
//!
//! `puzzlefs` 0.1.0 (the older image generation) wrote compressed chunks as one plain zstd
//! stream instead, with no seek table, of at most [`MAX_PLAIN_SIZE`] bytes (its largest
//! chunk): [`blob_layout`] tells the two apart, and a plain chunk is decompressed whole.
//!
//! [`Footer::parse`] reads the fixed-size footer; [`SeekIndex::build`] reads the table and
//! builds an index of frame positions that [`SeekIndex::frame_at`] searches. Everything the
//! table says is checked against the blob: the frames must exactly fill the bytes before the
//! table, no frame may be empty or declare more than [`MAX_FRAME_SIZE`] decompressed bytes, and
//! sums may not overflow. What a frame really decompresses to is checked when it is
//! decompressed, against what the table declares.

use crate::format::tables::{Alloc, TableVec};
use crate::format::{Error, Result};

/// Magic of the seek table's skippable frame (`ZSTD_MAGIC_SKIPPABLE_START | 0xE`).
pub(crate) const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;

/// Magic at the very end of a seekable blob.
pub(crate) const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;

/// Size of the footer.
pub(crate) const FOOTER_LEN: usize = 9;

/// Size of the skippable frame header (magic and frame size).
pub(crate) const SKIPPABLE_HEADER_LEN: usize = 8;

/// Largest decompressed size of one frame this reader accepts. Upstream writes 4 KiB frames;
/// a frame is decompressed whole, into a buffer of this size at most.
pub(crate) const MAX_FRAME_SIZE: u32 = 128 << 10;

/// Largest compressed size of one frame this reader accepts: zstd's worst case for
/// [`MAX_FRAME_SIZE`] bytes (`ZSTD_COMPRESSBOUND`) with room to spare.
pub(crate) const MAX_COMPRESSED_FRAME_SIZE: u32 = MAX_FRAME_SIZE + MAX_FRAME_SIZE / 128 + 1024;

/// Magic number at the start of a zstd frame.
pub(crate) const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Largest decompressed size of a plain (not seekable) compressed chunk: the largest chunk
/// `puzzlefs` cuts (FastCDC's maximum, 256 KiB).
pub(crate) const MAX_PLAIN_SIZE: u32 = 256 << 10;

/// Largest compressed size of a plain compressed chunk (zstd's worst case, with room).
pub(crate) const MAX_PLAIN_COMPRESSED_SIZE: u32 = MAX_PLAIN_SIZE + MAX_PLAIN_SIZE / 128 + 1024;

/// How a compressed chunk blob is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Frames and a seek table whose footer is this.
    Seekable(Footer),
    /// A plain zstd stream (`puzzlefs` 0.1.0), to be decompressed whole.
    Plain,
}

/// Tells from a blob's first 4 and last [`FOOTER_LEN`] bytes (and its size) how it is laid
/// out; neither layout is an error (a raw chunk wrongly flagged as compressed, or garbage).
pub(crate) fn blob_layout(head: &[u8], tail: &[u8], blob_len: u64) -> Result<Layout> {
    if le32(tail, 5) == Some(SEEKABLE_MAGIC) {
        return Ok(Layout::Seekable(Footer::parse(tail)?));
    }
    if le32(head, 0) == Some(ZSTD_MAGIC) {
        if blob_len > u64::from(MAX_PLAIN_COMPRESSED_SIZE) {
            return Err(Error::Seekable("plain compressed chunk too large"));
        }
        return Ok(Layout::Plain);
    }
    Err(Error::Seekable("not a zstd blob"))
}

/// Most frames a blob may have. Upstream's largest chunk (256 KiB) takes 64 frames of 4 KiB and
/// an empty one; this bounds the seek table a reader loads (12 KiB) and its index (24 KiB).
pub(crate) const MAX_FRAMES: u32 = 1024;

/// Smallest decompressed size of every frame but the last non-empty one: frames of a few bytes
/// would cost a decompression call per few bytes read.
pub(crate) const MIN_FRAME_SIZE: u32 = 1024;

/// Reserved bits of the descriptor byte.
const DESCRIPTOR_RESERVED: u8 = 0x7c;

/// Checksum flag of the descriptor byte.
const DESCRIPTOR_CHECKSUM: u8 = 0x80;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([
        *s.first()?,
        *s.get(1)?,
        *s.get(2)?,
        *s.get(3)?,
    ]))
}

/// The seek table footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    /// Number of frames.
    pub(crate) frames: u32,
    /// Whether each entry carries a checksum.
    pub(crate) checksums: bool,
}

impl Footer {
    /// Parses the last [`FOOTER_LEN`] bytes of a blob.
    pub(crate) fn parse(tail: &[u8]) -> Result<Self> {
        if tail.len() != FOOTER_LEN {
            return Err(Error::Seekable("short footer"));
        }
        if le32(tail, 5) != Some(SEEKABLE_MAGIC) {
            return Err(Error::Seekable("no seekable magic"));
        }
        let descriptor = *tail.get(4).ok_or(Error::Seekable("short footer"))?;
        if descriptor & DESCRIPTOR_RESERVED != 0 {
            return Err(Error::Seekable("reserved descriptor bits set"));
        }
        let frames = le32(tail, 0).ok_or(Error::Seekable("short footer"))?;
        if frames > MAX_FRAMES {
            return Err(Error::Seekable("too many frames"));
        }
        Ok(Self {
            frames,
            checksums: descriptor & DESCRIPTOR_CHECKSUM != 0,
        })
    }

    /// Bytes of one table entry.
    pub(crate) fn entry_len(&self) -> usize {
        if self.checksums {
            12
        } else {
            8
        }
    }

    /// Bytes of the whole seek table frame (header, entries, footer): the blob's last bytes.
    pub(crate) fn table_frame_len(&self) -> u64 {
        u64::from(self.frames)
            .saturating_mul(self.entry_len() as u64)
            .saturating_add((SKIPPABLE_HEADER_LEN + FOOTER_LEN) as u64)
    }
}

/// Where one frame is: `[c_off, c_off + c_len)` of the blob decompresses to
/// `[d_off, d_off + d_len)` of the chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Offset of the compressed frame in the blob.
    pub(crate) c_off: u64,
    /// Offset of its decompressed bytes in the chunk.
    pub(crate) d_off: u64,
    /// Compressed size.
    pub(crate) c_len: u32,
    /// Decompressed size (at most [`MAX_FRAME_SIZE`]; upstream ends a blob with an empty
    /// frame).
    pub(crate) d_len: u32,
}

/// The frames of one compressed blob, in order, with their positions.
pub(crate) struct SeekIndex<A: Alloc> {
    frames: A::Vec<Frame>,
    /// The chunk's decompressed size.
    size: u64,
}

impl<A: Alloc> SeekIndex<A> {
    /// Builds the index of a blob of `blob_len` bytes from its seek table frame `table` (its
    /// last [`Footer::table_frame_len`] bytes), whose footer is `footer`.
    pub(crate) fn build(table: &[u8], footer: &Footer, blob_len: u64) -> Result<Self> {
        let bad = Error::Seekable;
        let table_len = footer.table_frame_len();
        if table.len() as u64 != table_len {
            return Err(bad("seek table size"));
        }
        let data_len = blob_len
            .checked_sub(table_len)
            .ok_or(bad("seek table larger than the blob"))?;
        if le32(table, 0) != Some(SKIPPABLE_MAGIC) {
            return Err(bad("no skippable frame magic"));
        }
        let declared = le32(table, 4).ok_or(bad("seek table size"))?;
        if u64::from(declared).checked_add(SKIPPABLE_HEADER_LEN as u64) != Some(table_len) {
            return Err(bad("skippable frame size disagrees with the footer"));
        }
        let mut frames: A::Vec<Frame> = TableVec::new();
        frames.try_reserve(footer.frames as usize)?;
        let (mut c_off, mut d_off) = (0u64, 0u64);
        let entries = table
            .get(SKIPPABLE_HEADER_LEN..table.len().saturating_sub(FOOTER_LEN))
            .ok_or(bad("seek table size"))?;
        for e in entries.chunks_exact(footer.entry_len()) {
            let c_len = le32(e, 0).ok_or(bad("seek table entry"))?;
            let d_len = le32(e, 4).ok_or(bad("seek table entry"))?;
            if c_len == 0 || c_len > MAX_COMPRESSED_FRAME_SIZE {
                return Err(bad("compressed frame size out of range"));
            }
            if d_len > MAX_FRAME_SIZE {
                return Err(bad("decompressed frame size out of range"));
            }
            frames.try_push(Frame {
                c_off,
                d_off,
                c_len,
                d_len,
            })?;
            c_off = c_off
                .checked_add(u64::from(c_len))
                .ok_or(bad("frame sizes overflow"))?;
            d_off = d_off
                .checked_add(u64::from(d_len))
                .ok_or(bad("frame sizes overflow"))?;
        }
        if c_off != data_len {
            return Err(bad("frames do not fill the blob"));
        }
        // The shape upstream writes: frames of at least `MIN_FRAME_SIZE`, the last one
        // possibly shorter, then at most one empty frame.
        let fs = frames.as_slice();
        let last = fs.iter().rposition(|f| f.d_len > 0);
        let tail = last.map_or(fs.len(), |l| fs.len().saturating_sub(l).saturating_sub(1));
        if tail > 1 {
            return Err(bad("more than one empty frame at the end"));
        }
        if let Some(l) = last {
            if fs
                .get(..l)
                .unwrap_or(&[])
                .iter()
                .any(|f| f.d_len < MIN_FRAME_SIZE)
            {
                return Err(bad("a frame before the last is empty or too small"));
            }
        }
        Ok(Self {
            frames,
            size: d_off,
        })
    }

    /// The chunk's decompressed size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Number of frames.
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// Frame `i`.
    pub(crate) fn frame(&self, i: usize) -> Option<Frame> {
        self.frames.as_slice().get(i).copied()
    }

    /// The frame holding decompressed offset `off` (never an empty one), and its index.
    pub(crate) fn frame_at(&self, off: u64) -> Option<(usize, Frame)> {
        let frames = self.frames.as_slice();
        let i = frames.partition_point(|f| f.d_off <= off).checked_sub(1)?;
        let f = *frames.get(i)?;
        (off < f.d_off.saturating_add(u64::from(f.d_len))).then_some((i, f))
    }
}
