// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the image format core that run both in the kernel (KUnit)
//! and on the host (`cargo test` in the format-host crate).
//!
//! Every case is a plain function returning [`TestResult`]; [`all`] lists
//! them, so a KUnit wrapper and the host test iterate the same list. Cases
//! that compile images are generic over the tables' [`Alloc`]: the kernel
//! runs them with its `KVVec` allocator, the host with `Vec`. capnp messages
//! are built with the generated builders over a
//! [`capnp::message::SingleSegmentAllocator`] in a caller-provided, 8-byte
//! aligned stack buffer of at most 1 KiB ([`MsgBuf`]), and JSON documents are
//! byte-string literals, so the cases need no allocator of their own. The
//! builder panics if a message outgrows its buffer; the messages here are
//! fixed, and the largest takes about 830 bytes.
//!
//! A failing case returns `Err` with the line and the failed condition as a
//! static string; nothing here panics on a failed check.

// Test code builds trusted inputs of known small sizes: indexing and plain
// arithmetic on them cannot go wrong, and checked forms would only obscure
// the tests. The format core proper keeps these lints denied.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use crate::format::compile::{compile, Env, Limits, Source};
use crate::format::oci::{self, BlobKind};
use crate::format::rootfs::{Rootfs, MANIFEST_VERSION_A, MANIFEST_VERSION_B};
use crate::format::seekable::{
    Footer, Frame, SeekIndex, FOOTER_LEN, MAX_COMPRESSED_FRAME_SIZE, MAX_FRAMES, MAX_FRAME_SIZE,
    SEEKABLE_MAGIC, SKIPPABLE_MAGIC,
};
use crate::format::tables::{
    check_name, extent_for, Alloc, Extent, Kind as TKind, Tables, ROOT_INDEX,
};
use crate::format::{
    digest_from_bytes, digest_to_hex, json, manifest_capnp, metadata_capnp, parse_digest, Error,
    Generation, NameError, Result, DIGEST_HEX_LEN,
};
use capnp::message::{Builder, SingleSegmentAllocator};

/// Result of one self-test case: `Err` names the failed check.
pub(crate) type TestResult = core::result::Result<(), &'static str>;

/// One self-test case.
pub(crate) type Case = fn() -> TestResult;

