// SPDX-License-Identifier: GPL-2.0

//! Inode instantiation: from an inode of the compiled tables to a VFS inode with its attributes
//! and operations.
//!
//! Inodes are cached by their image inode number (`iget_locked()`), so hard links share one VFS
//! inode. The VFS inode keeps only the index of its record in the tables; everything else is
//! read from the tables when needed. The format stores no timestamps (they are reported as the
//! epoch); link counts were computed when the image was compiled.

use crate::{
    data::PuzzleAops,
    dir::PuzzleDirOps,
    format::tables::Kind,
    namei::{PuzzleDirInodeOps, PuzzleInodeOps},
    PuzzleFs,
};
use kernel::{
    fs::inode::{mode, IGet, INode, NewINode, Timespec},
    fs::sb::SuperBlock,
    prelude::*,
    sync::aref::ARef,
};

/// Per-inode data of PuzzleFS.
pub(crate) struct InodeInfo {
    /// Index of the inode in the compiled tables.
    pub(crate) index: u32,
    /// Symlinks: the target, NUL-terminated (`i_link` points into it). A copy, because `i_link`
    /// must outlive the RCU-delayed free of the inode, which the per-superblock tables do not.
    #[expect(
        dead_code,
        reason = "only kept alive for `i_link`, which the VFS reads"
    )]
    link: KVec<u8>,
}

fn init_new(
    sb: &SuperBlock<PuzzleFs>,
    index: u32,
    mut new: NewINode<PuzzleFs>,
) -> Result<ARef<INode<PuzzleFs>>> {
    let info = sb.data();
    let t = &info.tables;
    let i = *t
        .inode(index)
        .ok_or_else(|| info.corrupt(&"inode index out of range"))?;
    let perm = i.permissions & mode::S_IALLUGO;
    let mut link = KVec::new();
    let zero = Timespec::default();

    new.set_uid(i.uid)
        .set_gid(i.gid)
        .set_nlink(i.nlink)
        .set_times(zero, zero, zero);
    match i.kind {
        Kind::Dir => {
            new.set_mode(mode::S_IFDIR | perm)
                .set_size(0)
                .set_inode_ops::<PuzzleDirInodeOps>()
                .set_file_ops::<PuzzleDirOps>();
        }
        Kind::File => {
            // The compiler refused sizes over MAX_LFS_FILESIZE.
            let size = i64::try_from(i.st_size()).map_err(|_| EUCLEAN)?;
            new.set_mode(mode::S_IFREG | perm)
                .set_size(size)
                .set_inode_ops::<PuzzleInodeOps>()
                .set_generic_ro_file_ops()
                .set_aops::<PuzzleAops>()
                .set_large_folios();
        }
        Kind::Symlink => {
            let target = t.symlink_target(&i);
            link.extend_from_slice(target, GFP_KERNEL_ACCOUNT)?;
            link.push(0, GFP_KERNEL_ACCOUNT)?;
            let len = i64::try_from(i.st_size()).map_err(|_| EUCLEAN)?;
            new.set_mode(mode::S_IFLNK | perm).set_size(len);
            let target = CStr::from_bytes_with_nul(&link)
                .map_err(|_| info.corrupt(&"symlink target contains NUL"))?;
            // SAFETY: `target` points into the heap allocation of `link`, which becomes part of
            // this inode's data below and lives until the inode is freed.
            unsafe { new.set_i_link::<PuzzleInodeOps>(target) };
        }
        Kind::Fifo | Kind::Sock | Kind::Chr | Kind::Blk => {
            let fmt = match i.kind {
                Kind::Fifo => mode::S_IFIFO,
                Kind::Sock => mode::S_IFSOCK,
                Kind::Chr => mode::S_IFCHR,
                _ => mode::S_IFBLK,
            };
            new.init_special(fmt | perm, i.rdev())?
                .set_size(0)
                .set_inode_ops::<PuzzleInodeOps>();
        }
    }
    Ok(new.init(InodeInfo { index, link }))
}

/// Returns the inode with index `index` of the compiled tables, from the inode cache or newly
/// instantiated.
pub(crate) fn iget(sb: &SuperBlock<PuzzleFs>, index: u32) -> Result<ARef<INode<PuzzleFs>>> {
    let info = sb.data();
    let ino = info
        .tables
        .inode(index)
        .ok_or_else(|| info.corrupt(&"inode index out of range"))?
        .ino;
    match sb.iget_locked(ino)? {
        IGet::Cached(inode) => Ok(inode),
        // On error, dropping the new inode marks it bad and releases it (`iget_failed`).
        IGet::New(new) => init_new(sb, index, new),
    }
}
