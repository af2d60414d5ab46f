// SPDX-License-Identifier: GPL-2.0

//! Reading directories.
//!
//! Positions: 0 and 1 are `.` and `..`; entry `i` of the stored list is at position `i + 2`, so a
//! position stays valid across calls (the image never changes). Entries whose inode a newer layer
//! whited out are skipped.

use crate::{format::image::InodeKind, PuzzleFs};
use core::ops::ControlFlow;
use kernel::{
    fs::{
        dir::{DirContext, DirEntryType, FileOperations},
        inode::INode,
        File,
    },
    prelude::*,
};

/// Positions of the first stored entry.
const FIRST_ENTRY_POS: i64 = 2;

/// Directory file operations.
pub(crate) struct PuzzleDirOps;

fn dtype(kind: InodeKind) -> DirEntryType {
    match kind {
        InodeKind::Dir { .. } => DirEntryType::Dir,
        InodeKind::File { .. } => DirEntryType::Reg,
        InodeKind::Symlink => DirEntryType::Lnk,
        InodeKind::Fifo => DirEntryType::Fifo,
        InodeKind::Chr { .. } => DirEntryType::Chr,
        InodeKind::Blk { .. } => DirEntryType::Blk,
        InodeKind::Sock => DirEntryType::Sock,
        InodeKind::Whiteout => DirEntryType::Unknown,
    }
}

#[vtable]
impl FileOperations for PuzzleDirOps {
    type FileSystem = PuzzleFs;

    fn iterate_shared(file: &File, dir: &INode<PuzzleFs>, ctx: &mut DirContext) -> Result {
        if !ctx.emit_dots(file) {
            return Ok(());
        }
        let info = dir.super_block().data();
        let Some(start) = ctx
            .pos()
            .checked_sub(FIRST_ENTRY_POS)
            .and_then(|p| u32::try_from(p).ok())
        else {
            // Past any possible entry: end of directory.
            return Ok(());
        };
        // Stopping early (a full buffer) is not an error.
        let _ = info
            .image
            .for_each_visible_dir_entry(&dir.data().inode, start, |e, inode| {
                if !ctx.emit(e.name, e.ino, dtype(inode.kind)) {
                    return ControlFlow::Break(());
                }
                ctx.set_pos(i64::from(e.index) + FIRST_ENTRY_POS + 1);
                ControlFlow::Continue(())
            })
            .map_err(|e| info.corrupt(&e))?;
        Ok(())
    }
}
