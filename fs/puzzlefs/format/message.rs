// SPDX-License-Identifier: GPL-2.0

//! Opening Cap'n Proto messages of the image safely.
//!
//! A blob holds one message in the standard serialization: a segment table (the segment count
//! minus one, then each segment's size in words, padded to a word), then the segments back to
//! back. [`Segments`] parses that table once into a small array, so that following a pointer
//! into any segment is O(1) (capnp's own no-alloc reader re-parses the table on every access),
//! and refuses what an honest writer never produces: more than [`MAX_SEGMENTS`] segments, and
//! bytes after the last segment.
//!
//! The reader [`open`] returns has a traversal limit derived from the message's real size: every
//! pointer the reader follows charges the words it points at, so reading each object of the
//! message a bounded number of times fits, and an image whose pointers alias one big object
//! many times (a list read a thousand times through a thousand pointers) runs out of budget and
//! is refused, instead of making the compiler's work grow with the product of the two. One
//! reader is opened per message for the whole compile, so the budget is per message, not per
//! operation.

use crate::format::{Error, Result};
use capnp::message::{Reader, ReaderOptions, ReaderSegments};

/// Most segments a message may have. capnp's builders double the segment size as a message
/// grows, so even a message of the largest size the driver accepts has a few dozen.
pub(crate) const MAX_SEGMENTS: usize = 64;

/// Nesting limit: the deepest path of our schemas (rootfs → vector → inode → dir → entry → name,
/// or inode → additional → xattr → key) is 6 levels.
pub(crate) const NESTING_LIMIT: i32 = 16;

/// Traversal budget, in words, per word of message: each object is read about twice by the
/// compiler (once to learn an inode's type, once to compile it), with room to spare.
pub(crate) const TRAVERSAL_FACTOR: usize = 4;

/// Traversal words allowed on top, so that tiny messages still work.
pub(crate) const TRAVERSAL_FLOOR: usize = 1024;

const WORD: usize = 8;

/// The segments of one message in one 8-byte aligned buffer.
pub(crate) struct Segments<'a> {
    buf: &'a [u8],
    /// Start and end (bytes, relative to `buf`) of each segment.
    table: [(usize, usize); MAX_SEGMENTS],
    count: usize,
}

fn word_u32(buf: &[u8], index: usize) -> Option<u32> {
    let at = index.checked_mul(4)?;
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

impl<'a> Segments<'a> {
    /// Parses the segment table of the message in `buf`, which must be 8-byte aligned and hold
    /// exactly one message.
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Self> {
        if buf.as_ptr().align_offset(WORD) != 0 {
            return Err(Error::Misaligned);
        }
        let bad = Error::BadSegmentTable;
        let count = word_u32(buf, 0)
            .ok_or(bad)?
            .checked_add(1)
            .ok_or(Error::TooManySegments)? as usize;
        if count > MAX_SEGMENTS {
            return Err(Error::TooManySegments);
        }
        // One u32 for the count, one per segment, padded to a whole word.
        let table_words = count.checked_add(2).ok_or(bad)? / 2;
        let mut pos = table_words.checked_mul(WORD).ok_or(bad)?;
        let mut table = [(0usize, 0usize); MAX_SEGMENTS];
        for (i, slot) in table.iter_mut().take(count).enumerate() {
            let words = word_u32(buf, i.checked_add(1).ok_or(bad)?).ok_or(bad)? as usize;
            let end = words
                .checked_mul(WORD)
                .and_then(|b| pos.checked_add(b))
                .ok_or(bad)?;
            if end > buf.len() {
                return Err(Error::Truncated);
            }
            *slot = (pos, end);
            pos = end;
        }
        if pos != buf.len() {
            return Err(Error::TrailingBytes(buf.len().saturating_sub(pos)));
        }
        Ok(Self { buf, table, count })
    }

    /// Size of the message in words, segment table included.
    pub(crate) fn words(&self) -> usize {
        self.buf.len() / WORD
    }
}

impl ReaderSegments for Segments<'_> {
    fn get_segment(&self, idx: u32) -> Option<&[u8]> {
        let (start, end) = *self.table.get(..self.count)?.get(idx as usize)?;
        self.buf.get(start..end)
    }

    fn len(&self) -> usize {
        self.count
    }
}

/// A reader of one message.
pub(crate) type Message<'a> = Reader<Segments<'a>>;

/// Opens the message in `buf` (8-byte aligned, exactly one message) with a traversal limit of
/// [`TRAVERSAL_FACTOR`] words per word of message plus [`TRAVERSAL_FLOOR`], and a nesting limit
/// of [`NESTING_LIMIT`].
pub(crate) fn open(buf: &[u8]) -> Result<Message<'_>> {
    let segments = Segments::parse(buf)?;
    let limit = segments
        .words()
        .saturating_mul(TRAVERSAL_FACTOR)
        .saturating_add(TRAVERSAL_FLOOR);
    let mut opts = ReaderOptions::new();
    opts.traversal_limit_in_words(Some(limit))
        .nesting_limit(NESTING_LIMIT);
    Ok(Reader::new(segments, opts))
}
