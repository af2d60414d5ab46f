// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the image format core that run both in the kernel (KUnit)
//! and on the host (`cargo test` in the format-host crate).
//!
//! Every case is a plain function returning [`TestResult`]; [`ALL`] lists
//! them, so a KUnit wrapper and the host test iterate the same list. The
//! cases only use `core`, `capnp` (no alloc) and `crate::format`: capnp
//! messages are built with the generated builders over a
//! [`capnp::message::SingleSegmentAllocator`] in a caller-provided,
//! 8-byte aligned stack buffer of at most 1 KiB ([`MsgBuf`]), and JSON
//! documents are byte-string literals. The kernel stack is small (16 KiB), so
//! each case keeps at most one [`Image`] (about 2 KiB) and 1 KiB of message
//! buffers alive, and builds Generation B views in frames of their own (see
//! [`image_b`]). The builder panics if a message outgrows its buffer; the
//! messages here are fixed, and the largest takes about 830 bytes.
//!
//! A failing case returns `Err` with the line and the failed condition as a
//! static string; nothing here panics on a failed check.

// Test code builds trusted inputs of known small sizes: indexing and plain
// arithmetic on them cannot go wrong, and checked forms would only obscure
// the tests. The format core proper keeps these lints denied.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::format::image::{
    check_name, chunk_for_offset, chunk_start, nlink_of, DirEntry, Image, InodeKind, LinkCount,
};
use crate::format::oci::{self, BlobKind};
use crate::format::rootfs::{Rootfs, MANIFEST_VERSION_A, MANIFEST_VERSION_B};
use crate::format::{
    digest_from_bytes, digest_to_hex, json, manifest_capnp, metadata_capnp, parse_digest,
    CapnpError, Error, Generation, NameError, DIGEST_HEX_LEN,
};
use capnp::message::{Builder, SingleSegmentAllocator};
use core::ops::ControlFlow;

/// Result of one self-test case: `Err` names the failed check.
pub(crate) type TestResult = core::result::Result<(), &'static str>;

/// One self-test case.
pub(crate) type Case = fn() -> TestResult;

/// Every self-test case with its name, in a stable order.
pub(crate) const ALL: &[(&str, Case)] = &[
    ("digest_parsing", digest_parsing),
    ("names_and_chunk_mapping", names_and_chunk_mapping),
    ("valid_image", valid_image),
    ("whiteout_gen_b", whiteout_gen_b),
    ("whiteout_gen_a", whiteout_gen_a),
    ("rootfs_gen_a", rootfs_gen_a),
    ("malformed_inode_order", malformed_inode_order),
    ("malformed_names", malformed_names),
    ("malformed_chunks", malformed_chunks),
    ("malformed_buffers", malformed_buffers),
    ("bad_manifest_version", bad_manifest_version),
    ("json_escapes", json_escapes),
    ("json_limits", json_limits),
    ("json_duplicate_keys", json_duplicate_keys),
    ("oci_index_gen_b", oci_index_gen_b),
    ("oci_index_gen_a", oci_index_gen_a),
    ("oci_image_manifest", oci_image_manifest),
];

/// Fails the case with the line and the condition unless `$cond` holds.
macro_rules! ensure {
    ($cond:expr) => {
        if !($cond) {
            return Err(concat!("line ", line!(), ": ", stringify!($cond)));
        }
    };
}

/// Fails the case unless `$a == $b`.
macro_rules! ensure_eq {
    ($a:expr, $b:expr) => {
        if $a != $b {
            return Err(concat!(
                "line ",
                line!(),
                ": ",
                stringify!($a),
                " != ",
                stringify!($b)
            ));
        }
    };
}

/// Unwraps an `Ok` or `Some`, or fails the case.
macro_rules! tri {
    ($e:expr) => {
        match $e.ok_or_unit() {
            Some(v) => v,
            None => return Err(concat!("line ", line!(), ": failed: ", stringify!($e))),
        }
    };
}

/// A 64-digit hex digest literal (lowercase), all bytes 0xab.
macro_rules! digest_a {
    () => {
        "abababababababababababababababababababababababababababababababab"
    };
}

/// A 64-digit hex digest literal (mixed case), all bytes 0xcd.
macro_rules! digest_b {
    () => {
        "CDcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
    };
}

/// `Option`-like view of `Result` and `Option` for [`tri!`].
trait OkOrUnit<T> {
    fn ok_or_unit(self) -> Option<T>;
}

impl<T, E> OkOrUnit<T> for core::result::Result<T, E> {
    fn ok_or_unit(self) -> Option<T> {
        self.ok()
    }
}

impl<T> OkOrUnit<T> for Option<T> {
    fn ok_or_unit(self) -> Option<T> {
        self
    }
}

// ---- building capnp messages without alloc ----

/// An 8-byte aligned buffer for one flat capnp message.
#[repr(C, align(8))]
pub(crate) struct MsgBuf<const N: usize>(pub(crate) [u8; N]);

impl<const N: usize> MsgBuf<N> {
    /// A zeroed buffer.
    pub(crate) const fn new() -> Self {
        Self([0u8; N])
    }
}

/// The type of a test inode, with its contents.
#[derive(Clone, Copy)]
enum Kind<'s> {
    /// Entries (name, ino).
    Dir(&'s [(&'s [u8], u64)]),
    /// Chunks (digest fill byte, offset, len, compressed).
    File(&'s [(u8, u64, u64, bool)]),
    /// Symlink target.
    Lnk(&'s [u8]),
    Chr(u64, u64),
    Wht,
}

/// A test inode.
#[derive(Clone, Copy)]
struct Spec<'s> {
    ino: u64,
    kind: Kind<'s>,
    uid: u32,
    gid: u32,
    /// Stored as is (it may carry type bits, which readers mask off).
    perm: u16,
    xattrs: &'s [(&'s [u8], &'s [u8])],
}

/// A test inode with uid 1000, gid 100, mode `0o100644` and no xattrs.
const fn sp(ino: u64, kind: Kind<'_>) -> Spec<'_> {
    Spec {
        ino,
        kind,
        uid: 1000,
        gid: 100,
        perm: 0o100644,
        xattrs: &[],
    }
}

fn len32(n: usize) -> core::result::Result<u32, &'static str> {
    u32::try_from(n).map_err(|_| "test list too long")
}