/// Every self-test case with its name, in a stable order, for tables
/// allocated by `A`.
pub(crate) fn all<A: Alloc>() -> [(&'static str, Case); 21] {
    [
        ("digest_parsing", digest_parsing),
        ("names_and_extents", names_and_extents),
        ("valid_image", valid_image::<A>),
        ("whiteout_gen_b", whiteout_gen_b::<A>),
        ("whiteout_gen_a", whiteout_gen_a::<A>),
        ("rootfs_gen_a", rootfs_gen_a::<A>),
        ("malformed_inode_order", malformed_inode_order::<A>),
        ("malformed_names", malformed_names::<A>),
        ("malformed_tree", malformed_tree::<A>),
        ("malformed_inodes", malformed_inodes::<A>),
        ("malformed_chunks", malformed_chunks::<A>),
        ("malformed_buffers", malformed_buffers::<A>),
        ("bad_manifest_version", bad_manifest_version::<A>),
        ("limits_and_interruption", limits_and_interruption::<A>),
        ("seekable_tables", seekable_tables::<A>),
        ("json_escapes", json_escapes),
        ("json_limits", json_limits),
        ("json_duplicate_keys", json_duplicate_keys),
        ("oci_index_gen_b", oci_index_gen_b),
        ("oci_index_gen_a", oci_index_gen_a),
        ("oci_image_manifest", oci_image_manifest),
    ]
}

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

/// A 64-digit hex digest literal, all bytes 0xcd.
macro_rules! digest_b {
    () => {
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
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

/// A test chunk: (digest fill byte, offset, len, compressed).
type Chunk = (u8, u64, u64, bool);

/// The type of a test inode, with its contents.
#[derive(Clone, Copy)]
enum Kind<'s> {
    /// The `unknown` mode.
    Unknown,
    /// Entries (name, ino).
    Dir(&'s [(&'s [u8], u64)]),
    /// Chunks.
    File(&'s [Chunk]),
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
    /// Stored as is.
    perm: u16,
    xattrs: &'s [(&'s [u8], &'s [u8])],
}

/// A test inode with uid 1000, gid 100, permissions `0o644` and no xattrs.
const fn sp(ino: u64, kind: Kind<'_>) -> Spec<'_> {
    Spec {
        ino,
        kind,
        uid: 1000,
        gid: 100,
        perm: 0o644,
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
            Kind::Unknown => n.reborrow().init_mode().set_unknown(()),
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

// ---- compiling ----

/// Limits of the test compiles: 1 MiB of tables, `i64::MAX` bytes per file.
const LIMITS: Limits = Limits {
    max_table_bytes: 1 << 20,
    max_file_size: i64::MAX as u64,
};

/// An environment that never stops the compile.
struct Quiet;

impl Env for Quiet {
    fn poll(&mut self) -> Result<()> {
        Ok(())
    }
}

/// An environment that stops the compile at its `n`-th poll.
struct StopAt(u32);

impl Env for StopAt {
    fn poll(&mut self) -> Result<()> {
        match self.0.checked_sub(1) {
            Some(n) => {
                self.0 = n;
                Ok(())
            }
            None => Err(Error::Interrupted),
        }
    }
}

/// Compiles the Generation B rootfs in `buf`.
#[inline(never)]
fn compile_b<A: Alloc>(buf: &[u8]) -> Result<Tables<A>> {
    compile::<A, _>(
        &Source {
            rootfs: buf,
            layers: &[],
        },
        LIMITS,
        &mut Quiet,
    )
}

/// Compiles the Generation A rootfs in `rootfs` with its layer blobs.
#[inline(never)]
fn compile_a<A: Alloc>(rootfs: &[u8], layers: &[&[u8]]) -> Result<Tables<A>> {
    compile::<A, _>(&Source { rootfs, layers }, LIMITS, &mut Quiet)
}

/// The error of compiling the Generation B rootfs in `buf`.
fn err_b<A: Alloc>(buf: &[u8]) -> Option<Error> {
    compile_b::<A>(buf).err()
}

/// The error of compiling one Generation B layer.
fn err_layer<A: Alloc>(layer: &[Spec<'_>]) -> Option<Error> {
    let mut buf = MsgBuf::<1024>::new();
    match build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[layer], &[]) {
        Ok(len) => err_b::<A>(&buf.0[..len]),
        Err(_) => Some(Error::Truncated),
    }
}

/// The inode that entry `name` of `dir` names.
fn child<'t, A: Alloc>(
    t: &'t Tables<A>,
    dir: &crate::format::tables::Inode,
    name: &[u8],
) -> Option<&'t crate::format::tables::Inode> {
    t.lookup(dir, name).and_then(|(_, e)| t.inode(e.target))
}

/// Name validation, and finding the extent of a file offset.
pub(crate) fn names_and_extents() -> TestResult {
    ensure_eq!(check_name(b"ok"), Ok(()));
    ensure_eq!(check_name(b"..."), Ok(()));
    ensure_eq!(check_name(b""), Err(NameError::Empty));
    ensure_eq!(check_name(b"a/b"), Err(NameError::Slash));
    ensure_eq!(check_name(b"a\0"), Err(NameError::Nul));
    ensure_eq!(check_name(b"."), Err(NameError::Dot));
    ensure_eq!(check_name(b".."), Err(NameError::Dot));
    ensure_eq!(check_name(&[b'a'; 255]), Ok(()));
    ensure_eq!(check_name(&[b'a'; 256]), Err(NameError::TooLong));
    let e = |end| Extent {
        end,
        offset: 0,
        blob: 0,
        flags: 0,
    };
    let exts = [e(10), e(25), e(40)];
    ensure_eq!(extent_for(&exts, 0), Some((0, 0)));
    ensure_eq!(extent_for(&exts, 9), Some((0, 0)));
    ensure_eq!(extent_for(&exts, 10), Some((1, 10)));
    ensure_eq!(extent_for(&exts, 39), Some((2, 25)));
    ensure_eq!(extent_for(&exts, 40), None);
    ensure_eq!(extent_for(&exts, u64::MAX), None);
    ensure_eq!(extent_for(&[], 0), None);
    Ok(())
}

const ROOT_ENTRIES: &[(&[u8], u64)] = &[
    (b"file", 2),
    (b"sub", 3),
    (b"link", 5),
    (b"hard", 2),
    (b"tty", 7),
];
const FILE_CHUNKS: &[Chunk] = &[(0xb2, 5, 100, false), (0xa1, 0, 28, true)];
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
        perm: 0o755,
        xattrs: &[],
    },
    Spec {
        ino: 2,
        kind: Kind::File(FILE_CHUNKS),
        uid: 1000,
        gid: 1001,
        perm: 0o4750,
        xattrs: FILE_XATTRS,
    },
    sp(3, Kind::Dir(&[])),
    sp(5, Kind::Lnk(b"../target/of/link")),
    sp(7, Kind::Chr(4, 65)),
];

/// A valid Generation B image compiled: inodes, sorted entries, lookup,
/// extents and blobs, xattrs, symlink, device, link counts and totals.
pub(crate) fn valid_image<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(
        &mut buf.0,
        MANIFEST_VERSION_B,
        &[VALID],
        &[(0xa1, 0x5a), (0x99, 0x77)],
    )?;
    let bytes = &buf.0[..len];
    let rootfs = tri!(Rootfs::parse(bytes));
    ensure_eq!(rootfs.generation(), Generation::B);
    ensure!(rootfs.for_each_layer_blob(|_| Ok(())).is_err());
    let t = tri!(compile_b::<A>(bytes));
    check_valid(&t)
}

