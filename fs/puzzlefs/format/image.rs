// SPDX-License-Identifier: GPL-2.0

//! The layered inode view of an image.
//!
//! An [`Image`] is a stack of up to [`MAX_LAYERS`] inode vectors, top layer
//! first. A layer is either inode vector `i` inside a Generation B rootfs
//! message, or a Generation A layer blob holding one `InodeVector` message.
//! The caller keeps the buffers alive (and 8-byte aligned); the view only
//! borrows them, and every name, target or value it returns is a slice of
//! those buffers.
//!
//! Inodes are resolved top-down with a binary search per layer; the first
//! layer that has the ino wins. A whiteout there hides the inode: it is not
//! found, and directory entries naming it are skipped by the `visible`
//! helpers. This is what `puzzlefs build -b` writes: every layer re-renders
//! the whole tree, and a deleted name stays in its directory with its old
//! ino, which the new layer marks as a whiteout.
//!
//! `lookBelow` is reported but never merged: upstream always writes `false`.

use crate::format::metadata_capnp::{inode, inode_vector, rootfs as rootfs_b};
use crate::format::rootfs::{open_message, rebase, Rootfs};
use crate::format::{digest_from_bytes, Digest, Error, Generation, NameError, Result};
use core::ops::ControlFlow;

/// Maximum number of layers of an image.
pub(crate) const MAX_LAYERS: usize = 64;

/// Inode number of the root directory.
pub(crate) const ROOT_INO: u64 = 1;

/// Maximum length of a file name (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// Symlink targets must be shorter than this (`PATH_MAX`, room for the NUL).
pub(crate) const PATH_MAX: usize = 4096;

/// Maximum length of an xattr name (`XATTR_NAME_MAX`).
pub(crate) const XATTR_NAME_MAX: usize = 255;

/// Maximum size of an xattr value (`XATTR_SIZE_MAX`).
pub(crate) const XATTR_SIZE_MAX: usize = 65536;

/// Permission bits kept from `Inode.permissions`.
pub(crate) const PERMISSION_MASK: u16 = 0o7777;

#[derive(Clone, Copy, Debug)]
struct Layer<'a> {
    buf: &'a [u8],
    /// Index in a Generation B rootfs, or `None` for an `InodeVector` blob.
    inline: Option<u32>,
    len: u32,
}

const EMPTY_LAYER: Layer<'static> = Layer {
    buf: &[],
    inline: None,
    len: 0,
};

/// The type of an inode, with what is needed to instantiate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InodeKind {
    /// A directory with `entries` entries.
    Dir {
        /// The stored `lookBelow` flag (informational).
        look_below: bool,
        /// Number of stored entries (including whiteout'd ones).
        entries: u32,
    },
    /// A regular file.
    File {
        /// Number of chunks.
        chunks: u32,
        /// Size in bytes: the sum of the chunk lengths.
        size: u64,
    },
    /// A symbolic link.
    Symlink,
    /// A FIFO.
    Fifo,
    /// A character device.
    Chr {
        /// Major number as stored.
        major: u64,
        /// Minor number as stored.
        minor: u64,
    },
    /// A block device.
    Blk {
        /// Major number as stored.
        major: u64,
        /// Minor number as stored.
        minor: u64,
    },
    /// A socket.
    Sock,
    /// A whiteout: hides the inode of the same number in lower layers.
    Whiteout,
}

/// An inode as resolved across layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Inode {
    /// Inode number.
    pub(crate) ino: u64,
    /// Type and type-specific data.
    pub(crate) kind: InodeKind,
    /// Owner.
    pub(crate) uid: u32,
    /// Group.
    pub(crate) gid: u32,
    /// `mode & 0o7777`.
    pub(crate) permissions: u16,
    /// Layer the inode was found in (0 is the top).
    pub(crate) layer: usize,
    /// Position in that layer's inode vector.
    pub(crate) pos: u32,
}

/// A directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DirEntry<'a> {
    /// Position in the directory's stored entry list (resume readdir at `index + 1`).
    pub(crate) index: u32,
    /// The name: valid, 1..=255 bytes, no '/' or NUL, not "." or "..".
    pub(crate) name: &'a [u8],
    /// The ino it names (nonzero).
    pub(crate) ino: u64,
}