fn fill_vector(v: metadata_capnp::inode_vector::Builder<'_>, inodes: &[Spec<'_>]) -> TestResult {
    let mut list = v.init_inodes(len32(inodes.len())?);
    for (i, s) in inodes.iter().enumerate() {
        let mut n = list.reborrow().get(len32(i)?);
        n.set_ino(s.ino);
        n.set_uid(s.uid);
        n.set_gid(s.gid);
        n.set_permissions(s.perm);
        match s.kind {
            Kind::Dir(entries) => {
                let d = n.reborrow().init_mode().init_dir();
                let mut el = d.init_entries(len32(entries.len())?);
                for (j, (name, ino)) in entries.iter().enumerate() {
                    let mut e = el.reborrow().get(len32(j)?);
                    e.set_ino(*ino);
                    e.set_name(name);
                }
            }
            Kind::File(chunks) => {
                let mut fl = n.reborrow().init_mode().init_file(len32(chunks.len())?);
                for (j, &(fill, offset, len, compressed)) in chunks.iter().enumerate() {
                    let mut c = fl.reborrow().get(len32(j)?);
                    c.set_len(len);
                    let mut b = c.init_blob();
                    b.set_digest(&[fill; 32]);
                    b.set_offset(offset);
                    b.set_compressed(compressed);
                }
            }
            Kind::Lnk(_) => {
                n.reborrow().init_mode().set_lnk(());
            }
            Kind::Chr(major, minor) => {
                let mut c = n.reborrow().init_mode().init_chr();
                c.set_major(major);
                c.set_minor(minor);
            }
            Kind::Wht => n.reborrow().init_mode().set_wht(()),
        }
        let target = match s.kind {
            Kind::Lnk(t) => Some(t),
            _ => None,
        };
        if target.is_some() || !s.xattrs.is_empty() {
            let mut add = n.init_additional();
            if let Some(t) = target {
                add.set_symlink_target(t);
            }
            if !s.xattrs.is_empty() {
                let mut xl = add.init_xattrs(len32(s.xattrs.len())?);
                for (j, (k, v)) in s.xattrs.iter().enumerate() {
                    let mut x = xl.reborrow().get(len32(j)?);
                    x.set_key(k);
                    x.set_val(v);
                }
            }
        }
    }
    Ok(())
}

/// Builds one flat single-segment message into `out` with `f` and returns
/// its length: the segment table (one word) followed by the segment.
fn build(
    out: &mut [u8],
    f: impl FnOnce(&mut Builder<SingleSegmentAllocator<'_>>) -> TestResult,
) -> core::result::Result<usize, &'static str> {
    if out.len() < 16 || out.as_ptr().align_offset(8) != 0 {
        return Err("message buffer too small or misaligned");
    }
    let (head, body) = out.split_at_mut(8);
    let mut msg = Builder::new(SingleSegmentAllocator::new(body));
    f(&mut msg)?;
    let used = {
        let segs = msg.get_segments_for_output();
        match &segs[..] {
            [seg] => seg.len(),
            _ => return Err("message has more than one segment"),
        }
    };
    // Dropping the builder would zero the segment again; it owns no memory.
    core::mem::forget(msg);
    head[..4].copy_from_slice(&0u32.to_le_bytes());
    head[4..].copy_from_slice(&len32(used / 8)?.to_le_bytes());
    Ok(8 + used)
}

