// SPDX-License-Identifier: GPL-2.0

//! Inode instantiation: from an inode number to a VFS inode with its attributes and operations.
//!
//! The format stores no timestamps (they are reported as the epoch) and no link counts (they
//! come from the mount-time walk, see [`crate::super_block::SbInfo::nlink`]).

use crate::{
    data::PuzzleAops,
    dir::PuzzleDirOps,
    format::image::{self, Chunk, InodeKind},
    namei::{PuzzleDirInodeOps, PuzzleInodeOps},
    PuzzleFs,
};
use kernel::{
    fs::{
        inode::{mode, IGet, INode, NewINode, Timespec},
        sb::{SuperBlock, MAX_LFS_FILESIZE},
    },
    prelude::*,
    sync::aref::ARef,
};

/// Largest major and minor numbers a Linux `dev_t` holds (12 and 20 bits).
const MAJOR_MAX: u64 = (1 << 12) - 1;
const MINOR_MAX: u64 = (1 << 20) - 1;

/// Most chunks one file may have (64 GiB in the smallest, 16 KiB, chunks): bounds the chunk
/// map's allocation.
const MAX_CHUNKS: usize = 1 << 22;

/// How a regular file maps to chunks, decoded once when the inode is instantiated so that the
/// read path does no metadata decoding.
pub(crate) struct FileMap {
    /// The chunks, in file order.
    pub(crate) chunks: KVVec<Chunk>,
    /// `ends[i]` is the file offset where chunk `i` ends (prefix sums of the chunk lengths).
    pub(crate) ends: KVVec<u64>,
}

/// Per-inode data of PuzzleFS.
pub(crate) struct InodeInfo {
    /// The inode as resolved across the image's layers.
    pub(crate) inode: image::Inode,
    /// Regular files: the chunk map.
    pub(crate) file: Option<FileMap>,
    /// Large directories: the name index (see [`crate::namei::NameIndex`]).
    pub(crate) names: Option<crate::namei::NameIndex>,
    /// Symlinks: the target, NUL-terminated (`i_link` points into it).
    #[expect(
        dead_code,
        reason = "only kept alive for `i_link`, which the VFS reads"
    )]
    link: KVec<u8>,
}

use kernel::alloc::KVVec;

fn file_map(sb: &SuperBlock<PuzzleFs>, i: &image::Inode, chunks: u32) -> Result<FileMap> {
    let info = sb.data();
    let n = usize::try_from(chunks).map_err(|_| EINVAL)?;
    if n > MAX_CHUNKS {
        return Err(info.corrupt(&"a file with too many chunks"));
    }
    let mut ends = KVVec::from_elem(0u64, n, GFP_KERNEL)?;
    info.image
        .fill_chunk_ends(i, &mut ends)
        .map_err(|e| info.corrupt(&e))?;
    let mut list = KVVec::with_capacity(n, GFP_KERNEL)?;
    // Open the chunks' blobs now, when the file is first used, so that reads find them in the
    // cache; only while the cache has room, or every chunk of a huge file would be opened and
    // closed again here. A failure is not fatal: the read reports it.
    let mut prefetch = true;
    for c in 0..n {
        let chunk = info.image.chunk(i, c).map_err(|e| info.corrupt(&e))?;
        list.push(chunk, GFP_KERNEL)?;
        if prefetch && !chunk.compressed {
            prefetch = info.blobs.prefetch(&chunk.digest);
        }
    }
    Ok(FileMap { chunks: list, ends })
}

