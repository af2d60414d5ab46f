// SPDX-License-Identifier: GPL-2.0

//! The metadata compiler: from an image's Cap'n Proto messages to [`Tables`].
//!
//! [`compile`] reads every metadata message of an image once, at mount time, resolves its
//! layers and whiteouts, walks the tree from the root, checks everything the VFS relies on, and
//! writes what it finds into compact owned tables (see [`crate::format::tables`]). What is
//! wrong is an [`Error`] value naming the inode; nothing here panics.
//!
//! # Cost
//!
//! The image is untrusted and may be built to be expensive, so the work is bounded by what the
//! image is, not by what it claims:
//!
//! - One reader per message, opened once ([`message::open`]), with a traversal budget of a few
//!   words per word of message: each pointer followed charges the object it points at, so
//!   aliasing (a thousand pointers to one big list) exhausts the budget instead of multiplying
//!   the work. Every element the compiler visits was paid for this way, so the number of loop
//!   iterations, the bytes copied into the tables and the table sizes are all linear in the
//!   metadata bytes.
//! - Layers are merged in one pass (a heap over the layers' sorted inode lists); the tree is
//!   walked breadth first, each directory expanded once; a directory reached a second time is
//!   an error (two parents or a cycle), so the walk ends.
//! - Sorting (each directory's entries by name, runs of extents naming one chunk by blob
//!   digest) is an in-place heapsort, O(n log n) whatever the input, and a linear check when
//!   already sorted.
//! - Every loop over image-controlled counts calls [`Env::poll`] regularly: in the kernel this
//!   reschedules and stops the mount on a fatal signal.
//! - Every table and temporary array is charged to a budget ([`Limits::max_table_bytes`])
//!   before it grows; exceeding it is [`Error::TooLarge`].
//!
//! # What is refused
//!
//! Besides malformed messages: no layer or more than [`MAX_LAYERS`]; inode number 0; a layer
//! whose inodes are not strictly increasing; a root that is missing, whited out or not a
//! directory. In the tree reachable from the root: an entry naming a missing inode, the root or
//! a directory that already has a name; duplicate or invalid names in a directory; the
//! `unknown` mode or an unknown one; permission bits outside 0o7777; device numbers Linux cannot
//! represent; bad symlink targets; bad, bare-prefix or duplicate xattr names and oversized
//! values; chunk digests that are not 32 bytes; chunk lengths that overflow or exceed the
//! largest file size. Inodes not reachable from the root are ignored; entries naming whited-out
//! inodes are hidden.

use crate::format::message::{self, Message};
use crate::format::metadata_capnp::{inode, inode_vector, rootfs as rootfs_b};
use crate::format::rootfs::{MANIFEST_VERSION_A, MANIFEST_VERSION_B};
use crate::format::sort::{any_pair, sort_by};
use crate::format::tables::{
    check_name, check_symlink, check_xattr, Alloc, Blob, Dirent, Extent, Inode, Kind, TableVec,
    Tables, Xattr, EXTENT_COMPRESSED, MAJOR_MAX, MINOR_MAX, NO_BLOB, PERMISSION_MASK, ROOT_INO,
    XATTR_LIST_MAX,
};
use crate::format::{digest_from_bytes, manifest_capnp, Digest, Error, Result, DIGEST_LEN};
use core::mem::size_of;

/// Maximum number of layers of an image.
pub(crate) const MAX_LAYERS: usize = 64;

/// Work units (inodes, entries, chunks, xattrs, sift steps) between two [`Env::poll`] calls.
const POLL_EVERY: u32 = 1024;

/// What the compiler asks of its environment.
pub(crate) trait Env {
    /// Called regularly from every loop over image-controlled counts. An error stops the
    /// compile and is returned (the kernel returns [`Error::Interrupted`] on a fatal signal).
    fn poll(&mut self) -> Result<()>;
}

/// Limits of one compile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Most bytes the tables and the compiler's temporary arrays may allocate together.
    pub(crate) max_table_bytes: usize,
    /// Largest file size the VFS accepts (`MAX_LFS_FILESIZE`).
    pub(crate) max_file_size: u64,
}

/// The metadata messages of an image.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source<'a> {
    /// The rootfs blob (either generation), 8-byte aligned.
    pub(crate) rootfs: &'a [u8],
    /// Generation A: the blobs of the layers the rootfs names, top first, each 8-byte aligned,
    /// with repeated digests left out (a layer that repeats a higher one adds nothing: every
    /// inode it has is found in the higher copy first). Empty for Generation B.
    pub(crate) layers: &'a [&'a [u8]],
}

