// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the format core on the host: JSON, digests and OCI documents, and the
//! metadata compiler on messages built with the capnp builders (and, for aliasing, patched by
//! hand): valid images of both generations, layers and whiteouts, every refusal the compiler
//! documents, multi-segment and aliased messages, the memory limit, interruption, the poll
//! rate and linear time. Every compiled image is also checked against the invariants of
//! `tables.rs` ([`crate::check_invariants`]), and random trees against a small reference
//! model of the layer semantics written here.

use crate::format::compile::{compile, Env, Limits, Source, MAX_LAYERS};
use crate::format::json;
use crate::format::message::MAX_SEGMENTS;
use crate::format::metadata_capnp as m;
use crate::format::oci::{self, BlobKind};
use crate::format::rootfs::{Rootfs, MANIFEST_VERSION_A, MANIFEST_VERSION_B};
use crate::format::tables::{check_name, extent_for, Extent, Inode, Kind, ROOT_INDEX};
use crate::format::{
    digest_to_hex, manifest_capnp, parse_digest, Error, Generation, NameError, Result,
};
use crate::{check_invariants, check_poll_rate, compile_host, CountPolls, HostAlloc, HostTables};
use crate::{exercise_compile, HOST_LIMITS};
use capnp::message::{AllocationStrategy, Builder, HeapAllocator};
use core::ops::ControlFlow;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// An 8-byte aligned copy of `bytes`.
pub(crate) struct Aligned {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl Aligned {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut raw = vec![0u8; bytes.len() + 8];
        let off = raw.as_ptr().align_offset(8);
        raw[off..off + bytes.len()].copy_from_slice(bytes);
        Self {
            raw,
            off,
            len: bytes.len(),
        }
    }
    pub(crate) fn get(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }
}

// ---- JSON ----

