// SPDX-License-Identifier: GPL-2.0

//! Host build of the PuzzleFS format core (`fs/puzzlefs/format.rs` and
//! `fs/puzzlefs/format/`), compiled unchanged and `no_std` as in the kernel,
//! so that `crate::format::...` paths are the same in both builds.
//!
//! The panic-freedom lints below are denied on the format core: image bytes
//! must not be able to reach a panic, an unchecked index or an overflowing
//! operation. The generated capnp readers opt out in `format.rs`.

#![cfg_attr(not(test), no_std)]

#[path = "../../../../../../../fs/puzzlefs/format.rs"]
#[deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::cast_possible_truncation,
    missing_docs,
    unsafe_code
)]
#[warn(unreachable_pub)]
#[allow(dead_code)]
pub mod format;

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::ControlFlow;
use format::compile::{compile, Env, Limits, Source};
use format::tables::{
    check_name, check_symlink, check_xattr, extent_for, Alloc, Kind, TableVec, ROOT_INDEX, ROOT_INO,
};

/// The tables' allocator on the host: `Vec`, with fallible growth.
pub struct HostAlloc;

impl<T> TableVec<T> for Vec<T> {
    fn new() -> Self {
        Vec::new()
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn as_slice(&self) -> &[T] {
        Vec::as_slice(self)
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        Vec::as_mut_slice(self)
    }
    fn try_reserve(&mut self, additional: usize) -> format::Result<()> {
        Vec::try_reserve(self, additional).map_err(|_| format::Error::OutOfMemory)
    }
    fn try_push(&mut self, value: T) -> format::Result<()> {
        Vec::try_reserve(self, 1).map_err(|_| format::Error::OutOfMemory)?;
        self.push(value);
        Ok(())
    }
    fn try_extend_from_slice(&mut self, values: &[T]) -> format::Result<()>
    where
        T: Clone,
    {
        Vec::try_reserve(self, values.len()).map_err(|_| format::Error::OutOfMemory)?;
        self.extend_from_slice(values);
        Ok(())
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
    fn shrink_to_fit(&mut self) {
        Vec::shrink_to_fit(self);
    }
}

impl Alloc for HostAlloc {
    type Vec<T> = Vec<T>;
}

/// Compiled tables on the host.
pub(crate) type HostTables = format::tables::Tables<HostAlloc>;

/// An environment that counts polls and never stops the compile.
#[derive(Default)]
pub struct CountPolls(pub u64);

impl Env for CountPolls {
    fn poll(&mut self) -> format::Result<()> {
        self.0 = self.0.saturating_add(1);
        Ok(())
    }
}

/// Limits of host compiles: 256 MiB of tables, files up to `i64::MAX` bytes (the kernel's
/// defaults).
pub(crate) const HOST_LIMITS: Limits = Limits {
    max_table_bytes: 256 << 20,
    max_file_size: i64::MAX as u64,
};

/// Compiles an image on the host.
#[cfg(test)]
pub(crate) fn compile_host(rootfs: &[u8], layers: &[&[u8]]) -> format::Result<HostTables> {
    compile::<HostAlloc, _>(
        &Source { rootfs, layers },
        HOST_LIMITS,
        &mut CountPolls::default(),
    )
}

/// Compiles `rootfs` (with Generation A `layers`) and, if that succeeds, reads every table
/// through its accessors and checks the documented invariants of the tables and the poll
/// rate (fuzzing entry: errors are fine; a panic, including a broken invariant, is a bug).
/// Returns whether the compile succeeded.
pub fn exercise_compile(rootfs: &[u8], layers: &[&[u8]]) -> bool {
    if let Ok(r) = format::rootfs::Rootfs::parse(rootfs) {
        let _ = r.generation();
        let _ = r.for_each_layer_blob(|_| Ok(()));
    }
    let limits = Limits {
        max_table_bytes: 64 << 20,
        ..HOST_LIMITS
    };
    let mut polls = CountPolls::default();
    let Ok(t) = compile::<HostAlloc, _>(&Source { rootfs, layers }, limits, &mut polls) else {
        return false;
    };
    if let Err(why) = check_invariants(&t) {
        panic!("compiled tables break an invariant: {why}");
    }
    if let Err(why) = check_poll_rate(&t, polls.0) {
        panic!("{why}");
    }
    if t.stats().table_bytes > limits.max_table_bytes as u64 {
        panic!("tables exceed the memory limit");
    }
    for i in 0..t.inode_count() {
        let Ok(index) = u32::try_from(i) else { break };
        let Some(n) = t.inode(index) else { continue };
        let exts = t.extents(n);
        let _ = extent_for(exts, n.file_size() / 2);
        let _ = extent_for(exts, n.file_size().saturating_sub(1));
        let _ = (n.rdev(), n.st_size());
    }
    true
}

/// Work units (inodes, entries, chunks, xattrs) between two polls that the compiler documents
/// (`POLL_EVERY` in compile.rs).
pub(crate) const POLL_EVERY: u64 = 1024;

/// Checks that a compile that produced `t` polled its environment at least once per
/// [`POLL_EVERY`] units of the work the tables show: every inode, entry and xattr is visited
/// at least once, every extent at least three times (compiled, ordered by digest, assigned its
/// blob).
pub(crate) fn check_poll_rate(t: &HostTables, polls: u64) -> Result<(), String> {
    let work = [
        t.inodes.len(),
        t.dirents.len(),
        t.xattrs.len(),
        t.extents.len().saturating_mul(3),
    ]
    .iter()
    .fold(0u64, |a, &b| a.saturating_add(b as u64));
    if polls.saturating_mul(POLL_EVERY) < work {
        return Err(format!("{polls} polls for {work} work units"));
    }
    Ok(())
}

/// Checks every invariant `fs/puzzlefs/format/tables.rs` documents for compiled tables, plus
/// what the compiler promises on top (reachability, link counts, totals). Independent of the
/// compiler: it only reads the tables through their accessors and public fields.
pub(crate) fn check_invariants(t: &HostTables) -> Result<(), String> {
    let n = t.inode_count();
    let root = t.inode(ROOT_INDEX).ok_or("no root inode")?;
    if root.ino != ROOT_INO || root.kind != Kind::Dir {
        return Err(format!("root is ino {} {:?}", root.ino, root.kind));
    }
    let mut names = vec![0u64; n];
    let mut subdirs = vec![0u64; n];
    let mut inos = Vec::with_capacity(n);
    let mut stats = format::tables::Stats::default();
    for (i, node) in t.inodes.iter().enumerate() {
        let ino = node.ino;
        inos.push(ino);
        stats.inodes += 1;
        if ino == 0 {
            return Err(format!("inode {i} has ino 0"));
        }
        if node.permissions & !0o7777 != 0 {
            return Err(format!("ino {ino}: permissions {:#o}", node.permissions));
        }
        // Directory entries: sorted, unique, valid, naming existing inodes of their kind.
        let entries = t.entries(node);
        if node.kind != Kind::Dir && !entries.is_empty() {
            return Err(format!("ino {ino}: a {:?} with entries", node.kind));
        }
        for (pos, e) in entries.iter().enumerate() {
            let name = t.name(e);
            check_name(name).map_err(|why| format!("dir {ino}: entry {pos}: {why}"))?;
            if let Some(next) = entries.get(pos + 1) {
                if name >= t.name(next) {
                    return Err(format!(
                        "dir {ino}: entries not sorted or not unique at {pos}"
                    ));
                }
            }
            let target = t
                .inode(e.target)
                .ok_or_else(|| format!("dir {ino}: entry {pos} names index {}", e.target))?;
            if e.target == ROOT_INDEX {
                return Err(format!("dir {ino}: entry {pos} names the root"));
            }
            if target.kind != e.kind {
                return Err(format!(
                    "dir {ino}: entry {pos} kind {:?} for a {:?}",
                    e.kind, target.kind
                ));
            }
            names[e.target as usize] += 1;
            if e.kind == Kind::Dir {
                subdirs[i] += 1;
            }
            match t.lookup(node, name) {
                Some((p, f)) if p == pos && f == e => {}
                _ => return Err(format!("dir {ino}: lookup of entry {pos} fails")),
            }
        }
        // Extents: strictly increasing ends, the last one the file size, blobs in range.
        let exts = t.extents(node);
        let mut end = 0u64;
        for (k, e) in exts.iter().enumerate() {
            if e.end <= end {
                return Err(format!(
                    "ino {ino}: extent {k} ends at {} after {end}",
                    e.end
                ));
            }
            if t.blob(e.blob).is_none() {
                return Err(format!("ino {ino}: extent {k} names blob {}", e.blob));
            }
            if e.flags & !format::tables::EXTENT_COMPRESSED != 0 {
                return Err(format!("ino {ino}: extent {k} flags {:#x}", e.flags));
            }
            if e.offset.checked_add(e.end - end).is_none() {
                return Err(format!("ino {ino}: extent {k} range overflows"));
            }
            end = e.end;
        }
        if node.kind == Kind::File {
            if end != node.file_size() {
                return Err(format!(
                    "ino {ino}: extents end at {end}, size {}",
                    node.file_size()
                ));
            }
            stats.files += 1;
            stats.data_bytes = stats.data_bytes.saturating_add(end);
        } else if !exts.is_empty() || node.file_size() != 0 {
            return Err(format!(
                "ino {ino}: a {:?} with extents or a size",
                node.kind
            ));
        }
        // Symlink targets.
        let target = t.symlink_target(node);
        match node.kind {
            Kind::Symlink => {
                check_symlink(ino, target).map_err(|e| format!("ino {ino}: {e}"))?;
                if node.st_size() != target.len() as u64 {
                    return Err(format!("ino {ino}: symlink size {}", node.st_size()));
                }
            }
            _ if !target.is_empty() => {
                return Err(format!("ino {ino}: target on a {:?}", node.kind))
            }
            _ => {}
        }
        if node.kind == Kind::Dir {
            stats.dirs += 1;
        }
        if !matches!(node.kind, Kind::Chr | Kind::Blk) && node.rdev() != 0 {
            return Err(format!("ino {ino}: rdev on a {:?}", node.kind));
        }
        // Xattrs: sorted, unique, valid, found by name.
        let xs = t.xattrs(node);
        for (k, x) in xs.iter().enumerate() {
            let name = t.xattr_name(x);
            let value = t.xattr_value(x);
            check_xattr(ino, name, value).map_err(|e| format!("ino {ino}: xattr {k}: {e}"))?;
            if value.len() != x.value_len as usize {
                return Err(format!("ino {ino}: xattr {k} value out of range"));
            }
            if let Some(next) = xs.get(k + 1) {
                if name >= t.xattr_name(next) {
                    return Err(format!("ino {ino}: xattrs not sorted or not unique at {k}"));
                }
            }
            if t.xattr_get(node, name) != Some(value) {
                return Err(format!("ino {ino}: xattr {k} not found by name"));
            }
        }
    }
    // Every directory but the root has exactly one name, the root none; link counts.
    for (i, node) in t.inodes.iter().enumerate() {
        let want = match node.kind {
            Kind::Dir => {
                if names[i] != u64::from(i != 0) {
                    return Err(format!("dir {} has {} names", node.ino, names[i]));
                }
                2 + subdirs[i]
            }
            _ => {
                if names[i] == 0 {
                    return Err(format!("ino {} has no name", node.ino));
                }
                names[i]
            }
        };
        if u64::from(node.nlink) != want {
            return Err(format!(
                "ino {}: nlink {} instead of {want}",
                node.ino, node.nlink
            ));
        }
    }
    // Distinct inode numbers, every inode reachable from the root.
    inos.sort_unstable();
    if inos.windows(2).any(|w| w[0] == w[1]) {
        return Err("two inodes with one ino".into());
    }
    let mut seen = vec![false; n];
    let mut queue = vec![ROOT_INDEX];
    seen[0] = true;
    while let Some(i) = queue.pop() {
        let node = t.inode(i).ok_or("inode index")?;
        for e in t.entries(node) {
            if !seen[e.target as usize] {
                seen[e.target as usize] = true;
                queue.push(e.target);
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!("inode index {i} is not reachable"));
    }
    // Blobs: sorted by digest, distinct.
    let blobs = t.blobs.as_slice();
    if blobs.windows(2).any(|w| w[0].digest >= w[1].digest) {
        return Err("blobs not sorted or not distinct".into());
    }
    // Successors: a blob's `next` is a blob some file goes on to from it, and a blob that a
    // file goes on from has one.
    let mut steps = alloc::collections::BTreeSet::new();
    for node in t.inodes.iter().filter(|n| n.kind == Kind::File) {
        for w in t.extents(node).windows(2) {
            if w[0].blob != w[1].blob {
                steps.insert((w[0].blob, w[1].blob));
            }
        }
    }
    let sources: alloc::collections::BTreeSet<u32> = steps.iter().map(|s| s.0).collect();
    for (i, b) in blobs.iter().enumerate() {
        let i = i as u32;
        if b.next == format::tables::NO_BLOB {
            if sources.contains(&i) {
                return Err(format!(
                    "blob {i} has no successor, but a file goes on from it"
                ));
            }
        } else if !steps.contains(&(i, b.next)) {
            return Err(format!(
                "blob {i}: no file goes on from it to its successor {}",
                b.next
            ));
        }
    }
    // Totals.
    let s = t.stats();
    if (s.inodes, s.dirs, s.files, s.data_bytes)
        != (stats.inodes, stats.dirs, stats.files, stats.data_bytes)
    {
        return Err(format!("stats {s:?}, tables say {stats:?}"));
    }
    if s.layers == 0 || s.layers as usize > format::compile::MAX_LAYERS {
        return Err(format!("{} layers", s.layers));
    }
    Ok(())
}

/// Splits a fuzz input of the `compile` target into a rootfs and Generation A layer blobs,
/// each copied to its own 8-byte aligned buffer, and runs [`exercise_compile`].
///
/// Layout: byte 0 even: Generation B, the rest is the rootfs. Byte 0 odd: Generation A; bytes
/// 1..3 are the rootfs length in 8-byte words (little endian), then, if bit 1 of byte 0 is
/// set, bytes 3..5 the first layer's length in words and the rest is the second layer,
/// otherwise the rest is the only layer. Lengths past the end are cut.
pub fn exercise_compile_input(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    if mode & 1 == 0 {
        let rootfs = AlignedBuf::new(rest);
        return exercise_compile(rootfs.get(), &[]);
    }
    let (rootfs, rest) = take_words(rest);
    if mode & 2 == 0 {
        let (r, l) = (AlignedBuf::new(rootfs), AlignedBuf::new(rest));
        exercise_compile(r.get(), &[l.get()])
    } else {
        let (first, second) = take_words(rest);
        let (r, a, b) = (
            AlignedBuf::new(rootfs),
            AlignedBuf::new(first),
            AlignedBuf::new(second),
        );
        exercise_compile(r.get(), &[a.get(), b.get()])
    }
}

/// Encodes a rootfs and its Generation A layers (none for Generation B, at most two) in the
/// layout [`exercise_compile_input`] reads (fuzz seeds from real images). `None` if they do not
/// fit the layout.
#[cfg(test)]
pub(crate) fn encode_compile_input(rootfs: &[u8], layers: &[&[u8]]) -> Option<Vec<u8>> {
    let words = |b: &[u8]| -> Option<[u8; 2]> {
        if !b.len().is_multiple_of(8) {
            return None;
        }
        Some(u16::try_from(b.len() / 8).ok()?.to_le_bytes())
    };
    let mut out = Vec::new();
    match layers {
        [] => {
            out.push(0);
            out.extend_from_slice(rootfs);
        }
        [l] => {
            out.push(1);
            out.extend_from_slice(&words(rootfs)?);
            out.extend_from_slice(rootfs);
            out.extend_from_slice(l);
        }
        [a, b] => {
            out.push(3);
            out.extend_from_slice(&words(rootfs)?);
            out.extend_from_slice(rootfs);
            out.extend_from_slice(&words(a)?);
            out.extend_from_slice(a);
            out.extend_from_slice(b);
        }
        _ => return None,
    }
    Some(out)
}

/// Reads a little-endian `u16` count of words and splits that many bytes off `data`.
fn take_words(data: &[u8]) -> (&[u8], &[u8]) {
    let (len, rest) = match data {
        [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])) * 8, rest),
        _ => (0, &[][..]),
    };
    rest.split_at(len.min(rest.len()))
}