/// Builds a Generation B rootfs (manifestVersion `version`) of `layers`, top
/// first, with fs-verity entries (blob digest fill, verity digest fill).
fn build_rootfs_b(
    out: &mut [u8],
    version: u64,
    layers: &[&[Spec<'_>]],
    verity: &[(u8, u8)],
) -> core::result::Result<usize, &'static str> {
    build(out, |msg| {
        let mut r = msg.init_root::<metadata_capnp::rootfs::Builder<'_>>();
        r.set_manifest_version(version);
        let mut ls = r.reborrow().init_metadatas(len32(layers.len())?);
        for (i, l) in layers.iter().enumerate() {
            fill_vector(ls.reborrow().get(len32(i)?), l)?;
        }
        let mut vl = r.init_fs_verity_data(len32(verity.len())?);
        for (i, &(d, v)) in verity.iter().enumerate() {
            let mut e = vl.reborrow().get(len32(i)?);
            e.set_digest(&[d; 32]);
            e.set_verity(&[v; 32]);
        }
        Ok(())
    })
}

/// Builds a Generation A layer blob: one `InodeVector` message.
fn build_vector(out: &mut [u8], inodes: &[Spec<'_>]) -> core::result::Result<usize, &'static str> {
    build(out, |msg| {
        fill_vector(
            msg.init_root::<metadata_capnp::inode_vector::Builder<'_>>(),
            inodes,
        )
    })
}

/// Builds a Generation A rootfs naming layer blobs (digest fill, offset,
/// compressed), with one fs-verity entry.
fn build_rootfs_a(
    out: &mut [u8],
    layers: &[(u8, u64, bool)],
) -> core::result::Result<usize, &'static str> {
    build(out, |msg| {
        let mut r = msg.init_root::<manifest_capnp::rootfs::Builder<'_>>();
        r.set_manifest_version(MANIFEST_VERSION_A);
        let mut ls = r.reborrow().init_metadatas(len32(layers.len())?);
        for (i, &(fill, offset, compressed)) in layers.iter().enumerate() {
            let mut b = ls.reborrow().get(len32(i)?);
            b.set_digest(&[fill; 32]);
            b.set_offset(offset);
            b.set_compressed(compressed);
        }
        let mut e = r.init_fs_verity_data(1).get(0);
        e.set_digest(&[0x11; 32]);
        e.set_verity(&[0x22; 32]);
        Ok(())
    })
}

/// The view of the Generation B rootfs in `buf`.
///
/// [`Image::from_rootfs`] returns the [`Image`] (about 2 KiB) by value and
/// needs about twice that of stack: calling it from a frame of its own,
/// gone by the time the checks run, and keeping its result in place rather
/// than moving the [`Image`] out, keeps a case's deepest stack at about
/// 9 KiB (measured on x86-64 at `-O2`; the checks themselves need under 8).
#[inline(never)]
fn image_b(buf: &[u8]) -> core::result::Result<Image<'_>, Error> {
    Image::from_rootfs(&Rootfs::parse(buf)?)
}

/// Runs `f` on the view of the Generation B rootfs in `buf`. Never inlined,
/// so that a case's own frame holds no [`Image`].
#[inline(never)]
fn with_image_b(buf: &[u8], f: impl FnOnce(&Image<'_>) -> TestResult) -> TestResult {
    match &image_b(buf) {
        Ok(img) => f(img),
        Err(_) => Err("the Generation B view of a valid message failed"),
    }
}

/// The error of building the view of the Generation B rootfs in `buf`.
#[inline(never)]
fn image_b_err(buf: &[u8]) -> Option<Error> {
    image_b(buf).err()
}

/// The error of adding `buf` as the first Generation A layer, and the
/// layer count afterwards.
#[inline(never)]
fn push_layer_err(buf: &[u8]) -> (Option<Error>, usize) {
    let mut img = Image::new();
    let e = img.push_layer(buf).err();
    (e, img.layer_count())
}

/// The error of walking all stored entries of directory `ino`.
fn readdir_err(img: &Image<'_>, ino: u64) -> Option<Error> {
    let dir = match img.inode(ino) {
        Ok(d) => d,
        Err(e) => return Some(e),
    };
    img.for_each_dir_entry(&dir, 0, |_| ControlFlow::<()>::Continue(()))
        .err()
}

// ---- the cases ----

/// Digests: parsing with and without prefix, either case, bad length and
/// hex; formatting as lowercase hex; raw bytes of the wrong length.
pub(crate) fn digest_parsing() -> TestResult {
    const HEX: &[u8] = b"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    const LOWER: &[u8] = b"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let d = tri!(parse_digest(HEX));
    ensure_eq!(d[0], 0x00);
    ensure_eq!(d[1], 0x11);
    ensure_eq!(d[15], 0xff);
    ensure_eq!(d[31], 0xff);
    let prefixed = tri!(parse_digest(
        b"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    ));
    ensure_eq!(prefixed, d);
    let mut out = [0u8; DIGEST_HEX_LEN];
    ensure_eq!(digest_to_hex(&d, &mut out).as_bytes(), LOWER);
    ensure_eq!(parse_digest(&HEX[1..]), Err(Error::BadDigestLength(63)));
    ensure_eq!(parse_digest(b""), Err(Error::BadDigestLength(0)));
    ensure_eq!(parse_digest(b"sha512:00"), Err(Error::BadDigestLength(9)));
    let mut bad = [0u8; DIGEST_HEX_LEN];
    bad.copy_from_slice(HEX);
    bad[5] = b'g';
    ensure_eq!(parse_digest(&bad), Err(Error::BadDigestHex));
    ensure_eq!(tri!(digest_from_bytes(&d)), d);
    ensure_eq!(digest_from_bytes(&d[..31]), Err(Error::BadDigestLength(31)));
    Ok(())
}

/// Name validation and chunk mapping on prefix sums.
pub(crate) fn names_and_chunk_mapping() -> TestResult {
    ensure_eq!(check_name(b"ok"), Ok(()));
    ensure_eq!(check_name(b"..."), Ok(()));
    ensure_eq!(check_name(b""), Err(NameError::Empty));
    ensure_eq!(check_name(b"a/b"), Err(NameError::Slash));
    ensure_eq!(check_name(b"a\0"), Err(NameError::Nul));
    ensure_eq!(check_name(b"."), Err(NameError::Dot));
    ensure_eq!(check_name(b".."), Err(NameError::Dot));
    ensure_eq!(check_name(&[b'a'; 255]), Ok(()));
    ensure_eq!(check_name(&[b'a'; 256]), Err(NameError::TooLong));
    // Chunk 1 is empty: offsets are never mapped to it.
    let ends = [10u64, 10, 25, 40];
    ensure_eq!(chunk_for_offset(&ends, 0), Some((0, 0)));
    ensure_eq!(chunk_for_offset(&ends, 9), Some((0, 9)));
    ensure_eq!(chunk_for_offset(&ends, 10), Some((2, 0)));
    ensure_eq!(chunk_for_offset(&ends, 39), Some((3, 14)));
    ensure_eq!(chunk_for_offset(&ends, 40), None);
    ensure_eq!(chunk_for_offset(&[], 0), None);
    ensure_eq!(chunk_start(&ends, 0), 0);
    ensure_eq!(chunk_start(&ends, 3), 25);
    Ok(())
}

const ROOT_ENTRIES: &[(&[u8], u64)] = &[
    (b"file", 2),
    (b"sub", 3),
    (b"link", 5),
    (b"hard", 2),
    (b"tty", 7),
];
const FILE_CHUNKS: &[(u8, u64, u64, bool)] = &[(0xa1, 5, 100, false), (0xb2, 0, 28, true)];
const FILE_XATTRS: &[(&[u8], &[u8])] = &[(b"user.a", b"1"), (b"security.x", b"\x00\xffv")];

/// The valid image of [`valid_image`]: root, a file with two chunks and two
/// xattrs linked twice, an empty subdirectory, a symlink and a character
/// device; inos have gaps.
const VALID: &[Spec<'static>] = &[
    Spec {
        ino: 1,
        kind: Kind::Dir(ROOT_ENTRIES),
        uid: 0,
        gid: 0,
        perm: 0o040755,
        xattrs: &[],
    },
    Spec {
        ino: 2,
        kind: Kind::File(FILE_CHUNKS),
        uid: 1000,
        gid: 1001,
        perm: 0o104750,
        xattrs: FILE_XATTRS,
    },
    sp(3, Kind::Dir(&[])),
    sp(5, Kind::Lnk(b"../target/of/link")),
    sp(7, Kind::Chr(4, 65)),
];

/// A valid Generation B image read through [`Image`]: inodes, entries,
/// lookup, chunks, xattrs, symlink, device and link counts.
pub(crate) fn valid_image() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[VALID], &[(0xa1, 0x5a)])?;
    let bytes = &buf.0[..len];
    let rootfs = tri!(Rootfs::parse(bytes));
    ensure_eq!(rootfs.generation(), Generation::B);
    ensure_eq!(rootfs.layer_count(), 1);
    ensure_eq!(rootfs.verity_count(), 1);
    ensure_eq!(tri!(rootfs.verity_entry(0)), ([0xa1; 32], [0x5a; 32]));
    ensure_eq!(tri!(rootfs.verity_for(&[0xa1; 32])), Some([0x5a; 32]));
    ensure_eq!(tri!(rootfs.verity_for(&[0xb2; 32])), None);
    ensure_eq!(rootfs.layer_blob(0), Err(Error::LayerIndex(0)));
    with_image_b(bytes, check_valid)
}

/// The [`Image`] checks of [`valid_image`].
#[inline(never)]
fn check_valid(img: &Image<'_>) -> TestResult {
    ensure_eq!(img.layer_count(), 1);
    ensure_eq!(img.inode_slots(), 5);

    // Inodes.
    let root = tri!(img.inode(1));
    ensure_eq!(
        root.kind,
        InodeKind::Dir {
            look_below: false,
            entries: 5
        }
    );
    ensure_eq!((root.uid, root.gid, root.permissions), (0, 0, 0o755));
    ensure_eq!((root.layer, root.pos), (0, 0));
    let file = tri!(img.inode(2));
    ensure_eq!(
        file.kind,
        InodeKind::File {
            chunks: 2,
            size: 128
        }
    );
    ensure_eq!((file.uid, file.gid, file.permissions), (1000, 1001, 0o4750));
    ensure_eq!(
        tri!(img.inode(7)).kind,
        InodeKind::Chr {
            major: 4,
            minor: 65
        }
    );
    let sub = tri!(img.inode(3));
    ensure_eq!((sub.uid, sub.gid, sub.permissions), (1000, 100, 0o644));
    ensure_eq!(tri!(img.find_inode(4)), None);
    ensure_eq!(img.inode(4), Err(Error::InodeNotFound(4)));
    ensure_eq!(img.inode(6), Err(Error::InodeNotFound(6)));
    ensure_eq!(img.inode(8), Err(Error::InodeNotFound(8)));
    ensure_eq!(img.inode(0), Err(Error::InodeNotFound(0)));

    // Directory entries, all and from an index on.
    let mut seen = 0usize;
    let mut bad = false;
    let r = tri!(img.for_each_dir_entry(&root, 0, |e: DirEntry<'_>| {
        let i = e.index as usize;
        bad |= ROOT_ENTRIES.get(i) != Some(&(e.name, e.ino)) || i != seen;
        seen += 1;
        ControlFlow::<()>::Continue(())
    }));
    ensure_eq!(r, ControlFlow::Continue(()));
    ensure!(!bad);
    ensure_eq!(seen, ROOT_ENTRIES.len());
    let mut first = None;
    let r = tri!(img.for_each_dir_entry(&root, 3, |e| {
        first = Some((e.index, e.name, e.ino));
        ControlFlow::Break(())
    }));
    ensure_eq!(r, ControlFlow::Break(()));
    ensure_eq!(first, Some((3, &b"hard"[..], 2)));
    let mut visible = 0u32;
    let r = tri!(img.for_each_visible_dir_entry(&root, 0, |e, i| {
        bad |= e.ino != i.ino;
        visible += 1;
        ControlFlow::<()>::Continue(())
    }));
    ensure_eq!(r, ControlFlow::Continue(()));
    ensure!(!bad);
    ensure_eq!(visible, 5);
    ensure_eq!(
        img.for_each_dir_entry(&file, 0, |_| ControlFlow::<()>::Continue(()))
            .err(),
        Some(Error::NotADirectory(2))
    );

    // Lookup by name.
    ensure_eq!(tri!(img.lookup(&root, b"file")), Some(file));
    ensure_eq!(tri!(img.lookup(&root, b"hard")), Some(file));
    ensure_eq!(tri!(img.lookup(&root, b"sub")).map(|i| i.ino), Some(3));
    ensure_eq!(tri!(img.lookup(&root, b"fil")), None);
    ensure_eq!(tri!(img.lookup(&root, b"files")), None);
    ensure_eq!(tri!(img.lookup(&sub, b"file")), None);
    ensure_eq!(img.lookup(&file, b"x"), Err(Error::NotADirectory(2)));

    // Chunks.
    let c0 = tri!(img.chunk(&file, 0));
    ensure_eq!(
        (c0.digest, c0.offset, c0.len, c0.compressed),
        ([0xa1; 32], 5, 100, false)
    );
    let c1 = tri!(img.chunk(&file, 1));
    ensure_eq!(
        (c1.digest, c1.offset, c1.len, c1.compressed),
        ([0xb2; 32], 0, 28, true)
    );
    ensure_eq!(
        img.chunk(&file, 2),
        Err(Error::ChunkIndex { ino: 2, index: 2 })
    );
    ensure_eq!(img.chunk(&root, 0), Err(Error::NotAFile(1)));
    let mut ends = [0u64; 2];
    tri!(img.fill_chunk_ends(&file, &mut ends));
    ensure_eq!(ends, [100, 128]);
    ensure_eq!(
        img.fill_chunk_ends(&file, &mut [0u64; 3]),
        Err(Error::BufferSize {
            needed: 2,
            given: 3
        })
    );
    ensure_eq!(chunk_for_offset(&ends, 0), Some((0, 0)));
    ensure_eq!(chunk_for_offset(&ends, 99), Some((0, 99)));
    ensure_eq!(chunk_for_offset(&ends, 100), Some((1, 0)));
    ensure_eq!(chunk_for_offset(&ends, 127), Some((1, 27)));
    ensure_eq!(chunk_for_offset(&ends, 128), None);
    let mut n = 0usize;
    let r = tri!(img.for_each_chunk(&file, |i, c| {
        bad |= i != n || c.digest != [FILE_CHUNKS[i].0; 32];
        n += 1;
        ControlFlow::<()>::Continue(())
    }));
    ensure_eq!(r, ControlFlow::Continue(()));
    ensure!(!bad);
    ensure_eq!(n, 2);

    // Xattrs.
    ensure_eq!(tri!(img.xattr_get(&file, b"user.a")), Some(&b"1"[..]));
    ensure_eq!(
        tri!(img.xattr_get(&file, b"security.x")),
        Some(&b"\x00\xffv"[..])
    );
    ensure_eq!(tri!(img.xattr_get(&file, b"user.b")), None);
    ensure_eq!(tri!(img.xattr_get(&file, b"user")), None);
    ensure_eq!(tri!(img.xattr_get(&root, b"user.a")), None);
    let mut xn = 0usize;
    let r = tri!(img.for_each_xattr(&file, |k, v| {
        bad |= FILE_XATTRS.get(xn) != Some(&(k, v));
        xn += 1;
        ControlFlow::<()>::Continue(())
    }));
    ensure_eq!(r, ControlFlow::Continue(()));
    ensure!(!bad);
    ensure_eq!(xn, 2);

    // Symlink.
    let link = tri!(tri!(img.lookup(&root, b"link")));
    ensure_eq!(link.kind, InodeKind::Symlink);
    ensure_eq!(tri!(img.symlink_target(&link)), &b"../target/of/link"[..]);
    ensure_eq!(img.symlink_target(&file), Err(Error::NotASymlink(2)));

    // Link counts and totals.
    let mut counts = [LinkCount::default(); 5];
    let t = tri!(img.count_links(&mut counts));
    ensure_eq!(t.used, 5);
    ensure_eq!((t.inodes, t.dirs, t.files, t.data_bytes), (5, 2, 1, 128));
    ensure_eq!(nlink_of(&counts, 1), Some(3));
    ensure_eq!(nlink_of(&counts, 2), Some(2));
    ensure_eq!(nlink_of(&counts, 3), Some(2));
    ensure_eq!(nlink_of(&counts, 5), Some(1));
    ensure_eq!(nlink_of(&counts, 7), Some(1));
    ensure_eq!(nlink_of(&counts, 4), None);
    let mut small = [LinkCount::default(); 4];
    ensure_eq!(
        img.count_links(&mut small),
        Err(Error::BufferSize {
            needed: 5,
            given: 4
        })
    );
    Ok(())
}

const LOWER_ROOT: &[(&[u8], u64)] = &[(b"keep", 2), (b"gone", 3)];
const TOP_ROOT: &[(&[u8], u64)] = &[(b"keep", 2), (b"gone", 3), (b"new", 4)];

/// The lower layer: root with two files.
const LOWER: &[Spec<'static>] = &[
    sp(1, Kind::Dir(LOWER_ROOT)),
    sp(2, Kind::File(&[(0x01, 0, 7, false)])),
    sp(3, Kind::File(&[(0x02, 0, 9, false)])),
];

/// The top layer: re-renders the root, whites out ino 3 (still named
/// "gone"), adds a symlink, and leaves ino 2 to the lower layer.
const TOP: &[Spec<'static>] = &[
    sp(1, Kind::Dir(TOP_ROOT)),
    sp(3, Kind::Wht),
    sp(4, Kind::Lnk(b"keep")),
];

/// Checks the view of [`TOP`] over [`LOWER`].
#[inline(never)]
fn check_whiteout(img: &Image<'_>) -> TestResult {
    ensure_eq!(img.layer_count(), 2);
    ensure_eq!(img.inode_slots(), 6);
    let root = tri!(img.inode(1));
    ensure_eq!(root.layer, 0);
    ensure_eq!(
        root.kind,
        InodeKind::Dir {
            look_below: false,
            entries: 3
        }
    );
    // The whited-out name is hidden from lookup and readdir.
    ensure_eq!(tri!(img.lookup(&root, b"gone")), None);
    let gone = tri!(tri!(img.find_inode(3)));
    ensure_eq!((gone.kind, gone.layer), (InodeKind::Whiteout, 0));
    ensure_eq!(img.inode(3), Err(Error::InodeNotFound(3)));
    // Ino 2 is only in the lower layer.
    let keep = tri!(tri!(img.lookup(&root, b"keep")));
    ensure_eq!((keep.ino, keep.layer), (2, 1));
    ensure_eq!(keep.kind, InodeKind::File { chunks: 1, size: 7 });
    let new = tri!(tri!(img.lookup(&root, b"new")));
    ensure_eq!(tri!(img.symlink_target(&new)), &b"keep"[..]);
    let mut stored = 0u32;
    let r = tri!(img.for_each_dir_entry(&root, 0, |_| {
        stored += 1;
        ControlFlow::<()>::Continue(())
    }));
    ensure_eq!(r, ControlFlow::Continue(()));
    ensure_eq!(stored, 3);
    let mut names: [&[u8]; 3] = [b""; 3];
    let mut n = 0usize;
    let r = tri!(img.for_each_visible_dir_entry(&root, 0, |e, _| {
        if let Some(slot) = names.get_mut(n) {
            *slot = e.name;
        }
        n += 1;
        ControlFlow::<()>::Continue(())
    }));
    ensure_eq!(r, ControlFlow::Continue(()));
    ensure_eq!(n, 2);
    ensure_eq!(names[..2], [&b"keep"[..], &b"new"[..]]);
    // Resuming after the whiteout'd entry still skips nothing visible.
    let mut after = None;
    let r = tri!(img.for_each_visible_dir_entry(&root, 1, |e, _| {
        after = Some(e.index);
        ControlFlow::Break(())
    }));
    ensure_eq!(r, ControlFlow::Break(()));
    ensure_eq!(after, Some(2));
    // Link counts: the whiteout and the hidden lower ino 3 are not counted.
    let mut counts = [LinkCount::default(); 6];
    let t = tri!(img.count_links(&mut counts));
    ensure_eq!(t.used, 4);
    ensure_eq!((t.inodes, t.dirs, t.files, t.data_bytes), (3, 1, 1, 7));
    ensure_eq!(nlink_of(&counts[..t.used], 1), Some(2));
    ensure_eq!(nlink_of(&counts[..t.used], 2), Some(1));
    ensure_eq!(nlink_of(&counts[..t.used], 3), Some(0));
    ensure_eq!(nlink_of(&counts[..t.used], 4), Some(1));
    ensure!(counts[t.used..].iter().all(|c| c.ino == u64::MAX));
    Ok(())
}

/// Two layers inline in a Generation B rootfs; the top whites out a name.
pub(crate) fn whiteout_gen_b() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[TOP, LOWER], &[])?;
    with_image_b(&buf.0[..len], check_whiteout)
}