#[test]
fn json_basics() {
    let v =
        json::parse(br#" {"a": [1, -2, {"b": null}], "s": "x\u00e9\ud83d\ude00\n\"", "t": true} "#)
            .unwrap();
    let o = v.as_object().unwrap();
    let a = o.get(b"a").unwrap().unwrap().as_array().unwrap();
    let mut nums = vec![];
    let _ = a
        .for_each(|e| {
            if let Ok(n) = e.as_i64() {
                nums.push(n)
            }
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    assert_eq!(nums, vec![1, -2]);
    let s = o.get(b"s").unwrap().unwrap().as_str().unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(s.decode(&mut buf).unwrap(), "xé😀\n\"".as_bytes());
    assert!(s.eq_bytes("xé😀\n\"".as_bytes()));
    assert!(!s.eq_bytes(b"x"));
    let mut small = [0u8; 2];
    assert!(s.decode(&mut small).is_err());
    assert!(o.get(b"t").unwrap().unwrap().as_bool().unwrap());
    assert!(o.get(b"missing").unwrap().is_none());
    // An escaped key matches its decoded form.
    let v = json::parse(br#"{"\u0061b": 5}"#).unwrap();
    assert_eq!(
        v.as_object()
            .unwrap()
            .get(b"ab")
            .unwrap()
            .unwrap()
            .as_u64()
            .unwrap(),
        5
    );
}

#[test]
fn json_rejects() {
    for bad in [
        &b""[..],
        b"{",
        b"{\"a\":1,}",
        b"[1,]",
        b"{\"a\" 1}",
        b"01",
        b"1.",
        b"-",
        b"\"\\x\"",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\\ud800\\u0041\"",
        b"\"a\nb\"",
        b"{} {}",
        b"[1] x",
        b"tru",
        b"nul",
        b"\"\xff\"",
        b"{'a':1}",
    ] {
        assert!(
            json::parse(bad).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let deep_ok = format!(
        "{}{}",
        "[".repeat(json::MAX_DEPTH),
        "]".repeat(json::MAX_DEPTH)
    );
    assert!(json::parse(deep_ok.as_bytes()).is_ok());
    let deep = format!(
        "{}{}",
        "[".repeat(json::MAX_DEPTH + 1),
        "]".repeat(json::MAX_DEPTH + 1)
    );
    assert!(matches!(
        json::parse(deep.as_bytes()),
        Err(Error::Json { .. })
    ));
    // The caller bounds the size: large documents parse.
    let mut big = vec![b' '; 3 << 20];
    big.extend_from_slice(b"{}");
    assert!(json::parse(&big).unwrap().as_object().is_ok());
}

#[test]
fn json_numbers_and_duplicates() {
    let v = json::parse(b"-9223372036854775808").unwrap();
    assert_eq!(v.as_i64().unwrap(), i64::MIN);
    assert!(v.as_u64().is_err());
    assert!(json::parse(b"9223372036854775808")
        .unwrap()
        .as_i64()
        .is_err());
    assert_eq!(
        json::parse(b"18446744073709551615")
            .unwrap()
            .as_u64()
            .unwrap(),
        u64::MAX
    );
    assert!(json::parse(b"18446744073709551616")
        .unwrap()
        .as_u64()
        .is_err());
    let f = json::parse(b"1.5e3").unwrap();
    assert!(f.as_i64().is_err() && f.as_u64().is_err());
    let v = json::parse(br#"{"a":1,"b":2,"a":3}"#)
        .unwrap()
        .as_object()
        .unwrap();
    assert!(matches!(
        v.get(b"a"),
        Err(Error::Json {
            what: "duplicate key",
            ..
        })
    ));
    assert_eq!(v.get(b"b").unwrap().unwrap().as_u64().unwrap(), 2);
}

/// Values longer than the scanner's window ([`json::POLL_BYTES`]), with quotes, escapes and
/// brackets placed on the window's edges: validating and walking see the same members.
#[test]
fn json_long_values_and_walks() {
    let w = json::POLL_BYTES;
    for shift in [0usize, 1, 2, 3, 5] {
        // A long string with an escaped quote and backslash near each window edge.
        let mut s = String::new();
        while s.len() < 3 * w {
            s.push_str(&"x".repeat(w - shift - 2));
            s.push_str(r#"\\\"\u00e9é"#);
        }
        let num = "7".repeat(w + shift);
        let nested = format!("[{}{}]", "[\"]\",{\"}\":[]}],".repeat(w / 16), "1");
        let doc = format!(
            r#"{{"s": "{s}", "n": {num}, "arr": {nested}, "k\u0065y": "v", "z": [{{"a": "{s}"}}, 2]}}"#
        );
        let o = json::parse(doc.as_bytes()).unwrap().as_object().unwrap();
        let [n, key, z, sv] = o.get_all([b"n", b"key", b"z", b"s"]).unwrap();
        assert_eq!(n.unwrap().raw(), num.as_bytes());
        let mut buf = [0u8; 8];
        assert_eq!(
            key.unwrap().as_str().unwrap().decode(&mut buf).unwrap(),
            b"v"
        );
        let mut items = Vec::new();
        let _ = z
            .unwrap()
            .as_array()
            .unwrap()
            .for_each(|v| {
                items.push(v.raw().len());
                ControlFlow::<()>::Continue(())
            })
            .unwrap();
        assert_eq!(items, [s.len() + 9, 1]);
        assert_eq!(sv.unwrap().raw().len(), s.len() + 2);
        assert!(o.get(b"arr").unwrap().unwrap().as_array().is_ok());
        assert!(o.get(b"missing").unwrap().is_none());
    }
    // A control character or a bad escape after a long run of plain bytes is still refused.
    for bad in ["\u{1}", "\\q"] {
        let doc = format!("\"{}{}\"", "a".repeat(w + 3), bad);
        assert!(json::parse(doc.as_bytes()).is_err(), "{bad:?}");
    }
}

// ---- digests, names, extents ----

#[test]
fn digests() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    let d = parse_digest(hex.as_bytes()).unwrap();
    assert_eq!(d[1], 0x11);
    assert_eq!(parse_digest(format!("sha256:{hex}").as_bytes()).unwrap(), d);
    let mut out = [0u8; 64];
    assert_eq!(digest_to_hex(&d, &mut out), hex.to_lowercase());
    assert_eq!(
        parse_digest(&hex.as_bytes()[1..]),
        Err(Error::BadDigestLength(63))
    );
    assert_eq!(parse_digest(b"sha512:00"), Err(Error::BadDigestLength(9)));
    let mut bad = hex.as_bytes().to_vec();
    bad[5] = b'g';
    assert_eq!(parse_digest(&bad), Err(Error::BadDigestHex));
}

#[test]
fn names() {
    assert_eq!(check_name(b"ok"), Ok(()));
    assert_eq!(check_name(b"..."), Ok(()));
    assert_eq!(check_name(b"\xff\xfe"), Ok(()));
    assert_eq!(check_name(b""), Err(NameError::Empty));
    assert_eq!(check_name(b"a/b"), Err(NameError::Slash));
    assert_eq!(check_name(b"a\0"), Err(NameError::Nul));
    assert_eq!(check_name(b"."), Err(NameError::Dot));
    assert_eq!(check_name(b".."), Err(NameError::Dot));
    assert_eq!(check_name(&[b'a'; 255]), Ok(()));
    assert_eq!(check_name(&[b'a'; 256]), Err(NameError::TooLong));
}

#[test]
fn extent_lookup() {
    let e = |end| Extent {
        end,
        offset: 0,
        blob: 0,
        flags: 0,
    };
    let exts = [e(10), e(25), e(40)];
    assert_eq!(extent_for(&exts, 0), Some((0, 0)));
    assert_eq!(extent_for(&exts, 9), Some((0, 0)));
    assert_eq!(extent_for(&exts, 10), Some((1, 10)));
    assert_eq!(extent_for(&exts, 24), Some((1, 10)));
    assert_eq!(extent_for(&exts, 39), Some((2, 25)));
    assert_eq!(extent_for(&exts, 40), None);
    assert_eq!(extent_for(&exts, u64::MAX), None);
    assert_eq!(extent_for(&[], 0), None);
}

#[test]
fn error_mapping() {
    assert_eq!(
        Error::from(capnp::Error::from_kind(capnp::ErrorKind::ReadLimitExceeded)),
        Error::TraversalLimit
    );
    assert_eq!(
        Error::from(capnp::Error::from_kind(
            capnp::ErrorKind::NestingLimitExceeded
        )),
        Error::NestingLimit
    );
    assert_eq!(Error::from(capnp::NotInSchema(12)), Error::UnknownUnion(12));
    // Every error names what is wrong.
    for e in [
        Error::DirectoryTwice { ino: 5 },
        Error::EntryNamesRoot { dir: 7 },
        Error::DuplicateName { dir: 9 },
        Error::TrailingBytes(3),
        Error::TooLarge,
        Error::Interrupted,
    ] {
        let s = e.to_string();
        assert!(!s.is_empty());
    }
    assert!(Error::DirectoryTwice { ino: 5 }.to_string().contains('5'));
}

// ---- OCI ----

#[test]
fn oci_index_and_manifest() {
    let d = "ab".repeat(32);
    let b = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {{"mediaType":"m","digest":"sha256:{}","size":7,"annotations":{{"org.opencontainers.image.ref.name":"other"}}}},
        {{"mediaType":"m","digest":"sha256:{d}","size":12,"annotations":{{"org.opencontainers.image.ref.name":"t\u00e9"}}}}]}}"#,
        "cd".repeat(32)
    );
    let idx = oci::Index::parse(b.as_bytes()).unwrap();
    assert_eq!(idx.generation(), Generation::B);
    let e = idx.find_tag("té".as_bytes()).unwrap();
    assert_eq!(
        (e.digest, e.size),
        (parse_digest(d.as_bytes()).unwrap(), 12)
    );
    assert_eq!(idx.find_tag(b"nope"), Err(Error::TagNotFound));
    let a = format!(
        r#"{{"schemaVersion":-1,"manifests":[{{"digest":"sha256:{d}","size":3,"media_type":"x","annotations":{{"org.opencontainers.image.ref.name":"t"}}}}],"annotations":{{}}}}"#
    );
    let idx = oci::Index::parse(a.as_bytes()).unwrap();
    assert_eq!(idx.generation(), Generation::A);
    assert_eq!(idx.find_tag(b"t").unwrap().size, 3);
    assert_eq!(
        oci::Index::parse(br#"{"schemaVersion":1,"manifests":[]}"#).unwrap_err(),
        Error::UnsupportedSchemaVersion(1)
    );
    let man = format!(
        r#"{{"schemaVersion":2,"config":{{}},"layers":[
        {{"mediaType":"application/vnd.puzzlefs.image.filedata.v1","digest":"sha256:{d}","size":1}},
        {{"mediaType":"application/vnd.puzzlefs.image.rootfs.v1","digest":"sha256:{d}","size":99,
          "annotations":{{"io.puzzlefsoci.puzzlefs.puzzlefs_verity_root_hash":"{}"}}}}]}}"#,
        "01".repeat(32)
    );
    let l = oci::ImageManifest::parse(man.as_bytes())
        .unwrap()
        .rootfs_layer()
        .unwrap();
    assert_eq!(l.size, 99);
    assert_eq!(l.verity, Some([1u8; 32]));
    assert_eq!(oci::blob_kind(b"  {\"a\":1}"), BlobKind::OciManifest);
    assert_eq!(oci::blob_kind(&[0, 0, 0, 0, 5, 0, 0, 0]), BlobKind::Rootfs);
    // An image manifest of a large image (a layer per chunk blob): 20,000 layers, about 5 MB.
    let mut large = String::from(r#"{"schemaVersion":2,"config":{},"layers":["#);
    for i in 0..20_000 {
        large.push_str(&format!(
            r#"{{"mediaType":"application/vnd.puzzlefs.image.filedata.v1","digest":"sha256:{i:064x}","size":{i}}},"#
        ));
    }
    large.push_str(&format!(
        r#"{{"mediaType":"application/vnd.puzzlefs.image.rootfs.v1","digest":"sha256:{d}","size":5}}]}}"#
    ));
    assert!(large.len() > 2 << 20);
    let l = oci::ImageManifest::parse(large.as_bytes())
        .unwrap()
        .rootfs_layer()
        .unwrap();
    assert_eq!((l.digest, l.size, l.verity), ([0xab; 32], 5, None));
    let none = r#"{"schemaVersion":2,"layers":[]}"#;
    assert_eq!(
        oci::ImageManifest::parse(none.as_bytes())
            .unwrap()
            .rootfs_layer(),
        Err(Error::NoRootfsLayer)
    );
}

// ---- building messages ----

/// A chunk of a test file: digest bytes, offset in the blob, length, compressed.
#[derive(Clone, Debug)]
pub(crate) struct C {
    digest: Vec<u8>,
    offset: u64,
    len: u64,
    compressed: bool,
}

/// A chunk of blob `[fill; 32]`.
fn ch(fill: u8, offset: u64, len: u64) -> C {
    C {
        digest: vec![fill; 32],
        offset,
        len,
        compressed: false,
    }
}

/// The mode of a test inode.
#[derive(Clone, Debug)]
pub(crate) enum K {
    Dir(Vec<(Vec<u8>, u64)>),
    File(Vec<C>),
    /// A symlink and its target (`None`: no `additional` at all).
    Lnk(Option<Vec<u8>>),
    Fifo,
    Sock,
    Chr(u64, u64),
    Blk(u64, u64),
    Wht,
    Unknown,
}

/// A test inode.
#[derive(Clone, Debug)]
pub(crate) struct I {
    ino: u64,
    kind: K,
    uid: u32,
    gid: u32,
    perm: u16,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl I {
    fn new(ino: u64, kind: K) -> Self {
        let perm = match kind {
            K::Dir(_) => 0o755,
            _ => 0o644,
        };
        Self {
            ino,
            kind,
            uid: 1000,
            gid: 100,
            perm,
            xattrs: vec![],
        }
    }
    fn perm(mut self, perm: u16) -> Self {
        self.perm = perm;
        self
    }
    fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
    fn xattr(mut self, k: &[u8], v: &[u8]) -> Self {
        self.xattrs.push((k.to_vec(), v.to_vec()));
        self
    }
}

fn dir(ino: u64, entries: &[(&str, u64)]) -> I {
    I::new(
        ino,
        K::Dir(
            entries
                .iter()
                .map(|(n, i)| (n.as_bytes().to_vec(), *i))
                .collect(),
        ),
    )
}

/// A directory whose entry names are raw bytes.
fn dirb(ino: u64, entries: &[(&[u8], u64)]) -> I {
    I::new(
        ino,
        K::Dir(entries.iter().map(|(n, i)| (n.to_vec(), *i)).collect()),
    )
}

fn file(ino: u64, chunks: &[C]) -> I {
    I::new(ino, K::File(chunks.to_vec()))
}

fn lnk(ino: u64, target: &[u8]) -> I {
    I::new(ino, K::Lnk(Some(target.to_vec())))
}

fn wht(ino: u64) -> I {
    I::new(ino, K::Wht)
}

fn fill_inode(mut n: m::inode::Builder<'_>, s: &I) {
    n.set_ino(s.ino);
    n.set_uid(s.uid);
    n.set_gid(s.gid);
    n.set_permissions(s.perm);
    match &s.kind {
        K::Dir(entries) => {
            let d = n.reborrow().init_mode().init_dir();
            let mut el = d.init_entries(entries.len() as u32);
            for (j, (name, ino)) in entries.iter().enumerate() {
                let mut e = el.reborrow().get(j as u32);
                e.set_ino(*ino);
                e.set_name(name);
            }
        }
        K::File(chunks) => {
            let mut fl = n.reborrow().init_mode().init_file(chunks.len() as u32);
            for (j, c) in chunks.iter().enumerate() {
                let mut f = fl.reborrow().get(j as u32);
                f.set_len(c.len);
                let mut b = f.init_blob();
                b.set_digest(&c.digest);
                b.set_offset(c.offset);
                b.set_compressed(c.compressed);
            }
        }
        K::Lnk(_) => n.reborrow().init_mode().set_lnk(()),
        K::Fifo => n.reborrow().init_mode().set_fifo(()),
        K::Sock => n.reborrow().init_mode().set_sock(()),
        K::Chr(major, minor) => {
            let mut c = n.reborrow().init_mode().init_chr();
            c.set_major(*major);
            c.set_minor(*minor);
        }
        K::Blk(major, minor) => {
            let mut c = n.reborrow().init_mode().init_blk();
            c.set_major(*major);
            c.set_minor(*minor);
        }
        K::Wht => n.reborrow().init_mode().set_wht(()),
        K::Unknown => n.reborrow().init_mode().set_unknown(()),
    }
    let target = match &s.kind {
        K::Lnk(t) => t.as_deref(),
        _ => None,
    };
    if target.is_some() || !s.xattrs.is_empty() {
        let mut add = n.init_additional();
        if let Some(t) = target {
            add.set_symlink_target(t);
        }
        if !s.xattrs.is_empty() {
            let mut xl = add.init_xattrs(s.xattrs.len() as u32);
            for (j, (k, v)) in s.xattrs.iter().enumerate() {
                let mut x = xl.reborrow().get(j as u32);
                x.set_key(k);
                x.set_val(v);
            }
        }
    }
}

fn fill_vector(v: m::inode_vector::Builder<'_>, inodes: &[I]) {
    let mut list = v.init_inodes(inodes.len() as u32);
    for (i, s) in inodes.iter().enumerate() {
        fill_inode(list.reborrow().get(i as u32), s);
    }
}

/// The standard serialization of `msg` (segment table, segments), 8-byte aligned.
fn serialize<A: capnp::message::Allocator>(msg: &Builder<A>) -> Aligned {
    Aligned::new(&capnp::serialize::write_message_to_words(msg))
}

/// Segments of a serialized message, from its segment table.
fn segment_count(buf: &[u8]) -> usize {
    u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize + 1
}

/// An allocator that puts the whole message in one segment.
fn one_segment() -> HeapAllocator {
    HeapAllocator::new().first_segment_words(1 << 20)
}

/// A Generation B rootfs of `layers` (top first) with fs-verity entries (blob digest, verity).
fn rootfs_b_with(
    alloc: HeapAllocator,
    version: u64,
    layers: &[&[I]],
    verity: &[(Vec<u8>, Vec<u8>)],
) -> Aligned {
    let mut msg = Builder::new(alloc);
    let mut r = msg.init_root::<m::rootfs::Builder<'_>>();
    r.set_manifest_version(version);
    let mut ls = r.reborrow().init_metadatas(layers.len() as u32);
    for (i, l) in layers.iter().enumerate() {
        fill_vector(ls.reborrow().get(i as u32), l);
    }
    let mut vl = r.init_fs_verity_data(verity.len() as u32);
    for (i, (d, v)) in verity.iter().enumerate() {
        let mut e = vl.reborrow().get(i as u32);
        e.set_digest(d);
        e.set_verity(v);
    }
    serialize(&msg)
}

fn rootfs_b(layers: &[&[I]]) -> Aligned {
    rootfs_b_with(one_segment(), MANIFEST_VERSION_B, layers, &[])
}

/// A Generation A layer blob.
fn vector_with(alloc: HeapAllocator, inodes: &[I]) -> Aligned {
    let mut msg = Builder::new(alloc);
    fill_vector(msg.init_root::<m::inode_vector::Builder<'_>>(), inodes);
    serialize(&msg)
}

fn vector(inodes: &[I]) -> Aligned {
    vector_with(one_segment(), inodes)
}

/// A Generation A rootfs naming `layers` blobs (the digests are not checked by the compiler:
/// the caller reads the blobs) with fs-verity entries.
fn rootfs_a_with(layers: usize, verity: &[(Vec<u8>, Vec<u8>)]) -> Aligned {
    let mut msg = Builder::new(one_segment());
    let mut r = msg.init_root::<manifest_capnp::rootfs::Builder<'_>>();
    r.set_manifest_version(MANIFEST_VERSION_A);
    let mut ls = r.reborrow().init_metadatas(layers as u32);
    for i in 0..layers {
        ls.reborrow()
            .get(i as u32)
            .set_digest(&[i as u8 + 0x40; 32]);
    }
    let mut vl = r.init_fs_verity_data(verity.len() as u32);
    for (i, (d, v)) in verity.iter().enumerate() {
        let mut e = vl.reborrow().get(i as u32);
        e.set_digest(d);
        e.set_verity(v);
    }
    serialize(&msg)
}

fn rootfs_a(layers: usize) -> Aligned {
    rootfs_a_with(layers, &[])
}

/// Compiles `layers` as one Generation B rootfs.
fn compile_b(layers: &[&[I]]) -> Result<HostTables> {
    compile_host(rootfs_b(layers).get(), &[])
}

/// Compiles `layers` as a Generation A rootfs and one blob per layer.
fn compile_a(layers: &[&[I]]) -> Result<HostTables> {
    let blobs: Vec<Aligned> = layers.iter().map(|l| vector(l)).collect();
    let refs: Vec<&[u8]> = blobs.iter().map(|b| b.get()).collect();
    compile_host(rootfs_a(layers.len()).get(), &refs)
}

/// Compiles `layers` in both generations, checks that both give the same tables, and that
/// these satisfy the invariants. With `PUZZLEFS_SEED_DIR` set, writes both forms as seeds of
/// the `compile` fuzz target (small, structurally varied inputs).
fn compile_both(layers: &[&[I]]) -> HostTables {
    let b = compile_b(layers).unwrap_or_else(|e| panic!("Generation B: {e:?}"));
    let a = compile_a(layers).unwrap_or_else(|e| panic!("Generation A: {e:?}"));
    assert_same_tables(&a, &b);
    check_invariants(&b).unwrap();
    if let Ok(dir) = std::env::var("PUZZLEFS_SEED_DIR") {
        let dir = std::path::Path::new(&dir).join("compile");
        std::fs::create_dir_all(&dir).unwrap();
        let blobs: Vec<Aligned> = layers.iter().map(|l| vector(l)).collect();
        let refs: Vec<&[u8]> = blobs.iter().map(|b| b.get()).collect();
        let rootfs_a = rootfs_a(layers.len());
        let inputs = [
            crate::encode_compile_input(rootfs_b(layers).get(), &[]),
            crate::encode_compile_input(rootfs_a.get(), &refs),
        ];
        for input in inputs.into_iter().flatten() {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&input, &mut h);
            let name = format!("unit-{:016x}", std::hash::Hasher::finish(&h));
            std::fs::write(dir.join(name), &input).unwrap();
        }
    }
    b
}

/// Checks that compiling `layers` fails with `want`, in both generations and through the
/// fuzzing entry.
#[track_caller]
fn refuse(layers: &[&[I]], want: Error) {
    assert_eq!(compile_b(layers).err(), Some(want), "Generation B");
    assert_eq!(compile_a(layers).err(), Some(want), "Generation A");
    assert!(!exercise_compile(rootfs_b(layers).get(), &[]));
}

/// Tables equal but for the size of the messages they came from.
#[track_caller]
fn assert_same_tables(a: &HostTables, b: &HostTables) {
    assert_eq!(a.inodes, b.inodes, "inodes");
    assert_eq!(a.dirents, b.dirents, "dirents");
    assert_eq!(a.extents, b.extents, "extents");
    assert_eq!(a.xattrs, b.xattrs, "xattrs");
    assert_eq!(a.bytes, b.bytes, "bytes");
    assert_eq!(a.blobs, b.blobs, "blobs");
    let (mut sa, mut sb) = (*a.stats(), *b.stats());
    sa.metadata_bytes = 0;
    sb.metadata_bytes = 0;
    sa.table_bytes = 0;
    sb.table_bytes = 0;
    assert_eq!(sa, sb, "stats");
}

/// The inode at `path` ("" is the root; components separated by '/').
#[track_caller]
fn at<'t>(t: &'t HostTables, path: &str) -> &'t Inode {
    let mut n = t.inode(ROOT_INDEX).unwrap();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        let (_, e) = t
            .lookup(n, c.as_bytes())
            .unwrap_or_else(|| panic!("{path}: no {c}"));
        n = t.inode(e.target).unwrap();
    }
    n
}

