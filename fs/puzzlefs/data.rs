// SPDX-License-Identifier: GPL-2.0

//! The read path: filling page cache folios of regular files from chunk blobs.
//!
//! A file is a list of extents in the compiled tables; each maps a range of the file to a range
//! of one chunk blob. A folio (possibly large) is filled in one pass, extent piece by extent
//! piece, straight from the blob files into the folio; the part past end of file is zeroed.

use crate::{
    format::tables::{extent_for, Extent},
    super_block::SbInfo,
    PuzzleFs,
};
use kernel::{
    fs::{
        address_space::{AddressSpaceOperations, ReadaheadControl},
        folio::LockedFolio,
        inode::INode,
        mount::ReadCache,
    },
    prelude::*,
};

/// Address space operations of regular files.
pub(crate) struct PuzzleAops;

/// Fills `folio` of file `ino` of size `isize` whose extents are `extents`.
fn fill_folio(
    info: &SbInfo,
    ino: u64,
    extents: &[Extent],
    isize: u64,
    folio: &mut LockedFolio<'_>,
) -> Result {
    let pos = u64::try_from(folio.pos()).map_err(|_| EINVAL)?;
    let fsize = folio.size();
    // Bytes of the folio that the file covers; the rest is zeroed.
    let valid = usize::try_from(isize.saturating_sub(pos))
        .unwrap_or(usize::MAX)
        .min(fsize);
    let mut done = 0usize;
    while done < valid {
        let off = pos.checked_add(done as u64).ok_or(EINVAL)?;
        let (i, start) = extent_for(extents, off).ok_or_else(|| {
            info.report(format_args!("inode {ino}: no extent holds offset {off}"));
            EIO
        })?;
        let e = extents.get(i).ok_or(EIO)?;
        let within = off.checked_sub(start).ok_or(EIO)?;
        let n = usize::try_from(e.end.saturating_sub(off))
            .unwrap_or(usize::MAX)
            .min(valid - done);
        if e.compressed() {
            info.report(format_args!(
                "inode {ino}: compressed chunks are not supported by this driver"
            ));
            return Err(EOPNOTSUPP);
        }
        let digest = info.tables.blob(e.blob).ok_or(EIO)?.digest;
        let blob = info.blobs.chunk(e.blob, &digest).map_err(|err| {
            info.report(format_args!(
                "inode {ino}: cannot open chunk blob: error {}",
                err.to_errno()
            ));
            EIO
        })?;
        let at = e.offset.checked_add(within).ok_or(EIO)?;
        let end = at.checked_add(n as u64).ok_or(EIO)?;
        if end > blob.size {
            info.report(format_args!(
                "inode {ino}: chunk range {at}..{end} runs past its blob ({} bytes)",
                blob.size
            ));
            return Err(EIO);
        }
        let at = i64::try_from(at).map_err(|_| EIO)?;
        blob.file
            .read_into_folio(folio, done, n, at, ReadCache::DontCache)
            .map_err(|err| {
                info.report(format_args!(
                    "inode {ino}: reading a chunk blob failed: error {}",
                    err.to_errno()
                ));
                EIO
            })?;
        done += n;
    }
    folio.zero(valid, fsize - valid)
}

fn fill(inode: &INode<PuzzleFs>, folio: &mut LockedFolio<'_>) -> Result {
    let info = inode.super_block().data();
    let node = info.tables.inode(inode.data().index).ok_or(EIO)?;
    let isize = u64::try_from(inode.size()).map_err(|_| EIO)?;
    fill_folio(info, inode.ino(), info.tables.extents(node), isize, folio)
}

#[vtable]
impl AddressSpaceOperations for PuzzleAops {
    type FileSystem = PuzzleFs;

    fn read_folio(inode: &INode<PuzzleFs>, mut folio: LockedFolio<'_>) -> Result {
        let r = fill(inode, &mut folio);
        folio.end_read(r.is_ok());
        r
    }

    fn readahead(inode: &INode<PuzzleFs>, ractl: &mut ReadaheadControl<'_>) {
        while let Some(mut folio) = ractl.next_folio() {
            let ok = fill(inode, &mut folio).is_ok();
            folio.end_read(ok);
        }
    }
}
