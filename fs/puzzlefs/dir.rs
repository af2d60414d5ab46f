// SPDX-License-Identifier: GPL-2.0

//! Reading directories.
//!
//! Positions: 0 and 1 are `.` and `..`; entry `i` of the directory's sorted entries in the
//! compiled tables is at position `i + 2`, so a position stays valid across calls (the image
//! never changes) and each entry costs O(1).

use crate::{format::tables::Kind, PuzzleFs};
use kernel::{
    fs::{
        dir::{DirContext, DirEntryType, FileOperations},
        inode::INode,
        File,
    },
    prelude::*,
};

/// Position of the first entry.
const FIRST_ENTRY_POS: i64 = 2;

/// Directory file operations.
pub(crate) struct PuzzleDirOps;

fn dtype(kind: Kind) -> DirEntryType {
    match kind {
        Kind::Dir => DirEntryType::Dir,
        Kind::File => DirEntryType::Reg,
        Kind::Symlink => DirEntryType::Lnk,
        Kind::Fifo => DirEntryType::Fifo,
        Kind::Chr => DirEntryType::Chr,
        Kind::Blk => DirEntryType::Blk,
        Kind::Sock => DirEntryType::Sock,
    }
}

#[vtable]
impl FileOperations for PuzzleDirOps {
    type FileSystem = PuzzleFs;

    fn iterate_shared(file: &File, dir: &INode<PuzzleFs>, ctx: &mut DirContext) -> Result {
        if !ctx.emit_dots(file) {
            return Ok(());
        }
        let t = &dir.super_block().data().tables;
        let Some(d) = t.inode(dir.data().index) else {
            return Err(EUCLEAN);
        };
        let entries = t.entries(d);
        let Some(start) = ctx
            .pos()
            .checked_sub(FIRST_ENTRY_POS)
            .and_then(|p| usize::try_from(p).ok())
        else {
            return Ok(());
        };
        let mut pos = ctx.pos();
        for e in entries.get(start..).unwrap_or(&[]) {
            let ino = t.inode(e.target).map_or(0, |n| n.ino);
            if !ctx.emit(t.name(e), ino, dtype(e.kind)) {
                break;
            }
            pos = pos.saturating_add(1);
            ctx.set_pos(pos);
        }
        Ok(())
    }
}