/// The same two layers as Generation A layer blobs.
pub(crate) fn whiteout_gen_a() -> TestResult {
    let mut top = MsgBuf::<512>::new();
    let mut lower = MsgBuf::<512>::new();
    let tl = build_vector(&mut top.0, TOP)?;
    let ll = build_vector(&mut lower.0, LOWER)?;
    let mut img = Image::new();
    tri!(img.push_layer(&top.0[..tl]));
    tri!(img.push_layer(&lower.0[..ll]));
    check_whiteout(&img)
}

/// A Generation A rootfs: layer blob digests, fs-verity data, and layer
/// references that are not plain blobs.
pub(crate) fn rootfs_gen_a() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_a(&mut buf.0, &[(0x33, 0, false), (0x44, 0, false)])?;
    let r = tri!(Rootfs::parse(&buf.0[..len]));
    ensure_eq!(r.generation(), Generation::A);
    ensure_eq!(r.layer_count(), 2);
    ensure_eq!(tri!(r.layer_blob(0)), [0x33; 32]);
    ensure_eq!(tri!(r.layer_blob(1)), [0x44; 32]);
    ensure_eq!(r.layer_blob(2), Err(Error::LayerIndex(2)));
    ensure_eq!(tri!(r.verity_for(&[0x11; 32])), Some([0x22; 32]));
    ensure_eq!(
        Image::from_rootfs(&r).err(),
        Some(Error::UnsupportedManifestVersion(MANIFEST_VERSION_A))
    );
    let len = build_rootfs_a(&mut buf.0, &[(0x33, 0, false), (0x44, 0, true)])?;
    ensure_eq!(
        Rootfs::parse(&buf.0[..len]).err(),
        Some(Error::BadLayerRef(1))
    );
    let len = build_rootfs_a(&mut buf.0, &[(0x33, 8, false)])?;
    ensure_eq!(
        Rootfs::parse(&buf.0[..len]).err(),
        Some(Error::BadLayerRef(0))
    );
    let len = build_rootfs_a(&mut buf.0, &[])?;
    ensure_eq!(Rootfs::parse(&buf.0[..len]).err(), Some(Error::NoLayers));
    Ok(())
}

