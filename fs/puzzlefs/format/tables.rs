// SPDX-License-Identifier: GPL-2.0

//! The compiled image: compact, owned, validated tables.
//!
//! [`crate::format::compile`] reads an image's metadata once, at mount time, and produces a
//! [`Tables`]: every inode reachable from the root with its attributes, every directory's visible
//! entries sorted by name, every file's chunks as extents over a table of distinct blobs, xattrs
//! and symlink targets. Layers and whiteouts are already resolved, link counts computed, and
//! everything checked that the VFS relies on. After that nothing decodes Cap'n Proto: every VFS
//! operation is an index or a binary search into these tables.
//!
//! The tables own their memory. Its allocator is a type parameter ([`Alloc`]): the kernel backs
//! the tables with `KVVec` and `GFP_KERNEL_ACCOUNT` (charged to the mounter), the host test crate
//! with `Vec`. Records refer to each other by `u32` index, never by reference, so the tables move
//! freely and hold no borrows.
//!
//! # Invariants
//!
//! A [`Tables`] returned by the compiler satisfies all of these; the accessors still use checked
//! indexing and fall back to empty results, so a broken invariant can never become a panic or an
//! out-of-bounds read:
//!
//! - inode index 0 is the root, a directory with ino [`ROOT_INO`];
//! - a directory's entries are `dirents[first..first + count]`, sorted by name, names unique and
//!   valid ([`check_name`]), each naming an inode index of the table; every directory but the root
//!   is named by exactly one entry, and no entry names the root;
//! - a file's extents are `extents[first..first + count]`, with strictly increasing `end`, the
//!   last `end` being the file size, and each naming a blob index of the table;
//! - a symlink's target is `bytes[first..first + size]`, valid ([`check_symlink`]);
//! - an inode's xattrs are `xattrs[xattr_first..xattr_first + xattr_count]`, sorted by name,
//!   names unique and valid, values at most [`XATTR_SIZE_MAX`] bytes;
//! - blobs are sorted by digest and distinct; a blob's `next` is [`NO_BLOB`] or a blob index of
//!   the table.

use crate::format::{Digest, Error, NameError, Result};

/// [`Blob::next`] of a blob that no file continues into another.
pub(crate) const NO_BLOB: u32 = u32::MAX;

/// Inode number of the root directory.
pub(crate) const ROOT_INO: u64 = 1;

/// Index of the root directory in [`Tables::inode`].
pub(crate) const ROOT_INDEX: u32 = 0;

/// Maximum length of a file name (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// Symlink targets must be shorter than this (`PATH_MAX`, room for the NUL).
pub(crate) const PATH_MAX: usize = 4096;

/// Maximum length of an xattr name (`XATTR_NAME_MAX`).
pub(crate) const XATTR_NAME_MAX: usize = 255;

/// Maximum size of an xattr value (`XATTR_SIZE_MAX`).
pub(crate) const XATTR_SIZE_MAX: usize = 65536;

/// Maximum size of a `listxattr` result: all names with their NULs (`XATTR_LIST_MAX`).
pub(crate) const XATTR_LIST_MAX: usize = 65536;

/// The permission bits of a mode (`S_IALLUGO`): upstream stores `st_mode & 0o7777`.
pub(crate) const PERMISSION_MASK: u16 = 0o7777;

/// Largest major device number of a Linux `dev_t` (12 bits).
pub(crate) const MAJOR_MAX: u64 = (1 << 12) - 1;

/// Largest minor device number of a Linux `dev_t` (20 bits).
pub(crate) const MINOR_MAX: u64 = (1 << 20) - 1;

/// The xattr namespaces the driver serves; a name equal to one of them (an empty name within the
/// namespace) cannot be read through the VFS and is refused.
pub(crate) const XATTR_PREFIXES: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];