#[inline(never)]
fn check_valid<A: Alloc>(t: &Tables<A>) -> TestResult {
    ensure_eq!(t.inode_count(), 5);
    let root = tri!(t.inode(ROOT_INDEX));
    ensure_eq!((root.ino, root.kind), (1, TKind::Dir));
    ensure_eq!((root.uid, root.gid, root.permissions), (0, 0, 0o755));
    ensure_eq!(root.nlink, 3);

    // Entries, sorted by name, with the type of what they name.
    let names: [&[u8]; 5] = [b"file", b"hard", b"link", b"sub", b"tty"];
    let kinds = [
        TKind::File,
        TKind::File,
        TKind::Symlink,
        TKind::Dir,
        TKind::Chr,
    ];
    let entries = t.entries(root);
    ensure_eq!(entries.len(), 5);
    for (i, e) in entries.iter().enumerate() {
        ensure_eq!(t.name(e), names[i]);
        ensure_eq!(e.kind, kinds[i]);
        ensure_eq!(tri!(t.inode(e.target)).kind, kinds[i]);
        ensure_eq!(tri!(t.lookup(root, names[i])).0, i);
    }
    ensure!(t.lookup(root, b"fil").is_none());
    ensure!(t.lookup(root, b"files").is_none());
    ensure!(t.lookup(root, b"").is_none());

    // The file and its hard link.
    let file = tri!(child(t, root, b"file"));
    ensure_eq!(
        tri!(t.lookup(root, b"hard")).1.target,
        tri!(t.lookup(root, b"file")).1.target
    );
    ensure_eq!(
        (file.ino, file.kind, file.file_size(), file.st_size()),
        (2, TKind::File, 128, 128)
    );
    ensure_eq!((file.uid, file.gid, file.permissions), (1000, 1001, 0o4750));
    ensure_eq!(file.nlink, 2);
    ensure!(t.entries(file).is_empty());
    ensure!(t.lookup(file, b"x").is_none());

    // Extents and the blob table (sorted by digest, verity attached).
    let exts = t.extents(file);
    ensure_eq!(exts.len(), 2);
    ensure_eq!(
        (exts[0].end, exts[0].offset, exts[0].compressed()),
        (100, 5, false)
    );
    ensure_eq!(
        (exts[1].end, exts[1].offset, exts[1].compressed()),
        (128, 0, true)
    );
    ensure_eq!(t.blob_count(), 2);
    let b0 = tri!(t.blob(exts[0].blob));
    let b1 = tri!(t.blob(exts[1].blob));
    ensure_eq!((b0.digest, b0.verity), ([0xb2; 32], None));
    ensure_eq!((b1.digest, b1.verity), ([0xa1; 32], Some([0x5a; 32])));
    ensure_eq!((exts[0].blob, exts[1].blob), (1, 0));
    ensure!(t.blob(2).is_none());
    ensure_eq!(extent_for(exts, 0), Some((0, 0)));
    ensure_eq!(extent_for(exts, 100), Some((1, 100)));
    ensure_eq!(extent_for(exts, 128), None);

    // Xattrs, sorted by name.
    let xs = t.xattrs(file);
    ensure_eq!(xs.len(), 2);
    ensure_eq!(t.xattr_name(&xs[0]), b"security.x");
    ensure_eq!(t.xattr_value(&xs[0]), b"\x00\xffv");
    ensure_eq!(t.xattr_name(&xs[1]), b"user.a");
    ensure_eq!(t.xattr_get(file, b"user.a"), Some(&b"1"[..]));
    ensure_eq!(t.xattr_get(file, b"user.b"), None);
    ensure_eq!(t.xattr_get(file, b"user"), None);
    ensure_eq!(t.xattr_get(root, b"user.a"), None);

    // The others.
    let sub = tri!(child(t, root, b"sub"));
    ensure_eq!((sub.ino, sub.nlink, sub.permissions), (3, 2, 0o644));
    ensure!(t.entries(sub).is_empty());
    let link = tri!(child(t, root, b"link"));
    ensure_eq!(t.symlink_target(link), b"../target/of/link");
    ensure_eq!((link.st_size(), link.nlink), (17, 1));
    ensure_eq!(t.symlink_target(file), b"");
    let tty = tri!(child(t, root, b"tty"));
    ensure_eq!(
        (tty.kind, tty.rdev(), tty.st_size()),
        (TKind::Chr, (4 << 20) | 65, 0)
    );
    ensure_eq!(file.rdev(), 0);

    let s = t.stats();
    ensure_eq!(
        (s.inodes, s.dirs, s.files, s.data_bytes, s.layers),
        (5, 2, 1, 128, 1)
    );
    ensure!(s.table_bytes > 0 && s.metadata_bytes > 0);
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

/// Checks the tables of [`TOP`] over [`LOWER`].
#[inline(never)]
fn check_whiteout<A: Alloc>(t: &Tables<A>) -> TestResult {
    ensure_eq!(t.inode_count(), 3);
    let root = tri!(t.inode(ROOT_INDEX));
    let entries = t.entries(root);
    ensure_eq!(entries.len(), 2);
    ensure_eq!(t.name(&entries[0]), b"keep");
    ensure_eq!(t.name(&entries[1]), b"new");
    // The whited-out name is gone; ino 2 comes from the lower layer.
    ensure!(t.lookup(root, b"gone").is_none());
    let keep = tri!(child(t, root, b"keep"));
    ensure_eq!((keep.ino, keep.file_size()), (2, 7));
    ensure_eq!(tri!(t.blob(t.extents(keep)[0].blob)).digest, [0x01; 32]);
    let new = tri!(child(t, root, b"new"));
    ensure_eq!(t.symlink_target(new), b"keep");
    ensure_eq!(root.nlink, 2);
    // The hidden file's chunk is not in the blob table.
    ensure_eq!(t.blob_count(), 1);
    let s = t.stats();
    ensure_eq!(
        (s.inodes, s.dirs, s.files, s.data_bytes, s.layers),
        (3, 1, 1, 7, 2)
    );
    Ok(())
}

/// Two layers inline in a Generation B rootfs; the top whites out a name.
pub(crate) fn whiteout_gen_b<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[TOP, LOWER], &[])?;
    let t = tri!(compile_b::<A>(&buf.0[..len]));
    check_whiteout(&t)
}

