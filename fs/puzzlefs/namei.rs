// SPDX-License-Identifier: GPL-2.0

//! Name lookup, and the inode operations of every inode type.
//!
//! A directory's entries are sorted by name in the compiled tables, so a lookup is a binary
//! search; whited-out names were dropped when the image was compiled, so a miss is a negative
//! dentry.

use crate::{format::tables::NAME_MAX, inode::iget, xattr, PuzzleFs};
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
        let name = dentry.name();
        if name.len() > NAME_MAX {
            return Err(ENAMETOOLONG);
        }
        let sb = dir.super_block();
        let t = &sb.data().tables;
        let found = t
            .inode(dir.data().index)
            .and_then(|d| t.lookup(d, name))
            .map(|(_, e)| e.target);
        let inode = match found {
            Some(index) => Some(iget(sb, index)?),
            None => None,
        };
        dentry.splice_alias(inode)
    }

    fn listxattr(
        dentry: &DEntry<PuzzleFs>,
        inode: &INode<PuzzleFs>,
        list: &mut ListBuffer<'_>,
    ) -> Result {
        xattr::list(dentry, inode, list)
    }
}

/// Inode operations of all other inodes: listxattr (and, for symlinks, `get_link` on `i_link`).
pub(crate) struct PuzzleInodeOps;

#[vtable]
impl InodeOperations for PuzzleInodeOps {
    type FileSystem = PuzzleFs;

    fn listxattr(
        dentry: &DEntry<PuzzleFs>,
        inode: &INode<PuzzleFs>,
        list: &mut ListBuffer<'_>,
    ) -> Result {
        xattr::list(dentry, inode, list)
    }
}