/// A growable array with fallible allocation: what the compiler fills the tables with.
pub(crate) trait TableVec<T>: Sized {
    /// An empty array that has not allocated.
    fn new() -> Self;
    /// Number of elements.
    fn len(&self) -> usize;
    /// Number of elements the array can hold without allocating.
    fn capacity(&self) -> usize;
    /// The elements.
    fn as_slice(&self) -> &[T];
    /// The elements, mutable.
    fn as_mut_slice(&mut self) -> &mut [T];
    /// Makes room for at least `additional` more elements, or fails with [`Error::OutOfMemory`].
    fn try_reserve(&mut self, additional: usize) -> Result<()>;
    /// Appends `value`, or fails with [`Error::OutOfMemory`].
    fn try_push(&mut self, value: T) -> Result<()>;
    /// Appends copies of `values`, or fails with [`Error::OutOfMemory`].
    fn try_extend_from_slice(&mut self, values: &[T]) -> Result<()>
    where
        T: Clone;
    /// Shortens the array to `len` elements (no effect if it is shorter).
    fn truncate(&mut self, len: usize);
    /// Gives back unused capacity, if the allocator can (best effort).
    fn shrink_to_fit(&mut self);
}

/// Where the tables' memory comes from.
pub(crate) trait Alloc {
    /// The array type of the tables.
    type Vec<T>: TableVec<T>;
}

/// File type of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A FIFO.
    Fifo,
    /// A character device.
    Chr,
    /// A block device.
    Blk,
    /// A socket.
    Sock,
}

/// One inode (48 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Inode {
    pub(crate) ino: u64,
    /// File: size in bytes. Symlink: target length. Device: `rdev`. Directory: 0.
    size: u64,
    /// Directory: first entry. File: first extent. Symlink: offset of the target in `bytes`.
    first: u32,
    /// Directory: number of entries. File: number of extents.
    count: u32,
    xattr_first: u32,
    xattr_count: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Directories: 2 + subdirectories. Others: entries naming the inode.
    pub(crate) nlink: u32,
    /// `st_mode & 0o7777`.
    pub(crate) permissions: u16,
    pub(crate) kind: Kind,
}

impl Inode {
    /// An inode of `kind` with no contents yet; the compiler fills in the rest.
    pub(crate) const fn new(ino: u64, kind: Kind) -> Self {
        Self {
            ino,
            size: 0,
            first: 0,
            count: 0,
            xattr_first: 0,
            xattr_count: 0,
            uid: 0,
            gid: 0,
            nlink: 0,
            permissions: 0,
            kind,
        }
    }

    /// A regular file's size in bytes (0 for other kinds).
    pub(crate) fn file_size(&self) -> u64 {
        if self.kind == Kind::File {
            self.size
        } else {
            0
        }
    }

    /// A device's number as the kernel encodes it (`MKDEV(major, minor)`), 0 for other kinds.
    pub(crate) fn rdev(&self) -> u32 {
        match self.kind {
            Kind::Chr | Kind::Blk => u32::try_from(self.size).unwrap_or(0),
            _ => 0,
        }
    }

    /// The size `stat` reports: file size, symlink target length, else 0.
    pub(crate) fn st_size(&self) -> u64 {
        match self.kind {
            Kind::File | Kind::Symlink => self.size,
            _ => 0,
        }
    }

    pub(crate) fn set_contents(&mut self, first: u32, count: u32, size: u64) {
        self.first = first;
        self.count = count;
        self.size = size;
    }

    pub(crate) fn set_xattrs(&mut self, first: u32, count: u32) {
        self.xattr_first = first;
        self.xattr_count = count;
    }

    pub(crate) fn range(&self, kind: Kind) -> (usize, usize) {
        if self.kind != kind {
            return (0, 0);
        }
        let first = self.first as usize;
        (first, first.saturating_add(self.count as usize))
    }
}

/// One directory entry (12 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dirent {
    /// Offset of the name in `bytes`.
    pub(crate) name_off: u32,
    /// Index of the inode the entry names.
    pub(crate) target: u32,
    /// Length of the name: 1..=255.
    pub(crate) name_len: u8,
    /// Type of the inode the entry names (for `d_type`).
    pub(crate) kind: Kind,
}

/// Extent flag: the chunk blob is zstd-seekable compressed.
pub(crate) const EXTENT_COMPRESSED: u32 = 1;