/// The entry names of a directory, in table order.
fn names_of(t: &HostTables, d: &Inode) -> Vec<String> {
    t.entries(d)
        .iter()
        .map(|e| String::from_utf8_lossy(t.name(e)).into_owned())
        .collect()
}

/// A file's extents as (length, blob digest fill byte, offset, compressed).
fn pieces(t: &HostTables, f: &Inode) -> Vec<(u64, u8, u64, bool)> {
    let mut prev = 0;
    t.extents(f)
        .iter()
        .map(|e| {
            let len = e.end - prev;
            prev = e.end;
            let d = t.blob(e.blob).unwrap().digest;
            (len, d[0], e.offset, e.compressed())
        })
        .collect()
}

// ---- valid images ----

/// Every kind of inode, hard links, xattrs, unsorted entries and gaps in the inos.
fn kitchen_sink() -> Vec<I> {
    vec![
        dir(
            1,
            &[
                ("zeta", 2),
                ("sub", 3),
                ("hard", 4),
                ("link", 5),
                ("fifo", 6),
                ("sock", 7),
                ("tty", 8),
                ("disk", 9),
                ("alpha", 4),
            ],
        )
        .owner(0, 0)
        .xattr(b"user.root", b"r"),
        file(
            2,
            &[
                ch(0xb2, 5, 100),
                C {
                    compressed: true,
                    ..ch(0xa1, 0, 28)
                },
                ch(0xb2, 200, 0),
            ],
        )
        .perm(0o4750)
        .owner(1000, 1001)
        .xattr(b"user.z", b"1")
        .xattr(b"security.selinux", b"\x00\xffv")
        .xattr(b"trusted.t", b""),
        dir(3, &[("inner", 11), ("again", 4)]).perm(0o1777),
        file(4, &[ch(0xa1, 28, 9)]).perm(0o600),
        lnk(5, b"../target/\xffof/link").perm(0o777),
        I::new(6, K::Fifo).perm(0o640),
        I::new(7, K::Sock),
        I::new(8, K::Chr(4, 65)).perm(0o620).owner(0, 5),
        I::new(9, K::Blk(4095, (1 << 20) - 1)).perm(0o660),
        // Not reachable: ignored, even though it is malformed.
        I::new(10, K::Unknown).perm(0xffff),
        dir(11, &[]).perm(0o700).xattr(b"user.e", &[7; 300]),
        file(12, &[ch(0x99, 0, 1)]),
    ]
}

#[test]
fn compile_kitchen_sink() {
    let img = kitchen_sink();
    let t = compile_both(&[&img]);
    assert_eq!(t.inode_count(), 10);
    let root = at(&t, "");
    assert_eq!((root.ino, root.kind, root.nlink), (1, Kind::Dir, 3));
    assert_eq!((root.uid, root.gid, root.permissions), (0, 0, 0o755));
    assert_eq!(
        names_of(&t, root),
        ["alpha", "disk", "fifo", "hard", "link", "sock", "sub", "tty", "zeta"]
    );
    let kinds: Vec<Kind> = t.entries(root).iter().map(|e| e.kind).collect();
    use Kind::*;
    assert_eq!(
        kinds,
        [File, Blk, Fifo, File, Symlink, Sock, Dir, Chr, File]
    );
    for (pos, name) in names_of(&t, root).iter().enumerate() {
        assert_eq!(t.lookup(root, name.as_bytes()).unwrap().0, pos);
    }
    for missing in [&b""[..], b"a", b"alphaa", b"zz", b"sub/inner"] {
        assert!(t.lookup(root, missing).is_none());
    }
    // The file with two chunks of one blob and one of another; the empty chunk is dropped.
    let f = at(&t, "zeta");
    assert_eq!(
        (f.ino, f.file_size(), f.st_size(), f.nlink),
        (2, 128, 128, 1)
    );
    assert_eq!((f.uid, f.gid, f.permissions), (1000, 1001, 0o4750));
    assert_eq!(pieces(&t, f), [(100, 0xb2, 5, false), (28, 0xa1, 0, true)]);
    let ends: Vec<u64> = t.extents(f).iter().map(|e| e.end).collect();
    assert_eq!(ends, [100, 128]);
    assert_eq!(extent_for(t.extents(f), 99), Some((0, 0)));
    assert_eq!(extent_for(t.extents(f), 100), Some((1, 100)));
    assert_eq!(extent_for(t.extents(f), 128), None);
    let xs: Vec<(&[u8], &[u8])> = t
        .xattrs(f)
        .iter()
        .map(|x| (t.xattr_name(x), t.xattr_value(x)))
        .collect();
    assert_eq!(
        xs,
        [
            (&b"security.selinux"[..], &b"\x00\xffv"[..]),
            (b"trusted.t", b""),
            (b"user.z", b"1"),
        ]
    );
    assert_eq!(t.xattr_get(f, b"trusted.t"), Some(&b""[..]));
    assert_eq!(t.xattr_get(f, b"user.y"), None);
    assert_eq!(t.xattr_get(root, b"user.root"), Some(&b"r"[..]));
    // Hard links: three names, one inode; the blob table is shared and sorted.
    let h = t.lookup(root, b"hard").unwrap().1.target;
    assert_eq!(t.lookup(root, b"alpha").unwrap().1.target, h);
    assert_eq!(t.lookup(at(&t, "sub"), b"again").unwrap().1.target, h);
    let hard = at(&t, "hard");
    assert_eq!((hard.ino, hard.nlink, hard.permissions), (4, 3, 0o600));
    assert_eq!(pieces(&t, hard), [(9, 0xa1, 28, false)]);
    assert_eq!(t.extents(hard)[0].blob, t.extents(f)[1].blob);
    let digests: Vec<u8> = t.blobs.iter().map(|b| b.digest[0]).collect();
    assert_eq!(digests, [0xa1, 0xb2]);
    assert!(t.blobs.iter().all(|b| b.verity.is_none()));
    // Directories.
    let sub = at(&t, "sub");
    assert_eq!((sub.ino, sub.nlink, sub.permissions), (3, 3, 0o1777));
    let inner = at(&t, "sub/inner");
    assert_eq!((inner.ino, inner.nlink, inner.file_size()), (11, 2, 0));
    assert_eq!(t.xattr_get(inner, b"user.e"), Some(&[7u8; 300][..]));
    assert!(t.entries(inner).is_empty());
    // The others.
    let l = at(&t, "link");
    assert_eq!(t.symlink_target(l), b"../target/\xffof/link");
    assert_eq!((l.st_size(), l.nlink, l.permissions), (18, 1, 0o777));
    assert_eq!(t.symlink_target(f), b"");
    assert_eq!(at(&t, "fifo").kind, Fifo);
    assert_eq!(at(&t, "fifo").permissions, 0o640);
    assert_eq!(at(&t, "sock").kind, Sock);
    let tty = at(&t, "tty");
    assert_eq!(
        (tty.kind, tty.rdev(), tty.st_size()),
        (Chr, (4 << 20) | 65, 0)
    );
    assert_eq!((tty.uid, tty.gid), (0, 5));
    let disk = at(&t, "disk");
    assert_eq!((disk.kind, disk.rdev()), (Blk, (4095 << 20) | 0xfffff));
    assert_eq!(f.rdev(), 0);
    let s = t.stats();
    assert_eq!(
        (s.inodes, s.dirs, s.files, s.data_bytes, s.layers),
        (10, 3, 2, 137, 1)
    );
    assert!(s.table_bytes > 0 && s.metadata_bytes > 0);
    assert!(exercise_compile(rootfs_b(&[&img]).get(), &[]));
}