/// One chunk of a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The chunk blob.
    pub(crate) digest: Digest,
    /// Offset of this file's part inside the uncompressed chunk.
    pub(crate) offset: u64,
    /// Bytes of this file in the chunk; `offset + len` does not overflow.
    pub(crate) len: u64,
    /// Whether the blob is zstd-seekable compressed.
    pub(crate) compressed: bool,
}

/// Link count of one inode, filled by [`Image::count_links`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkCount {
    /// Inode number.
    pub(crate) ino: u64,
    /// Link count; 0 if the inode is not reachable from the root.
    pub(crate) nlink: u32,
    subdirs: u32,
    layer: u16,
    flags: u8,
}

const F_DIR: u8 = 1;
const F_WHITEOUT: u8 = 2;
const F_REACHED: u8 = 4;
const F_EXPANDED: u8 = 8;
const F_FILE: u8 = 16;

/// Totals of the mount-time walk (for statfs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Entries of the caller slice in use (distinct inos over all layers).
    pub(crate) used: usize,
    /// Inodes reachable from the root (whiteouts excluded).
    pub(crate) inodes: u64,
    /// Reachable directories.
    pub(crate) dirs: u64,
    /// Reachable regular files.
    pub(crate) files: u64,
    /// Sum of the sizes of reachable regular files (hard links counted once).
    pub(crate) data_bytes: u64,
}

/// Validates a directory entry name.
pub(crate) fn check_name(name: &[u8]) -> core::result::Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.len() > NAME_MAX {
        Err(NameError::TooLong)
    } else if name.contains(&b'/') {
        Err(NameError::Slash)
    } else if name.contains(&0) {
        Err(NameError::Nul)
    } else if name == b"." || name == b".." {
        Err(NameError::Dot)
    } else {
        Ok(())
    }
}

/// Finds the chunk holding file offset `offset`, given `ends` from
/// [`Image::fill_chunk_ends`]. Returns the chunk index and the offset within
/// this file's part of that chunk, or `None` at or beyond the end of file.
pub(crate) fn chunk_for_offset(ends: &[u64], offset: u64) -> Option<(usize, u64)> {
    let i = ends.partition_point(|&e| e <= offset);
    let end = *ends.get(i)?;
    let start = chunk_start(ends, i);
    if offset < start || offset >= end {
        return None;
    }
    Some((i, offset.checked_sub(start)?))
}

/// Start offset in the file of chunk `i`, given `ends` from
/// [`Image::fill_chunk_ends`].
pub(crate) fn chunk_start(ends: &[u64], i: usize) -> u64 {
    match i.checked_sub(1) {
        Some(p) => ends.get(p).copied().unwrap_or(0),
        None => 0,
    }
}

/// Link count of `ino` from a slice filled by [`Image::count_links`].
pub(crate) fn nlink_of(counts: &[LinkCount], ino: u64) -> Option<u32> {
    let i = counts.binary_search_by_key(&ino, |c| c.ino).ok()?;
    counts.get(i).map(|c| c.nlink)
}

/// Reads a list from a Generation B rootfs or an `InodeVector` blob.
fn inode_list<'m>(
    msg: &'m capnp::message::Reader<capnp::serialize::NoAllocSliceSegments<'_>>,
    inline: Option<u32>,
) -> Result<capnp::struct_list::Reader<'m, inode::Owned>> {
    match inline {
        Some(i) => {
            let r: rootfs_b::Reader<'m> = msg.get_root()?;
            let v = r
                .get_metadatas()?
                .try_get(i)
                .ok_or(Error::LayerIndex(i as usize))?;
            Ok(v.get_inodes()?)
        }
        None => {
            let r: inode_vector::Reader<'m> = msg.get_root()?;
            Ok(r.get_inodes()?)
        }
    }
}

fn check_symlink(ino: u64, t: &[u8]) -> Result<()> {
    if t.is_empty() || t.len() >= PATH_MAX || t.contains(&0) {
        return Err(Error::BadSymlinkTarget { ino });
    }
    Ok(())
}