/// One piece of a regular file (24 bytes): file bytes `[previous end, end)` are bytes
/// `[offset, offset + len)` of the uncompressed contents of blob `blob`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    /// File offset where this extent ends (exclusive).
    pub(crate) end: u64,
    /// Offset inside the (uncompressed) chunk.
    pub(crate) offset: u64,
    /// Index in [`Tables::blob`].
    pub(crate) blob: u32,
    /// [`EXTENT_COMPRESSED`] or 0.
    pub(crate) flags: u32,
}

impl Extent {
    /// Whether the chunk is stored zstd-seekable compressed.
    pub(crate) fn compressed(&self) -> bool {
        self.flags & EXTENT_COMPRESSED != 0
    }
}

/// One extended attribute (16 bytes): name and value are in `bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Xattr {
    pub(crate) name_off: u32,
    pub(crate) value_off: u32,
    pub(crate) value_len: u32,
    pub(crate) name_len: u8,
}

/// A distinct chunk blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Blob {
    /// The blob's sha256, its name under `blobs/sha256/`.
    pub(crate) digest: Digest,
    /// The fs-verity digest the image records for it, if any.
    pub(crate) verity: Option<Digest>,
    /// The blob that follows it in the image's stream of chunks, as the first file whose
    /// extents go on from this blob to another one shows ([`NO_BLOB`] if none does). The
    /// builder cuts the concatenated contents of the files into chunks, so this is where a
    /// reader of consecutive files goes next: the read path starts reading it ahead.
    pub(crate) next: u32,
}

/// Totals of the reachable tree, for statfs and the mount message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Reachable inodes.
    pub(crate) inodes: u64,
    /// Directories among them.
    pub(crate) dirs: u64,
    /// Regular files among them.
    pub(crate) files: u64,
    /// Sum of the regular files' sizes (each inode once).
    pub(crate) data_bytes: u64,
    /// Bytes of metadata messages compiled.
    pub(crate) metadata_bytes: u64,
    /// Bytes the tables allocated (their capacity) when compiling ended.
    pub(crate) table_bytes: u64,
    /// Layers after duplicates were dropped.
    pub(crate) layers: u32,
    /// Extents of compressed chunks.
    pub(crate) compressed_extents: u64,
}

/// The compiled image. See the module documentation for its invariants.
pub(crate) struct Tables<A: Alloc> {
    pub(crate) inodes: A::Vec<Inode>,
    pub(crate) dirents: A::Vec<Dirent>,
    pub(crate) extents: A::Vec<Extent>,
    pub(crate) xattrs: A::Vec<Xattr>,
    pub(crate) bytes: A::Vec<u8>,
    pub(crate) blobs: A::Vec<Blob>,
    pub(crate) stats: Stats,
}

/// `bytes[off..off + len]`, or empty if out of range.
fn span(bytes: &[u8], off: u32, len: usize) -> &[u8] {
    let off = off as usize;
    bytes.get(off..off.saturating_add(len)).unwrap_or(&[])
}

impl<A: Alloc> Tables<A> {
    /// Empty tables (no root): the compiler's starting point.
    pub(crate) fn empty() -> Self {
        Self {
            inodes: TableVec::new(),
            dirents: TableVec::new(),
            extents: TableVec::new(),
            xattrs: TableVec::new(),
            bytes: TableVec::new(),
            blobs: TableVec::new(),
            stats: Stats::default(),
        }
    }

    /// The inode with index `index` ([`ROOT_INDEX`] is the root).
    pub(crate) fn inode(&self, index: u32) -> Option<&Inode> {
        self.inodes.as_slice().get(index as usize)
    }

    /// Number of inodes.
    pub(crate) fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// A directory's entries, sorted by name (empty for other kinds).
    pub(crate) fn entries(&self, dir: &Inode) -> &[Dirent] {
        let (first, end) = dir.range(Kind::Dir);
        self.dirents.as_slice().get(first..end).unwrap_or(&[])
    }

    /// The name of a directory entry.
    pub(crate) fn name(&self, e: &Dirent) -> &[u8] {
        span(self.bytes.as_slice(), e.name_off, usize::from(e.name_len))
    }

