// SPDX-License-Identifier: GPL-2.0

//! Name lookup, and the inode operations of every inode type.

use crate::{inode::iget, xattr, PuzzleFs};
use kernel::{
    fs::{
        dentry::{DEntry, Unhashed},
        inode::{INode, InodeOperations},
        xattr::ListBuffer,
    },
    prelude::*,
    sync::aref::ARef,
};

/// Inode operations of directories: lookup and listxattr.
pub(crate) struct PuzzleDirInodeOps;

#[vtable]
impl InodeOperations for PuzzleDirInodeOps {
    type FileSystem = PuzzleFs;

    fn lookup(
        dir: &INode<PuzzleFs>,
        dentry: Unhashed<'_, PuzzleFs>,
        _flags: u32,
    ) -> Result<Option<ARef<DEntry<PuzzleFs>>>> {
        let sb = dir.super_block();
        let info = sb.data();
        // Whiteouts of newer layers are not found: a miss gives a negative dentry.
        let found = info
            .image
            .lookup(&dir.data().inode, dentry.name())
            .map_err(|e| info.corrupt(&e))?;
        let inode = match found {
            Some(i) => Some(iget(sb, i.ino)?),
            None => None,
        };
        dentry.splice_alias(inode)
    }

    fn listxattr(
        _dentry: &DEntry<PuzzleFs>,
        inode: &INode<PuzzleFs>,
        list: &mut ListBuffer<'_>,
    ) -> Result {
        xattr::list(inode, list)
    }
}

/// Inode operations of all other inodes: listxattr (and, for symlinks, `get_link` on `i_link`).
pub(crate) struct PuzzleInodeOps;

#[vtable]
impl InodeOperations for PuzzleInodeOps {
    type FileSystem = PuzzleFs;

    fn listxattr(
        _dentry: &DEntry<PuzzleFs>,
        inode: &INode<PuzzleFs>,
        list: &mut ListBuffer<'_>,
    ) -> Result {
        xattr::list(inode, list)
    }
}
