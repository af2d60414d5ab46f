// SPDX-License-Identifier: GPL-2.0

//! The read path: filling page cache folios of regular files from chunk blobs.
//!
//! A file is a list of extents in the compiled tables; each maps a range of the file to a range
//! of one chunk blob. A read request (one folio for `read_folio`, a window of folios for
//! `readahead`) is cut into pieces, one per extent a folio overlaps, and consecutive pieces
//! that continue each other in the same blob are gathered into one backing read of up to
//! [`MAX_FOLIO_RANGES`] folio ranges ([`RegularFile::read_into_folios`]): one `vfs_iter_read()`
//! per contiguous range of a blob, not per page or per folio. The backing reads are buffered
//! reads of the lower filesystem, which complete before they return, so folios are ended in
//! file order as soon as their last piece is read; the part past end of file is zeroed. Pieces
//! of compressed chunks are decompressed into their folio as they are met (see
//! [`crate::decompress`]). A piece that cannot be read fails its folio (`EIO`) with one
//! rate-limited message; the others are still read.
//!
//! Waiting is kept off the copies by reading ahead in the blobs. Before a readahead window is
//! filled, the backing reads of all its pieces are started at once and not waited for
//! ([`RegularFile::will_need`]); a window that reads a blob from its start for the first time
//! also starts the rest of that blob and the whole of the blob the image's chunk stream goes
//! on to. The copies then find their data read, or on its way. An image file read in order
//! gets the same from its filesystem's readahead; an image of one file per chunk does not,
//! since every blob starts with no readahead state. Asynchronous `kiocb` reads with completions,
//! as EROFS's file-backed mode issues, would not overlap more: a buffered read of the lower
//! filesystem completes before it returns even when given a completion (only io_uring's
//! `IOCB_WAITQ` protocol returns early, to be restarted from a wait queue callback), and direct
//! I/O, which does complete later, needs blob and folio offsets aligned to the lower device's
//! blocks, which chunks at arbitrary offsets are not.
//!
//! With `blob_cache=drop` the reads and the reading ahead are the same, and after each backing
//! read, once the folios it filled are ended, the blob pages it used whole are released
//! ([`RegularFile::dont_need`]): each byte read ends up cached mostly once, in the PuzzleFS page
//! cache. The pages at a piece's ends, which the neighbouring files' pieces share, stay cached
//! for their reads, and so do pages read ahead that no read has used. `RWF_DONTCACHE` reads
//! would drop the shared pages too, and would not drop the pages read ahead.
//!
//! [`RegularFile::read_into_folios`]: kernel::fs::mount::RegularFile::read_into_folios
//! [`RegularFile::will_need`]: kernel::fs::mount::RegularFile::will_need
//! [`RegularFile::dont_need`]: kernel::fs::mount::RegularFile::dont_need

use crate::{
    blob::OpenBlob,
    decompress::read_compressed,
    format::{
        self,
        tables::{extent_for, Blob, Extent},
        DIGEST_HEX_LEN,
    },
    super_block::SbInfo,
    PuzzleFs,
};
use kernel::{
    fs::{
        address_space::{AddressSpaceOperations, ReadaheadControl},
        folio::LockedFolio,
        inode::INode,
        mount::{FolioRange, ReadCache, MAX_FOLIO_RANGES},
    },
    prelude::*,
};

/// Opens chunk blob `index` for a read of file `ino`; a failure is reported (naming the blob)
/// and is `EIO`.
fn open_chunk(info: &SbInfo, ino: u64, index: u32) -> Result<OpenBlob<'_>> {
    let blob = info.tables.blob(index).ok_or(EIO)?;
    info.blobs.chunk(index, blob).map_err(|e| {
        let mut hex = [0u8; DIGEST_HEX_LEN];
        let hex = format::digest_to_hex(&blob.digest, &mut hex);
        info.report(format_args!("inode {ino}: chunk blob {hex}: {e}"));
        EIO
    })
}

/// The most a first read of a chunk blob starts reading ahead in it.
const BLOB_AHEAD_MAX: u64 = 1 << 20;

/// Opens chunk blob `index` (`blob` is its entry) for a read-ahead: without a report, since a
/// failure is the read's to report (the store remembers why).
fn open_quiet<'s>(info: &'s SbInfo, index: u32, blob: &Blob) -> Option<OpenBlob<'s>> {
    info.blobs.chunk(index, blob).ok()
}