/// Sentinel of [`Res::out`]: not in the tables (yet).
const NONE: u32 = u32::MAX;

/// What is known of an inode number's topmost version.
#[derive(Clone, Copy, Debug)]
struct Res {
    ino: u64,
    /// Position in its layer's inode list.
    pos: u32,
    /// Index in the tables, or [`NONE`].
    out: u32,
    /// Layer (0 is the top).
    layer: u8,
    /// [`STATE_UNKNOWN`], [`STATE_WHITEOUT`], or `STATE_KIND + kind`.
    state: u8,
}

const STATE_UNKNOWN: u8 = 0;
const STATE_WHITEOUT: u8 = 1;
const STATE_KIND: u8 = 2;

const KINDS: [Kind; 7] = [
    Kind::Dir,
    Kind::File,
    Kind::Symlink,
    Kind::Fifo,
    Kind::Chr,
    Kind::Blk,
    Kind::Sock,
];

fn state_of(kind: Kind) -> u8 {
    STATE_KIND.saturating_add(kind as u8)
}

fn kind_of(state: u8) -> Option<Kind> {
    KINDS
        .get(usize::from(state.checked_sub(STATE_KIND)?))
        .copied()
}

/// One layer's inode list and the buffer its message lives in.
#[derive(Clone, Copy)]
struct LayerList<'r> {
    list: capnp::struct_list::Reader<'r, inode::Owned>,
    buf: u8,
}

/// During compiling, an extent's `blob` holds the word offset of the chunk's digest in its
/// message buffer and `flags` holds the buffer's index above [`BUF_SHIFT`]; [`Compiler::blobs`]
/// replaces both with the blob index.
const BUF_SHIFT: u32 = 8;

/// The type of an inode from its mode union (`None`: a whiteout).
fn read_kind(ino: u64, r: inode::Reader<'_>) -> Result<Option<Kind>> {
    use crate::format::metadata_capnp::inode::mode::Which;
    Ok(Some(match r.get_mode().which()? {
        Which::Unknown(()) => return Err(Error::UnknownInodeType(ino)),
        Which::Wht(()) => return Ok(None),
        Which::Fifo(()) => Kind::Fifo,
        Which::Lnk(()) => Kind::Symlink,
        Which::Sock(()) => Kind::Sock,
        Which::Chr(_) => Kind::Chr,
        Which::Blk(_) => Kind::Blk,
        Which::Dir(_) => Kind::Dir,
        Which::File(_) => Kind::File,
    }))
}

/// Memory accounting of one compile.
struct Budget {
    used: usize,
    limit: usize,
}

impl Budget {
    /// Makes room in `v` for `additional` more elements, charging what the array grows by.
    fn reserve<T, V: TableVec<T>>(&mut self, v: &mut V, additional: usize) -> Result<()> {
        let before = v.capacity();
        if before.saturating_sub(v.len()) >= additional {
            return Ok(());
        }
        // Arrays grow to at least twice their size: check that before asking for the memory.
        let want = v
            .len()
            .checked_add(additional)
            .ok_or(Error::TooLarge)?
            .max(before.saturating_mul(2));
        let grow = want
            .saturating_sub(before)
            .checked_mul(size_of::<T>())
            .ok_or(Error::TooLarge)?;
        if self.used.saturating_add(grow) > self.limit {
            return Err(Error::TooLarge);
        }
        v.try_reserve(additional)?;
        let grown = v
            .capacity()
            .saturating_sub(before)
            .saturating_mul(size_of::<T>());
        self.used = self.used.saturating_add(grown);
        if self.used > self.limit {
            return Err(Error::TooLarge);
        }
        Ok(())
    }

    fn push<T, V: TableVec<T>>(&mut self, v: &mut V, value: T) -> Result<()> {
        self.reserve(v, 1)?;
        v.try_push(value)
    }
}

fn table_bytes<T, V: TableVec<T>>(v: &V) -> usize {
    v.capacity().saturating_mul(size_of::<T>())
}

/// A `u32` index or count for a table that must not outgrow it.
fn idx(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::TooLarge)
}

struct Compiler<'c, 'r, A: Alloc, E: Env> {
    t: Tables<A>,
    layers: &'c [LayerList<'r>],
    bufs: &'c [&'r [u8]],
    /// The topmost version of every inode number, sorted by ino.
    res: A::Vec<Res>,
    /// For each inode of the tables, its index in `res`.
    origin: A::Vec<u32>,
    budget: Budget,
    limits: Limits,
    env: &'c mut E,
    ticks: u32,
}

