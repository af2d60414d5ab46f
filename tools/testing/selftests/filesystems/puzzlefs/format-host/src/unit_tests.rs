// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the format core: JSON, digests, names, chunk mapping, and
//! hand-built (valid and malformed) capnp messages.

use crate::format::image::{self, check_name, chunk_for_offset, chunk_start, Image, InodeKind};
use crate::format::json;
use crate::format::metadata_capnp as m;
use crate::format::oci::{self, BlobKind};
use crate::format::rootfs::Rootfs;
use crate::format::{digest_to_hex, parse_digest, Error, Generation, NameError};
use core::ops::ControlFlow;

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
    let big = vec![b' '; json::MAX_SIZE + 1];
    assert_eq!(
        json::parse(&big).unwrap_err(),
        Error::JsonTooLarge(json::MAX_SIZE + 1)
    );
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

// ---- digests and names ----

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
    assert_eq!(check_name(b""), Err(NameError::Empty));
    assert_eq!(check_name(b"a/b"), Err(NameError::Slash));
    assert_eq!(check_name(b"a\0"), Err(NameError::Nul));
    assert_eq!(check_name(b"."), Err(NameError::Dot));
    assert_eq!(check_name(b".."), Err(NameError::Dot));
    assert_eq!(check_name(&[b'a'; 255]), Ok(()));
    assert_eq!(check_name(&[b'a'; 256]), Err(NameError::TooLong));
}

#[test]
fn chunk_mapping() {
    let ends = [10u64, 10, 25, 40];
    assert_eq!(chunk_for_offset(&ends, 0), Some((0, 0)));
    assert_eq!(chunk_for_offset(&ends, 9), Some((0, 9)));
    assert_eq!(chunk_for_offset(&ends, 10), Some((2, 0)));
    assert_eq!(chunk_for_offset(&ends, 39), Some((3, 14)));
    assert_eq!(chunk_for_offset(&ends, 40), None);
    assert_eq!(chunk_for_offset(&[], 0), None);
    assert_eq!(chunk_start(&ends, 3), 25);
    assert_eq!(chunk_start(&ends, 0), 0);
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
    let none = r#"{"schemaVersion":2,"layers":[]}"#;
    assert_eq!(
        oci::ImageManifest::parse(none.as_bytes())
            .unwrap()
            .rootfs_layer(),
        Err(Error::NoRootfsLayer)
    );
}

// ---- hand-built capnp messages ----