fn check_xattr(ino: u64, k: &[u8], v: &[u8]) -> Result<()> {
    if k.is_empty() || k.len() > XATTR_NAME_MAX || k.contains(&0) {
        return Err(Error::BadXattrName { ino });
    }
    if v.len() > XATTR_SIZE_MAX {
        return Err(Error::XattrTooLarge { ino });
    }
    Ok(())
}

fn decode_chunk(
    ino: u64,
    c: crate::format::metadata_capnp::file_chunk::Reader<'_>,
) -> Result<Chunk> {
    let blob = c.get_blob()?;
    let len = c.get_len();
    let offset = blob.get_offset();
    offset
        .checked_add(len)
        .ok_or(Error::ChunkOverflow { ino })?;
    Ok(Chunk {
        digest: digest_from_bytes(blob.get_digest()?)?,
        offset,
        len,
        compressed: blob.get_compressed(),
    })
}

fn decode_inode(layer: usize, pos: u32, r: inode::Reader<'_>) -> Result<Inode> {
    use crate::format::metadata_capnp::inode::mode::Which;
    let ino = r.get_ino();
    let kind = match r.get_mode().which()? {
        Which::Unknown(()) => return Err(Error::UnknownInodeType(ino)),
        Which::Fifo(()) => InodeKind::Fifo,
        Which::Lnk(()) => InodeKind::Symlink,
        Which::Sock(()) => InodeKind::Sock,
        Which::Wht(()) => InodeKind::Whiteout,
        Which::Chr(c) => {
            let c = c?;
            InodeKind::Chr {
                major: c.get_major(),
                minor: c.get_minor(),
            }
        }
        Which::Blk(b) => {
            let b = b?;
            InodeKind::Blk {
                major: b.get_major(),
                minor: b.get_minor(),
            }
        }
        Which::Dir(d) => {
            let d = d?;
            InodeKind::Dir {
                look_below: d.get_look_below(),
                entries: d.get_entries()?.len(),
            }
        }
        Which::File(f) => {
            let f = f?;
            let mut size: u64 = 0;
            for c in f.iter() {
                let c = decode_chunk(ino, c)?;
                size = size
                    .checked_add(c.len)
                    .ok_or(Error::ChunkOverflow { ino })?;
            }
            InodeKind::File {
                chunks: f.len(),
                size,
            }
        }
    };
    Ok(Inode {
        ino,
        kind,
        uid: r.get_uid(),
        gid: r.get_gid(),
        permissions: r.get_permissions() & PERMISSION_MASK,
        layer,
        pos,
    })
}

/// A validated, layered view of an image's inodes.
///
/// About 2 KiB ([`MAX_LAYERS`] slice references): keep it in the
/// superblock's data rather than copying it around.
#[derive(Clone, Debug)]
pub(crate) struct Image<'a> {
    layers: [Layer<'a>; MAX_LAYERS],
    count: usize,
}

impl<'a> Image<'a> {
    /// An image with no layers yet (Generation A: add them with [`Self::push_layer`]).
    pub(crate) fn new() -> Self {
        Self {
            layers: [EMPTY_LAYER; MAX_LAYERS],
            count: 0,
        }
    }

    /// The view of a Generation B rootfs, whose layers are inline.
    pub(crate) fn from_rootfs(rootfs: &Rootfs<'a>) -> Result<Self> {
        let mut img = Self::new();
        if rootfs.generation() != Generation::B {
            return Err(Error::UnsupportedManifestVersion(
                crate::format::rootfs::MANIFEST_VERSION_A,
            ));
        }
        for i in 0..rootfs.layer_count() {
            let idx = u32::try_from(i).map_err(|_| Error::TooManyLayers(i))?;
            img.add(Layer {
                buf: rootfs.buf(),
                inline: Some(idx),
                len: 0,
            })?;
        }
        Ok(img)
    }

    /// Adds the next lower layer from a blob holding one `InodeVector`
    /// message (Generation A), 8-byte aligned.
    pub(crate) fn push_layer(&mut self, buf: &'a [u8]) -> Result<()> {
        self.add(Layer {
            buf,
            inline: None,
            len: 0,
        })
    }