impl<'r, A: Alloc, E: Env> Compiler<'_, 'r, A, E> {
    fn tick(&mut self) -> Result<()> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % POLL_EVERY == 1 {
            self.env.poll()?;
        }
        Ok(())
    }

    fn reader(&self, r: &Res) -> Result<inode::Reader<'r>> {
        let layer = self
            .layers
            .get(usize::from(r.layer))
            .ok_or(Error::LayerIndex(usize::from(r.layer)))?;
        layer.list.try_get(r.pos).ok_or(Error::InodeNotFound(r.ino))
    }

    /// Merges the layers' inode lists into `res`: one record per inode number, for its topmost
    /// version. Checks that every list is strictly increasing and has no ino 0.
    fn merge(&mut self) -> Result<()> {
        let n = self.layers.len();
        // Cursors: (next ino, layer, position), kept as a binary min-heap on (ino, layer).
        let mut heap: A::Vec<(u64, u8, u32)> = TableVec::new();
        self.budget.reserve(&mut heap, n)?;
        let mut prev: [u64; MAX_LAYERS] = [0; MAX_LAYERS];
        for (l, layer) in self.layers.iter().enumerate() {
            if let Some(first) = layer.list.try_get(0) {
                let l8 = u8::try_from(l).map_err(|_| Error::TooManyLayers(n))?;
                heap_push(&mut heap, (first.get_ino(), l8, 0))?;
            }
        }
        while let Some((ino, layer, pos)) = heap_pop(&mut heap) {
            self.tick()?;
            let l = usize::from(layer);
            let last = prev.get_mut(l).ok_or(Error::LayerIndex(l))?;
            if ino == 0 {
                return Err(Error::ZeroIno { layer: l });
            }
            if ino == *last {
                return Err(Error::DuplicateInode { layer: l, ino });
            }
            if ino < *last {
                return Err(Error::UnsortedInodes { layer: l, ino });
            }
            *last = ino;
            // The heap pops equal inos top layer first: keep only that one.
            let newer = self.res.as_slice().last().map(|r| r.ino) == Some(ino);
            if !newer {
                self.budget.push(
                    &mut self.res,
                    Res {
                        ino,
                        pos,
                        out: NONE,
                        layer,
                        state: STATE_UNKNOWN,
                    },
                )?;
            }
            let next = pos.checked_add(1).ok_or(Error::TooLarge)?;
            let list = self.layers.get(l).ok_or(Error::LayerIndex(l))?.list;
            if let Some(r) = list.try_get(next) {
                heap_push(&mut heap, (r.get_ino(), layer, next))?;
            }
        }
        Ok(())
    }

    fn find(&self, ino: u64) -> Option<usize> {
        self.res
            .as_slice()
            .binary_search_by_key(&ino, |r| r.ino)
            .ok()
    }

    /// The type of `res[i]`, reading it on first use (`None`: whited out).
    fn kind(&mut self, i: usize) -> Result<Option<Kind>> {
        let r = *self.res.as_slice().get(i).ok_or(Error::CountOverflow)?;
        if r.state == STATE_UNKNOWN {
            let state = match read_kind(r.ino, self.reader(&r)?)? {
                Some(k) => state_of(k),
                None => STATE_WHITEOUT,
            };
            if let Some(slot) = self.res.as_mut_slice().get_mut(i) {
                slot.state = state;
            }
            return Ok(kind_of(state));
        }
        Ok(kind_of(r.state))
    }

    /// Adds `res[i]` to the tables (queued for [`Self::inode`]) and returns its index.
    fn add(&mut self, i: usize, kind: Kind) -> Result<u32> {
        let out = idx(self.t.inodes.len())?;
        let r = self
            .res
            .as_mut_slice()
            .get_mut(i)
            .ok_or(Error::CountOverflow)?;
        r.out = out;
        let mut node = Inode::new(r.ino, kind);
        node.nlink = 1;
        self.budget.push(&mut self.t.inodes, node)?;
        self.budget.push(&mut self.origin, idx(i)?)?;
        Ok(out)
    }

    fn node_mut(&mut self, out: u32) -> Result<&mut Inode> {
        self.t
            .inodes
            .as_mut_slice()
            .get_mut(out as usize)
            .ok_or(Error::CountOverflow)
    }

    /// Copies `data` to the end of the byte arena and returns its offset.
    fn copy_bytes(&mut self, data: &[u8]) -> Result<u32> {
        let off = idx(self.t.bytes.len())?;
        self.budget.reserve(&mut self.t.bytes, data.len())?;
        self.t.bytes.try_extend_from_slice(data)?;
        idx(self.t.bytes.len())?;
        Ok(off)
    }

    /// Walks the tree breadth first from the root: `inodes` is both the output and the queue.
    fn walk(&mut self) -> Result<()> {
        let root = self.find(ROOT_INO).ok_or(Error::BadRoot)?;
        match self.kind(root)? {
            Some(Kind::Dir) => {}
            _ => return Err(Error::BadRoot),
        }
        self.add(root, Kind::Dir)?;
        let mut next = 0usize;
        while next < self.t.inodes.len() {
            self.inode(idx(next)?)?;
            next = next.saturating_add(1);
        }
        Ok(())
    }

    /// Compiles inode `out` of the tables.
    fn inode(&mut self, out: u32) -> Result<()> {
        self.tick()?;
        let ri = *self
            .origin
            .as_slice()
            .get(out as usize)
            .ok_or(Error::CountOverflow)?;
        let res = *self
            .res
            .as_slice()
            .get(ri as usize)
            .ok_or(Error::CountOverflow)?;
        let ino = res.ino;
        let r = self.reader(&res)?;
        let perm = r.get_permissions();
        if perm & !PERMISSION_MASK != 0 {
            return Err(Error::BadPermissions {
                ino,
                permissions: perm,
            });
        }
        {
            let node = self.node_mut(out)?;
            node.uid = r.get_uid();
            node.gid = r.get_gid();
            node.permissions = perm;
        }
        let additional = if r.has_additional() {
            Some(r.get_additional()?)
        } else {
            None
        };

        use crate::format::metadata_capnp::inode::mode::Which;
        match r.get_mode().which()? {
            Which::Dir(d) => self.dir(out, ino, d?.get_entries()?)?,
            Which::File(chunks) => self.file(out, ino, res.layer, chunks?)?,
            Which::Lnk(()) => {
                let target = match additional {
                    Some(a) if a.has_symlink_target() => a.get_symlink_target()?,
                    _ => return Err(Error::BadSymlinkTarget { ino }),
                };
                check_symlink(ino, target)?;
                let off = self.copy_bytes(target)?;
                let len = u64::try_from(target.len()).map_err(|_| Error::TooLarge)?;
                self.node_mut(out)?.set_contents(off, 0, len);
            }
            Which::Chr(dev) => {
                let dev = dev?;
                let rdev = mkdev(ino, dev.get_major(), dev.get_minor())?;
                self.node_mut(out)?.set_contents(0, 0, rdev);
            }
            Which::Blk(dev) => {
                let dev = dev?;
                let rdev = mkdev(ino, dev.get_major(), dev.get_minor())?;
                self.node_mut(out)?.set_contents(0, 0, rdev);
            }
            Which::Fifo(()) | Which::Sock(()) => {}
            Which::Unknown(()) => return Err(Error::UnknownInodeType(ino)),
            // Whiteouts are never added to the tables.
            Which::Wht(()) => return Err(Error::InodeNotFound(ino)),
        }
        if let Some(a) = additional {
            if a.has_xattrs() {
                self.xattrs(out, ino, a.get_xattrs()?)?;
            }
        }
        Ok(())
    }

    fn dir(
        &mut self,
        out: u32,
        dino: u64,
        entries: capnp::struct_list::Reader<'r, crate::format::metadata_capnp::dir_entry::Owned>,
    ) -> Result<()> {
        let first = self.t.dirents.len();
        self.budget
            .reserve(&mut self.t.dirents, entries.len() as usize)?;
        let mut subdirs = 0u32;
        // Upstream numbers a directory's entries consecutively: try the next ino first.
        let mut hint = usize::MAX;
        for e in entries.iter() {
            self.tick()?;
            let name = e.get_name()?;
            check_name(name).map_err(|why| Error::BadName { ino: dino, why })?;
            let ino = e.get_ino();
            if ino == 0 {
                return Err(Error::BadDirEntryIno { ino: dino });
            }
            let t = match self.res.as_slice().get(hint) {
                Some(r) if r.ino == ino => hint,
                _ => self.find(ino).ok_or(Error::InodeNotFound(ino))?,
            };
            hint = t.saturating_add(1);
            let Some(kind) = self.kind(t)? else {
                // Whited out by a newer layer: hidden.
                continue;
            };
            if ino == ROOT_INO {
                return Err(Error::EntryNamesRoot { dir: dino });
            }
            let existing = self.res.as_slice().get(t).map_or(NONE, |r| r.out);
            let target = if existing == NONE {
                self.add(t, kind)?
            } else if kind == Kind::Dir {
                // A directory with a second name: two parents, or a cycle.
                return Err(Error::DirectoryTwice { ino });
            } else {
                let n = self.node_mut(existing)?;
                n.nlink = n.nlink.saturating_add(1);
                existing
            };
            if kind == Kind::Dir {
                subdirs = subdirs.saturating_add(1);
            }
            let name_off = self.copy_bytes(name)?;
            let name_len = u8::try_from(name.len()).map_err(|_| Error::BadName {
                ino: dino,
                why: crate::format::NameError::TooLong,
            })?;
            self.budget.push(
                &mut self.t.dirents,
                Dirent {
                    name_off,
                    target,
                    name_len,
                    kind,
                },
            )?;
        }
        let count = self.t.dirents.len().saturating_sub(first);
        {
            let bytes = self.t.bytes.as_slice();
            let name = |d: &Dirent| {
                let off = d.name_off as usize;
                bytes
                    .get(off..off.saturating_add(usize::from(d.name_len)))
                    .unwrap_or(&[])
            };
            let mine = self
                .t
                .dirents
                .as_mut_slice()
                .get_mut(first..)
                .ok_or(Error::CountOverflow)?;
            sort_by(mine, self.env, |a, b| name(a).cmp(name(b)))?;
            if any_pair(mine, self.env, |a, b| name(a) == name(b))? {
                return Err(Error::DuplicateName { dir: dino });
            }
        }
        let node = self.node_mut(out)?;
        node.nlink = subdirs.saturating_add(2);
        node.set_contents(idx(first)?, idx(count)?, 0);
        Ok(())
    }

    fn file(
        &mut self,
        out: u32,
        ino: u64,
        layer: u8,
        chunks: capnp::struct_list::Reader<'r, crate::format::metadata_capnp::file_chunk::Owned>,
    ) -> Result<()> {
        let first = self.t.extents.len();
        let buf = self.layers.get(usize::from(layer)).map_or(0, |l| l.buf);
        let base = self
            .bufs
            .get(usize::from(buf))
            .map_or(0, |b| b.as_ptr() as usize);
        self.budget
            .reserve(&mut self.t.extents, chunks.len() as usize)?;
        let mut size: u64 = 0;
        for c in chunks.iter() {
            self.tick()?;
            let blob = c.get_blob()?;
            let digest = blob.get_digest()?;
            if digest.len() != DIGEST_LEN {
                return Err(Error::BadDigestLength(digest.len()));
            }
            let offset = blob.get_offset();
            let len = c.get_len();
            offset
                .checked_add(len)
                .ok_or(Error::ChunkOverflow { ino })?;
            if len == 0 {
                continue;
            }
            size = size.checked_add(len).ok_or(Error::ChunkOverflow { ino })?;
            if size > self.limits.max_file_size {
                return Err(Error::FileTooLarge { ino });
            }
            // Where the digest is: a word offset in this layer's buffer (see `BUF_SHIFT`).
            let at = (digest.as_ptr() as usize)
                .checked_sub(base)
                .ok_or(Error::Truncated)?
                / 8;
            let flags = (u32::from(buf) << BUF_SHIFT)
                | if blob.get_compressed() {
                    EXTENT_COMPRESSED
                } else {
                    0
                };
            self.budget.push(
                &mut self.t.extents,
                Extent {
                    end: size,
                    offset,
                    blob: idx(at)?,
                    flags,
                },
            )?;
        }
        let count = self.t.extents.len().saturating_sub(first);
        self.node_mut(out)?
            .set_contents(idx(first)?, idx(count)?, size);
        Ok(())
    }

    fn xattrs(
        &mut self,
        out: u32,
        ino: u64,
        list: capnp::struct_list::Reader<'r, crate::format::metadata_capnp::xattr::Owned>,
    ) -> Result<()> {
        let first = self.t.xattrs.len();
        self.budget
            .reserve(&mut self.t.xattrs, list.len() as usize)?;
        // What listxattr returns: every name and its NUL.
        let mut list_len = 0usize;
        for x in list.iter() {
            self.tick()?;
            let name = x.get_key()?;
            let value = x.get_val()?;
            check_xattr(ino, name, value)?;
            list_len = list_len.saturating_add(name.len()).saturating_add(1);
            if list_len > XATTR_LIST_MAX {
                return Err(Error::XattrListTooLarge { ino });
            }
            let name_off = self.copy_bytes(name)?;
            let value_off = self.copy_bytes(value)?;
            self.budget.push(
                &mut self.t.xattrs,
                Xattr {
                    name_off,
                    value_off,
                    value_len: idx(value.len())?,
                    name_len: u8::try_from(name.len()).map_err(|_| Error::BadXattrName { ino })?,
                },
            )?;
        }
        let count = self.t.xattrs.len().saturating_sub(first);
        {
            let bytes = self.t.bytes.as_slice();
            let name = |x: &Xattr| {
                let off = x.name_off as usize;
                bytes
                    .get(off..off.saturating_add(usize::from(x.name_len)))
                    .unwrap_or(&[])
            };
            let mine = self
                .t
                .xattrs
                .as_mut_slice()
                .get_mut(first..)
                .ok_or(Error::CountOverflow)?;
            sort_by(mine, self.env, |a, b| name(a).cmp(name(b)))?;
            if any_pair(mine, self.env, |a, b| name(a) == name(b))? {
                return Err(Error::DuplicateXattr { ino });
            }
        }
        self.node_mut(out)?.set_xattrs(idx(first)?, idx(count)?);
        Ok(())
    }
}