/// Starts reading bytes `[at, stop)` of `blob` ahead (see [`RegularFile::will_need`]).
///
/// [`RegularFile::will_need`]: kernel::fs::mount::RegularFile::will_need
fn will_need(blob: &OpenBlob<'_>, at: u64, stop: u64) {
    if let (Ok(a), Ok(l)) = (i64::try_from(at), i64::try_from(stop.saturating_sub(at))) {
        if l > 0 {
            let _ = blob.file.will_need(a, l);
        }
    }
}

/// Address space operations of regular files.
pub(crate) struct PuzzleAops;

/// A folio being filled, and the first error met filling it.
struct Pending<'a> {
    folio: LockedFolio<'a>,
    err: Option<Error>,
}

/// One piece of the gathered backing read: bytes `[offset, offset + len)` of folio `slot`.
#[derive(Clone, Copy, Default)]
struct Seg {
    slot: usize,
    offset: usize,
    len: usize,
}

/// The folios of one read request and the backing read being gathered for them.
///
/// # Invariants
///
/// `folios[..count]` are `Some`, in file order, and only the last of them may still be being
/// mapped to pieces. `segs[..nsegs]` name folios of `folios[..count]`, in file order, and are
/// consecutive bytes `[start, next)` of blob `blob`.
struct Request<'s, 'a> {
    info: &'s SbInfo,
    ino: u64,
    extents: &'s [Extent],
    isize: u64,
    folios: [Option<Pending<'a>>; MAX_FOLIO_RANGES + 1],
    count: usize,
    segs: [Seg; MAX_FOLIO_RANGES],
    nsegs: usize,
    blob: u32,
    start: u64,
    next: u64,
    /// With `blob_cache=drop`: the blob range of the last backing read, released once the
    /// folios it filled are ended ([`Self::end_done`]).
    release: Option<(OpenBlob<'s>, i64, i64)>,
}

impl<'s, 'a> Request<'s, 'a> {
    fn new(inode: &'s INode<PuzzleFs>) -> Result<Self> {
        let info = inode.super_block().data();
        let node = info.tables.inode(inode.data().index).ok_or(EIO)?;
        Ok(Self {
            info,
            ino: inode.ino(),
            extents: info.tables.extents(node),
            isize: u64::try_from(inode.size()).map_err(|_| EIO)?,
            folios: [const { None }; MAX_FOLIO_RANGES + 1],
            count: 0,
            segs: [Seg::default(); MAX_FOLIO_RANGES],
            nsegs: 0,
            blob: 0,
            start: 0,
            next: 0,
            release: None,
        })
    }

    fn pending(&mut self, slot: usize) -> Option<&mut Pending<'a>> {
        self.folios.get_mut(slot).and_then(Option::as_mut)
    }

    /// Records `e` as the error of folio `slot`, unless it has one already.
    fn fail(&mut self, slot: usize, e: Error) {
        if let Some(p) = self.pending(slot) {
            p.err.get_or_insert(e);
        }
    }

    /// Reads the gathered pieces with one backing read; a failure fails their folios.
    fn read_gathered(&mut self) {
        if self.nsegs == 0 {
            return;
        }
        match self.read_batch() {
            Ok(blob) => {
                if self.info.blobs.cache() == ReadCache::DontCache {
                    // The bytes are in the folios now: the blob pages this read used whole can
                    // go, once the folios are ended. The pages at the range's ends, which
                    // neighbouring files share, stay for their reads.
                    self.release_pages();
                    let len = self.next.saturating_sub(self.start);
                    if let (Ok(at), Ok(len)) = (i64::try_from(self.start), i64::try_from(len)) {
                        self.release = Some((blob, at, len));
                    }
                }
            }
            Err(e) => {
                for i in 0..self.nsegs {
                    let slot = self.segs.get(i).map_or(usize::MAX, |s| s.slot);
                    self.fail(slot, e);
                }
            }
        }
        self.nsegs = 0;
    }

    /// Releases the blob pages of the last backing read, if `blob_cache=drop` asked for it.
    fn release_pages(&mut self) {
        if let Some((blob, at, len)) = self.release.take() {
            let _ = blob.file.dont_need(at, len);
        }
    }

    /// Reads the gathered pieces into their folios; returns the blob they were read from.
    fn read_batch(&self) -> Result<OpenBlob<'s>> {
        let info = self.info;
        let ino = self.ino;
        let blob = open_chunk(info, ino, self.blob)?;
        if self.next > blob.size {
            info.report(format_args!(
                "inode {ino}: chunk range {}..{} runs past its blob ({} bytes)",
                self.start, self.next, blob.size
            ));
            return Err(EIO);
        }
        let folios = &self.folios;
        let segs = self.segs.get(..self.nsegs).ok_or(EIO)?;
        // Every segment's folio is in the request (type invariant); if one were not, the bytes
        // would land in the wrong ranges: fail the whole read instead.
        if segs
            .iter()
            .any(|s| folios.get(s.slot).and_then(Option::as_ref).is_none())
        {
            return Err(EIO);
        }
        let ranges = segs.iter().filter_map(|s| {
            folios
                .get(s.slot)
                .and_then(Option::as_ref)
                .map(|p| FolioRange {
                    folio: &p.folio,
                    offset: s.offset,
                    len: s.len,
                })
        });
        let at = i64::try_from(self.start).map_err(|_| EIO)?;
        blob.file.read_into_folios(ranges, at).map_err(|e| {
            info.report(format_args!(
                "inode {ino}: reading a chunk blob failed: error {}",
                e.to_errno()
            ));
            EIO
        })?;
        Ok(blob)
    }