/// Inode vectors that are unsorted, have a duplicate, or use ino 0, in
/// either layer.
pub(crate) fn malformed_inode_order() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let ok: &[Spec<'_>] = &[sp(1, Kind::Wht)];
    let cases: [(&[Spec<'_>], Error); 4] = [
        (
            &[sp(1, Kind::Wht), sp(3, Kind::Wht), sp(2, Kind::Wht)],
            Error::UnsortedInodes { layer: 0, ino: 2 },
        ),
        (
            &[sp(1, Kind::Wht), sp(2, Kind::Wht), sp(2, Kind::Wht)],
            Error::DuplicateInode { layer: 0, ino: 2 },
        ),
        (
            &[sp(0, Kind::Wht), sp(1, Kind::Wht)],
            Error::ZeroIno { layer: 0 },
        ),
        (
            &[sp(5, Kind::Wht), sp(0, Kind::Wht)],
            Error::ZeroIno { layer: 0 },
        ),
    ];
    for (inodes, want) in cases {
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[inodes], &[])?;
        ensure_eq!(image_b_err(&buf.0[..len]), Some(want));
        // The same layer below a good one reports layer 1.
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[ok, inodes], &[])?;
        let want1 = match want {
            Error::UnsortedInodes { ino, .. } => Error::UnsortedInodes { layer: 1, ino },
            Error::DuplicateInode { ino, .. } => Error::DuplicateInode { layer: 1, ino },
            _ => Error::ZeroIno { layer: 1 },
        };
        ensure_eq!(image_b_err(&buf.0[..len]), Some(want1));
        // And as a Generation A layer blob.
        let len = build_vector(&mut buf.0, inodes)?;
        ensure_eq!(push_layer_err(&buf.0[..len]), (Some(want), 0));
    }
    Ok(())
}