impl<A: Alloc, E: Env> Compiler<'_, '_, A, E> {
    /// Builds the blob table: one entry per distinct chunk digest, sorted, and points every
    /// extent at its blob.
    ///
    /// Consecutive extents often name the same chunk (small files stored one after another), so
    /// the sort works on runs of extents with the same digest rather than on every extent.
    fn blobs(&mut self) -> Result<()> {
        let n = self.t.extents.len();
        let bufs = self.bufs;
        // One record per run: the first 8 bytes of its digest, big-endian (their order is the
        // digests' order, and whole digests are compared only on a tie), its first extent and
        // its length.
        let mut runs: A::Vec<(u64, u32, u32)> = TableVec::new();
        // At most one run per extent: reserved at once, so the array never outgrows that.
        self.budget.reserve(&mut runs, n)?;
        let mut prev: &[u8] = &[];
        for i in 0..n {
            self.tick()?;
            let d = extent_digest(bufs, self.t.extents.as_slice(), i);
            if !prev.is_empty() && d == prev {
                if let Some(run) = runs.as_mut_slice().last_mut() {
                    run.2 = run.2.saturating_add(1);
                    continue;
                }
            }
            prev = d;
            let mut prefix = [0u8; 8];
            if let Some(p) = d.get(..8) {
                prefix.copy_from_slice(p);
            }
            runs.try_push((u64::from_be_bytes(prefix), idx(i)?, 1))?;
        }
        let ext = self.t.extents.as_slice();
        sort_by(runs.as_mut_slice(), self.env, |a, b| {
            a.0.cmp(&b.0).then_with(|| {
                extent_digest(bufs, ext, a.1 as usize).cmp(extent_digest(bufs, ext, b.1 as usize))
            })
        })?;
        let mut prev: Option<Digest> = None;
        for k in 0..runs.len() {
            self.tick()?;
            let (_, first, len) = *runs.as_slice().get(k).ok_or(Error::CountOverflow)?;
            let d = digest_from_bytes(extent_digest(
                bufs,
                self.t.extents.as_slice(),
                first as usize,
            ))?;
            if prev != Some(d) {
                self.budget.push(
                    &mut self.t.blobs,
                    Blob {
                        digest: d,
                        verity: None,
                        next: NO_BLOB,
                    },
                )?;
                prev = Some(d);
            }
            let blob = idx(self.t.blobs.len().saturating_sub(1))?;
            for i in first..first.saturating_add(len) {
                self.tick()?;
                let slot = self
                    .t
                    .extents
                    .as_mut_slice()
                    .get_mut(i as usize)
                    .ok_or(Error::CountOverflow)?;
                slot.blob = blob;
                slot.flags &= EXTENT_COMPRESSED;
            }
        }
        Ok(())
    }