#[test]
fn compile_empty_root_and_rootfs_views() {
    let img = [dir(1, &[])];
    let t = compile_both(&[&img]);
    assert_eq!(t.inode_count(), 1);
    assert_eq!(at(&t, "").nlink, 2);
    assert_eq!(t.blob_count(), 0);
    let b = rootfs_b(&[&img]);
    let r = Rootfs::parse(b.get()).unwrap();
    assert_eq!(r.generation(), Generation::B);
    assert!(r.for_each_layer_blob(|_| Ok(())).is_err());
    let a = rootfs_a(3);
    let r = Rootfs::parse(a.get()).unwrap();
    assert_eq!(r.generation(), Generation::A);
    let mut seen = vec![];
    r.for_each_layer_blob(|d| {
        seen.push(d[0]);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, [0x40, 0x41, 0x42]);
}

#[test]
fn fs_verity_digests() {
    let img = kitchen_sink();
    let v = |d: u8, v: u8| (vec![d; 32], vec![v; 32]);
    // Entries for chunk blobs are attached; others (metadata blobs) are skipped; a repeated
    // entry that agrees is fine.
    let verity = [v(0xb2, 1), v(0x55, 2), v(0xa1, 3), v(0xb2, 1)];
    let b = rootfs_b_with(one_segment(), MANIFEST_VERSION_B, &[&img], &verity);
    let t = compile_host(b.get(), &[]).unwrap();
    let got: Vec<(u8, Option<u8>)> = t
        .blobs
        .iter()
        .map(|b| (b.digest[0], b.verity.map(|v| v[0])))
        .collect();
    assert_eq!(got, [(0xa1, Some(3)), (0xb2, Some(1))]);
    // Generation A keeps them in its rootfs blob.
    let layer = vector(&img);
    let t = compile_host(rootfs_a_with(1, &verity).get(), &[layer.get()]).unwrap();
    assert_eq!(t.blobs[0].verity, Some([3; 32]));
    // Two different digests for one blob, and digests of the wrong length.
    let conflict = [v(0xa1, 3), v(0xa1, 4)];
    let b = rootfs_b_with(one_segment(), MANIFEST_VERSION_B, &[&img], &conflict);
    assert_eq!(
        compile_host(b.get(), &[]).err(),
        Some(Error::ConflictingVerity)
    );
    let a = rootfs_a_with(1, &conflict);
    assert_eq!(
        compile_host(a.get(), &[layer.get()]).err(),
        Some(Error::ConflictingVerity)
    );
    for (d, vv, len) in [(31, 32, 31), (32, 33, 33), (0, 32, 0)] {
        let bad = [(vec![0xa1; d], vec![1; vv])];
        let b = rootfs_b_with(one_segment(), MANIFEST_VERSION_B, &[&img], &bad);
        assert_eq!(
            compile_host(b.get(), &[]).err(),
            Some(Error::BadDigestLength(len))
        );
    }
}

// ---- layers and whiteouts ----

/// Three layers, top first: the top whites out a file and a directory (hiding its subtree),
/// changes a file's permissions, replaces a symlink and a file by a directory of the same
/// ino, and adds entries naming inodes of lower layers.
fn three_layers() -> [Vec<I>; 3] {
    let top = vec![
        dir(
            1,
            &[
                ("keep", 2),
                ("gone", 3),
                ("dir", 4),
                ("new", 20),
                ("link", 6),
                ("was-file", 7),
            ],
        ),
        wht(3),
        file(5, &[ch(9, 0, 50)]).perm(0o600),
        lnk(6, b"new-target"),
        dir(7, &[("deep", 13)]),
        dir(20, &[("old", 5), ("mid", 12)]),
    ];
    let mid = vec![
        dir(
            1,
            &[
                ("keep", 2),
                ("gone", 3),
                ("dir", 4),
                ("link", 6),
                ("was-file", 7),
            ],
        ),
        dir(4, &[("f", 5), ("hidden", 8)]),
        wht(8),
        file(12, &[ch(8, 0, 3)]),
        file(13, &[ch(8, 3, 4)]),
    ];
    let bottom = vec![
        dir(1, &[("keep", 2), ("gone", 3), ("link", 6), ("was-file", 7)]),
        file(2, &[ch(1, 0, 10)]),
        dir(3, &[("x", 10), ("y", 11)]),
        file(5, &[ch(2, 0, 20)]),
        lnk(6, b"old-target"),
        file(7, &[ch(3, 0, 7)]),
        file(8, &[ch(4, 0, 1)]),
        file(10, &[ch(5, 0, 1)]),
        dir(11, &[]),
        file(13, &[ch(6, 0, 99)]),
    ];
    [top, mid, bottom]
}

#[test]
fn layers_and_whiteouts() {
    let [top, mid, bottom] = three_layers();
    let t = compile_both(&[&top, &mid, &bottom]);
    let root = at(&t, "");
    assert_eq!(
        names_of(&t, root),
        ["dir", "keep", "link", "new", "was-file"]
    );
    assert!(t.lookup(root, b"gone").is_none());
    assert_eq!(root.nlink, 5);
    // From the bottom layer, untouched.
    assert_eq!(pieces(&t, at(&t, "keep")), [(10, 1, 0, false)]);
    // The mid layer's directory; its whited-out entry is hidden; ino 5 from the top layer.
    assert_eq!(names_of(&t, at(&t, "dir")), ["f"]);
    let f = at(&t, "dir/f");
    assert_eq!((f.ino, f.permissions, f.file_size()), (5, 0o600, 50));
    assert_eq!(f.nlink, 2);
    assert_eq!(
        t.lookup(at(&t, "new"), b"old").unwrap().1.target,
        t.lookup(at(&t, "dir"), b"f").unwrap().1.target
    );
    assert_eq!(t.symlink_target(at(&t, "link")), b"new-target");
    // A file replaced by a directory naming a mid-layer file (ino 13 from the mid layer, not
    // the bottom one).
    let w = at(&t, "was-file");
    assert_eq!((w.ino, w.kind, w.nlink), (7, Kind::Dir, 2));
    assert_eq!(pieces(&t, at(&t, "was-file/deep")), [(4, 8, 3, false)]);
    assert_eq!(pieces(&t, at(&t, "new/mid")), [(3, 8, 0, false)]);
    // Nothing of the whited-out subtree or the replaced versions is in the tables.
    assert!(t.inodes.iter().all(|n| ![3, 8, 10, 11].contains(&n.ino)));
    let digests: Vec<u8> = t.blobs.iter().map(|b| b.digest[0]).collect();
    assert_eq!(digests, [1, 8, 9]);
    let s = t.stats();
    assert_eq!(
        (s.inodes, s.dirs, s.files, s.data_bytes, s.layers),
        (9, 4, 4, 10 + 50 + 4 + 3, 3)
    );
}

#[test]
fn whiteouts_everywhere() {
    // A whiteout with nothing below, a whited-out hard link (both names hidden), a directory
    // whose every entry is whited out.
    let top = vec![
        dir(1, &[("a", 2), ("b", 2), ("c", 3), ("d", 4)]),
        wht(2),
        wht(3),
        dir(4, &[("x", 5), ("y", 6)]),
        wht(5),
        wht(6),
    ];
    let lower = vec![dir(1, &[]), file(2, &[ch(1, 0, 1)])];
    let t = compile_both(&[&top, &lower]);
    assert_eq!(names_of(&t, at(&t, "")), ["d"]);
    assert!(names_of(&t, at(&t, "d")).is_empty());
    assert_eq!((at(&t, "").nlink, at(&t, "d").nlink), (3, 2));
    assert_eq!(t.blob_count(), 0);
    // A hidden entry makes room for a name that would otherwise be a duplicate.
    let img = [dir(1, &[("n", 2), ("n", 3)]), wht(2), file(3, &[])];
    let t = compile_both(&[&img]);
    assert_eq!(at(&t, "n").ino, 3);
    // The root cannot be whited out, not even by a lower-numbered layer's record.
    refuse(&[&[wht(1)], &[dir(1, &[])]], Error::BadRoot);
    // A whiteout below the top version of the root does not matter.
    let t = compile_both(&[&[dir(1, &[])], &[wht(1)]]);
    assert_eq!(t.inode_count(), 1);
    // The same ino in several layers is fine; the top one wins.
    let t = compile_both(&[&[file(2, &[])], &[dir(1, &[("f", 2)]), dir(2, &[])]]);
    assert_eq!(at(&t, "f").kind, Kind::File);
}

#[test]
fn layer_counts() {
    let root = [dir(1, &[])];
    let many: Vec<&[I]> = vec![&root[..]; MAX_LAYERS];
    let t = compile_both(&many);
    assert_eq!(t.stats().layers, MAX_LAYERS as u32);
    let too_many: Vec<&[I]> = vec![&root[..]; MAX_LAYERS + 1];
    refuse(&too_many, Error::TooManyLayers(MAX_LAYERS + 1));
    assert_eq!(
        Rootfs::parse(rootfs_b(&too_many).get()).err(),
        Some(Error::TooManyLayers(MAX_LAYERS + 1))
    );
    assert_eq!(
        Rootfs::parse(rootfs_a(MAX_LAYERS + 1).get()).err(),
        Some(Error::TooManyLayers(MAX_LAYERS + 1))
    );
    refuse(&[], Error::NoLayers);
    assert_eq!(
        Rootfs::parse(rootfs_a(0).get()).err(),
        Some(Error::NoLayers)
    );
    // Layer blobs with a Generation B rootfs; a Generation A rootfs without its layers.
    let v = vector(&root);
    assert_eq!(
        compile_host(rootfs_b(&[&root]).get(), &[v.get()]).err(),
        Some(Error::UnexpectedLayers)
    );
    assert_eq!(
        compile_host(rootfs_a(1).get(), &[]).err(),
        Some(Error::NoLayers)
    );
    // Unknown manifest versions.
    for version in [0, 1, 4, u64::MAX] {
        let b = rootfs_b_with(one_segment(), version, &[&root], &[]);
        assert_eq!(
            compile_host(b.get(), &[]).err(),
            Some(Error::UnsupportedManifestVersion(version))
        );
    }
    // A Generation A layer reference that is not a plain blob.
    let mut msg = Builder::new(one_segment());
    let mut r = msg.init_root::<manifest_capnp::rootfs::Builder<'_>>();
    r.set_manifest_version(MANIFEST_VERSION_A);
    let mut l = r.init_metadatas(2);
    l.reborrow().get(0).set_digest(&[1; 32]);
    l.reborrow().get(1).set_digest(&[2; 32]);
    l.get(1).set_offset(8);
    assert_eq!(
        Rootfs::parse(serialize(&msg).get()).err(),
        Some(Error::BadLayerRef(1))
    );
}

// ---- refusals ----

#[test]
fn refuse_cycles_and_two_parents() {
    // A directory naming itself, an ancestor, or the root.
    refuse(
        &[&[dir(1, &[("a", 2)]), dir(2, &[("me", 2)])]],
        Error::DirectoryTwice { ino: 2 },
    );
    refuse(
        &[&[
            dir(1, &[("a", 2)]),
            dir(2, &[("b", 3)]),
            dir(3, &[("c", 4)]),
            dir(4, &[("up", 2)]),
        ]],
        Error::DirectoryTwice { ino: 2 },
    );
    refuse(
        &[&[dir(1, &[("root", 1)])]],
        Error::EntryNamesRoot { dir: 1 },
    );
    refuse(
        &[&[dir(1, &[("a", 2)]), dir(2, &[("up", 1)])]],
        Error::EntryNamesRoot { dir: 2 },
    );
    // Two parents, and two names in one directory.
    refuse(
        &[&[
            dir(1, &[("a", 2), ("b", 3)]),
            dir(2, &[("s", 4)]),
            dir(3, &[("s", 4)]),
            dir(4, &[]),
        ]],
        Error::DirectoryTwice { ino: 4 },
    );
    refuse(
        &[&[dir(1, &[("a", 2), ("b", 2)]), dir(2, &[])]],
        Error::DirectoryTwice { ino: 2 },
    );
    // A cycle made by a layer: the top re-renders a deep directory to name a lower ancestor.
    refuse(
        &[
            &[dir(3, &[("loop", 2)])],
            &[dir(1, &[("a", 2)]), dir(2, &[("b", 3)]), dir(3, &[])],
        ],
        Error::DirectoryTwice { ino: 2 },
    );
    // A cycle that the root does not reach is ignored.
    let t = compile_both(&[&[dir(1, &[]), dir(2, &[("x", 3)]), dir(3, &[("y", 2)])]]);
    assert_eq!(t.inode_count(), 1);
}

#[test]
fn refuse_duplicate_names() {
    refuse(
        &[&[
            dir(1, &[("a", 2), ("b", 3), ("a", 3)]),
            file(2, &[]),
            file(3, &[]),
        ]],
        Error::DuplicateName { dir: 1 },
    );
    // Same name twice for one file (hard links need distinct names), and a file and a
    // directory with one name, in a subdirectory.
    refuse(
        &[&[
            dir(1, &[("d", 2)]),
            dir(2, &[("x", 3), ("x", 3)]),
            file(3, &[]),
        ]],
        Error::DuplicateName { dir: 2 },
    );
    refuse(
        &[&[
            dir(1, &[("d", 2)]),
            dir(2, &[("x", 3), ("x", 4)]),
            file(3, &[]),
            dir(4, &[]),
        ]],
        Error::DuplicateName { dir: 2 },
    );
    // Prefixes are not duplicates.
    let t = compile_both(&[&[dir(1, &[("x", 2), ("xx", 2), ("x\u{e9}", 2)]), file(2, &[])]]);
    assert_eq!(at(&t, "x").nlink, 3);
}

#[test]
fn refuse_bad_names() {
    let long = [b'n'; 256];
    for (name, why) in [
        (&b""[..], NameError::Empty),
        (b"a/b", NameError::Slash),
        (b"/", NameError::Slash),
        (b".", NameError::Dot),
        (b"..", NameError::Dot),
        (b"a\0b", NameError::Nul),
        (&long[..], NameError::TooLong),
    ] {
        refuse(
            &[&[dirb(1, &[(b"fine", 2), (name, 2)]), file(2, &[])]],
            Error::BadName { ino: 1, why },
        );
        refuse(
            &[&[dir(1, &[("d", 2)]), dirb(2, &[(name, 3)]), file(3, &[])]],
            Error::BadName { ino: 2, why },
        );
    }
    // 255 bytes, non-UTF-8 and dot-prefixed names are fine.
    let max = [b'n'; 255];
    let t = compile_both(&[&[
        dirb(1, &[(&max, 2), (b"\xff", 2), (b"...", 2)]),
        file(2, &[]),
    ]]);
    assert_eq!(t.lookup(at(&t, ""), &max).unwrap().1.target, 1);
    // Entries naming ino 0 or an ino no layer has.
    refuse(&[&[dir(1, &[("z", 0)])]], Error::BadDirEntryIno { ino: 1 });
    refuse(&[&[dir(1, &[("x", 9)])]], Error::InodeNotFound(9));
    refuse(
        &[&[dir(1, &[("x", 2)])], &[file(3, &[])]],
        Error::InodeNotFound(2),
    );
}

#[test]
fn refuse_permissions() {
    for bad in [0o10000u16, 0o100644, 0o40755, 0xffff] {
        refuse(
            &[&[dir(1, &[("f", 2)]), file(2, &[]).perm(bad)]],
            Error::BadPermissions {
                ino: 2,
                permissions: bad,
            },
        );
        refuse(
            &[&[dir(1, &[]).perm(bad)]],
            Error::BadPermissions {
                ino: 1,
                permissions: bad,
            },
        );
    }
    let t = compile_both(&[&[dir(1, &[("f", 2)]).perm(0), file(2, &[]).perm(0o7777)]]);
    assert_eq!(
        (at(&t, "").permissions, at(&t, "f").permissions),
        (0, 0o7777)
    );
}

#[test]
fn refuse_devices() {
    let dev = |k: K| vec![dir(1, &[("d", 2)]), I::new(2, k)];
    for (major, minor) in [
        (4096, 0),
        (0, 1 << 20),
        (u64::MAX, 0),
        (0, u64::MAX),
        (1 << 32, 1),
    ] {
        refuse(&[&dev(K::Chr(major, minor))], Error::BadDevice { ino: 2 });
        refuse(&[&dev(K::Blk(major, minor))], Error::BadDevice { ino: 2 });
    }
    for (major, minor) in [(0, 0), (4095, 0), (0, (1 << 20) - 1), (259, 3)] {
        let t = compile_both(&[&dev(K::Chr(major, minor))]);
        assert_eq!(at(&t, "d").rdev() as u64, (major << 20) | minor);
        let t = compile_both(&[&dev(K::Blk(major, minor))]);
        assert_eq!(at(&t, "d").rdev() as u64, (major << 20) | minor);
        assert_eq!(at(&t, "d").kind, Kind::Blk);
    }
}

#[test]
fn refuse_symlinks() {
    let link = |k: K| vec![dir(1, &[("l", 2)]), I::new(2, k)];
    let long = vec![b'x'; 4096];
    for target in [None, Some(vec![]), Some(b"a\0b".to_vec()), Some(long)] {
        refuse(&[&link(K::Lnk(target))], Error::BadSymlinkTarget { ino: 2 });
    }
    // A symlink whose additional has only xattrs has no target either.
    let mut no_target = I::new(2, K::Lnk(None)).xattr(b"user.x", b"1");
    refuse(
        &[&[dir(1, &[("l", 2)]), no_target.clone()]],
        Error::BadSymlinkTarget { ino: 2 },
    );
    no_target.kind = K::Lnk(Some(vec![b'y'; 4095]));
    let t = compile_both(&[&[dir(1, &[("l", 2)]), no_target]]);
    assert_eq!(at(&t, "l").st_size(), 4095);
    assert_eq!(t.xattr_get(at(&t, "l"), b"user.x"), Some(&b"1"[..]));
}

#[test]
fn refuse_xattrs() {
    let with = |k: &[u8], v: &[u8]| vec![dir(1, &[("f", 2)]), file(2, &[]).xattr(k, v)];
    let long = [b'k'; 256];
    for name in [
        &b""[..],
        b"user.\0",
        b"\0",
        &long[..],
        b"user.",
        b"trusted.",
        b"security.",
    ] {
        refuse(&[&with(name, b"v")], Error::BadXattrName { ino: 2 });
    }
    refuse(
        &[&with(b"user.big", &vec![0; 65537])],
        Error::XattrTooLarge { ino: 2 },
    );
    refuse(
        &[&[dir(1, &[])
            .xattr(b"user.a", b"1")
            .xattr(b"user.b", b"")
            .xattr(b"user.a", b"2")]],
        Error::DuplicateXattr { ino: 1 },
    );
    // The limits themselves, and names of other namespaces (the driver decides what it serves).
    let mut max = b"user.".to_vec();
    max.resize(255, b'm');
    let t = compile_both(&[&with(&max, &vec![1; 65536])]);
    assert_eq!(t.xattr_get(at(&t, "f"), &max).unwrap().len(), 65536);
    let t = compile_both(&[&with(b"system.posix_acl_access", b"\x02")]);
    assert_eq!(t.xattrs(at(&t, "f")).len(), 1);
}

#[test]
fn refuse_unknown_types() {
    refuse(
        &[&[dir(1, &[("u", 2)]), I::new(2, K::Unknown)]],
        Error::UnknownInodeType(2),
    );
    refuse(&[&[I::new(1, K::Unknown)]], Error::UnknownInodeType(1));
    // A mode discriminant past the schema's (patched in the message by hand).
    let img = [dir(1, &[("f", 2)]), I::new(2, K::Fifo).perm(0o123)];
    let b = rootfs_b(&[&img]);
    let mut bytes = b.get().to_vec();
    let found = patch_discriminant(&mut bytes, 2, 77);
    assert!(found);
    let b = Aligned::new(&bytes);
    assert_eq!(
        compile_host(b.get(), &[]).err(),
        Some(Error::UnknownUnion(77))
    );
}

/// Finds the data section of the inode `ino` in a one-segment Generation B rootfs of one layer
/// and overwrites its mode discriminant (the schema puts it at data bytes 8..10, right after
/// `ino`).
fn patch_discriminant(bytes: &mut [u8], ino: u64, value: u16) -> bool {
    let mut w = Words::new(bytes);
    let inodes = w.layer_inodes(0);
    for (data, _) in inodes {
        if w.get(data) == ino {
            let word = w.get(data + 1);
            w.set(data + 1, (word & !0xffff) | u64::from(value));
            w.store(bytes);
            return true;
        }
    }
    false
}

#[test]
fn refuse_chunks() {
    let f = |chunks: &[C]| vec![dir(1, &[("f", 2)]), file(2, chunks)];
    let max = i64::MAX as u64;
    refuse(
        &[&f(&[ch(1, 1, u64::MAX)])],
        Error::ChunkOverflow { ino: 2 },
    );
    refuse(
        &[&f(&[ch(1, u64::MAX, 1)])],
        Error::ChunkOverflow { ino: 2 },
    );
    refuse(
        &[&f(&[ch(1, 0, max), ch(2, 0, 1)])],
        Error::FileTooLarge { ino: 2 },
    );
    refuse(&[&f(&[ch(1, 0, u64::MAX)])], Error::FileTooLarge { ino: 2 });
    let t = compile_both(&[&f(&[ch(1, 0, max - 1), ch(2, 0, 1), ch(3, u64::MAX, 0)])]);
    assert_eq!(at(&t, "f").file_size(), max);
    assert_eq!(t.stats().data_bytes, max);
    // Against a smaller file size limit, and a sum that overflows u64 before the limit.
    let b = rootfs_b(&[&f(&[ch(1, 0, 600), ch(2, 0, 400)])]);
    let at_most = |max_file_size| {
        compile::<HostAlloc, _>(
            &Source {
                rootfs: b.get(),
                layers: &[],
            },
            Limits {
                max_file_size,
                ..HOST_LIMITS
            },
            &mut CountPolls::default(),
        )
        .map(|t| t.stats().data_bytes)
    };
    assert_eq!(at_most(1000), Ok(1000));
    assert_eq!(at_most(999), Err(Error::FileTooLarge { ino: 2 }));
    assert_eq!(at_most(600), Err(Error::FileTooLarge { ino: 2 }));
    let b = rootfs_b(&[&f(&[ch(1, 0, u64::MAX), ch(2, 0, 1)])]);
    let unlimited = Limits {
        max_file_size: u64::MAX,
        ..HOST_LIMITS
    };
    assert_eq!(
        compile::<HostAlloc, _>(
            &Source {
                rootfs: b.get(),
                layers: &[]
            },
            unlimited,
            &mut CountPolls::default()
        )
        .err(),
        Some(Error::ChunkOverflow { ino: 2 })
    );
    // Digests that are not 32 bytes.
    for len in [0usize, 31, 33] {
        let bad = C {
            digest: vec![1; len],
            ..ch(1, 0, 1)
        };
        refuse(&[&f(&[ch(1, 0, 1), bad])], Error::BadDigestLength(len));
    }
}

/// An error for a layer index.
type ErrorAt = fn(usize) -> Error;

#[test]
fn refuse_ino_order() {
    let ok = [dir(1, &[])];
    let cases: [(Vec<I>, ErrorAt); 4] = [
        (vec![dir(1, &[]), wht(3), wht(2)], |layer| {
            Error::UnsortedInodes { layer, ino: 2 }
        }),
        (vec![dir(1, &[]), wht(2), wht(2)], |layer| {
            Error::DuplicateInode { layer, ino: 2 }
        }),
        (vec![wht(0), dir(1, &[])], |layer| Error::ZeroIno { layer }),
        (vec![dir(1, &[]), wht(5), wht(0)], |layer| Error::ZeroIno {
            layer,
        }),
    ];
    for (bad, want) in cases {
        refuse(&[&bad], want(0));
        refuse(&[&ok, &bad], want(1));
        refuse(&[&ok, &ok, &bad, &ok], want(2));
    }
}

#[test]
fn refuse_root_problems() {
    refuse(&[&[file(1, &[])]], Error::BadRoot);
    refuse(&[&[lnk(1, b"x")]], Error::BadRoot);
    refuse(&[&[dir(2, &[])]], Error::BadRoot);
    refuse(&[&[wht(1)]], Error::BadRoot);
    refuse(&[&[wht(1)], &[dir(1, &[])]], Error::BadRoot);
    refuse(&[&[file(1, &[])], &[dir(1, &[])]], Error::BadRoot);
    // The top layer may hold no root of its own.
    let t = compile_both(&[&[file(2, &[])], &[dir(1, &[("f", 2)])]]);
    assert_eq!(at(&t, "f").ino, 2);
    refuse(&[&[]], Error::BadRoot);
}

/// A message's words, for reading and patching pointers by hand.
struct Words(Vec<u64>);

impl Words {
    fn new(bytes: &[u8]) -> Self {
        assert_eq!(segment_count(bytes), 1, "one segment only");
        Self(
            bytes
                .chunks(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        )
    }
    fn get(&self, at: usize) -> u64 {
        self.0[at]
    }
    fn set(&mut self, at: usize, w: u64) {
        self.0[at] = w;
    }
    fn store(&self, bytes: &mut [u8]) {
        for (c, w) in bytes.chunks_mut(8).zip(&self.0) {
            c.copy_from_slice(&w.to_le_bytes());
        }
    }
    fn bytes(&self) -> Aligned {
        let v: Vec<u8> = self.0.iter().flat_map(|w| w.to_le_bytes()).collect();
        Aligned::new(&v)
    }
    /// Where the pointer at word `at` points (word index in the buffer).
    fn target(&self, at: usize) -> usize {
        let off = (self.0[at] as u32 as i32) >> 2;
        (at as i64 + 1 + i64::from(off)) as usize
    }
    /// The struct the pointer at `at` points to: (data start, pointer section start).
    fn strukt(&self, at: usize) -> (usize, usize) {
        assert_eq!(self.0[at] & 3, 0, "struct pointer at {at}");
        let data = self.target(at);
        (data, data + ((self.0[at] >> 32) & 0xffff) as usize)
    }
    /// The elements of the struct list the pointer at `at` points to: (data, pointers) each.
    fn struct_list(&self, at: usize) -> Vec<(usize, usize)> {
        assert_eq!(self.0[at] & 3, 1, "list pointer at {at}");
        assert_eq!((self.0[at] >> 32) & 7, 7, "struct list at {at}");
        let tag = self.target(at);
        let count = ((self.0[tag] as u32) >> 2) as usize;
        let data = ((self.0[tag] >> 32) & 0xffff) as usize;
        let ptrs = (self.0[tag] >> 48) as usize;
        (0..count)
            .map(|i| {
                let d = tag + 1 + i * (data + ptrs);
                (d, d + data)
            })
            .collect()
    }
    /// Makes the pointer at `from` point where the pointer at `to` points, with its type.
    fn alias(&mut self, from: usize, to: usize) {
        let target = self.target(to) as i64;
        let off = target - from as i64 - 1;
        let low = ((off as i32) << 2) as u32 as u64 | (self.0[to] & 3);
        self.0[from] = (self.0[to] & !0xffff_ffff) | low;
    }
    /// The inodes of Generation B layer `layer`: (data, pointers) of each.
    fn layer_inodes(&self, layer: usize) -> Vec<(usize, usize)> {
        // Word 0 is the segment table, word 1 the root pointer.
        let (_, rootfs_ptrs) = self.strukt(1);
        let (_, vector_ptrs) = self.struct_list(rootfs_ptrs)[layer];
        self.struct_list(vector_ptrs)
    }
}

// ---- messages: buffers, segments, aliasing ----

#[test]
fn refuse_buffers() {
    let img = kitchen_sink();
    let b = rootfs_b(&[&img]);
    let v = vector(&img);
    let a = rootfs_a(1);
    for (name, buf, gen_a) in [
        ("rootfs B", &b, false),
        ("layer", &v, true),
        ("rootfs A", &a, false),
    ] {
        let src = |bytes: &[u8]| -> Result<HostTables> {
            let al = Aligned::new(bytes);
            if gen_a {
                compile_host(a.get(), &[al.get()])
            } else if name == "rootfs A" {
                compile_host(al.get(), &[v.get()])
            } else {
                compile_host(al.get(), &[])
            }
        };
        let bytes = buf.get();
        assert!(src(bytes).is_ok(), "{name}");
        // Trailing bytes, whole words or not.
        for extra in [1usize, 7, 8, 4096] {
            let mut long = bytes.to_vec();
            long.resize(bytes.len() + extra, 0);
            assert_eq!(
                src(&long).err(),
                Some(Error::TrailingBytes(extra)),
                "{name}"
            );
        }
        // Every truncation.
        for cut in 0..bytes.len() {
            let e = src(&bytes[..cut]).err();
            let want = if cut < 8 {
                Error::BadSegmentTable
            } else {
                Error::Truncated
            };
            assert_eq!(e, Some(want), "{name} cut at {cut}");
        }
    }
    // Misaligned.
    let mut raw = vec![0u8; b.get().len() + 16];
    let off = raw.as_ptr().align_offset(8) + 4;
    raw[off..off + b.get().len()].copy_from_slice(b.get());
    assert_eq!(
        compile_host(&raw[off..off + b.get().len()], &[]).err(),
        Some(Error::Misaligned)
    );
}

/// `buf` (one segment) with `extra` empty segments added to its segment table.
fn with_empty_segments(buf: &[u8], extra: usize) -> Aligned {
    let count = 1 + extra;
    let words = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    let mut out = vec![];
    out.extend_from_slice(&(count as u32 - 1).to_le_bytes());
    out.extend_from_slice(&words.to_le_bytes());
    for _ in 0..extra {
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    if count.is_multiple_of(2) {
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(&buf[8..]);
    Aligned::new(&out)
}

#[test]
fn segment_counts() {
    let img = kitchen_sink();
    let one = compile_b(&[&img]).unwrap();
    let b = rootfs_b(&[&img]);
    // Up to the most segments the compiler accepts (empty ones here), the same tables.
    for extra in [1, 2, MAX_SEGMENTS - 1] {
        let m = with_empty_segments(b.get(), extra);
        assert_eq!(segment_count(m.get()), extra + 1);
        assert_same_tables(&compile_host(m.get(), &[]).unwrap(), &one);
    }
    for extra in [MAX_SEGMENTS, 1000] {
        let m = with_empty_segments(b.get(), extra);
        assert_eq!(
            compile_host(m.get(), &[]).err(),
            Some(Error::TooManySegments)
        );
        assert_eq!(Rootfs::parse(m.get()).err(), Some(Error::TooManySegments));
    }
    // A segment table claiming 2^32 segments, and one whose sizes overflow.
    let mut bytes = b.get().to_vec();
    bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        compile_host(Aligned::new(&bytes).get(), &[]).err(),
        Some(Error::TooManySegments)
    );
    let mut bytes = b.get().to_vec();
    bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        compile_host(Aligned::new(&bytes).get(), &[]).err(),
        Some(Error::Truncated)
    );
    // A real message of many small segments (every object in its own).
    let small = HeapAllocator::new()
        .first_segment_words(1)
        .allocation_strategy(AllocationStrategy::FixedSize);
    let files = many_files(40, 1);
    let many = rootfs_b_with(small, MANIFEST_VERSION_B, &[&files], &[]);
    assert!(segment_count(many.get()) > MAX_SEGMENTS);
    assert_eq!(
        compile_host(many.get(), &[]).err(),
        Some(Error::TooManySegments)
    );
}

#[test]
fn multi_segment_messages() {
    let [top, mid, bottom] = three_layers();
    let img = kitchen_sink();
    let cases: [&[&[I]]; 2] = [&[&img], &[&top, &mid, &bottom]];
    for layers in cases {
        let want_b = compile_b(layers).unwrap();
        let want_a = compile_a(layers).unwrap();
        let mut counts = vec![];
        for first in [1u32, 4, 8, 16, 64] {
            for strategy in [
                AllocationStrategy::GrowHeuristically,
                AllocationStrategy::FixedSize,
            ] {
                let alloc = || {
                    HeapAllocator::new()
                        .first_segment_words(first)
                        .allocation_strategy(strategy)
                };
                let b = rootfs_b_with(alloc(), MANIFEST_VERSION_B, layers, &[]);
                let n = segment_count(b.get());
                if n > MAX_SEGMENTS {
                    assert_eq!(
                        compile_host(b.get(), &[]).err(),
                        Some(Error::TooManySegments)
                    );
                    continue;
                }
                counts.push(n);
                let t = compile_host(b.get(), &[]).unwrap();
                assert_same_tables(&t, &want_b);
                assert_eq!(t.stats().metadata_bytes, b.get().len() as u64);
                let blobs: Vec<Aligned> = layers.iter().map(|l| vector_with(alloc(), l)).collect();
                let refs: Vec<&[u8]> = blobs.iter().map(|b| b.get()).collect();
                let t = compile_host(rootfs_a(layers.len()).get(), &refs).unwrap();
                assert_same_tables(&t, &want_a);
            }
        }
        // Several segments were really exercised.
        assert!(counts.iter().any(|&n| n >= 8), "segment counts {counts:?}");
        assert!(
            counts.iter().filter(|&&n| n > 1).count() >= 4,
            "segment counts {counts:?}"
        );
    }
}

/// `count` files in the root, each with one chunk list of `chunks` chunks.
fn many_files(count: u64, chunks: u64) -> Vec<I> {
    let names: Vec<String> = (0..count).map(|i| format!("f{i}")).collect();
    let entries: Vec<(&str, u64)> = names
        .iter()
        .zip(2..)
        .map(|(n, i)| (n.as_str(), i))
        .collect();
    let list: Vec<C> = (0..chunks).map(|c| ch(c as u8, c, 1)).collect();
    let mut v = vec![dir(1, &entries)];
    v.extend((0..count).map(|i| file(i + 2, &list)));
    v
}

#[test]
fn aliasing_layers_hit_the_traversal_limit() {
    // 64 layers whose inode-list pointers all name the list of the first (1,000 inodes).
    let img = many_files(999, 1);
    let mut layers: Vec<&[I]> = vec![&img];
    let empty: Vec<I> = vec![];
    layers.resize(MAX_LAYERS, &empty[..]);
    let b = rootfs_b(&layers);
    let aliased = |count: usize| {
        let mut w = Words::new(b.get());
        let (_, rootfs_ptrs) = w.strukt(1);
        let vectors = w.struct_list(rootfs_ptrs);
        for &(_, p) in &vectors[1..count] {
            w.alias(p, vectors[0].1);
        }
        w.bytes()
    };
    // Not aliased, and aliased once: compiles, the same tree.
    let t0 = compile_host(b.get(), &[]).unwrap();
    let t2 = compile_host(aliased(2).get(), &[]).unwrap();
    assert_same_tables(&t0, &t2);
    assert_eq!(t2.inode_count(), 1000);
    // Aliased 64 times: the reader runs out of budget.
    let a = aliased(MAX_LAYERS);
    assert!(a.get().len() < 200_000);
    assert_eq!(
        compile_host(a.get(), &[]).err(),
        Some(Error::TraversalLimit)
    );
    assert!(!exercise_compile(a.get(), &[]));
}

#[test]
fn aliasing_chunk_lists_hit_the_traversal_limit() {
    // 500 files whose chunk-list pointers name the list of the first (2,000 chunks).
    let mut img = many_files(500, 0);
    img[1] = file(2, &(0..2000).map(|c| ch(c as u8, c, 3)).collect::<Vec<_>>());
    let b = rootfs_b(&[&img]);
    let aliased = |count: usize| {
        let mut w = Words::new(b.get());
        let inodes = w.layer_inodes(0);
        // inodes[0] is the root; the mode union's pointer is the inode's pointer 0.
        for &(_, p) in &inodes[2..count + 1] {
            w.alias(p, inodes[1].1);
        }
        w.bytes()
    };
    let t = compile_host(aliased(2).get(), &[]).unwrap();
    assert_eq!(t.extents(at(&t, "f1")), t.extents(at(&t, "f0")));
    assert_eq!(at(&t, "f1").file_size(), 6000);
    check_invariants(&t).unwrap();
    let a = aliased(500);
    assert_eq!(
        compile_host(a.get(), &[]).err(),
        Some(Error::TraversalLimit)
    );
    assert!(!exercise_compile(a.get(), &[]));
}

#[test]
fn aliasing_entry_lists_hit_the_traversal_limit() {
    // 300 directories whose entry lists all name the one of the first (1,000 hard links to
    // one file): without the budget, 300,000 entries from a message of a few thousand words.
    let names: Vec<String> = (0..300).map(|i| format!("d{i}")).collect();
    let entries: Vec<(&str, u64)> = names
        .iter()
        .zip(2..)
        .map(|(n, i)| (n.as_str(), i))
        .collect();
    let links: Vec<String> = (0..1000).map(|i| format!("l{i}")).collect();
    let link_entries: Vec<(&str, u64)> = links.iter().map(|n| (n.as_str(), 1000)).collect();
    let mut img = vec![dir(1, &entries), dir(2, &link_entries)];
    img.extend((3..302).map(|i| dir(i, &[])));
    img.push(file(1000, &[ch(1, 0, 1)]));
    let b = rootfs_b(&[&img]);
    let aliased = |count: usize| {
        let mut w = Words::new(b.get());
        let inodes = w.layer_inodes(0);
        // Each directory's pointer 0 is its `Dir` struct; the entries are its pointer 0.
        let (_, first) = w.strukt(inodes[1].1);
        for &(_, p) in &inodes[2..count + 1] {
            let (_, d) = w.strukt(p);
            w.alias(d, first);
        }
        w.bytes()
    };
    let t = compile_host(aliased(2).get(), &[]).unwrap();
    assert_eq!(names_of(&t, at(&t, "d1")).len(), 1000);
    assert_eq!(at(&t, "d0/l5").nlink, 2000);
    check_invariants(&t).unwrap();
    let a = aliased(300);
    assert_eq!(
        compile_host(a.get(), &[]).err(),
        Some(Error::TraversalLimit)
    );
}

// ---- limits, interruption, polls, time ----

/// CPU time of the calling thread: what the compile costs, whatever else the machine runs.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn table_memory_limit() {
    let [top, mid, bottom] = three_layers();
    let b = rootfs_b(&[&top, &mid, &bottom]);
    let with = |max_table_bytes| {
        compile::<HostAlloc, _>(
            &Source {
                rootfs: b.get(),
                layers: &[],
            },
            Limits {
                max_table_bytes,
                ..HOST_LIMITS
            },
            &mut CountPolls::default(),
        )
    };
    let full = with(HOST_LIMITS.max_table_bytes).unwrap();
    let table_bytes = full.stats().table_bytes as usize;
    assert!(table_bytes > 0);
    // The smallest limit that works covers the tables; below it, TooLarge and nothing else.
    let (mut lo, mut hi) = (0usize, HOST_LIMITS.max_table_bytes);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        match with(mid) {
            Ok(_) => hi = mid,
            Err(e) => {
                assert_eq!(e, Error::TooLarge);
                lo = mid;
            }
        }
    }
    assert!(hi >= table_bytes, "limit {hi} < tables {table_bytes}");
    let t = with(hi).unwrap();
    assert_same_tables(&t, &full);
    assert!(t.stats().table_bytes as usize <= hi);
    for limit in [0, 1, hi / 2, hi - 1] {
        assert_eq!(with(limit).err(), Some(Error::TooLarge));
    }
    // A large image against a small limit stops early.
    let chain = chain(10_000, false);
    let small = Limits {
        max_table_bytes: 64 << 10,
        ..HOST_LIMITS
    };
    assert_eq!(
        compile::<HostAlloc, _>(
            &Source {
                rootfs: chain.get(),
                layers: &[]
            },
            small,
            &mut CountPolls::default()
        )
        .err(),
        Some(Error::TooLarge)
    );
}