/// Directory entries with bad names or ino 0, and bad xattr names and
/// symlink targets.
pub(crate) fn malformed_names() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    static LONG: [u8; 256] = [b'n'; 256];
    let cases: [(&[u8], NameError); 7] = [
        (b"a/b", NameError::Slash),
        (b"/", NameError::Slash),
        (b"", NameError::Empty),
        (b"..", NameError::Dot),
        (b".", NameError::Dot),
        (b"a\0b", NameError::Nul),
        (&LONG, NameError::TooLong),
    ];
    for (name, why) in cases {
        let entries: [(&[u8], u64); 2] = [(b"fine", 2), (name, 2)];
        let layer = [sp(1, Kind::Dir(&entries)), sp(2, Kind::Dir(&[]))];
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
        let want = Error::BadName { ino: 1, why };
        with_image_b(&buf.0[..len], |img| {
            ensure_eq!(readdir_err(img, 1), Some(want));
            let root = tri!(img.inode(1));
            ensure_eq!(img.lookup(&root, b"zzz"), Err(want));
            // Entries before the bad one are still listed, then the error.
            let mut first = None;
            let r = img.for_each_dir_entry(&root, 0, |e| {
                first = Some(e.name);
                ControlFlow::<()>::Continue(())
            });
            ensure_eq!(first, Some(&b"fine"[..]));
            ensure_eq!(r.err(), Some(want));
            let mut counts = [LinkCount::default(); 2];
            ensure_eq!(img.count_links(&mut counts), Err(want));
            Ok(())
        })?;
    }
    // A 255-byte name is fine and found.
    static MAX: [u8; 255] = [b'n'; 255];
    let entries: [(&[u8], u64); 1] = [(&MAX, 2)];
    let layer = [sp(1, Kind::Dir(&entries)), sp(2, Kind::Dir(&[]))];
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    with_image_b(&buf.0[..len], |img| {
        ensure_eq!(
            tri!(img.lookup(&tri!(img.inode(1)), &MAX)).map(|i| i.ino),
            Some(2)
        );
        Ok(())
    })?;

    // An entry naming ino 0, and one naming a missing ino.
    let layer = [sp(1, Kind::Dir(&[(b"zero", 0)]))];
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    with_image_b(&buf.0[..len], |img| {
        ensure_eq!(readdir_err(img, 1), Some(Error::BadDirEntryIno { ino: 1 }));
        Ok(())
    })?;
    let layer = [sp(1, Kind::Dir(&[(b"dangling", 9)]))];
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    with_image_b(&buf.0[..len], |img| {
        let root = tri!(img.inode(1));
        ensure_eq!(img.lookup(&root, b"dangling"), Err(Error::InodeNotFound(9)));
        ensure_eq!(
            img.for_each_visible_dir_entry(&root, 0, |_, _| ControlFlow::<()>::Continue(()))
                .err(),
            Some(Error::InodeNotFound(9))
        );
        let mut counts = [LinkCount::default(); 1];
        ensure_eq!(img.count_links(&mut counts), Err(Error::InodeNotFound(9)));
        Ok(())
    })?;

    // Xattr names: empty, NUL, over 255 bytes.
    static LONG_KEY: [u8; 256] = [b'k'; 256];
    let bad_keys: [&[u8]; 3] = [b"", b"user.\0", &LONG_KEY];
    for key in bad_keys {
        let xattrs: [(&[u8], &[u8]); 1] = [(key, b"v")];
        let layer = [Spec {
            xattrs: &xattrs,
            ..sp(1, Kind::Dir(&[]))
        }];
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
        with_image_b(&buf.0[..len], |img| {
            let root = tri!(img.inode(1));
            ensure_eq!(
                img.xattr_get(&root, b"user.x"),
                Err(Error::BadXattrName { ino: 1 })
            );
            Ok(())
        })?;
    }

    // Symlink targets: empty, or containing NUL.
    let bad_targets: [&[u8]; 2] = [b"", b"a\0b"];
    for target in bad_targets {
        let layer = [sp(1, Kind::Dir(&[])), sp(2, Kind::Lnk(target))];
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
        with_image_b(&buf.0[..len], |img| {
            let link = tri!(img.inode(2));
            ensure_eq!(
                img.symlink_target(&link),
                Err(Error::BadSymlinkTarget { ino: 2 })
            );
            Ok(())
        })?;
    }
    Ok(())
}

/// File chunk lengths whose sum, or whose offset plus length, overflows.
pub(crate) fn malformed_chunks() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let cases: [&[(u8, u64, u64, bool)]; 3] = [
        &[(1, 0, u64::MAX, false), (2, 0, 1, false)],
        &[
            (1, 0, u64::MAX / 2 + 1, false),
            (2, 0, u64::MAX / 2 + 1, false),
        ],
        &[(1, 1, u64::MAX, false)],
    ];
    for chunks in cases {
        let layer = [sp(1, Kind::Dir(&[(b"f", 2)])), sp(2, Kind::File(chunks))];
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
        with_image_b(&buf.0[..len], |img| {
            ensure_eq!(img.inode(2), Err(Error::ChunkOverflow { ino: 2 }));
            let root = tri!(img.inode(1));
            ensure_eq!(
                img.lookup(&root, b"f"),
                Err(Error::ChunkOverflow { ino: 2 })
            );
            Ok(())
        })?;
    }
    // The largest sizes that do not overflow are fine.
    let chunks = [(1, 0, u64::MAX - 1, false), (2, 0, 1, false)];
    let layer = [sp(1, Kind::Dir(&[])), sp(2, Kind::File(&chunks))];
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    with_image_b(&buf.0[..len], |img| {
        let f = tri!(img.inode(2));
        ensure_eq!(
            f.kind,
            InodeKind::File {
                chunks: 2,
                size: u64::MAX
            }
        );
        let mut ends = [0u64; 2];
        tri!(img.fill_chunk_ends(&f, &mut ends));
        ensure_eq!(ends, [u64::MAX - 1, u64::MAX]);
        ensure_eq!(chunk_for_offset(&ends, u64::MAX - 1), Some((1, 0)));
        Ok(())
    })
}