    /// Sets each blob's successor in the chunk stream ([`Blob::next`]): the first file, in inode
    /// order, whose extents go on from the blob to another one names it. One pass over the
    /// extents.
    fn successors(&mut self) -> Result<()> {
        for n in 0..self.t.inodes.len() {
            let Some(node) = self.t.inodes.as_slice().get(n) else {
                break;
            };
            if node.kind != Kind::File {
                continue;
            }
            let (first, end) = node.range(Kind::File);
            let mut prev = None;
            for i in first..end {
                self.tick()?;
                let Some(b) = self.t.extents.as_slice().get(i).map(|e| e.blob) else {
                    break;
                };
                if let Some(a) = prev.filter(|&a| a != b) {
                    if let Some(blob) = self.t.blobs.as_mut_slice().get_mut(a as usize) {
                        if blob.next == NO_BLOB {
                            blob.next = b;
                        }
                    }
                }
                prev = Some(b);
            }
        }
        Ok(())
    }

    /// Records the fs-verity digest of each chunk blob that the rootfs's `fsVerityData` names.
    /// Entries for blobs no file uses (metadata blobs) are checked and skipped.
    ///
    /// `hint` is where the previous entry was found: upstream writes the entries in digest
    /// order, so the next one is usually the next blob and no search is needed.
    fn verity_entry(&mut self, digest: &[u8], verity: &[u8], hint: &mut usize) -> Result<()> {
        self.tick()?;
        let d = digest_from_bytes(digest)?;
        let v = digest_from_bytes(verity)?;
        let blobs = self.t.blobs.as_mut_slice();
        let found = match blobs.get(*hint) {
            Some(b) if b.digest == d => Ok(*hint),
            _ => blobs.binary_search_by(|b| b.digest.cmp(&d)),
        };
        if let Ok(i) = found {
            *hint = i.saturating_add(1);
            if let Some(b) = blobs.get_mut(i) {
                match b.verity {
                    Some(old) if old != v => return Err(Error::ConflictingVerity),
                    _ => b.verity = Some(v),
                }
            }
        }
        Ok(())
    }
}