/// An 8-byte aligned copy of some bytes.
pub struct AlignedBuf {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBuf {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (w, c) in words.iter_mut().zip(bytes.chunks(8)) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            *w = u64::from_ne_bytes(b);
        }
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes, 8-byte aligned.
    pub fn get(&self) -> &[u8] {
        let all: &[u8] = bytemuck_words(&self.words);
        &all[..self.len]
    }
}

/// The bytes of `words` (native order).
fn bytemuck_words(words: &[u64]) -> &[u8] {
    // SAFETY: `u64` has no padding and every byte pattern is a valid `u8`; the length is the
    // byte size of `words`, and the lifetime is tied to it.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
}

/// What [`seekable_index`] finds in a compressed chunk blob.
pub enum HostLayout {
    /// A seekable blob: its frames as (compressed offset, compressed size, decompressed
    /// offset, decompressed size), and the chunk's size.
    Seekable(Vec<(u64, u32, u64, u32)>, u64),
    /// A plain zstd stream.
    Plain,
}

/// Reads a compressed chunk blob the way the driver does: its layout, and for a seekable blob
/// its seek table and frame index. Checks the index's own consistency (frames back to back in
/// both the blob and the chunk, `frame_at` finding each frame's first and last byte) and
/// panics if it does not hold (fuzzing entry). `None` if the blob is refused.
pub fn seekable_index(blob: &[u8]) -> Option<HostLayout> {
    seekable_index_result(blob).ok()
}

