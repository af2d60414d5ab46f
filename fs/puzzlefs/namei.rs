// SPDX-License-Identifier: GPL-2.0

//! Name lookup, and the inode operations of every inode type.

use crate::{
    format::image::{Inode, InodeKind},
    inode::iget,
    super_block::SbInfo,
    xattr, PuzzleFs,
};
use core::ops::ControlFlow;
use kernel::{
    alloc::KVVec,
    fs::{
        dentry::{DEntry, Unhashed},
        inode::{INode, InodeOperations},
        xattr::ListBuffer,
    },
    prelude::*,
    sync::aref::ARef,
};

/// Directories with fewer entries are searched linearly.
const NAME_INDEX_MIN_ENTRIES: u32 = 32;

/// Directories with more entries are not indexed (the index would take 16 bytes an entry).
const NAME_INDEX_MAX_ENTRIES: u32 = 1 << 20;

/// FNV-1a, 64 bits: a name hash for [`NameIndex`] (collisions are resolved by comparing names).
fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An index of a large directory's names, built when the directory inode is instantiated, so that
/// a lookup costs a binary search and one entry read instead of a scan of every entry.
pub(crate) struct NameIndex {
    /// `(hash of the name, entry index)`, sorted.
    slots: KVVec<(u64, u32)>,
}

impl NameIndex {
    /// Builds the index of directory `dir` with `entries` stored entries, if it is large.
    pub(crate) fn build(info: &SbInfo, dir: &Inode, entries: u32) -> Result<Option<Self>> {
        // Huge directories are searched linearly rather than index an image-sized allocation.
        if !(NAME_INDEX_MIN_ENTRIES..=NAME_INDEX_MAX_ENTRIES).contains(&entries) {
            return Ok(None);
        }
        let n = usize::try_from(entries).map_err(|_| EINVAL)?;
        let mut slots = KVVec::with_capacity(n, GFP_KERNEL)?;
        let mut err = Ok(());
        let _ = info
            .image
            .for_each_dir_entry(dir, 0, |e| {
                match slots.push((name_hash(e.name), e.index), GFP_KERNEL) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        err = Err(Error::from(e));
                        ControlFlow::Break(())
                    }
                }
            })
            .map_err(|e| info.corrupt(&e))?;
        err?;
        slots.sort_unstable();
        Ok(Some(Self { slots }))
    }

    /// Finds `name` in `dir`: the first stored entry with that name, unless its inode is whited
    /// out (the same answer as a linear scan).
    fn lookup(&self, info: &SbInfo, dir: &Inode, name: &[u8]) -> Result<Option<Inode>> {
        let h = name_hash(name);
        let first = self.slots.partition_point(|&(sh, _)| sh < h);
        for &(sh, index) in self.slots.get(first..).unwrap_or(&[]) {
            if sh != h {
                break;
            }
            let found = info
                .image
                .for_each_dir_entry(dir, index, |e| {
                    ControlFlow::Break((e.name == name).then_some(e.ino))
                })
                .map_err(|e| info.corrupt(&e))?;
            if let ControlFlow::Break(Some(ino)) = found {
                return match info.image.find_inode(ino).map_err(|e| info.corrupt(&e))? {
                    Some(i) if i.kind == InodeKind::Whiteout => Ok(None),
                    Some(i) => Ok(Some(i)),
                    None => Err(info.corrupt(&"directory entry names a missing inode")),
                };
            }
        }
        Ok(None)
    }
}

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
        let d = dir.data();
        let found = match &d.names {
            Some(index) => index.lookup(info, &d.inode, dentry.name())?,
            None => info
                .image
                .lookup(&d.inode, dentry.name())
                .map_err(|e| info.corrupt(&e))?,
        };
        let inode = match found {
            Some(i) => Some(iget(sb, i.ino)?),
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