/// `MKDEV(major, minor)`, if Linux can represent the numbers.
fn mkdev(ino: u64, major: u64, minor: u64) -> Result<u64> {
    if major > MAJOR_MAX || minor > MINOR_MAX {
        return Err(Error::BadDevice { ino });
    }
    Ok((major << 20) | minor)
}

/// The digest bytes of extent `i` (empty if it has none): the extent's `blob` is still the word
/// offset of the digest in the message buffer its flags name.
fn extent_digest<'b>(bufs: &[&'b [u8]], ext: &[Extent], i: usize) -> &'b [u8] {
    ext.get(i).map_or(&[], |e| {
        let buf = bufs.get((e.flags >> BUF_SHIFT) as usize).copied();
        digest_at(buf.unwrap_or(&[]), e.blob)
    })
}

/// The 32 digest bytes at word `at` of `buf`.
fn digest_at(buf: &[u8], at: u32) -> &[u8] {
    let off = (at as usize).saturating_mul(8);
    buf.get(off..off.saturating_add(DIGEST_LEN)).unwrap_or(&[])
}

fn heap_less(a: &(u64, u8, u32), b: &(u64, u8, u32)) -> bool {
    (a.0, a.1) < (b.0, b.1)
}

fn heap_push<V: TableVec<(u64, u8, u32)>>(heap: &mut V, item: (u64, u8, u32)) -> Result<()> {
    // The heap has room for one cursor per layer (reserved by the caller).
    heap.try_push(item)?;
    let h = heap.as_mut_slice();
    let mut i = h.len().saturating_sub(1);
    while i > 0 {
        let parent = i.saturating_sub(1) / 2;
        match (h.get(parent), h.get(i)) {
            (Some(p), Some(c)) if heap_less(c, p) => h.swap(parent, i),
            _ => break,
        }
        i = parent;
    }
    Ok(())
}