/// [`seekable_index`], with the reason of a refusal.
pub(crate) fn seekable_index_result(blob: &[u8]) -> format::Result<HostLayout> {
    use format::seekable::{blob_layout, Layout, SeekIndex};
    let len = blob.len();
    let head = blob.get(..4).unwrap_or(&[]);
    let tail = blob
        .get(len.saturating_sub(format::seekable::FOOTER_LEN)..)
        .unwrap_or(&[]);
    let footer = match blob_layout(head, tail, len as u64)? {
        Layout::Plain => return Ok(HostLayout::Plain),
        Layout::Seekable(f) => f,
    };
    let t = usize::try_from(footer.table_frame_len()).map_err(|_| format::Error::Truncated)?;
    let table = blob
        .get(len.checked_sub(t).ok_or(format::Error::Truncated)?..)
        .ok_or(format::Error::Truncated)?;
    let ix = SeekIndex::<HostAlloc>::build(table, &footer, len as u64)?;
    let mut frames = Vec::new();
    let (mut c, mut d) = (0u64, 0u64);
    for i in 0..ix.len() {
        let f = ix.frame(i).expect("frame in range");
        assert_eq!((f.c_off, f.d_off), (c, d), "frames back to back");
        assert!(f.c_len > 0);
        if f.d_len > 0 {
            assert_eq!(ix.frame_at(f.d_off).map(|(j, _)| j), Some(i));
            assert_eq!(
                ix.frame_at(f.d_off + u64::from(f.d_len) - 1)
                    .map(|(j, _)| j),
                Some(i)
            );
        }
        frames.push((f.c_off, f.c_len, f.d_off, f.d_len));
        c += u64::from(f.c_len);
        d += u64::from(f.d_len);
    }
    assert_eq!(d, ix.size());
    assert_eq!(c + footer.table_frame_len(), len as u64);
    assert!(ix.frame_at(ix.size()).is_none());
    Ok(HostLayout::Seekable(frames, ix.size()))
}

/// Runs the JSON reader and the OCI parsers over `doc` (fuzzing entry).
pub fn exercise_json(doc: &[u8]) {
    if let Ok(v) = format::json::parse(doc) {
        let _ = v.as_i64();
        let _ = v.as_u64();
        if let Ok(o) = v.as_object() {
            let _ = o.get(b"schemaVersion");
            let _ = o.for_each(|k, v| {
                let mut buf = [0u8; 64];
                let _ = k.decode(&mut buf);
                let _ = v.as_str().map(|s| s.decode(&mut buf));
                ControlFlow::<()>::Continue(())
            });
        }
        if let Ok(a) = v.as_array() {
            let _ = a.for_each(|v| {
                let _ = v.as_i64();
                ControlFlow::<()>::Continue(())
            });
        }
    }
    if let Ok(i) = format::oci::Index::parse(doc) {
        let _ = i.find_tag(b"t");
        let _ = i.generation();
    }
    if let Ok(m) = format::oci::ImageManifest::parse(doc) {
        let _ = m.rootfs_layer();
    }
    let _ = format::oci::blob_kind(doc);
    let _ = format::parse_digest(doc);
}

#[cfg(test)]
mod unit_tests;

#[cfg(test)]
mod diff_tests;