/// Truncated, misaligned and garbage message buffers are errors.
pub(crate) fn malformed_buffers() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[VALID], &[])?;
    ensure!(Rootfs::parse(&buf.0[..len]).is_ok());
    let premature = |e: Option<Error>| {
        matches!(
            e,
            Some(Error::Capnp(CapnpError(
                capnp::ErrorKind::MessageEndsPrematurely(..)
            )))
        )
    };
    // Every truncation at a word boundary, and a few inside words.
    let mut cut = 0usize;
    while cut < len {
        let e = Rootfs::parse(&buf.0[..cut]).err();
        ensure!(e.is_some());
        if cut >= 8 {
            ensure!(premature(e));
        }
        ensure!(push_layer_err(&buf.0[..cut]).0.is_some());
        cut += if cut < 16 { 1 } else { 8 };
    }
    ensure!(premature(Rootfs::parse(&buf.0[..len - 8]).err()));
    // A segment table claiming more segments than the buffer holds.
    let saved = buf.0[0];
    buf.0[0] = 200;
    ensure!(Rootfs::parse(&buf.0[..len]).is_err());
    buf.0[0] = saved;
    // The same bytes one byte off alignment.
    buf.0.copy_within(0..len, 1);
    ensure_eq!(
        Rootfs::parse(&buf.0[1..=len]).err(),
        Some(Error::Misaligned)
    );
    ensure_eq!(
        push_layer_err(&buf.0[1..=len]),
        (Some(Error::Misaligned), 0)
    );
    // Moved back, they parse again.
    buf.0.copy_within(1..=len, 0);
    ensure!(Rootfs::parse(&buf.0[..len]).is_ok());
    Ok(())
}

/// Unknown manifest versions, and a Generation B rootfs without layers.
pub(crate) fn bad_manifest_version() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let layer = [sp(1, Kind::Dir(&[]))];
    for v in [0u64, 1, 4, 7, u64::MAX] {
        let len = build_rootfs_b(&mut buf.0, v, &[&layer], &[])?;
        ensure_eq!(
            Rootfs::parse(&buf.0[..len]).err(),
            Some(Error::UnsupportedManifestVersion(v))
        );
    }
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    ensure_eq!(
        tri!(Rootfs::parse(&buf.0[..len])).generation(),
        Generation::B
    );
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[], &[])?;
    ensure_eq!(Rootfs::parse(&buf.0[..len]).err(), Some(Error::NoLayers));
    // A root that is not a directory is rejected by the mount-time walk.
    let layer = [sp(1, Kind::Lnk(b"x"))];
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    with_image_b(&buf.0[..len], |img| {
        let mut counts = [LinkCount::default(); 1];
        ensure_eq!(img.count_links(&mut counts), Err(Error::BadRoot));
        Ok(())
    })
}

/// JSON string escapes, including `\u` surrogate pairs, decoded and compared.
pub(crate) fn json_escapes() -> TestResult {
    let doc = br#" {"s": "a\"\\\/\b\f\n\r\t\u00e9\u20AC\ud83d\ude00z", "\u006b\u0065y": 7} "#;
    let want = "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{20ac}\u{1f600}z".as_bytes();
    let o = tri!(tri!(json::parse(doc)).as_object());
    let s = tri!(tri!(tri!(o.get(b"s"))).as_str());
    let mut out = [0u8; 32];
    ensure_eq!(tri!(s.decode(&mut out)), want);
    ensure!(s.eq_bytes(want));
    ensure!(!s.eq_bytes(b"a"));
    ensure!(!s.eq_bytes(b""));
    let mut short = [0u8; 8];
    ensure!(matches!(
        s.decode(&mut short),
        Err(Error::Json {
            what: "string too long",
            ..
        })
    ));
    // An escaped key matches its decoded form.
    ensure_eq!(tri!(tri!(tri!(o.get(b"key"))).as_u64()), 7);
    // Lone and mismatched surrogates, bad escapes, raw control characters.
    let bad: [&[u8]; 8] = [
        br#""\ud800""#,
        br#""\udc00""#,
        br#""\ud800\u0041""#,
        br#""\ud800x""#,
        br#""\u12""#,
        br#""\x""#,
        b"\"a\nb\"",
        b"\"\xff\"",
    ];
    for d in bad {
        ensure!(matches!(json::parse(d), Err(Error::Json { .. })));
    }
    Ok(())
}

/// JSON nesting limit, trailing bytes, and other syntax errors.
pub(crate) fn json_limits() -> TestResult {
    const D: usize = json::MAX_DEPTH;
    let mut doc = [0u8; 2 * (D + 1)];
    for i in 0..D {
        doc[i] = b'[';
        doc[2 * D - 1 - i] = b']';
    }
    ensure!(json::parse(&doc[..2 * D]).is_ok());
    for i in 0..=D {
        doc[i] = b'[';
        doc[2 * D + 1 - i] = b']';
    }
    ensure!(matches!(
        json::parse(&doc),
        Err(Error::Json {
            offset: D,
            what: "nesting too deep"
        })
    ));
    // The same with objects.
    let mut obj = [0u8; 6 * (D + 1) + 1];
    let mut n = 0usize;
    for _ in 0..=D {
        obj[n..n + 5].copy_from_slice(b"{\"a\":");
        n += 5;
    }
    obj[n] = b'1';
    n += 1;
    for _ in 0..=D {
        obj[n] = b'}';
        n += 1;
    }
    ensure!(matches!(
        json::parse(&obj[..n]),
        Err(Error::Json {
            what: "nesting too deep",
            ..
        })
    ));
    ensure!(json::parse(&obj[5..n - 1]).is_ok());
    // Trailing bytes after the value (whitespace is fine).
    ensure!(json::parse(b" {} \n").is_ok());
    ensure_eq!(
        json::parse(b"{} x").err(),
        Some(Error::Json {
            offset: 3,
            what: "trailing bytes"
        })
    );
    ensure!(json::parse(b"{}{}").is_err());
    ensure!(json::parse(b"[1] ]").is_err());
    ensure!(json::parse(b"1 2").is_err());
    let bad: [&[u8]; 11] = [
        b"",
        b"{",
        b"{\"a\":1,}",
        b"[1,]",
        b"{\"a\" 1}",
        b"01",
        b"1.",
        b"-",
        b"tru",
        b"{'a':1}",
        b"[1 2]",
    ];
    for d in bad {
        ensure!(json::parse(d).is_err());
    }
    // Numbers.
    ensure_eq!(
        tri!(tri!(json::parse(b"-9223372036854775808")).as_i64()),
        i64::MIN
    );
    ensure!(tri!(json::parse(b"9223372036854775808")).as_i64().is_err());
    ensure_eq!(
        tri!(tri!(json::parse(b"18446744073709551615")).as_u64()),
        u64::MAX
    );
    ensure!(tri!(json::parse(b"18446744073709551616")).as_u64().is_err());
    ensure!(tri!(json::parse(b"-1")).as_u64().is_err());
    ensure!(tri!(json::parse(b"1.5e3")).as_i64().is_err());
    Ok(())
}