fn heap_pop<V: TableVec<(u64, u8, u32)>>(heap: &mut V) -> Option<(u64, u8, u32)> {
    let n = heap.len();
    let last = n.checked_sub(1)?;
    let h = heap.as_mut_slice();
    h.swap(0, last);
    let top = *h.get(last)?;
    let mut i = 0usize;
    loop {
        let l = i.saturating_mul(2).saturating_add(1);
        if l >= last {
            break;
        }
        let r = l.saturating_add(1);
        let mut c = l;
        if r < last {
            if let (Some(a), Some(b)) = (h.get(r), h.get(l)) {
                if heap_less(a, b) {
                    c = r;
                }
            }
        }
        match (h.get(i), h.get(c)) {
            (Some(p), Some(ch)) if heap_less(ch, p) => h.swap(i, c),
            _ => break,
        }
        i = c;
    }
    heap.truncate(last);
    Some(top)
}

/// Compiles the metadata of an image into [`Tables`] (see the module documentation).
pub(crate) fn compile<A: Alloc, E: Env>(
    src: &Source<'_>,
    limits: Limits,
    env: &mut E,
) -> Result<Tables<A>> {
    let root = message::open(src.rootfs)?;
    // Both rootfs schemas keep manifestVersion in the same data word.
    let version = root
        .get_root::<rootfs_b::Reader<'_>>()?
        .get_manifest_version();
    let mut budget = Budget {
        used: 0,
        limit: limits.max_table_bytes,
    };
    let gen_b_bufs = [src.rootfs];
    let (bufs, msgs): (&[&[u8]], A::Vec<Message<'_>>) = match version {
        MANIFEST_VERSION_B if src.layers.is_empty() => (&gen_b_bufs, TableVec::new()),
        MANIFEST_VERSION_B => return Err(Error::UnexpectedLayers),
        MANIFEST_VERSION_A => {
            if src.layers.len() > MAX_LAYERS {
                return Err(Error::TooManyLayers(src.layers.len()));
            }
            let mut msgs: A::Vec<Message<'_>> = TableVec::new();
            budget.reserve(&mut msgs, src.layers.len())?;
            for buf in src.layers {
                msgs.try_push(message::open(buf)?)?;
            }
            (src.layers, msgs)
        }
        v => return Err(Error::UnsupportedManifestVersion(v)),
    };
    let mut lists: A::Vec<LayerList<'_>> = TableVec::new();
    if version == MANIFEST_VERSION_B {
        let metas = root.get_root::<rootfs_b::Reader<'_>>()?.get_metadatas()?;
        budget.reserve(&mut lists, metas.len() as usize)?;
        for v in metas.iter() {
            lists.try_push(LayerList {
                list: v.get_inodes()?,
                buf: 0,
            })?;
        }
    } else {
        budget.reserve(&mut lists, msgs.len())?;
        for (i, m) in msgs.as_slice().iter().enumerate() {
            let list = m.get_root::<inode_vector::Reader<'_>>()?.get_inodes()?;
            lists.try_push(LayerList {
                list,
                buf: u8::try_from(i).map_err(|_| Error::TooManyLayers(i))?,
            })?;
        }
    }
    if lists.len() == 0 {
        return Err(Error::NoLayers);
    }
    if lists.len() > MAX_LAYERS {
        return Err(Error::TooManyLayers(lists.len()));
    }

    let mut c = Compiler::<A, E> {
        t: Tables::empty(),
        layers: lists.as_slice(),
        bufs,
        res: TableVec::new(),
        origin: TableVec::new(),
        budget,
        limits,
        env,
        ticks: 0,
    };
    c.merge()?;
    c.walk()?;
    c.blobs()?;
    c.successors()?;
    let mut hint = 0;
    if version == MANIFEST_VERSION_B {
        let r = root.get_root::<rootfs_b::Reader<'_>>()?;
        for e in r.get_fs_verity_data()?.iter() {
            c.verity_entry(e.get_digest()?, e.get_verity()?, &mut hint)?;
        }
    } else {
        let r = root.get_root::<manifest_capnp::rootfs::Reader<'_>>()?;
        for e in r.get_fs_verity_data()?.iter() {
            c.verity_entry(e.get_digest()?, e.get_verity()?, &mut hint)?;
        }
    }

    // The arrays grew by doubling: give the slack back before they live as long as the mount.
    c.t.inodes.shrink_to_fit();
    c.t.dirents.shrink_to_fit();
    c.t.extents.shrink_to_fit();
    c.t.xattrs.shrink_to_fit();
    c.t.bytes.shrink_to_fit();
    c.t.blobs.shrink_to_fit();
    let mut stats = c.t.stats;
    for n in c.t.inodes.as_slice() {
        stats.inodes = stats.inodes.saturating_add(1);
        match n.kind {
            Kind::Dir => stats.dirs = stats.dirs.saturating_add(1),
            Kind::File => {
                stats.files = stats.files.saturating_add(1);
                stats.data_bytes = stats.data_bytes.saturating_add(n.file_size());
            }
            _ => {}
        }
    }
    stats.metadata_bytes = bufs
        .iter()
        .chain(if version == MANIFEST_VERSION_A {
            &gen_b_bufs[..]
        } else {
            &[][..]
        })
        .fold(0u64, |a, b| {
            a.saturating_add(u64::try_from(b.len()).unwrap_or(u64::MAX))
        });
    let t = &c.t;
    stats.table_bytes = [
        table_bytes(&t.inodes),
        table_bytes(&t.dirents),
        table_bytes(&t.extents),
        table_bytes(&t.xattrs),
        table_bytes(&t.bytes),
        table_bytes(&t.blobs),
    ]
    .iter()
    .fold(0u64, |a, &b| {
        a.saturating_add(u64::try_from(b).unwrap_or(u64::MAX))
    });
    stats.layers = u32::try_from(lists.len()).unwrap_or(u32::MAX);
    stats.compressed_extents =
        c.t.extents
            .as_slice()
            .iter()
            .filter(|e| e.compressed())
            .fold(0u64, |n, _| n.saturating_add(1));
    c.t.stats = stats;
    Ok(c.t)
}