/// The same two layers as Generation A layer blobs.
pub(crate) fn whiteout_gen_a<A: Alloc>() -> TestResult {
    let mut top = MsgBuf::<512>::new();
    let mut lower = MsgBuf::<512>::new();
    let mut rootfs = MsgBuf::<256>::new();
    let tl = build_vector(&mut top.0, TOP)?;
    let ll = build_vector(&mut lower.0, LOWER)?;
    let rl = build_rootfs_a(&mut rootfs.0, &[(0x33, 0, false), (0x44, 0, false)])?;
    let t = tri!(compile_a::<A>(
        &rootfs.0[..rl],
        &[&top.0[..tl], &lower.0[..ll]]
    ));
    check_whiteout(&t)
}

/// A Generation A rootfs: layer blob digests, and layer references that are
/// not plain blobs; the compiler's checks of what it is given.
pub(crate) fn rootfs_gen_a<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_a(&mut buf.0, &[(0x33, 0, false), (0x44, 0, false)])?;
    let r = tri!(Rootfs::parse(&buf.0[..len]));
    ensure_eq!(r.generation(), Generation::A);
    let mut seen = [[0u8; 32]; 3];
    let mut n = 0usize;
    tri!(r.for_each_layer_blob(|d| {
        if let Some(slot) = seen.get_mut(n) {
            *slot = d;
        }
        n += 1;
        Ok(())
    }));
    ensure_eq!(n, 2);
    ensure_eq!(seen[..2], [[0x33; 32], [0x44; 32]]);
    // No layer blobs for a Generation A rootfs.
    ensure_eq!(
        compile_a::<A>(&buf.0[..len], &[]).err(),
        Some(Error::NoLayers)
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
    // Layer blobs for a Generation B rootfs.
    let mut layer = MsgBuf::<256>::new();
    let ll = build_vector(&mut layer.0, &[sp(1, Kind::Dir(&[]))])?;
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[VALID], &[])?;
    ensure_eq!(
        compile_a::<A>(&buf.0[..len], &[&layer.0[..ll]]).err(),
        Some(Error::UnexpectedLayers)
    );
    Ok(())
}

/// Inode vectors that are unsorted, have a duplicate, or use ino 0, in
/// either layer and either generation.
pub(crate) fn malformed_inode_order<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let mut rootfs = MsgBuf::<256>::new();
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
    let rl = build_rootfs_a(&mut rootfs.0, &[(0x33, 0, false)])?;
    for (inodes, want) in cases {
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[inodes], &[])?;
        ensure_eq!(err_b::<A>(&buf.0[..len]), Some(want));
        // The same layer below a good one reports layer 1.
        let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[ok, inodes], &[])?;
        let want1 = match want {
            Error::UnsortedInodes { ino, .. } => Error::UnsortedInodes { layer: 1, ino },
            Error::DuplicateInode { ino, .. } => Error::DuplicateInode { layer: 1, ino },
            _ => Error::ZeroIno { layer: 1 },
        };
        ensure_eq!(err_b::<A>(&buf.0[..len]), Some(want1));
        // And as a Generation A layer blob.
        let len = build_vector(&mut buf.0, inodes)?;
        ensure_eq!(
            compile_a::<A>(&rootfs.0[..rl], &[&buf.0[..len]]).err(),
            Some(want)
        );
    }
    Ok(())
}

/// Directory entries with bad names or inos, and bad xattrs and symlink
/// targets.
pub(crate) fn malformed_names<A: Alloc>() -> TestResult {
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
        let layer = [sp(1, Kind::Dir(&entries)), sp(2, Kind::File(&[]))];
        ensure_eq!(err_layer::<A>(&layer), Some(Error::BadName { ino: 1, why }));
    }
    // A 255-byte name is fine and found.
    static MAX: [u8; 255] = [b'n'; 255];
    let entries: [(&[u8], u64); 1] = [(&MAX, 2)];
    let layer = [sp(1, Kind::Dir(&entries)), sp(2, Kind::Dir(&[]))];
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    let t = tri!(compile_b::<A>(&buf.0[..len]));
    ensure_eq!(tri!(child(&t, tri!(t.inode(ROOT_INDEX)), &MAX)).ino, 2);

    // An entry naming ino 0, and one naming a missing ino.
    ensure_eq!(
        err_layer::<A>(&[sp(1, Kind::Dir(&[(b"zero", 0)]))]),
        Some(Error::BadDirEntryIno { ino: 1 })
    );
    ensure_eq!(
        err_layer::<A>(&[sp(1, Kind::Dir(&[(b"dangling", 9)]))]),
        Some(Error::InodeNotFound(9))
    );

    // Xattr names: empty, NUL, over 255 bytes, a bare namespace; duplicates.
    static LONG_KEY: [u8; 256] = [b'k'; 256];
    let bad_keys: [&[u8]; 6] = [
        b"",
        b"user.\0",
        &LONG_KEY,
        b"user.",
        b"trusted.",
        b"security.",
    ];
    for key in bad_keys {
        let xattrs: [(&[u8], &[u8]); 1] = [(key, b"v")];
        let layer = [Spec {
            xattrs: &xattrs,
            ..sp(1, Kind::Dir(&[]))
        }];
        ensure_eq!(err_layer::<A>(&layer), Some(Error::BadXattrName { ino: 1 }));
    }
    let dup: [(&[u8], &[u8]); 3] = [(b"user.a", b"1"), (b"user.b", b""), (b"user.a", b"2")];
    let layer = [
        sp(1, Kind::Dir(&[(b"f", 2)])),
        Spec {
            xattrs: &dup,
            ..sp(2, Kind::File(&[]))
        },
    ];
    ensure_eq!(
        err_layer::<A>(&layer),
        Some(Error::DuplicateXattr { ino: 2 })
    );
    // Other namespaces are kept (the driver serves what it has handlers for).
    let other: [(&[u8], &[u8]); 1] = [(b"system.posix_acl_access", b"\x02")];
    let layer = [Spec {
        xattrs: &other,
        ..sp(1, Kind::Dir(&[]))
    }];
    ensure_eq!(err_layer::<A>(&layer), None);

    // Symlink targets: empty, or containing NUL.
    let bad_targets: [&[u8]; 2] = [b"", b"a\0b"];
    for target in bad_targets {
        let layer = [sp(1, Kind::Dir(&[(b"l", 2)])), sp(2, Kind::Lnk(target))];
        ensure_eq!(
            err_layer::<A>(&layer),
            Some(Error::BadSymlinkTarget { ino: 2 })
        );
    }
    Ok(())
}