    /// Looks `name` up in directory `dir`: the entry and its position in [`Self::entries`].
    pub(crate) fn lookup(&self, dir: &Inode, name: &[u8]) -> Option<(usize, &Dirent)> {
        let entries = self.entries(dir);
        let i = entries.binary_search_by(|e| self.name(e).cmp(name)).ok()?;
        Some((i, entries.get(i)?))
    }

    /// A file's extents, in file order (empty for other kinds).
    pub(crate) fn extents(&self, file: &Inode) -> &[Extent] {
        let (first, end) = file.range(Kind::File);
        self.extents.as_slice().get(first..end).unwrap_or(&[])
    }

    /// The target of a symlink (empty for other kinds).
    pub(crate) fn symlink_target(&self, link: &Inode) -> &[u8] {
        if link.kind != Kind::Symlink {
            return &[];
        }
        let len = usize::try_from(link.size).unwrap_or(0);
        span(self.bytes.as_slice(), link.first, len)
    }

    /// An inode's xattrs, sorted by name.
    pub(crate) fn xattrs(&self, inode: &Inode) -> &[Xattr] {
        let first = inode.xattr_first as usize;
        let end = first.saturating_add(inode.xattr_count as usize);
        self.xattrs.as_slice().get(first..end).unwrap_or(&[])
    }

    /// The full name of an xattr (e.g. `user.foo`).
    pub(crate) fn xattr_name(&self, x: &Xattr) -> &[u8] {
        span(self.bytes.as_slice(), x.name_off, usize::from(x.name_len))
    }

    /// The value of an xattr.
    pub(crate) fn xattr_value(&self, x: &Xattr) -> &[u8] {
        span(self.bytes.as_slice(), x.value_off, x.value_len as usize)
    }

    /// The value of the xattr `name` (full name) of `inode`, if it has one.
    pub(crate) fn xattr_get(&self, inode: &Inode, name: &[u8]) -> Option<&[u8]> {
        let xs = self.xattrs(inode);
        let i = xs.binary_search_by(|x| self.xattr_name(x).cmp(name)).ok()?;
        xs.get(i).map(|x| self.xattr_value(x))
    }

    /// Blob `index` of [`Extent::blob`].
    pub(crate) fn blob(&self, index: u32) -> Option<&Blob> {
        self.blobs.as_slice().get(index as usize)
    }

    /// The blob that follows blob `index` in the chunk stream ([`Blob::next`]), if known: its
    /// index and entry.
    pub(crate) fn next_blob(&self, index: u32) -> Option<(u32, &Blob)> {
        let next = self.blob(index)?.next;
        if next == NO_BLOB {
            return None;
        }
        Some((next, self.blob(next)?))
    }

    /// Number of distinct chunk blobs.
    pub(crate) fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Totals of the tree.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Finds the extent holding file offset `offset` of `extents` (a file's extents): its index, the
/// offset where it starts in the file. `None` at or past the end of file.
pub(crate) fn extent_for(extents: &[Extent], offset: u64) -> Option<(usize, u64)> {
    let i = extents.partition_point(|e| e.end <= offset);
    extents.get(i)?;
    let start = match i.checked_sub(1) {
        Some(p) => extents.get(p)?.end,
        None => 0,
    };
    Some((i, start))
}

/// Checks a file name: 1..=255 bytes, no '/', no NUL, not "." or "..".
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

/// Checks a symlink target: non-empty, shorter than `PATH_MAX`, no NUL.
pub(crate) fn check_symlink(ino: u64, target: &[u8]) -> Result<()> {
    if target.is_empty() || target.len() >= PATH_MAX || target.contains(&0) {
        return Err(Error::BadSymlinkTarget { ino });
    }
    Ok(())
}

/// Checks an xattr: a name of 1..=255 bytes without NUL that is not a bare namespace prefix,
/// and a value of at most 64 KiB.
pub(crate) fn check_xattr(ino: u64, name: &[u8], value: &[u8]) -> Result<()> {
    if name.is_empty()
        || name.len() > XATTR_NAME_MAX
        || name.contains(&0)
        || XATTR_PREFIXES.contains(&name)
    {
        return Err(Error::BadXattrName { ino });
    }
    if value.len() > XATTR_SIZE_MAX {
        return Err(Error::XattrTooLarge { ino });
    }
    Ok(())
}