fn init_new(
    sb: &SuperBlock<PuzzleFs>,
    mut new: NewINode<PuzzleFs>,
) -> Result<ARef<INode<PuzzleFs>>> {
    let ino = new.ino();
    let info = sb.data();
    let i = info.image.inode(ino).map_err(|e| info.corrupt(&e))?;
    let perm = i.permissions & mode::S_IALLUGO;
    let nlink = info.nlink(ino);
    let mut file = None;
    let mut names = None;
    let mut link = KVec::new();
    let zero = Timespec::default();

    new.set_uid(i.uid)
        .set_gid(i.gid)
        .set_nlink(nlink)
        .set_times(zero, zero, zero);
    match i.kind {
        InodeKind::Dir { entries, .. } => {
            names = crate::namei::NameIndex::build(info, &i, entries)?;
            new.set_mode(mode::S_IFDIR | perm)
                .set_size(0)
                .set_inode_ops::<PuzzleDirInodeOps>()
                .set_file_ops::<PuzzleDirOps>();
        }
        InodeKind::File { chunks, size } => {
            // MAX_LFS_FILESIZE is i64::MAX on 64-bit, less on 32-bit.
            let size = u64::try_from(MAX_LFS_FILESIZE)
                .ok()
                .filter(|&max| size <= max)
                .and_then(|_| i64::try_from(size).ok())
                .ok_or_else(|| info.corrupt(&"file size over MAX_LFS_FILESIZE"))?;
            file = Some(file_map(sb, &i, chunks)?);
            new.set_mode(mode::S_IFREG | perm)
                .set_size(size)
                .set_inode_ops::<PuzzleInodeOps>()
                .set_generic_ro_file_ops()
                .set_aops::<PuzzleAops>()
                .set_large_folios();
        }
        InodeKind::Symlink => {
            let target = info
                .image
                .symlink_target(&i)
                .map_err(|e| info.corrupt(&e))?;
            link.extend_from_slice(target, GFP_KERNEL)?;
            link.push(0, GFP_KERNEL)?;
            let len = i64::try_from(target.len()).map_err(|_| EINVAL)?;
            new.set_mode(mode::S_IFLNK | perm).set_size(len);
            let target = CStr::from_bytes_with_nul(&link)
                .map_err(|_| info.corrupt(&"symlink target contains NUL"))?;
            // SAFETY: `target` points into the heap allocation of `link`, which becomes part of
            // this inode's data below and lives until the inode is freed.
            unsafe { new.set_i_link::<PuzzleInodeOps>(target) };
        }
        InodeKind::Fifo | InodeKind::Sock | InodeKind::Chr { .. } | InodeKind::Blk { .. } => {
            let (fmt, rdev) = match i.kind {
                InodeKind::Fifo => (mode::S_IFIFO, 0),
                InodeKind::Sock => (mode::S_IFSOCK, 0),
                InodeKind::Chr { major, minor } => (mode::S_IFCHR, mkdev(info, major, minor)?),
                InodeKind::Blk { major, minor } => (mode::S_IFBLK, mkdev(info, major, minor)?),
                _ => return Err(EINVAL),
            };
            new.init_special(fmt | perm, rdev)?
                .set_size(0)
                .set_inode_ops::<PuzzleInodeOps>();
        }
        InodeKind::Whiteout => return Err(ENOENT),
    }
    Ok(new.init(InodeInfo {
        inode: i,
        file,
        names,
        link,
    }))
}

/// The kernel's `MKDEV()`, for device numbers from the image.
fn mkdev(info: &crate::super_block::SbInfo, major: u64, minor: u64) -> Result<u32> {
    if major > MAJOR_MAX || minor > MINOR_MAX {
        return Err(info.corrupt(&"device number out of range"));
    }
    // Both fit in their fields, checked above.
    u32::try_from((major << 20) | minor).map_err(|_| EINVAL)
}

/// Returns the inode `ino` of `sb`, from the inode cache or newly instantiated.
pub(crate) fn iget(sb: &SuperBlock<PuzzleFs>, ino: u64) -> Result<ARef<INode<PuzzleFs>>> {
    match sb.iget_locked(ino)? {
        IGet::Cached(inode) => Ok(inode),
        // On error, dropping the new inode marks it bad and releases it (`iget_failed`).
        IGet::New(new) => init_new(sb, new),
    }
}