/// Trees the VFS cannot represent: cycles, directories with two names,
/// entries naming the root, duplicate names, a bad root.
pub(crate) fn malformed_tree<A: Alloc>() -> TestResult {
    // A cycle: /a/b/up is /a.
    let cycle = [
        sp(1, Kind::Dir(&[(b"a", 2)])),
        sp(2, Kind::Dir(&[(b"b", 3)])),
        sp(3, Kind::Dir(&[(b"up", 2)])),
    ];
    ensure_eq!(
        err_layer::<A>(&cycle),
        Some(Error::DirectoryTwice { ino: 2 })
    );
    let selfloop = [
        sp(1, Kind::Dir(&[(b"a", 2)])),
        sp(2, Kind::Dir(&[(b"me", 2)])),
    ];
    ensure_eq!(
        err_layer::<A>(&selfloop),
        Some(Error::DirectoryTwice { ino: 2 })
    );
    // Two parents, and two names in one directory.
    let two = [
        sp(1, Kind::Dir(&[(b"a", 2), (b"b", 3)])),
        sp(2, Kind::Dir(&[(b"x", 4)])),
        sp(3, Kind::Dir(&[(b"y", 4)])),
        sp(4, Kind::Dir(&[])),
    ];
    ensure_eq!(err_layer::<A>(&two), Some(Error::DirectoryTwice { ino: 4 }));
    let twice = [
        sp(1, Kind::Dir(&[(b"a", 2), (b"b", 2)])),
        sp(2, Kind::Dir(&[])),
    ];
    ensure_eq!(
        err_layer::<A>(&twice),
        Some(Error::DirectoryTwice { ino: 2 })
    );
    // Entries naming the root, from the root and from below.
    ensure_eq!(
        err_layer::<A>(&[sp(1, Kind::Dir(&[(b"r", 1)]))]),
        Some(Error::EntryNamesRoot { dir: 1 })
    );
    let below = [
        sp(1, Kind::Dir(&[(b"a", 2)])),
        sp(2, Kind::Dir(&[(b"r", 1)])),
    ];
    ensure_eq!(
        err_layer::<A>(&below),
        Some(Error::EntryNamesRoot { dir: 2 })
    );
    // Duplicate names.
    let dup = [
        sp(1, Kind::Dir(&[(b"a", 2), (b"b", 3), (b"a", 3)])),
        sp(2, Kind::File(&[])),
        sp(3, Kind::File(&[])),
    ];
    ensure_eq!(err_layer::<A>(&dup), Some(Error::DuplicateName { dir: 1 }));
    // A duplicate whose first copy a newer layer whited out is fine.
    let lower = [
        sp(1, Kind::Dir(&[])),
        sp(2, Kind::File(&[])),
        sp(3, Kind::File(&[(0x05, 0, 3, false)])),
    ];
    let top = [sp(1, Kind::Dir(&[(b"a", 2), (b"a", 3)])), sp(2, Kind::Wht)];
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&top, &lower], &[])?;
    let t = tri!(compile_b::<A>(&buf.0[..len]));
    ensure_eq!(tri!(child(&t, tri!(t.inode(ROOT_INDEX)), b"a")).ino, 3);
    // Hard links across directories are fine.
    let links = [
        sp(1, Kind::Dir(&[(b"d", 2), (b"f", 3)])),
        sp(2, Kind::Dir(&[(b"g", 3)])),
        sp(3, Kind::File(&[])),
    ];
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&links], &[])?;
    let t = tri!(compile_b::<A>(&buf.0[..len]));
    ensure_eq!(tri!(child(&t, tri!(t.inode(ROOT_INDEX)), b"f")).nlink, 2);
    ensure_eq!(t.inode_count(), 3);
    // The root: missing, whited out, not a directory.
    ensure_eq!(
        err_layer::<A>(&[sp(2, Kind::Dir(&[]))]),
        Some(Error::BadRoot)
    );
    ensure_eq!(err_layer::<A>(&[sp(1, Kind::Wht)]), Some(Error::BadRoot));
    ensure_eq!(
        err_layer::<A>(&[sp(1, Kind::Lnk(b"x"))]),
        Some(Error::BadRoot)
    );
    Ok(())
}