/// Stops the compile at poll number `stop` (counted from 0) with `err`.
struct StopAt {
    polls: u64,
    stop: u64,
    err: Error,
}

impl Env for StopAt {
    fn poll(&mut self) -> Result<()> {
        if self.polls == self.stop {
            return Err(self.err);
        }
        self.polls += 1;
        Ok(())
    }
}

#[test]
fn interruption_at_every_poll() {
    // An image with work in every phase: many inodes, a reversed directory to sort, chunks of
    // many blobs out of order, xattrs.
    let names: Vec<String> = (0..1000).rev().map(|i| format!("e{i:05}")).collect();
    let entries: Vec<(&str, u64)> = names
        .iter()
        .zip(2..)
        .map(|(n, i)| (n.as_str(), i))
        .collect();
    let mut img = vec![dir(1, &entries)];
    for i in 0..1000u64 {
        let mut f = file(
            i + 2,
            &[ch((i * 7 % 251) as u8, i, 1), ch((i % 13) as u8, 0, 2)],
        );
        if i % 3 == 0 {
            f = f.xattr(b"user.b", b"1").xattr(b"user.a", b"2");
        }
        img.push(f);
    }
    let b = rootfs_b(&[&img]);
    let src = Source {
        rootfs: b.get(),
        layers: &[],
    };
    let mut count = CountPolls::default();
    let want = compile::<HostAlloc, _>(&src, HOST_LIMITS, &mut count).unwrap();
    check_poll_rate(&want, count.0).unwrap();
    let total = count.0;
    assert!(total > 20, "{total} polls");
    for stop in 0..total {
        let mut env = StopAt {
            polls: 0,
            stop,
            err: Error::Interrupted,
        };
        assert_eq!(
            compile::<HostAlloc, _>(&src, HOST_LIMITS, &mut env).err(),
            Some(Error::Interrupted),
            "stopped at poll {stop} of {total}"
        );
    }
    let mut env = StopAt {
        polls: 0,
        stop: total,
        err: Error::Interrupted,
    };
    let t = compile::<HostAlloc, _>(&src, HOST_LIMITS, &mut env).unwrap();
    assert_same_tables(&t, &want);
    // Whatever the environment returns is what the compile returns.
    let mut env = StopAt {
        polls: 0,
        stop: total / 2,
        err: Error::OutOfMemory,
    };
    assert_eq!(
        compile::<HostAlloc, _>(&src, HOST_LIMITS, &mut env).err(),
        Some(Error::OutOfMemory)
    );
}