    /// Checks the layer (inos nonzero, strictly increasing) and adds it.
    fn add(&mut self, mut layer: Layer<'a>) -> Result<()> {
        let index = self.count;
        let slot = self
            .layers
            .get_mut(index)
            .ok_or(Error::TooManyLayers(index.saturating_add(1)))?;
        let msg = open_message(layer.buf)?;
        let list = inode_list(&msg, layer.inline)?;
        let mut prev = 0u64;
        for r in list.iter() {
            let ino = r.get_ino();
            if ino == 0 {
                return Err(Error::ZeroIno { layer: index });
            }
            if ino == prev {
                return Err(Error::DuplicateInode { layer: index, ino });
            }
            if ino < prev {
                return Err(Error::UnsortedInodes { layer: index, ino });
            }
            prev = ino;
        }
        layer.len = list.len();
        *slot = layer;
        self.count = index.saturating_add(1);
        Ok(())
    }

    /// Number of layers.
    pub(crate) fn layer_count(&self) -> usize {
        self.count
    }

    /// Sum of the inode counts of all layers: the size the slice given to
    /// [`Self::count_links`] must have.
    pub(crate) fn inode_slots(&self) -> usize {
        self.layers
            .iter()
            .take(self.count)
            .fold(0usize, |a, l| a.saturating_add(l.len as usize))
    }

    fn with_list<R>(
        &self,
        layer: usize,
        f: impl FnOnce(&'a [u8], capnp::struct_list::Reader<'_, inode::Owned>) -> Result<R>,
    ) -> Result<R> {
        let l = self
            .layers
            .get(..self.count)
            .and_then(|ls| ls.get(layer))
            .ok_or(Error::LayerIndex(layer))?;
        let msg = open_message(l.buf)?;
        let list = inode_list(&msg, l.inline)?;
        f(l.buf, list)
    }

    fn with_inode<R>(
        &self,
        i: &Inode,
        f: impl FnOnce(&'a [u8], inode::Reader<'_>) -> Result<R>,
    ) -> Result<R> {
        self.with_list(i.layer, |buf, list| {
            let r = list.try_get(i.pos).ok_or(Error::InodeNotFound(i.ino))?;
            if r.get_ino() != i.ino {
                return Err(Error::InodeNotFound(i.ino));
            }
            f(buf, r)
        })
    }

    /// Resolves `ino` top-down; the result may be a whiteout. `None` if no
    /// layer has it.
    pub(crate) fn find_inode(&self, ino: u64) -> Result<Option<Inode>> {
        if ino == 0 {
            return Ok(None);
        }
        for layer in 0..self.count {
            let hit = self.with_list(layer, |_, list| {
                let (mut lo, mut hi) = (0u32, list.len());
                while lo < hi {
                    let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
                    let r = list.try_get(mid).ok_or(Error::InodeNotFound(ino))?;
                    let cur = r.get_ino();
                    if cur == ino {
                        return decode_inode(layer, mid, r).map(Some);
                    } else if cur < ino {
                        lo = mid.saturating_add(1);
                    } else {
                        hi = mid;
                    }
                }
                Ok(None)
            })?;
            if hit.is_some() {
                return Ok(hit);
            }
        }
        Ok(None)
    }

    /// Resolves a visible inode: missing and whited-out inodes are
    /// [`Error::InodeNotFound`].
    pub(crate) fn inode(&self, ino: u64) -> Result<Inode> {
        match self.find_inode(ino)? {
            Some(i) if i.kind != InodeKind::Whiteout => Ok(i),
            _ => Err(Error::InodeNotFound(ino)),
        }
    }