/// Inode contents the VFS cannot represent; unreachable inodes are not
/// looked at.
pub(crate) fn malformed_inodes<A: Alloc>() -> TestResult {
    // Permission bits outside 0o7777 (upstream stores `mode & 0o7777`).
    let typed = [Spec {
        perm: 0o100644,
        ..sp(1, Kind::Dir(&[]))
    }];
    ensure_eq!(
        err_layer::<A>(&typed),
        Some(Error::BadPermissions {
            ino: 1,
            permissions: 0o100644
        })
    );
    // The unknown mode, reachable and not.
    let unknown = [sp(1, Kind::Dir(&[(b"u", 2)])), sp(2, Kind::Unknown)];
    ensure_eq!(err_layer::<A>(&unknown), Some(Error::UnknownInodeType(2)));
    let unreachable = [
        sp(1, Kind::Dir(&[])),
        sp(2, Kind::Unknown),
        sp(3, Kind::Lnk(b"")),
    ];
    ensure_eq!(err_layer::<A>(&unreachable), None);
    // Device numbers.
    let dev = |major, minor| {
        [
            sp(1, Kind::Dir(&[(b"d", 2)])),
            sp(2, Kind::Chr(major, minor)),
        ]
    };
    ensure_eq!(
        err_layer::<A>(&dev(4096, 0)),
        Some(Error::BadDevice { ino: 2 })
    );
    ensure_eq!(
        err_layer::<A>(&dev(0, 1 << 20)),
        Some(Error::BadDevice { ino: 2 })
    );
    ensure_eq!(
        err_layer::<A>(&dev(u64::MAX, 0)),
        Some(Error::BadDevice { ino: 2 })
    );
    ensure_eq!(err_layer::<A>(&dev(4095, (1 << 20) - 1)), None);
    Ok(())
}

/// Chunk lengths that overflow or exceed the largest file, empty chunks,
/// and blobs shared between files.
pub(crate) fn malformed_chunks<A: Alloc>() -> TestResult {
    // Sums past the largest file size stop before they could overflow; an
    // offset plus length that overflows is refused as such.
    let cases: [(&[Chunk], Error); 3] = [
        (
            &[(1, 0, u64::MAX, false), (2, 0, 1, false)],
            Error::FileTooLarge { ino: 2 },
        ),
        (
            &[
                (1, 0, u64::MAX / 2 + 1, false),
                (2, 0, u64::MAX / 2 + 1, false),
            ],
            Error::FileTooLarge { ino: 2 },
        ),
        (&[(1, 1, u64::MAX, false)], Error::ChunkOverflow { ino: 2 }),
    ];
    for (chunks, want) in cases {
        let layer = [sp(1, Kind::Dir(&[(b"f", 2)])), sp(2, Kind::File(chunks))];
        ensure_eq!(err_layer::<A>(&layer), Some(want));
    }
    let max = i64::MAX as u64;
    let big = [(1, 0, max - 1, false), (2, 0, 2, false)];
    let layer = [sp(1, Kind::Dir(&[(b"f", 2)])), sp(2, Kind::File(&big))];
    ensure_eq!(err_layer::<A>(&layer), Some(Error::FileTooLarge { ino: 2 }));
    // The largest size is fine; empty chunks are dropped; a blob that two
    // files use is one blob.
    let chunks = [(1, 0, max - 1, false), (3, 9, 0, true), (2, 0, 1, false)];
    let shared = [(2, 4, 3, false)];
    let layer = [
        sp(1, Kind::Dir(&[(b"f", 2), (b"g", 3)])),
        sp(2, Kind::File(&chunks)),
        sp(3, Kind::File(&shared)),
    ];
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[&layer], &[])?;
    let t = tri!(compile_b::<A>(&buf.0[..len]));
    let root = tri!(t.inode(ROOT_INDEX));
    let f = tri!(child(&t, root, b"f"));
    ensure_eq!(f.file_size(), max);
    let exts = t.extents(f);
    ensure_eq!(exts.len(), 2);
    ensure_eq!((exts[0].end, exts[1].end), (max - 1, max));
    ensure_eq!(extent_for(exts, max - 1), Some((1, max - 1)));
    let g = tri!(child(&t, root, b"g"));
    ensure_eq!(t.extents(g)[0].blob, exts[1].blob);
    ensure_eq!(t.extents(g)[0].offset, 4);
    ensure_eq!(t.blob_count(), 2);
    ensure_eq!(t.stats().data_bytes, max.saturating_add(3));
    Ok(())
}