/// A key that is looked up and appears twice is an error; other keys work.
pub(crate) fn json_duplicate_keys() -> TestResult {
    let o = tri!(tri!(json::parse(br#"{"a":1,"b":2,"a":3,"\u0063":4,"c":5}"#)).as_object());
    ensure!(matches!(
        o.get(b"a"),
        Err(Error::Json {
            offset: 13,
            what: "duplicate key"
        })
    ));
    // Escaped duplicates are duplicates too.
    ensure!(matches!(
        o.get(b"c"),
        Err(Error::Json {
            what: "duplicate key",
            ..
        })
    ));
    ensure_eq!(tri!(tri!(tri!(o.get(b"b"))).as_u64()), 2);
    ensure!(tri!(o.get(b"d")).is_none());
    // Duplicate tags in an index: the first match wins (entries are distinct
    // objects), but a duplicated field inside the matching entry is an error.
    let idx = tri!(oci::Index::parse(
        concat!(
            r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:"#,
            digest_a!(),
            r#"","digest":"sha256:"#,
            digest_b!(),
            r#"","size":1,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}"#
        )
        .as_bytes()
    ));
    ensure!(matches!(
        idx.find_tag(b"t"),
        Err(Error::Json {
            what: "duplicate key",
            ..
        })
    ));
    Ok(())
}

/// A Generation B (OCI) index with two tags, one with an escaped name.
pub(crate) fn oci_index_gen_b() -> TestResult {
    let doc = concat!(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#,
        r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:"#,
        digest_a!(),
        r#"","size":7,"annotations":{"org.opencontainers.image.ref.name":"other"}},"#,
        r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:"#,
        digest_b!(),
        r#"","size":1234,"annotations":{"org.opencontainers.image.ref.name":"t\u00e9g"}},"#,
        r#"{"digest":"sha256:"#,
        digest_a!(),
        r#"","size":5}"#,
        r#"]}"#
    );
    let idx = tri!(oci::Index::parse(doc.as_bytes()));
    ensure_eq!(idx.generation(), Generation::B);
    let e = tri!(idx.find_tag("t\u{e9}g".as_bytes()));
    ensure_eq!(e.generation, Generation::B);
    ensure_eq!(e.digest, [0xcd; 32]);
    ensure_eq!(e.size, 1234);
    let o = tri!(idx.find_tag(b"other"));
    ensure_eq!((o.digest, o.size), ([0xab; 32], 7));
    ensure_eq!(idx.find_tag(b"t"), Err(Error::TagNotFound));
    ensure_eq!(idx.find_tag(b""), Err(Error::TagNotFound));
    ensure_eq!(oci::blob_kind(doc.as_bytes()), BlobKind::OciManifest);
    ensure_eq!(
        oci::Index::parse(br#"{"schemaVersion":1,"manifests":[]}"#).err(),
        Some(Error::UnsupportedSchemaVersion(1))
    );
    ensure!(matches!(
        oci::Index::parse(br#"{"schemaVersion":2}"#),
        Err(Error::Json {
            what: "missing manifests",
            ..
        })
    ));
    // A tagged manifest with a bad digest is an error, not a miss.
    let idx = tri!(oci::Index::parse(
        br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:00","size":1,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}"#
    ));
    ensure_eq!(idx.find_tag(b"t"), Err(Error::BadDigestLength(2)));
    Ok(())
}

/// A Generation A index (`schemaVersion` -1, `snake_case` keys).
pub(crate) fn oci_index_gen_a() -> TestResult {
    let doc = concat!(
        r#"{"schemaVersion":-1,"manifests":[{"digest":"sha256:"#,
        digest_b!(),
        r#"","size":3,"media_type":"application/vnd.puzzlefs.image.rootfs.v1","#,
        r#""annotations":{"org.opencontainers.image.ref.name":"v1"}}],"annotations":{}}"#
    );
    let idx = tri!(oci::Index::parse(doc.as_bytes()));
    ensure_eq!(idx.generation(), Generation::A);
    let e = tri!(idx.find_tag(b"v1"));
    ensure_eq!(
        (e.generation, e.digest, e.size),
        (Generation::A, [0xcd; 32], 3)
    );
    ensure_eq!(idx.find_tag(b"v2"), Err(Error::TagNotFound));
    // The blob it names is told apart from JSON by content.
    ensure_eq!(oci::blob_kind(&[0, 0, 0, 0, 5, 0, 0, 0]), BlobKind::Rootfs);
    ensure_eq!(oci::blob_kind(b" \n{"), BlobKind::OciManifest);
    ensure_eq!(oci::blob_kind(b""), BlobKind::Rootfs);
    Ok(())
}

/// The rootfs layer of an OCI image manifest, with its verity annotation.
pub(crate) fn oci_image_manifest() -> TestResult {
    let doc = concat!(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":["#,
        r#"{"mediaType":"application/vnd.puzzlefs.image.filedata.v1","digest":"sha256:"#,
        digest_a!(),
        r#"","size":1},"#,
        r#"{"mediaType":"application/vnd.puzzlefs.image.rootfs.v1","digest":"sha256:"#,
        digest_b!(),
        r#"","size":99,"annotations":{"io.puzzlefsoci.puzzlefs.puzzlefs_verity_root_hash":""#,
        digest_a!(),
        r#""}}]}"#
    );
    let l = tri!(tri!(oci::ImageManifest::parse(doc.as_bytes())).rootfs_layer());
    ensure_eq!(l.digest, [0xcd; 32]);
    ensure_eq!(l.size, 99);
    ensure_eq!(l.verity, Some([0xab; 32]));
    let no_verity = concat!(
        r#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.puzzlefs.image.rootfs.v1","#,
        r#""digest":""#,
        digest_a!(),
        r#"","size":5,"annotations":null}]}"#
    );
    let l = tri!(tri!(oci::ImageManifest::parse(no_verity.as_bytes())).rootfs_layer());
    ensure_eq!((l.digest, l.size, l.verity), ([0xab; 32], 5, None));
    let none = br#"{"schemaVersion":2,"layers":[{"mediaType":"x","digest":"","size":0}]}"#;
    ensure_eq!(
        tri!(oci::ImageManifest::parse(none)).rootfs_layer(),
        Err(Error::NoRootfsLayer)
    );
    ensure_eq!(
        oci::ImageManifest::parse(br#"{"schemaVersion":-1,"layers":[]}"#).err(),
        Some(Error::UnsupportedSchemaVersion(-1))
    );
    Ok(())
}