    /// Ends the folios whose pieces are all read: all of them, or all but the last (the one
    /// being mapped) if `keep_last`. Then releases the blob pages of the last backing read
    /// (`blob_cache=drop`), with no folio of ours locked that it filled.
    fn end_done(&mut self, keep_last: bool) {
        let keep = usize::from(keep_last && self.count > 0);
        let done = self.count - keep;
        for slot in 0..done {
            if let Some(p) = self.folios.get_mut(slot).and_then(Option::take) {
                p.folio.end_read(p.err.is_none());
            }
        }
        if keep == 1 {
            self.folios.swap(0, done);
        }
        self.count = keep;
        self.release_pages();
    }

    /// Adds the piece `[offset, offset + len)` of the folio being mapped (the last one), which
    /// is bytes `[at, at + len)` of blob `blob`.
    fn add_piece(&mut self, offset: usize, len: usize, blob: u32, at: u64) -> Result {
        let end = at.checked_add(len as u64).ok_or(EIO)?;
        let continues =
            self.nsegs > 0 && self.blob == blob && self.next == at && self.nsegs < self.segs.len();
        if !continues {
            // A new backing read: the pieces gathered so far are read first, and the folios
            // they complete are ended.
            self.read_gathered();
            self.end_done(true);
            self.blob = blob;
            self.start = at;
        }
        let slot = self.count.checked_sub(1).ok_or(EIO)?;
        let seg = self.segs.get_mut(self.nsegs).ok_or(EIO)?;
        *seg = Seg { slot, offset, len };
        self.nsegs += 1;
        self.next = end;
        Ok(())
    }

    /// Adds `folio` to the request: maps it to pieces, and zeroes what lies past end of file.
    fn add_folio(&mut self, folio: LockedFolio<'a>) {
        if self.count == self.folios.len() {
            self.read_gathered();
            self.end_done(false);
        }
        let pos = u64::try_from(folio.pos()).unwrap_or(u64::MAX);
        let size = folio.size();
        if let Some(s) = self.folios.get_mut(self.count) {
            *s = Some(Pending { folio, err: None });
            self.count += 1;
        }
        if let Err(e) = self.map_last(pos, size) {
            self.fail(self.count - 1, e);
        }
    }

    fn map_last(&mut self, pos: u64, size: usize) -> Result {
        let info = self.info;
        let ino = self.ino;
        // Bytes of the folio that the file covers; the rest is zeroed.
        let valid = usize::try_from(self.isize.saturating_sub(pos))
            .unwrap_or(usize::MAX)
            .min(size);
        if valid < size {
            let last = self.count.checked_sub(1).ok_or(EIO)?;
            let p = self.pending(last).ok_or(EIO)?;
            p.folio.zero(valid, size - valid)?;
        }
        let mut done = 0usize;
        while done < valid {
            let off = pos.checked_add(done as u64).ok_or(EIO)?;
            let (i, start) = extent_for(self.extents, off).ok_or_else(|| {
                info.report(format_args!("inode {ino}: no extent holds offset {off}"));
                EIO
            })?;
            let e = *self.extents.get(i).ok_or(EIO)?;
            let n = usize::try_from(e.end.saturating_sub(off))
                .unwrap_or(usize::MAX)
                .min(valid - done);
            // Extent ends strictly increase (an invariant of the tables): never stall on one.
            if n == 0 {
                return Err(EIO);
            }
            let at = e
                .offset
                .checked_add(off.checked_sub(start).ok_or(EIO)?)
                .ok_or(EIO)?;
            if e.compressed() {
                // Decompressed now, straight into the folio (see `decompress`).
                let blob = open_chunk(info, ino, e.blob)?;
                let last = self.count.checked_sub(1).ok_or(EIO)?;
                let p = self.pending(last).ok_or(EIO)?;
                read_compressed(info, ino, e.blob, &blob, &mut p.folio, done, n, at)?;
            } else {
                self.add_piece(done, n, e.blob, at)?;
            }
            done += n;
        }
        Ok(())
    }