/// Truncated, misaligned, padded and garbage message buffers are errors.
pub(crate) fn malformed_buffers<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[VALID], &[])?;
    ensure!(Rootfs::parse(&buf.0[..len]).is_ok());
    // Every truncation at a word boundary, and a few inside words.
    let mut cut = 0usize;
    while cut < len {
        let e = Rootfs::parse(&buf.0[..cut]).err();
        ensure!(e.is_some());
        ensure!(err_b::<A>(&buf.0[..cut]).is_some());
        if cut >= 8 {
            ensure_eq!(e, Some(Error::Truncated));
        } else {
            ensure_eq!(e, Some(Error::BadSegmentTable));
        }
        cut += if cut < 16 { 1 } else { 8 };
    }
    // Bytes after the message.
    ensure_eq!(
        Rootfs::parse(&buf.0[..len + 8]).err(),
        Some(Error::TrailingBytes(8))
    );
    ensure_eq!(err_b::<A>(&buf.0[..len + 1]), Some(Error::TrailingBytes(1)));
    // A segment table claiming more segments than supported.
    let saved = buf.0[0];
    buf.0[0] = 200;
    ensure_eq!(
        Rootfs::parse(&buf.0[..len]).err(),
        Some(Error::TooManySegments)
    );
    buf.0[0] = saved;
    // The same bytes one byte off alignment.
    buf.0.copy_within(0..len, 1);
    ensure_eq!(
        Rootfs::parse(&buf.0[1..=len]).err(),
        Some(Error::Misaligned)
    );
    ensure_eq!(err_b::<A>(&buf.0[1..=len]), Some(Error::Misaligned));
    // Moved back, they compile again.
    buf.0.copy_within(1..=len, 0);
    ensure!(compile_b::<A>(&buf.0[..len]).is_ok());
    Ok(())
}

/// Unknown manifest versions, and a Generation B rootfs without layers.
pub(crate) fn bad_manifest_version<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let layer = [sp(1, Kind::Dir(&[]))];
    for v in [0u64, 1, 4, 7, u64::MAX] {
        let len = build_rootfs_b(&mut buf.0, v, &[&layer], &[])?;
        let want = Some(Error::UnsupportedManifestVersion(v));
        ensure_eq!(Rootfs::parse(&buf.0[..len]).err(), want);
        ensure_eq!(err_b::<A>(&buf.0[..len]), want);
    }
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[], &[])?;
    ensure_eq!(Rootfs::parse(&buf.0[..len]).err(), Some(Error::NoLayers));
    ensure_eq!(err_b::<A>(&buf.0[..len]), Some(Error::NoLayers));
    Ok(())
}

/// The memory limit, and an environment that stops the compile.
pub(crate) fn limits_and_interruption<A: Alloc>() -> TestResult {
    let mut buf = MsgBuf::<1024>::new();
    let len = build_rootfs_b(&mut buf.0, MANIFEST_VERSION_B, &[VALID], &[])?;
    let src = Source {
        rootfs: &buf.0[..len],
        layers: &[],
    };
    let tight = Limits {
        max_table_bytes: 64,
        ..LIMITS
    };
    ensure_eq!(
        compile::<A, _>(&src, tight, &mut Quiet).err(),
        Some(Error::TooLarge)
    );
    ensure_eq!(
        compile::<A, _>(&src, LIMITS, &mut StopAt(0)).err(),
        Some(Error::Interrupted)
    );
    let t = tri!(compile::<A, _>(&src, LIMITS, &mut Quiet));
    ensure!(t.stats().table_bytes <= LIMITS.max_table_bytes as u64);
    Ok(())
}

// ---- the zstd seekable format ----

/// Writes a seekable blob into `out`: `data` bytes of (fake) frame data, then a seek table of
/// `entries` (compressed, decompressed sizes) with optional checksums. Returns its length.
fn seekable_blob(out: &mut [u8], data: usize, entries: &[(u32, u32)], checksums: bool) -> usize {
    fn put(out: &mut [u8], n: &mut usize, v: u32) {
        out[*n..*n + 4].copy_from_slice(&v.to_le_bytes());
        *n += 4;
    }
    let entry = if checksums { 12 } else { 8 };
    let mut n = data;
    put(out, &mut n, SKIPPABLE_MAGIC);
    put(out, &mut n, (entries.len() * entry + FOOTER_LEN) as u32);
    for &(c, d) in entries {
        put(out, &mut n, c);
        put(out, &mut n, d);
        if checksums {
            put(out, &mut n, 0xdead_beef);
        }
    }
    put(out, &mut n, entries.len() as u32);
    out[n] = if checksums { 0x80 } else { 0 };
    n += 1;
    put(out, &mut n, SEEKABLE_MAGIC);
    n
}

/// Parses the blob `b` the way a reader does: footer, then table.
fn seek_index<A: Alloc>(b: &[u8]) -> Result<SeekIndex<A>> {
    let footer = Footer::parse(&b[b.len().saturating_sub(FOOTER_LEN)..])?;
    let t = footer.table_frame_len() as usize;
    if t > b.len() {
        return Err(Error::Seekable("seek table larger than the blob"));
    }
    SeekIndex::build(&b[b.len() - t..], &footer, b.len() as u64)
}