    /// Calls `f` for each stored entry of directory `dir` from position
    /// `start` on, in stored order, including entries naming whiteouts.
    pub(crate) fn for_each_dir_entry<B>(
        &self,
        dir: &Inode,
        start: u32,
        mut f: impl FnMut(DirEntry<'a>) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        use crate::format::metadata_capnp::inode::mode::Which;
        if !matches!(dir.kind, InodeKind::Dir { .. }) {
            return Err(Error::NotADirectory(dir.ino));
        }
        let dino = dir.ino;
        self.with_inode(dir, |buf, r| {
            let Which::Dir(d) = r.get_mode().which()? else {
                return Err(Error::NotADirectory(dino));
            };
            let entries = d?.get_entries()?;
            for index in start..entries.len() {
                let e = entries.try_get(index).ok_or(Error::NotADirectory(dino))?;
                let name = rebase(buf, e.get_name()?)?;
                check_name(name).map_err(|why| Error::BadName { ino: dino, why })?;
                let ino = e.get_ino();
                if ino == 0 {
                    return Err(Error::BadDirEntryIno { ino: dino });
                }
                if let ControlFlow::Break(b) = f(DirEntry { index, name, ino }) {
                    return Ok(ControlFlow::Break(b));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Like [`Self::for_each_dir_entry`], but skips entries whose inode is
    /// whited out and passes the resolved inode. An entry naming an inode
    /// that no layer has is an error.
    pub(crate) fn for_each_visible_dir_entry<B>(
        &self,
        dir: &Inode,
        start: u32,
        mut f: impl FnMut(DirEntry<'a>, Inode) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        let mut err = None;
        let r = self.for_each_dir_entry(dir, start, |e| {
            let i = match self.find_inode(e.ino) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    err = Some(Error::InodeNotFound(e.ino));
                    return ControlFlow::Break(None);
                }
                Err(x) => {
                    err = Some(x);
                    return ControlFlow::Break(None);
                }
            };
            if i.kind == InodeKind::Whiteout {
                return ControlFlow::Continue(());
            }
            match f(e, i) {
                ControlFlow::Break(b) => ControlFlow::Break(Some(b)),
                ControlFlow::Continue(()) => ControlFlow::Continue(()),
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        Ok(match r {
            ControlFlow::Break(Some(b)) => ControlFlow::Break(b),
            _ => ControlFlow::Continue(()),
        })
    }

    /// Looks up `name` in directory `dir`: the first stored entry with that
    /// name, unless its inode is whited out.
    pub(crate) fn lookup(&self, dir: &Inode, name: &[u8]) -> Result<Option<Inode>> {
        let r = self.for_each_dir_entry(dir, 0, |e| {
            if e.name == name {
                ControlFlow::Break(e.ino)
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let ControlFlow::Break(ino) = r else {
            return Ok(None);
        };
        match self.find_inode(ino)? {
            Some(i) if i.kind == InodeKind::Whiteout => Ok(None),
            Some(i) => Ok(Some(i)),
            None => Err(Error::InodeNotFound(ino)),
        }
    }

    fn with_chunks<R>(
        &self,
        file: &Inode,
        f: impl FnOnce(
            capnp::struct_list::Reader<'_, crate::format::metadata_capnp::file_chunk::Owned>,
        ) -> Result<R>,
    ) -> Result<R> {
        use crate::format::metadata_capnp::inode::mode::Which;
        if !matches!(file.kind, InodeKind::File { .. }) {
            return Err(Error::NotAFile(file.ino));
        }
        let ino = file.ino;
        self.with_inode(file, |_, r| match r.get_mode().which()? {
            Which::File(l) => f(l?),
            _ => Err(Error::NotAFile(ino)),
        })
    }

    /// Chunk `index` of regular file `file`.
    pub(crate) fn chunk(&self, file: &Inode, index: usize) -> Result<Chunk> {
        let ino = file.ino;
        self.with_chunks(file, |l| {
            let i = u32::try_from(index).map_err(|_| Error::ChunkIndex { ino, index })?;
            let c = l.try_get(i).ok_or(Error::ChunkIndex { ino, index })?;
            decode_chunk(ino, c)
        })
    }

    /// Calls `f` with each chunk of `file` and its index, in order.
    pub(crate) fn for_each_chunk<B>(
        &self,
        file: &Inode,
        mut f: impl FnMut(usize, Chunk) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        let ino = file.ino;
        self.with_chunks(file, |l| {
            for (i, c) in l.iter().enumerate() {
                if let ControlFlow::Break(b) = f(i, decode_chunk(ino, c)?) {
                    return Ok(ControlFlow::Break(b));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// Fills `ends` (one entry per chunk) with the prefix sums of the chunk
    /// lengths: `ends[i]` is the file offset where chunk `i` ends. Use with
    /// [`chunk_for_offset`].
    pub(crate) fn fill_chunk_ends(&self, file: &Inode, ends: &mut [u64]) -> Result<()> {
        let ino = file.ino;
        let needed = match file.kind {
            InodeKind::File { chunks, .. } => chunks as usize,
            _ => return Err(Error::NotAFile(ino)),
        };
        if ends.len() != needed {
            return Err(Error::BufferSize {
                needed,
                given: ends.len(),
            });
        }
        let mut sum: u64 = 0;
        let mut err = None;
        let _ = self.for_each_chunk(file, |i, c| {
            let Some(s) = sum.checked_add(c.len) else {
                err = Some(Error::ChunkOverflow { ino });
                return ControlFlow::Break(());
            };
            sum = s;
            match ends.get_mut(i) {
                Some(slot) => {
                    *slot = s;
                    ControlFlow::Continue(())
                }
                None => {
                    err = Some(Error::BufferSize {
                        needed: i.saturating_add(1),
                        given: needed,
                    });
                    ControlFlow::Break(())
                }
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    /// Calls `f` with each xattr (name, value) of `inode` in stored order.
    pub(crate) fn for_each_xattr<B>(
        &self,
        inode: &Inode,
        mut f: impl FnMut(&'a [u8], &'a [u8]) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>> {
        let ino = inode.ino;
        self.with_inode(inode, |buf, r| {
            if !r.has_additional() {
                return Ok(ControlFlow::Continue(()));
            }
            let add = r.get_additional()?;
            if !add.has_xattrs() {
                return Ok(ControlFlow::Continue(()));
            }
            for x in add.get_xattrs()?.iter() {
                let k = rebase(buf, x.get_key()?)?;
                let v = rebase(buf, x.get_val()?)?;
                check_xattr(ino, k, v)?;
                if let ControlFlow::Break(b) = f(k, v) {
                    return Ok(ControlFlow::Break(b));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
    }

    /// The value of xattr `name` of `inode` (full name, e.g. `user.foo`).
    pub(crate) fn xattr_get(&self, inode: &Inode, name: &[u8]) -> Result<Option<&'a [u8]>> {
        let r = self.for_each_xattr(inode, |k, v| {
            if k == name {
                ControlFlow::Break(v)
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(match r {
            ControlFlow::Break(v) => Some(v),
            ControlFlow::Continue(()) => None,
        })
    }

    /// The target of symlink `inode`: non-empty, shorter than `PATH_MAX`, no NUL.
    pub(crate) fn symlink_target(&self, inode: &Inode) -> Result<&'a [u8]> {
        let ino = inode.ino;
        if inode.kind != InodeKind::Symlink {
            return Err(Error::NotASymlink(ino));
        }
        self.with_inode(inode, |buf, r| {
            if !r.has_additional() {
                return Err(Error::BadSymlinkTarget { ino });
            }
            let t = rebase(buf, r.get_additional()?.get_symlink_target()?)?;
            check_symlink(ino, t)?;
            Ok(t)
        })
    }

    /// The mount-time walk: computes link counts and totals into `out`,
    /// which must have [`Self::inode_slots`] entries. On success
    /// `out[..totals.used]` holds one entry per distinct ino, sorted (look up
    /// with [`nlink_of`] on that prefix; the caller may shrink its
    /// allocation to it). The unused tail is set to ino `u64::MAX`.
    ///
    /// Inode vectors are iterated, not the tree recursed; each directory is
    /// expanded at most once, so directory cycles terminate. Directories get
    /// `2 + subdirectories`, other inodes the number of entries naming them;
    /// inodes not reachable from the root get 0 and are not counted.
    pub(crate) fn count_links(&self, out: &mut [LinkCount]) -> Result<Totals> {
        let needed = self.inode_slots();
        if out.len() != needed {
            return Err(Error::BufferSize {
                needed,
                given: out.len(),
            });
        }
        // Every (ino, layer) pair with its kind flags.
        let mut n = 0usize;
        for layer in 0..self.count {
            let lay = u16::try_from(layer).map_err(|_| Error::TooManyLayers(layer))?;
            self.with_list(layer, |_, list| {
                use crate::format::metadata_capnp::inode::mode::Which;
                for r in list.iter() {
                    let flags = match r.get_mode().which()? {
                        Which::Dir(_) => F_DIR,
                        Which::File(_) => F_FILE,
                        Which::Wht(()) => F_WHITEOUT,
                        _ => 0,
                    };
                    let slot = out.get_mut(n).ok_or(Error::TooManyInodes { layer })?;
                    *slot = LinkCount {
                        ino: r.get_ino(),
                        nlink: 0,
                        subdirs: 0,
                        layer: lay,
                        flags,
                    };
                    n = n.saturating_add(1);
                }
                Ok(())
            })?;
        }
        let all = out.get_mut(..n).ok_or(Error::CountOverflow)?;
        all.sort_unstable_by_key(|c| (c.ino, c.layer));
        // Keep the topmost version of each ino.
        let mut used = 0usize;
        for i in 0..all.len() {
            let cur = *all.get(i).ok_or(Error::CountOverflow)?;
            let prev_ino = used.checked_sub(1).and_then(|p| all.get(p)).map(|c| c.ino);
            if prev_ino == Some(cur.ino) {
                continue;
            }
            *all.get_mut(used).ok_or(Error::CountOverflow)? = cur;
            used = used.saturating_add(1);
        }
        // Keep the whole slice sorted: the unused tail sorts last.
        for c in all.iter_mut().skip(used) {
            *c = LinkCount {
                ino: u64::MAX,
                ..LinkCount::default()
            };
        }
        let counts = all.get_mut(..used).ok_or(Error::CountOverflow)?;

        let root = counts
            .binary_search_by_key(&ROOT_INO, |c| c.ino)
            .map_err(|_| Error::BadRoot)?;
        match counts.get_mut(root) {
            Some(c) if c.flags & F_DIR != 0 => c.flags |= F_REACHED,
            _ => return Err(Error::BadRoot),
        }

        // Expand reached directories until none is left; each pass expands
        // at least one, and each directory is expanded once.
        loop {
            let mut progress = false;
            for i in 0..counts.len() {
                let c = *counts.get(i).ok_or(Error::CountOverflow)?;
                if c.flags & (F_DIR | F_REACHED | F_EXPANDED) != (F_DIR | F_REACHED) {
                    continue;
                }
                if let Some(slot) = counts.get_mut(i) {
                    slot.flags |= F_EXPANDED;
                }
                progress = true;
                let dir = self.inode(c.ino)?;
                let mut err = None;
                let mut subdirs = 0u32;
                let _ = self.for_each_dir_entry(&dir, 0, |e| {
                    let Ok(t) = counts.binary_search_by_key(&e.ino, |x| x.ino) else {
                        err = Some(Error::InodeNotFound(e.ino));
                        return ControlFlow::Break(());
                    };
                    let Some(target) = counts.get_mut(t) else {
                        err = Some(Error::CountOverflow);
                        return ControlFlow::Break(());
                    };
                    if target.flags & F_WHITEOUT != 0 {
                        return ControlFlow::Continue(());
                    }
                    target.flags |= F_REACHED;
                    target.nlink = target.nlink.saturating_add(1);
                    if target.flags & F_DIR != 0 {
                        subdirs = subdirs.saturating_add(1);
                    }
                    ControlFlow::Continue(())
                })?;
                if let Some(e) = err {
                    return Err(e);
                }
                if let Some(slot) = counts.get_mut(i) {
                    slot.subdirs = subdirs;
                }
            }
            if !progress {
                break;
            }
        }

        let mut t = Totals {
            used,
            ..Totals::default()
        };
        for i in 0..counts.len() {
            let c = counts.get_mut(i).ok_or(Error::CountOverflow)?;
            if c.flags & F_REACHED == 0 {
                c.nlink = 0;
                continue;
            }
            t.inodes = t.inodes.checked_add(1).ok_or(Error::CountOverflow)?;
            if c.flags & F_DIR != 0 {
                c.nlink = c.subdirs.checked_add(2).ok_or(Error::CountOverflow)?;
                t.dirs = t.dirs.checked_add(1).ok_or(Error::CountOverflow)?;
            } else if c.flags & F_FILE != 0 {
                let ino = c.ino;
                t.files = t.files.checked_add(1).ok_or(Error::CountOverflow)?;
                if let InodeKind::File { size, .. } = self.inode(ino)?.kind {
                    t.data_bytes = t.data_bytes.checked_add(size).ok_or(Error::CountOverflow)?;
                }
            }
        }
        Ok(t)
    }
}

impl Default for Image<'_> {
    fn default() -> Self {
        Self::new()
    }
}