#[derive(Clone)]
enum K {
    Dir(Vec<(&'static [u8], u64)>),
    File(Vec<(u64, u64)>),
    Lnk(&'static [u8]),
    Wht,
    Chr(u64, u64),
}

fn build_vector(b: m::inode_vector::Builder<'_>, inodes: &[(u64, K)]) {
    let mut list = b.init_inodes(inodes.len() as u32);
    for (i, (ino, k)) in inodes.iter().enumerate() {
        let mut n = list.reborrow().get(i as u32);
        n.set_ino(*ino);
        n.set_uid(1000);
        n.set_gid(100);
        n.set_permissions(0o100755);
        match k {
            K::Dir(ents) => {
                let mut d = n.reborrow().init_mode().init_dir();
                let mut el = d.reborrow().init_entries(ents.len() as u32);
                for (j, (name, ino)) in ents.iter().enumerate() {
                    let mut e = el.reborrow().get(j as u32);
                    e.set_ino(*ino);
                    e.set_name(name);
                }
            }
            K::File(chunks) => {
                let mut fl = n.reborrow().init_mode().init_file(chunks.len() as u32);
                for (j, (off, len)) in chunks.iter().enumerate() {
                    let mut c = fl.reborrow().get(j as u32);
                    c.set_len(*len);
                    let mut blob = c.init_blob();
                    blob.set_offset(*off);
                    blob.set_digest(&[j as u8; 32]);
                }
            }
            K::Lnk(t) => {
                n.reborrow().init_mode().set_lnk(());
                n.reborrow().init_additional().set_symlink_target(t);
            }
            K::Wht => n.reborrow().init_mode().set_wht(()),
            K::Chr(a, b) => {
                let mut c = n.reborrow().init_mode().init_chr();
                c.set_major(*a);
                c.set_minor(*b);
            }
        }
        if matches!(k, K::File(_)) {
            let mut x = n.init_additional().init_xattrs(1);
            x.reborrow().get(0).set_key(b"user.k");
            x.get(0).set_val(b"v");
        }
    }
}

fn serialize(msg: &capnp::message::Builder<capnp::message::HeapAllocator>) -> Aligned {
    let words = capnp::serialize::write_message_to_words(msg);
    Aligned::new(&words)
}

fn rootfs_b(layers: &[Vec<(u64, K)>]) -> Aligned {
    let mut msg = capnp::message::Builder::new_default();
    let mut r = msg.init_root::<m::rootfs::Builder<'_>>();
    r.set_manifest_version(3);
    let mut ls = r.reborrow().init_metadatas(layers.len() as u32);
    for (i, l) in layers.iter().enumerate() {
        build_vector(ls.reborrow().get(i as u32), l);
    }
    serialize(&msg)
}

fn vector(inodes: &[(u64, K)]) -> Aligned {
    let mut msg = capnp::message::Builder::new_default();
    build_vector(msg.init_root::<m::inode_vector::Builder<'_>>(), inodes);
    serialize(&msg)
}

fn base_tree() -> Vec<(u64, K)> {
    vec![
        (
            1,
            K::Dir(vec![(b"d", 2), (b"f", 3), (b"l", 4), (b"c", 5), (b"h", 3)]),
        ),
        (2, K::Dir(vec![(b"g", 6)])),
        (3, K::File(vec![(5, 10), (0, 20)])),
        (4, K::Lnk(b"target")),
        (5, K::Chr(1, 3)),
        (6, K::File(vec![])),
    ]
}

#[test]
fn image_views() {
    let buf = rootfs_b(&[base_tree()]);
    let rootfs = Rootfs::parse(buf.get()).unwrap();
    assert_eq!(
        (rootfs.generation(), rootfs.layer_count()),
        (Generation::B, 1)
    );
    let img = Image::from_rootfs(&rootfs).unwrap();
    let root = img.inode(1).unwrap();
    assert_eq!(root.permissions, 0o755);
    assert_eq!((root.uid, root.gid), (1000, 100));
    let mut names = vec![];
    let _ = img
        .for_each_dir_entry(&root, 0, |e| {
            names.push((e.name.to_vec(), e.ino, e.index));
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    assert_eq!(names[1], (b"f".to_vec(), 3, 1));
    let f = img.lookup(&root, b"f").unwrap().unwrap();
    assert_eq!(
        f.kind,
        InodeKind::File {
            chunks: 2,
            size: 30
        }
    );
    let mut ends = [0u64; 2];
    img.fill_chunk_ends(&f, &mut ends).unwrap();
    assert_eq!(ends, [10, 30]);
    assert!(img.fill_chunk_ends(&f, &mut [0u64; 3]).is_err());
    let c = img.chunk(&f, 1).unwrap();
    assert_eq!((c.digest, c.offset, c.len), ([1u8; 32], 0, 20));
    assert!(matches!(
        img.chunk(&f, 2),
        Err(Error::ChunkIndex { ino: 3, index: 2 })
    ));
    assert_eq!(img.xattr_get(&f, b"user.k").unwrap(), Some(&b"v"[..]));
    assert_eq!(img.xattr_get(&f, b"user.z").unwrap(), None);
    let l = img.lookup(&root, b"l").unwrap().unwrap();
    assert_eq!(img.symlink_target(&l).unwrap(), b"target");
    let dev = img.inode(5).unwrap().kind;
    assert!(matches!(
        dev,
        InodeKind::Chr { major: 1, minor: 3 } | InodeKind::Blk { major: 1, minor: 3 }
    ));
    assert!(img.lookup(&root, b"zz").unwrap().is_none());
    assert_eq!(img.inode(99), Err(Error::InodeNotFound(99)));
    assert_eq!(img.inode(0), Err(Error::InodeNotFound(0)));
    let mut counts = vec![image::LinkCount::default(); img.inode_slots()];
    let t = img.count_links(&mut counts).unwrap();
    assert_eq!((t.inodes, t.dirs, t.files, t.data_bytes), (6, 2, 2, 30));
    assert_eq!(image::nlink_of(&counts[..t.used], 1), Some(3));
    assert_eq!(image::nlink_of(&counts[..t.used], 3), Some(2));
    assert_eq!(image::nlink_of(&counts[..t.used], 6), Some(1));
}

#[test]
fn layers_and_whiteouts() {
    // Top layer deletes /f (ino 3) and /d (ino 2), keeps the names with whiteouts.
    let top = vec![
        (
            1,
            K::Dir(vec![(b"d", 2), (b"f", 3), (b"l", 4), (b"c", 5), (b"n", 7)]),
        ),
        (2, K::Wht),
        (3, K::Wht),
        (4, K::Lnk(b"new")),
        (5, K::Chr(1, 3)),
        (7, K::File(vec![(0, 1)])),
    ];
    let buf = rootfs_b(&[top.clone(), base_tree()]);
    let img = Image::from_rootfs(&Rootfs::parse(buf.get()).unwrap()).unwrap();
    let root = img.inode(1).unwrap();
    assert!(img.lookup(&root, b"f").unwrap().is_none());
    assert!(img.lookup(&root, b"d").unwrap().is_none());
    assert_eq!(img.inode(3), Err(Error::InodeNotFound(3)));
    assert_eq!(
        img.find_inode(3).unwrap().unwrap().kind,
        InodeKind::Whiteout
    );
    let l = img.lookup(&root, b"l").unwrap().unwrap();
    assert_eq!(img.symlink_target(&l).unwrap(), b"new");
    let mut vis = vec![];
    let _ = img
        .for_each_visible_dir_entry(&root, 0, |e, _| {
            vis.push(e.name.to_vec());
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    assert_eq!(vis, vec![b"l".to_vec(), b"c".to_vec(), b"n".to_vec()]);
    let mut counts = vec![image::LinkCount::default(); img.inode_slots()];
    let t = img.count_links(&mut counts).unwrap();
    // Ino 6 lives on in the lower layer but is unreachable.
    assert_eq!((t.inodes, t.dirs, t.files, t.data_bytes), (4, 1, 1, 1));
    assert_eq!(image::nlink_of(&counts[..t.used], 6), Some(0));
    assert_eq!(image::nlink_of(&counts[..t.used], 1), Some(2));
    // Generation A: the same as separate layer blobs.
    let (a, b) = (vector(&top), vector(&base_tree()));
    let mut img = Image::new();
    img.push_layer(a.get()).unwrap();
    img.push_layer(b.get()).unwrap();
    assert!(img.lookup(&img.inode(1).unwrap(), b"f").unwrap().is_none());
    assert_eq!(
        img.inode(6).unwrap().kind,
        InodeKind::File { chunks: 0, size: 0 }
    );
}

#[test]
fn malformed_messages() {
    let check = |inodes: Vec<(u64, K)>| {
        let b = rootfs_b(&[inodes]);
        Image::from_rootfs(&Rootfs::parse(b.get()).unwrap()).map(|_| ())
    };
    assert_eq!(
        check(vec![(2, K::Wht), (1, K::Wht)]),
        Err(Error::UnsortedInodes { layer: 0, ino: 1 })
    );
    assert_eq!(
        check(vec![(1, K::Wht), (1, K::Wht)]),
        Err(Error::DuplicateInode { layer: 0, ino: 1 })
    );
    assert_eq!(check(vec![(0, K::Wht)]), Err(Error::ZeroIno { layer: 0 }));
    let view = |inodes: Vec<(u64, K)>, f: &dyn Fn(&Image<'_>) -> Result<(), Error>| {
        let b = rootfs_b(&[inodes]);
        let img = Image::from_rootfs(&Rootfs::parse(b.get()).unwrap()).unwrap();
        f(&img)
    };
    let readdir = |img: &Image<'_>| {
        img.for_each_dir_entry(&img.inode(1)?, 0, |_| ControlFlow::<()>::Continue(()))
            .map(|_| ())
    };
    for (name, why) in [
        (&b""[..], NameError::Empty),
        (b"a/b", NameError::Slash),
        (b"..", NameError::Dot),
        (b"a\0", NameError::Nul),
    ] {
        let name: &'static [u8] = Box::leak(name.to_vec().into_boxed_slice());
        assert_eq!(
            view(vec![(1, K::Dir(vec![(name, 2)])), (2, K::Wht)], &readdir),
            Err(Error::BadName { ino: 1, why })
        );
    }
    assert_eq!(
        view(vec![(1, K::Dir(vec![(b"x", 0)]))], &readdir),
        Err(Error::BadDirEntryIno { ino: 1 })
    );
    // Chunk length sums and offset + len must not overflow.
    assert_eq!(
        view(vec![(1, K::File(vec![(0, u64::MAX), (0, 1)]))], &|img| img
            .inode(1)
            .map(|_| ())),
        Err(Error::ChunkOverflow { ino: 1 })
    );
    assert_eq!(
        view(vec![(1, K::File(vec![(1, u64::MAX)]))], &|img| img
            .inode(1)
            .map(|_| ())),
        Err(Error::ChunkOverflow { ino: 1 })
    );
    // Symlink targets.
    assert_eq!(
        view(vec![(1, K::Lnk(b""))], &|img| img
            .symlink_target(&img.inode(1)?)
            .map(|_| ())),
        Err(Error::BadSymlinkTarget { ino: 1 })
    );
    let long: &'static [u8] = Box::leak(vec![b'a'; 4096].into_boxed_slice());
    assert_eq!(
        view(vec![(1, K::Lnk(long))], &|img| img
            .symlink_target(&img.inode(1)?)
            .map(|_| ())),
        Err(Error::BadSymlinkTarget { ino: 1 })
    );
    // A directory cycle terminates the walk; a dangling entry is an error.
    let cyc = vec![
        (1, K::Dir(vec![(b"a", 2)])),
        (2, K::Dir(vec![(b"up", 1), (b"me", 2)])),
    ];
    let walk = |img: &Image<'_>| {
        let mut c = vec![image::LinkCount::default(); img.inode_slots()];
        img.count_links(&mut c).map(|_| ())
    };
    assert_eq!(view(cyc, &walk), Ok(()));
    assert_eq!(
        view(vec![(1, K::Dir(vec![(b"a", 9)]))], &walk),
        Err(Error::InodeNotFound(9))
    );
    assert_eq!(view(vec![(2, K::Dir(vec![]))], &walk), Err(Error::BadRoot));
    // Misaligned buffers, truncations and garbage are errors, never panics.
    let b = rootfs_b(&[base_tree()]);
    let mut shifted = vec![0u8; b.get().len() + 9];
    let off = shifted.as_ptr().align_offset(8) + 1;
    shifted[off..off + b.get().len()].copy_from_slice(b.get());
    assert_eq!(
        Rootfs::parse(&shifted[off..off + b.get().len()]).unwrap_err(),
        Error::Misaligned
    );
    for len in 0..b.get().len() {
        let t = Aligned::new(&b.get()[..len]);
        crate::exercise_image(&[t.get()], true, &mut [0u64; 64]);
    }
    for i in 0..b.get().len() {
        for bit in [1u8, 0x80] {
            let mut bytes = b.get().to_vec();
            bytes[i] ^= bit;
            let t = Aligned::new(&bytes);
            crate::exercise_image(&[t.get()], true, &mut [0u64; 64]);
            crate::exercise_image(&[t.get()], false, &mut [0u64; 64]);
        }
    }
    // Unknown manifest versions.
    let mut msg = capnp::message::Builder::new_default();
    msg.init_root::<m::rootfs::Builder<'_>>()
        .set_manifest_version(7);
    assert_eq!(
        Rootfs::parse(serialize(&msg).get()).unwrap_err(),
        Error::UnsupportedManifestVersion(7)
    );
}

#[test]
fn limits_are_per_operation() {
    // The traversal budget is cumulative per reader; we open one per
    // operation, so a long-lived image keeps working.
    let b = rootfs_b(&[base_tree()]);
    let r = Rootfs::parse(b.get()).unwrap();
    let img = Image::from_rootfs(&r).unwrap();
    for _ in 0..10_000 {
        img.inode(3).unwrap();
    }
    // A message nested deeper than the nesting limit is refused: a chain of
    // 40 directories is fine (each is a separate inode), but a list of
    // lists beyond 16 levels cannot be reached through our schema, so check
    // the error mapping of the capnp kinds instead.
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
}

// ---- the in-kernel self-tests (fs/puzzlefs/format/selftest.rs), run on the host ----

#[test]
fn kunit_selftests() {
    let mut failed = vec![];
    for (name, case) in crate::format::selftest::ALL {
        if let Err(why) = case() {
            failed.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "self-tests failed:\n{}",
        failed.join("\n")
    );
    assert!(crate::format::selftest::ALL.len() >= 17);
}