/// Seek tables: valid ones with and without checksums, frame lookup, and every lie a table
/// can tell about its frames.
pub(crate) fn seekable_tables<A: Alloc>() -> TestResult {
    let mut buf = [0u8; 256];
    for checksums in [false, true] {
        let len = seekable_blob(&mut buf, 30, &[(10, 4096), (15, 4096), (5, 100)], checksums);
        ensure!(MAX_FRAMES >= 65);
        let ix = tri!(seek_index::<A>(&buf[..len]));
        ensure_eq!((ix.len(), ix.size()), (3, 8292));
        ensure_eq!(
            ix.frame(1),
            Some(Frame {
                c_off: 10,
                d_off: 4096,
                c_len: 15,
                d_len: 4096
            })
        );
        ensure_eq!(ix.frame_at(0).map(|(i, _)| i), Some(0));
        ensure_eq!(ix.frame_at(4095).map(|(i, _)| i), Some(0));
        ensure_eq!(ix.frame_at(4096).map(|(i, _)| i), Some(1));
        ensure_eq!(ix.frame_at(8291).map(|(i, f)| (i, f.c_off)), Some((2, 25)));
        ensure!(ix.frame_at(8292).is_none());
        ensure!(ix.frame(3).is_none());
    }
    // An empty chunk: no frames, no data.
    let len = seekable_blob(&mut buf, 0, &[], false);
    let ix = tri!(seek_index::<A>(&buf[..len]));
    ensure_eq!((ix.len(), ix.size()), (0, 0));
    ensure!(ix.frame_at(0).is_none());

    let bad =
        |b: &[u8], what: &'static str| seek_index::<A>(b).err() == Some(Error::Seekable(what));
    // Frames that do not fill the bytes before the table, either way.
    let len = seekable_blob(&mut buf, 31, &[(10, 4096), (20, 4096)], false);
    ensure!(bad(&buf[..len], "frames do not fill the blob"));
    let len = seekable_blob(&mut buf, 29, &[(10, 4096), (20, 4096)], false);
    ensure!(bad(&buf[..len], "frames do not fill the blob"));
    // One empty frame may end a blob (upstream writes one) and is never found; empty or small
    // frames elsewhere, and two empty ones, are refused; oversized ones too.
    let len = seekable_blob(&mut buf, 28, &[(9, 4096), (10, 100), (9, 0)], true);
    let ix = tri!(seek_index::<A>(&buf[..len]));
    ensure_eq!((ix.len(), ix.size()), (3, 4196));
    ensure_eq!(ix.frame_at(4096).map(|(i, _)| i), Some(1));
    ensure_eq!(ix.frame_at(4195).map(|(i, _)| i), Some(1));
    ensure!(ix.frame_at(4196).is_none());
    let len = seekable_blob(&mut buf, 28, &[(9, 0), (10, 100), (9, 0)], false);
    ensure!(bad(
        &buf[..len],
        "a frame before the last is empty or too small"
    ));
    let len = seekable_blob(&mut buf, 28, &[(9, 100), (10, 100), (9, 0)], false);
    ensure!(bad(
        &buf[..len],
        "a frame before the last is empty or too small"
    ));
    let len = seekable_blob(&mut buf, 28, &[(9, 4096), (10, 0), (9, 0)], false);
    ensure!(bad(&buf[..len], "more than one empty frame at the end"));
    let len = seekable_blob(&mut buf, 10, &[(10, MAX_FRAME_SIZE + 1)], false);
    ensure!(bad(&buf[..len], "decompressed frame size out of range"));
    let len = seekable_blob(&mut buf, 0, &[(0, 10)], false);
    ensure!(bad(&buf[..len], "compressed frame size out of range"));
    let len = seekable_blob(&mut buf, 0, &[(MAX_COMPRESSED_FRAME_SIZE + 1, 10)], false);
    ensure!(bad(&buf[..len], "compressed frame size out of range"));
    // A table claiming more frames than the blob holds, or more than the reader takes.
    let len = seekable_blob(&mut buf, 10, &[(10, 4096)], false);
    buf[len - 9] = 200;
    ensure!(bad(&buf[..len], "seek table larger than the blob"));
    buf[len - 9..len - 5].copy_from_slice(&(MAX_FRAMES + 1).to_le_bytes());
    ensure!(bad(&buf[..len], "too many frames"));
    // Magics, reserved bits, a skippable frame size that disagrees with the footer.
    let len = seekable_blob(&mut buf, 10, &[(10, 4096)], false);
    buf[len - 1] ^= 1;
    ensure!(bad(&buf[..len], "no seekable magic"));
    buf[len - 1] ^= 1;
    buf[len - 5] = 0x04;
    ensure!(bad(&buf[..len], "reserved descriptor bits set"));
    buf[len - 5] = 0;
    buf[10] ^= 1;
    ensure!(bad(&buf[..len], "no skippable frame magic"));
    buf[10] ^= 1;
    buf[14] ^= 1;
    ensure!(bad(
        &buf[..len],
        "skippable frame size disagrees with the footer"
    ));
    buf[14] ^= 1;
    ensure!(seek_index::<A>(&buf[..len]).is_ok());
    // Truncated footers.
    ensure!(Footer::parse(&buf[len - 8..len]).is_err());
    ensure!(Footer::parse(&[]).is_err());
    Ok(())
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
    // OCI digests are lowercase hex: an uppercase one in a document is refused.
    let upper = concat!(
        r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:"#,
        "CDcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
        r#"","size":1,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}"#
    );
    let idx = tri!(oci::Index::parse(upper.as_bytes()));
    ensure_eq!(idx.find_tag(b"t").err(), Some(Error::BadDigestHex));
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