/// A Generation B rootfs of a chain of `depth` nested directories below the root, numbered
/// with the scan order (each child has a higher ino) or against it, with a file at the end.
fn chain(depth: u64, against: bool) -> Aligned {
    let ino = |level: u64| {
        if against {
            depth + 2 - level
        } else {
            level + 1
        }
    };
    let mut v: Vec<I> = (0..=depth)
        .map(|level| {
            let child = if level < depth {
                ino(level + 1)
            } else {
                depth + 2
            };
            let name = if level < depth { "d" } else { "leaf" };
            dir(if level == 0 { 1 } else { ino(level) }, &[(name, child)])
        })
        .collect();
    v.push(file(depth + 2, &[ch(1, 0, 5)]));
    v.sort_by_key(|i| i.ino);
    let mut msg = Builder::new_default();
    let mut r = msg.init_root::<m::rootfs::Builder<'_>>();
    r.set_manifest_version(MANIFEST_VERSION_B);
    fill_vector(r.init_metadatas(1).get(0), &v);
    serialize(&msg)
}

#[test]
fn linear_time_deep_chains() {
    const DEPTH: u64 = 100_000;
    let mut times = vec![];
    for against in [false, true] {
        let b = chain(DEPTH, against);
        assert!(segment_count(b.get()) > 1);
        let mut polls = CountPolls::default();
        let start = thread_cpu_time();
        let t = compile::<HostAlloc, _>(
            &Source {
                rootfs: b.get(),
                layers: &[],
            },
            HOST_LIMITS,
            &mut polls,
        )
        .unwrap();
        let took = thread_cpu_time() - start;
        times.push(took);
        eprintln!(
            "chain of {DEPTH} directories (against scan order: {against}): {took:?}, {} polls",
            polls.0
        );
        assert_eq!(t.inode_count() as u64, DEPTH + 2);
        check_poll_rate(&t, polls.0).unwrap();
        // Merge (one unit per inode) and walk (one per inode, one per entry).
        assert!(polls.0 * 1024 >= 3 * (DEPTH + 1));
        // Walk down: every level has one subdirectory, the last one the file.
        let mut n = at(&t, "");
        for level in 0..DEPTH {
            assert_eq!(n.nlink, 3, "level {level}");
            n = t.inode(t.lookup(n, b"d").unwrap().1.target).unwrap();
        }
        assert_eq!(n.nlink, 2);
        let leaf = t.inode(t.lookup(n, b"leaf").unwrap().1.target).unwrap();
        assert_eq!((leaf.ino, leaf.file_size()), (DEPTH + 2, 5));
        check_invariants(&t).unwrap();
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    // Numbering does not change the cost by much (the old walk was quadratic in one order).
    assert!(
        times[1] < times[0] * 4 + Duration::from_millis(100),
        "{times:?}"
    );
}

#[test]
fn linear_time_wide_directory() {
    // 100,000 entries in reverse order (a full heapsort), then every name looked up.
    const N: u64 = 100_000;
    let names: Vec<String> = (0..N).rev().map(|i| format!("{i:07}")).collect();
    let entries: Vec<(&str, u64)> = names
        .iter()
        .zip(2..)
        .map(|(n, i)| (n.as_str(), i))
        .collect();
    let mut img = vec![dir(1, &entries)];
    img.extend((2..N + 2).map(|i| I::new(i, K::Fifo)));
    let mut msg = Builder::new_default();
    let mut r = msg.init_root::<m::rootfs::Builder<'_>>();
    r.set_manifest_version(MANIFEST_VERSION_B);
    fill_vector(r.init_metadatas(1).get(0), &img);
    let b = serialize(&msg);
    let mut polls = CountPolls::default();
    let start = thread_cpu_time();
    let t = compile::<HostAlloc, _>(
        &Source {
            rootfs: b.get(),
            layers: &[],
        },
        HOST_LIMITS,
        &mut polls,
    )
    .unwrap();
    let took = thread_cpu_time() - start;
    eprintln!(
        "directory of {N} reversed entries: {took:?}, {} polls",
        polls.0
    );
    check_poll_rate(&t, polls.0).unwrap();
    // The sort polls too: at least once per 256 sift steps, and a heapsort of N takes more
    // than N log2(N) / 2 of them.
    let sift_steps = N * 16 / 2;
    assert!(
        polls.0 >= (3 * N) / 1024 + sift_steps / 256,
        "{} polls",
        polls.0
    );
    let root = at(&t, "");
    let got = names_of(&t, root);
    let mut want = names.clone();
    want.sort();
    assert_eq!(got, want);
    for (pos, name) in want.iter().enumerate() {
        let (p, e) = t.lookup(root, name.as_bytes()).unwrap();
        assert_eq!(p, pos);
        assert_eq!(
            t.inode(e.target).unwrap().ino,
            N + 1 - name.parse::<u64>().unwrap()
        );
    }
    check_invariants(&t).unwrap();
    assert!(took < Duration::from_secs(1), "{took:?}");
}

// ---- random trees against a reference model ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a path of the merged tree should look like, computed directly from the layers: the
/// top layer's version of each ino wins, whiteouts hide names, directories list what their
/// top version lists.
#[derive(Debug, PartialEq)]
struct Expect {
    ino: u64,
    kind: Kind,
    perm: u16,
    uid: u32,
    size: u64,
    rdev: u64,
    target: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    nlink: u64,
    chunks: Vec<(u64, Vec<u8>, u64, bool)>,
}

fn model(layers: &[&[I]]) -> BTreeMap<Vec<u8>, Expect> {
    let mut top: HashMap<u64, &I> = HashMap::new();
    for l in layers.iter().rev() {
        for i in l.iter() {
            top.insert(i.ino, i);
        }
    }
    let visible = |e: &(Vec<u8>, u64)| !matches!(top[&e.1].kind, K::Wht);
    let mut names: HashMap<u64, u64> = HashMap::new();
    let mut out = BTreeMap::new();
    let mut queue = vec![(vec![], 1u64)];
    while let Some((path, ino)) = queue.pop() {
        let i = top[&ino];
        let mut nlink = 0;
        if let K::Dir(entries) = &i.kind {
            nlink = 2;
            for e in entries.iter().filter(|e| visible(e)) {
                let mut p = path.clone();
                p.push(b'/');
                p.extend_from_slice(&e.0);
                *names.entry(e.1).or_default() += 1;
                if matches!(top[&e.1].kind, K::Dir(_)) {
                    nlink += 1;
                }
                queue.push((p, e.1));
            }
        }
        let (kind, size, rdev, target, chunks) = match &i.kind {
            K::Dir(_) => (Kind::Dir, 0, 0, vec![], vec![]),
            K::File(c) => (
                Kind::File,
                c.iter().map(|c| c.len).sum(),
                0,
                vec![],
                c.iter()
                    .filter(|c| c.len > 0)
                    .map(|c| (c.len, c.digest.clone(), c.offset, c.compressed))
                    .collect(),
            ),
            K::Lnk(t) => {
                let t = t.clone().unwrap();
                (Kind::Symlink, t.len() as u64, 0, t, vec![])
            }
            K::Fifo => (Kind::Fifo, 0, 0, vec![], vec![]),
            K::Sock => (Kind::Sock, 0, 0, vec![], vec![]),
            K::Chr(a, b) => (Kind::Chr, 0, (a << 20) | b, vec![], vec![]),
            K::Blk(a, b) => (Kind::Blk, 0, (a << 20) | b, vec![], vec![]),
            K::Wht | K::Unknown => unreachable!(),
        };
        let mut xattrs = i.xattrs.clone();
        xattrs.sort();
        out.insert(
            path,
            Expect {
                ino,
                kind,
                perm: i.perm,
                uid: i.uid,
                size,
                rdev,
                target,
                xattrs,
                nlink,
                chunks,
            },
        );
    }
    for e in out.values_mut() {
        if e.kind != Kind::Dir {
            e.nlink = names[&e.ino];
        }
    }
    out
}

/// The compiled tables in the model's terms.
fn observed(t: &HostTables) -> BTreeMap<Vec<u8>, Expect> {
    let mut out = BTreeMap::new();
    let mut queue = vec![(vec![], ROOT_INDEX)];
    while let Some((path, index)) = queue.pop() {
        let n = t.inode(index).unwrap();
        for e in t.entries(n) {
            let mut p = path.clone();
            p.push(b'/');
            p.extend_from_slice(t.name(e));
            queue.push((p, e.target));
        }
        let mut prev = 0;
        let chunks = t
            .extents(n)
            .iter()
            .map(|e| {
                let len = e.end - prev;
                prev = e.end;
                (
                    len,
                    t.blob(e.blob).unwrap().digest.to_vec(),
                    e.offset,
                    e.compressed(),
                )
            })
            .collect();
        out.insert(
            path,
            Expect {
                ino: n.ino,
                kind: n.kind,
                perm: n.permissions,
                uid: n.uid,
                size: n.st_size(),
                rdev: u64::from(n.rdev()),
                target: t.symlink_target(n).to_vec(),
                xattrs: t
                    .xattrs(n)
                    .iter()
                    .map(|x| (t.xattr_name(x).to_vec(), t.xattr_value(x).to_vec()))
                    .collect(),
                nlink: u64::from(n.nlink),
                chunks,
            },
        );
    }
    out
}

/// A random valid image of 1 to 4 layers. The bottom layer is a random tree; each layer above
/// re-renders some directories (dropping, whiting out and adding entries), changes some
/// inodes' attributes, and adds new inodes, so that the merged tree stays valid.
fn random_layers(r: &mut Rng) -> Vec<Vec<I>> {
    let mut next_ino = 2u64;
    let mut inos = |r: &mut Rng| {
        next_ino += 1 + r.below(3);
        next_ino
    };
    let random_leaf = |r: &mut Rng, ino: u64| -> I {
        let kind = match r.below(8) {
            0 => K::Lnk(Some(format!("t{}", r.below(100)).into_bytes())),
            1 => K::Fifo,
            2 => K::Sock,
            3 => K::Chr(r.below(300), r.below(1 << 20)),
            4 => K::Blk(r.below(4096), r.below(70000)),
            _ => K::File(
                (0..r.below(4))
                    .map(|_| C {
                        compressed: r.below(2) == 0,
                        ..ch(r.below(6) as u8, r.below(1000), r.below(5000))
                    })
                    .collect(),
            ),
        };
        let mut i = I::new(ino, kind)
            .perm(r.below(0o10000) as u16)
            .owner(r.below(3) as u32, 7);
        for k in 0..r.below(3) {
            i = i.xattr(
                format!("user.x{}", r.below(4) * 10 + k).as_bytes(),
                &[k as u8; 3],
            );
        }
        i.xattrs.sort();
        i.xattrs.dedup_by(|a, b| a.0 == b.0);
        i
    };
    // The bottom layer: a random tree.
    let mut all: BTreeMap<u64, I> = BTreeMap::new();
    all.insert(1, dir(1, &[]));
    let mut dirs = vec![1u64];
    let mut files = vec![];
    for n in 0..r.below(40) {
        let parent = dirs[r.below(dirs.len() as u64) as usize];
        let name = format!("n{n}").into_bytes();
        let ino = if r.below(8) == 0 && !files.is_empty() {
            files[r.below(files.len() as u64) as usize]
        } else if r.below(3) == 0 {
            let ino = inos(r);
            all.insert(ino, dir(ino, &[]).perm(r.below(0o10000) as u16));
            dirs.push(ino);
            ino
        } else {
            let ino = inos(r);
            all.insert(ino, random_leaf(r, ino));
            if matches!(all[&ino].kind, K::File(_)) {
                files.push(ino);
            }
            ino
        };
        if let K::Dir(e) = &mut all.get_mut(&parent).unwrap().kind {
            e.push((name, ino));
        }
    }
    let mut layers = vec![all.values().cloned().collect::<Vec<_>>()];
    // Layers above.
    for l in 0..r.below(4) {
        let mut layer: BTreeMap<u64, I> = BTreeMap::new();
        for &d in &dirs {
            if r.below(3) != 0 {
                continue;
            }
            let mut v = all[&d].clone();
            let K::Dir(entries) = &mut v.kind else {
                unreachable!()
            };
            let mut keep = vec![];
            for (name, ino) in entries.drain(..) {
                match r.below(6) {
                    // Dropped: the name goes, its inode may still be named elsewhere.
                    0 if !matches!(all[&ino].kind, K::Dir(_)) => {}
                    // Whited out: the ino is hidden wherever it is named.
                    1 => {
                        keep.push((name, ino));
                        layer.insert(ino, wht(ino));
                    }
                    _ => keep.push((name, ino)),
                }
            }
            for k in 0..r.below(3) {
                let ino = inos(r);
                keep.push((format!("l{l}k{k}").into_bytes(), ino));
                layer.insert(ino, random_leaf(r, ino));
            }
            *entries = keep;
            layer.insert(d, v);
        }
        // Attribute changes of leaves.
        for (&ino, i) in &all {
            if !matches!(i.kind, K::Dir(_)) && r.below(5) == 0 && !layer.contains_key(&ino) {
                layer.insert(ino, random_leaf(r, ino));
            }
        }
        // A whiteout in this layer hides the ino for good in the model too: keep the model's
        // view (`all`) in step so that upper layers see the merged state.
        for (ino, i) in &layer {
            all.insert(*ino, i.clone());
        }
        dirs.retain(|d| matches!(all[d].kind, K::Dir(_)));
        files.retain(|f| matches!(all[f].kind, K::File(_)));
        layers.push(layer.into_values().collect());
    }
    layers.reverse();
    layers
}

#[test]
fn random_images_match_the_model() {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let mut layered = 0;
    for round in 0..300 {
        let layers = random_layers(&mut r);
        let refs: Vec<&[I]> = layers.iter().map(|l| &l[..]).collect();
        let t = compile_both(&refs);
        assert_eq!(observed(&t), model(&refs), "round {round}");
        layered += usize::from(layers.len() > 1);
        // The merged tree is what a single layer of the merged inodes gives too.
        let mut merged: BTreeMap<u64, I> = BTreeMap::new();
        for l in refs.iter().rev() {
            for i in l.iter() {
                merged.insert(i.ino, i.clone());
            }
        }
        let flat: Vec<I> = merged.into_values().collect();
        assert_eq!(
            observed(&compile_both(&[&flat])),
            observed(&t),
            "round {round}"
        );
    }
    assert!(layered > 100);
}

#[test]
fn random_defects_are_refused() {
    let mut r = Rng(0xdefe_c7ed_0000_0001);
    let mut counts = [0usize; 4];
    for _ in 0..300 {
        let mut layer = random_layers(&mut Rng(r.next())).pop().unwrap();
        let dirs: Vec<usize> = (0..layer.len())
            .filter(|&i| matches!(layer[i].kind, K::Dir(_)))
            .collect();
        let d = dirs[r.below(dirs.len() as u64) as usize];
        let dino = layer[d].ino;
        let defect = r.below(4) as usize;
        let want = match defect {
            // A second name for a directory (possibly itself or an ancestor).
            0 => {
                let other = dirs[r.below(dirs.len() as u64) as usize];
                let target = layer[other].ino;
                if let K::Dir(e) = &mut layer[d].kind {
                    e.push((b"again".to_vec(), target));
                }
                if target == 1 {
                    Error::EntryNamesRoot { dir: dino }
                } else {
                    Error::DirectoryTwice { ino: target }
                }
            }
            // A name used twice.
            1 => {
                let K::Dir(e) = &mut layer[d].kind else {
                    unreachable!()
                };
                let Some(first) = e.first().cloned() else {
                    continue;
                };
                let leaf = layer
                    .iter()
                    .find(|i| !matches!(i.kind, K::Dir(_)))
                    .map(|i| i.ino);
                let Some(leaf) = leaf else { continue };
                let K::Dir(e) = &mut layer[d].kind else {
                    unreachable!()
                };
                e.push((first.0, leaf));
                Error::DuplicateName { dir: dino }
            }
            // Permissions with file type bits.
            2 => {
                layer[d].perm |= 0o40000;
                Error::BadPermissions {
                    ino: dino,
                    permissions: layer[d].perm,
                }
            }
            // An entry naming an ino no layer has.
            _ => {
                let missing = layer.iter().map(|i| i.ino).max().unwrap() + 1;
                if let K::Dir(e) = &mut layer[d].kind {
                    e.push((b"missing".to_vec(), missing));
                }
                Error::InodeNotFound(missing)
            }
        };
        // Only defects in the reachable tree count: every directory of a single random layer
        // is reachable.
        refuse(&[&layer], want);
        counts[defect] += 1;
    }
    assert!(counts.iter().all(|&c| c > 30), "{counts:?}");
}

#[test]
fn mutated_messages_never_panic() {
    // Every bit flip of every byte of a small image in both generations, and every
    // truncation, through the fuzzing entry (which checks the invariants of what compiles).
    let [top, mid, _] = three_layers();
    let img = kitchen_sink();
    let b = rootfs_b(&[&top, &mid]);
    let v = vector(&img);
    let a = rootfs_a(1);
    let mut compiled = 0;
    for (i, bit) in (0..b.get().len()).flat_map(|i| [1u8, 0x10, 0x80].map(|b| (i, b))) {
        let mut bytes = b.get().to_vec();
        bytes[i] ^= bit;
        compiled += usize::from(exercise_compile(Aligned::new(&bytes).get(), &[]));
    }
    for (i, bit) in (0..v.get().len()).flat_map(|i| [1u8, 0x10, 0x80].map(|b| (i, b))) {
        let mut bytes = v.get().to_vec();
        bytes[i] ^= bit;
        compiled += usize::from(exercise_compile(a.get(), &[Aligned::new(&bytes).get()]));
    }
    for cut in 0..b.get().len() {
        assert!(!exercise_compile(Aligned::new(&b.get()[..cut]).get(), &[]));
    }
    // Many flips land in data (uids, lengths, name bytes) and still compile.
    assert!(compiled > 100, "{compiled}");
}

#[test]
fn fuzz_input_layout() {
    let img = kitchen_sink();
    let b = rootfs_b(&[&img]);
    let v = vector(&img);
    let a = rootfs_a(2);
    let enc = crate::encode_compile_input(b.get(), &[]).unwrap();
    assert!(crate::exercise_compile_input(&enc));
    let enc = crate::encode_compile_input(a.get(), &[v.get(), v.get()]).unwrap();
    assert!(crate::exercise_compile_input(&enc));
    let a1 = rootfs_a(1);
    let enc = crate::encode_compile_input(a1.get(), &[v.get()]).unwrap();
    assert!(crate::exercise_compile_input(&enc));
    // The compiler takes the layer blobs it is given (the caller leaves repeated digests out).
    let enc = crate::encode_compile_input(a.get(), &[v.get()]).unwrap();
    assert!(crate::exercise_compile_input(&enc));
    for data in [
        &[][..],
        &[0],
        &[1],
        &[3, 0xff, 0xff],
        &[2, 0, 0, 0, 0, 1, 0, 0, 0],
    ] {
        assert!(!crate::exercise_compile_input(data));
    }
}

// ---- the in-kernel self-tests (fs/puzzlefs/format/selftest.rs), run on the host ----

#[test]
fn kunit_selftests() {
    let all = crate::format::selftest::all::<HostAlloc>();
    let mut failed = vec![];
    for (name, case) in all {
        if let Err(why) = case() {
            failed.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "self-tests failed:\n{}",
        failed.join("\n")
    );
    assert!(all.len() >= 20);
}