    /// Starts the backing reads of file bytes `[pos, pos + len)` (a readahead window) before
    /// any of them is waited for, so that the window's pieces of every chunk blob it spans are
    /// read in parallel. The first read from the start of a blob in this mount also reads the
    /// rest of it and the blob the chunk stream goes on to ([`Blob::next`], at most
    /// [`BLOB_AHEAD_MAX`] of each): whoever reads consecutive files then finds the next chunk
    /// read, or on its way, as with one image file read ahead. With `blob_cache=drop` the pages
    /// read ahead are released when a read has used them (see [`Self::release_pages`]);
    /// compressed chunks read ahead on their own ([`crate::decompress`]). Best effort: an error
    /// is left to the reads.
    ///
    /// [`Blob::next`]: crate::format::tables::Blob::next
    fn prefetch(&self, pos: u64, len: usize) {
        let info = self.info;
        let end = pos.saturating_add(len as u64).min(self.isize);
        let Some((mut i, mut start)) = extent_for(self.extents, pos) else {
            return;
        };
        let mut off = pos;
        while off < end {
            let Some(e) = self.extents.get(i) else {
                return;
            };
            let n = e.end.min(end).saturating_sub(off);
            // Extent ends strictly increase (an invariant of the tables): never stall on one.
            if n == 0 {
                return;
            }
            if !e.compressed() {
                let Some(at) = off.checked_sub(start).and_then(|d| e.offset.checked_add(d)) else {
                    return;
                };
                // A read from the start of a blob is a stream of consecutive files going on
                // from the previous blob (or a file starting there): the first one in this
                // mount reads the whole blob and the one the stream goes on to. Other reads
                // (random ones, mostly) read what they need.
                let first = at == 0 && info.blobs.first_touch(e.blob);
                if let Some(blob) = info
                    .tables
                    .blob(e.blob)
                    .and_then(|b| open_quiet(info, e.blob, b))
                {
                    let stop = if first {
                        blob.size.min(BLOB_AHEAD_MAX).max(at.saturating_add(n))
                    } else {
                        at.saturating_add(n)
                    };
                    will_need(&blob, at, stop);
                }
                if first {
                    // And the blob the chunk stream goes on to.
                    let next = info.tables.next_blob(e.blob);
                    if let Some(blob) = next.and_then(|(n, b)| open_quiet(info, n, b)) {
                        will_need(&blob, 0, blob.size.min(BLOB_AHEAD_MAX));
                    }
                }
            }
            start = e.end;
            off = e.end;
            i += 1;
        }
    }

    /// Reads what is left and ends every folio; returns the last folio's error.
    fn finish(mut self) -> Result {
        self.read_gathered();
        let err = self
            .count
            .checked_sub(1)
            .and_then(|last| self.pending(last))
            .and_then(|p| p.err);
        self.end_done(false);
        err.map_or(Ok(()), Err)
    }
}

#[vtable]
impl AddressSpaceOperations for PuzzleAops {
    type FileSystem = PuzzleFs;

    fn read_folio(inode: &INode<PuzzleFs>, folio: LockedFolio<'_>) -> Result {
        let mut req = Request::new(inode)?;
        req.add_folio(folio);
        req.finish()
    }

    fn readahead(inode: &INode<PuzzleFs>, ractl: &mut ReadaheadControl<'_>) {
        // On error the folios are left to `read_folio`, which reports it.
        let Ok(mut req) = Request::new(inode) else {
            return;
        };
        if let Ok(pos) = u64::try_from(ractl.pos()) {
            req.prefetch(pos, ractl.length());
        }
        while let Some(folio) = ractl.next_folio() {
            req.add_folio(folio);
        }
        let _ = req.finish();
    }
}
