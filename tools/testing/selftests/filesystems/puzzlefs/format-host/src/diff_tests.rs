// SPDX-License-Identifier: GPL-2.0

//! Differential tests: images built by the real upstream `puzzlefs-lib` (0.2.0 for Generation
//! B, 0.1.0 for Generation A) from generated trees are compiled by our format core, and the
//! tables are compared with two independent oracles:
//!
//! - upstream's reader, inode by inode (owner, permissions, type, directory entries as sets
//!   with whiteouts hidden, chunk lists, symlink targets, device numbers, xattrs), and the set
//!   of inodes upstream reaches from the root;
//! - the source tree, path by path (type, mode bits, uid/gid, size, file bytes reassembled
//!   from our extents over the blob files, symlink targets, rdev, xattrs, directory entries,
//!   hard links, link counts counted in the tree), and the totals.
//!
//! Set `PUZZLEFS_SEED_DIR` to write fuzz seeds there: `seekable/` (compressed chunk blobs),
//! `json/` (index.json and image
//! manifests) and `compile/` (each image's metadata in the layout of the `compile` fuzz
//! target, see [`crate::exercise_compile_input`]).

use crate::format::oci::{self, BlobKind};
use crate::format::rootfs::Rootfs;
use crate::format::tables::{extent_for, Inode, Kind, ROOT_INDEX};
use crate::format::{digest_to_hex, Digest, Generation};
use crate::unit_tests::Aligned;
use crate::{check_invariants, check_poll_rate, compile_host, CountPolls, HostAlloc, HostTables};
use puzzlefs_lib_a as pa;
use puzzlefs_lib_b as pb;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

// ---- tree generation ----

struct Rng(u64);
impl Rng {
    /// A generator for `seed`; distinct seeds give distinct sequences.
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
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
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn write(p: &Path, data: &[u8], mode: u32) {
    fs::write(p, data).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_xattr(p: &Path, k: &str, v: &[u8]) {
    xattr::set(p, k, v).unwrap();
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o640) }, 0);
}

fn mknod(p: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
    assert_eq!(rc, 0, "mknod {} (the tests run as root)", p.display());
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// A tree with every kind of inode, files around the chunk sizes, hard links, identical files
/// and xattrs.
fn tree_kitchen_sink(root: &Path, seed: u64) {
    let mut r = Rng::new(seed);
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    for (i, size) in [0usize, 1, 100, 4096, 70_000, 300_000, 700_000]
        .iter()
        .enumerate()
    {
        write(&root.join(format!("a/f{i}")), &r.bytes(*size), 0o644);
    }
    let same = r.bytes(50_000);
    write(&root.join("a/b/same1"), &same, 0o600);
    write(&root.join("a/b/c/same2"), &same, 0o4755);
    write(&root.join("hl"), b"hard linked", 0o640);
    fs::hard_link(root.join("hl"), root.join("a/hl2")).unwrap();
    fs::hard_link(root.join("hl"), root.join("a/b/hl3")).unwrap();
    symlink("a/f1", root.join("rel")).unwrap();
    symlink("/etc/passwd", root.join("a/abs")).unwrap();
    symlink("x".repeat(1000), root.join("long")).unwrap();
    symlink("dangling/target", root.join("a/b/dangle")).unwrap();
    mkfifo(&root.join("fifo"));
    mknod(&root.join("a/null"), libc::S_IFCHR, 1, 3);
    mknod(&root.join("a/b/loop"), libc::S_IFBLK, 7, 300);
    drop(std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap());
    set_xattr(&root.join("a/f2"), "user.one", b"1");
    set_xattr(&root.join("a/f2"), "user.two", &r.bytes(300));
    set_xattr(&root.join("a/f2"), "trusted.t", b"trusted");
    set_xattr(&root.join("a/b"), "user.dir", b"");
    set_xattr(&root.join("hl"), "user.hl", b"shared");
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o1777)).unwrap();
    chown(&root.join("a/f3"), 1234, 5678);
    chown(&root.join("rel"), 42, 43);
    chown(&root.join("a/b/loop"), 6, 7);
    fs::write(root.join("name with spaces \u{e9}"), b"utf8").unwrap();
    fs::write(root.join(format!("n{}", "x".repeat(250))), b"long name").unwrap();
}

/// The kitchen sink plus compressible files (text), for `-c` images.
fn tree_compressible(root: &Path, seed: u64) {
    tree_kitchen_sink(root, seed);
    fs::create_dir(root.join("text")).unwrap();
    for (i, n) in [10usize, 3_000, 40_000].iter().enumerate() {
        let line = format!("line {i} of a compressible file\n");
        write(
            &root.join(format!("text/t{i}")),
            line.repeat(*n).as_bytes(),
            0o644,
        );
    }
}

/// Many entries in one directory and a deep chain.
fn tree_wide_deep(root: &Path, seed: u64) {
    let mut r = Rng::new(seed);
    fs::create_dir_all(root.join("wide")).unwrap();
    for i in 0..300 {
        let n = r.below(200) as usize;
        write(&root.join(format!("wide/e{i:04}")), &r.bytes(n), 0o644);
    }
    let mut p = root.join("deep");
    for i in 0..24 {
        p = p.join(format!("d{i}"));
    }
    fs::create_dir_all(&p).unwrap();
    write(&p.join("leaf"), b"leaf", 0o444);
}

/// A random tree.
fn tree_random(root: &Path, seed: u64) {
    let mut r = Rng::new(seed);
    let mut dirs = vec![root.to_path_buf()];
    let mut files = vec![];
    for i in 0..120 {
        let parent = dirs[r.below(dirs.len() as u64) as usize].clone();
        let p = parent.join(format!("r{i}"));
        match r.below(10) {
            0..=1 => {
                fs::create_dir(&p).unwrap();
                dirs.push(p);
            }
            2 => symlink(format!("t{}", r.below(1000)), &p).unwrap(),
            3 if !files.is_empty() => {
                let f: &PathBuf = &files[r.below(files.len() as u64) as usize];
                fs::hard_link(f, &p).unwrap();
            }
            _ => {
                let n = if r.below(8) == 0 {
                    200_000 + r.below(200_000)
                } else {
                    r.below(3000)
                };
                write(&p, &r.bytes(n as usize), 0o600 + (r.below(0o100) as u32));
                if r.below(4) == 0 {
                    let n = r.below(64) as usize;
                    set_xattr(&p, "user.r", &r.bytes(n));
                }
                files.push(p);
            }
        }
    }
}

/// Base tree for the layered image.
fn tree_layer_base(root: &Path, seed: u64) {
    tree_random(root, seed);
    fs::create_dir_all(root.join("keep/sub")).unwrap();
    fs::create_dir_all(root.join("gone/inner")).unwrap();
    write(&root.join("gone/inner/x"), b"x", 0o644);
    write(&root.join("gone/y"), b"y", 0o644);
    write(&root.join("keep/del"), b"deleted later", 0o644);
    write(
        &root.join("keep/mod"),
        &Rng::new(seed).bytes(100_000),
        0o644,
    );
    write(&root.join("keep/perm"), b"perm", 0o644);
    symlink("old", root.join("keep/link")).unwrap();
}

/// The next layer: deleted file and directory, modified file, permission and symlink changes,
/// new entries. (No hard-link name is deleted: 0.2.0's `build -b` cannot do that.)
fn tree_layer_top(root: &Path, seed: u64) {
    fs::remove_dir_all(root.join("gone")).unwrap();
    fs::remove_file(root.join("keep/del")).unwrap();
    let mut m = Rng::new(seed ^ 0x55).bytes(120_000);
    m.extend_from_slice(b"changed");
    write(&root.join("keep/mod"), &m, 0o644);
    fs::set_permissions(root.join("keep/perm"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(root.join("keep/link")).unwrap();
    symlink("new-target", root.join("keep/link")).unwrap();
    fs::create_dir(root.join("keep/sub/added")).unwrap();
    write(&root.join("keep/sub/added/new"), b"new file", 0o644);
    set_xattr(&root.join("keep"), "user.added", b"1");
}

fn copy_tree(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

// ---- reading an image with our format core ----

fn read_blob(oci: &Path, d: &Digest) -> Vec<u8> {
    let mut hex = [0u8; 64];
    let name = digest_to_hex(d, &mut hex);
    let bytes = fs::read(oci.join("blobs/sha256").join(name)).unwrap();
    assert_eq!(Sha256::digest(&bytes).as_slice(), d, "blob {name} hash");
    bytes
}

/// Writes `data` to `$PUZZLEFS_SEED_DIR/<kind>/<name>`, if that is set.
fn seed(kind: &str, name: &str, data: &[u8]) {
    if let Ok(dir) = std::env::var("PUZZLEFS_SEED_DIR") {
        let dir = Path::new(&dir).join(kind);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), data).unwrap();
    }
}

/// An image's metadata, read as the driver reads it: index, (Generation B) manifest, rootfs
/// and (Generation A) the layer blobs with repeated digests left out.
struct Opened {
    gen: Generation,
    rootfs: Aligned,
    layers: Vec<Aligned>,
    oci: PathBuf,
}

impl Opened {
    fn open(oci: &Path, tag: &str) -> Self {
        let index = fs::read(oci.join("index.json")).unwrap();
        seed(
            "json",
            &format!("index-{:x}", Sha256::digest(&index)),
            &index,
        );
        let idx = oci::Index::parse(&index).unwrap();
        let e = idx.find_tag(tag.as_bytes()).unwrap();
        assert_eq!(e.generation, idx.generation());
        let blob = read_blob(oci, &e.digest);
        assert_eq!(blob.len() as u64, e.size);
        let (rootfs, layers) = match oci::blob_kind(&blob) {
            BlobKind::OciManifest => {
                assert_eq!(e.generation, Generation::B);
                seed(
                    "json",
                    &format!("manifest-{:x}", Sha256::digest(&blob)),
                    &blob,
                );
                let l = oci::ImageManifest::parse(&blob)
                    .unwrap()
                    .rootfs_layer()
                    .unwrap();
                let rb = read_blob(oci, &l.digest);
                assert_eq!(rb.len() as u64, l.size);
                let a = Aligned::new(&rb);
                let r = Rootfs::parse(a.get()).unwrap();
                assert_eq!(r.generation(), Generation::B);
                if let Some(v) = l.verity {
                    assert_ne!(v, [0u8; 32]);
                }
                (a, vec![])
            }
            BlobKind::Rootfs => {
                assert_eq!(e.generation, Generation::A);
                let a = Aligned::new(&blob);
                let r = Rootfs::parse(a.get()).unwrap();
                assert_eq!(r.generation(), Generation::A);
                let mut digests: Vec<Digest> = vec![];
                r.for_each_layer_blob(|d| {
                    if !digests.contains(&d) {
                        digests.push(d);
                    }
                    Ok(())
                })
                .unwrap();
                assert!(!digests.is_empty());
                let layers = digests
                    .iter()
                    .map(|d| Aligned::new(&read_blob(oci, d)))
                    .collect();
                (a, layers)
            }
        };
        let o = Self {
            gen: e.generation,
            rootfs,
            layers,
            oci: oci.to_path_buf(),
        };
        let refs = o.layer_refs();
        if let Some(input) = crate::encode_compile_input(o.rootfs.get(), &refs) {
            let name = format!("{:?}-{:x}", o.gen, Sha256::digest(&input));
            seed("compile", &name, &input);
        }
        o
    }

    fn layer_refs(&self) -> Vec<&[u8]> {
        self.layers.iter().map(|l| l.get()).collect()
    }

    /// Compiles the image, checks the tables' invariants and poll rate, and that the fuzzing
    /// entry accepts the image too.
    fn compile(&self) -> HostTables {
        let refs = self.layer_refs();
        let mut polls = CountPolls::default();
        let src = crate::format::compile::Source {
            rootfs: self.rootfs.get(),
            layers: &refs,
        };
        let t =
            crate::format::compile::compile::<HostAlloc, _>(&src, crate::HOST_LIMITS, &mut polls)
                .unwrap();
        check_invariants(&t).unwrap();
        check_poll_rate(&t, polls.0).unwrap();
        let again = compile_host(self.rootfs.get(), &refs).unwrap();
        assert_eq!(again.inodes, t.inodes, "compiling is deterministic");
        assert!(crate::exercise_compile(self.rootfs.get(), &refs));
        let s = t.stats();
        let meta: usize =
            self.rootfs.get().len() + self.layers.iter().map(|l| l.get().len()).sum::<usize>();
        assert_eq!(s.metadata_bytes, meta as u64, "metadata bytes");
        // The tables are a small multiple of the metadata.
        assert!(
            s.table_bytes <= 4 * s.metadata_bytes + 4096,
            "{} table bytes for {} metadata bytes",
            s.table_bytes,
            s.metadata_bytes
        );
        t
    }
}

// ---- comparing with upstream's reader ----

/// An upstream inode in our terms. Upstream's types are not nameable outside its crate (its
/// `format` module is private), so the mode is read from its `Debug` text where no accessor
/// exists.
#[derive(Debug)]
struct Theirs {
    uid: u32,
    gid: u32,
    permissions: u16,
    mode: String,
    entries: Vec<(Vec<u8>, u64)>,
    size: Option<u64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    target: Option<Vec<u8>>,
}

macro_rules! theirs {
    ($pfs:expr, $ino:expr) => {{
        match $pfs.find_inode($ino) {
            Err(_) => None,
            Ok(t) => Some(Theirs {
                uid: t.uid,
                gid: t.gid,
                permissions: t.permissions,
                mode: format!("{:?}", t.mode),
                entries: t
                    .dir_entries()
                    .map(|e| e.iter().map(|d| (d.name.clone(), d.ino)).collect())
                    .unwrap_or_default(),
                size: t.file_len().ok(),
                xattrs: t
                    .additional
                    .as_ref()
                    .map(|a| {
                        a.xattrs
                            .iter()
                            .map(|x| (x.key.clone(), x.val.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                target: t.additional.as_ref().and_then(|a| a.symlink_target.clone()),
            }),
        }
    }};
}

/// The type word of an upstream mode's `Debug` text ("Dir", "File", "Chr", ...).
fn mode_word(mode: &str) -> &str {
    mode.split([' ', '{']).next().unwrap_or("")
}

/// Our kind in upstream's words.
fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Dir => "Dir",
        Kind::File => "File",
        Kind::Symlink => "Lnk",
        Kind::Fifo => "Fifo",
        Kind::Chr => "Chr",
        Kind::Blk => "Blk",
        Kind::Sock => "Sock",
    }
}

/// A file's chunks in upstream's `Debug` notation, from our extents.
fn chunks_debug(t: &HostTables, n: &Inode) -> String {
    let mut prev = 0;
    let c: Vec<String> = t
        .extents(n)
        .iter()
        .map(|e| {
            let len = e.end - prev;
            prev = e.end;
            format!(
                "FileChunk {{ blob: BlobRef {{ digest: {:?}, offset: {}, compressed: {} }}, len: {len} }}",
                t.blob(e.blob).unwrap().digest,
                e.offset,
                e.compressed()
            )
        })
        .collect();
    format!("File {{ chunks: [{}] }}", c.join(", "))
}

/// Compares every inode of our tables with upstream's version of it, and the set of inodes
/// upstream reaches from the root (through entries whose inode it finds, i.e. not whited
/// out) with ours. Returns the number of inodes compared.
macro_rules! compare_with_upstream {
    ($t:expr, $pfs:expr) => {{
        let t: &HostTables = $t;
        let pfs = &$pfs;
        let mut ours = BTreeSet::new();
        for n in t.inodes.iter() {
            assert!(ours.insert(n.ino), "ino {} twice", n.ino);
            let what = format!("ino {}", n.ino);
            let u = theirs!(pfs, n.ino).unwrap_or_else(|| panic!("{what}: not upstream"));
            assert_eq!(
                (u.uid, u.gid, u.permissions & 0o7777),
                (n.uid, n.gid, n.permissions),
                "{what}"
            );
            assert_eq!(mode_word(&u.mode), kind_word(n.kind), "{what}: {}", u.mode);
            // Xattrs as upstream stores them, sorted (ours are sorted by name).
            let mut ux = u.xattrs.clone();
            ux.sort();
            let ox: Vec<(Vec<u8>, Vec<u8>)> = t
                .xattrs(n)
                .iter()
                .map(|x| (t.xattr_name(x).to_vec(), t.xattr_value(x).to_vec()))
                .collect();
            assert_eq!(ux, ox, "{what}: xattrs");
            match n.kind {
                Kind::Dir => {
                    let visible: BTreeSet<(Vec<u8>, u64)> = u
                        .entries
                        .iter()
                        .filter(|(_, ino)| pfs.find_inode(*ino).is_ok())
                        .cloned()
                        .collect();
                    let mine: BTreeSet<(Vec<u8>, u64)> = t
                        .entries(n)
                        .iter()
                        .map(|e| (t.name(e).to_vec(), t.inode(e.target).unwrap().ino))
                        .collect();
                    assert_eq!(visible, mine, "{what}: entries");
                }
                Kind::File => {
                    assert_eq!(u.size, Some(n.file_size()), "{what}: size");
                    // Upstream writes no empty chunks, so its list is ours.
                    assert_eq!(u.mode, chunks_debug(t, n), "{what}: chunks");
                }
                Kind::Symlink => {
                    assert_eq!(u.target.as_deref(), Some(t.symlink_target(n)), "{what}");
                }
                Kind::Chr | Kind::Blk => {
                    let rdev = n.rdev();
                    let want = format!(
                        "{} {{ major: {}, minor: {} }}",
                        kind_word(n.kind),
                        rdev >> 20,
                        rdev & 0xfffff
                    );
                    assert_eq!(u.mode, want, "{what}");
                }
                Kind::Fifo | Kind::Sock => assert_eq!(u.mode, kind_word(n.kind), "{what}"),
            }
        }
        // What upstream reaches from the root is what we have.
        let mut reached = BTreeSet::from([1u64]);
        let mut queue = vec![1u64];
        while let Some(ino) = queue.pop() {
            let u = theirs!(pfs, ino).unwrap();
            for (_, child) in &u.entries {
                if pfs.find_inode(*child).is_ok() && reached.insert(*child) {
                    queue.push(*child);
                }
            }
        }
        assert_eq!(reached, ours, "reachable inodes");
        ours.len()
    }};
}

// ---- comparing with the source tree ----

/// Reads our file `n` by its extents over the chunk blobs (decompressing zstd-seekable chunks:
/// plain zstd frames followed by a skippable seek-table frame).
fn read_file(
    t: &HostTables,
    o: &Opened,
    n: &Inode,
    blobs: &mut HashMap<(Digest, bool), Vec<u8>>,
) -> Vec<u8> {
    let mut got = Vec::with_capacity(n.file_size() as usize);
    let mut start = 0;
    for e in t.extents(n) {
        let d = t.blob(e.blob).unwrap().digest;
        let b = blobs.entry((d, e.compressed())).or_insert_with(|| {
            let raw = read_blob(&o.oci, &d);
            if e.compressed() {
                zstd::stream::decode_all(&raw[..]).unwrap()
            } else {
                raw
            }
        });
        let len = (e.end - start) as usize;
        let off = e.offset as usize;
        assert!(off + len <= b.len(), "extent past the end of its chunk");
        got.extend_from_slice(&b[off..off + len]);
        start = e.end;
    }
    got
}

/// Walks the source tree and our tables side by side from the root; checks every path, then
/// link counts, hard links, reachability and the totals. Returns the number of paths.
fn compare_with_tree(o: &Opened, t: &HostTables, src: &Path, layers: u32) -> usize {
    let mut blobs = HashMap::new();
    // Host inode <-> our inode index, both ways (hard links are one inode on both sides).
    let mut host_to_ours: HashMap<u64, u32> = HashMap::new();
    let mut ours_to_host: HashMap<u32, u64> = HashMap::new();
    // Names of each of our inodes, and subdirectories of each directory, counted in the tree.
    let mut names: HashMap<u32, u64> = HashMap::new();
    let mut subdirs: HashMap<u32, u64> = HashMap::new();
    let mut host_nlink: HashMap<u32, u64> = HashMap::new();
    let mut data = 0u64;
    let mut paths = 0;
    let mut compressed = 0;
    let mut stack = vec![(src.to_path_buf(), ROOT_INDEX)];
    while let Some((path, index)) = stack.pop() {
        paths += 1;
        let n = t.inode(index).unwrap();
        let md = fs::symlink_metadata(&path).unwrap();
        let what = path.display().to_string();
        assert_eq!(u32::from(n.permissions), md.mode() & 0o7777, "{what}: mode");
        assert_eq!((n.uid, n.gid), (md.uid(), md.gid()), "{what}: owner");
        assert_eq!(
            *host_to_ours.entry(md.ino()).or_insert(index),
            index,
            "{what}: hard links"
        );
        let first = !ours_to_host.contains_key(&index);
        assert_eq!(
            *ours_to_host.entry(index).or_insert(md.ino()),
            md.ino(),
            "{what}: hard links"
        );
        host_nlink.insert(index, md.nlink());
        // Xattrs, names sorted.
        let mut theirs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&path)
            .unwrap()
            .map(|k| {
                let v = xattr::get(&path, &k).unwrap().unwrap_or_default();
                (k.as_bytes().to_vec(), v)
            })
            .collect();
        theirs.sort();
        let mine: Vec<(Vec<u8>, Vec<u8>)> = t
            .xattrs(n)
            .iter()
            .map(|x| (t.xattr_name(x).to_vec(), t.xattr_value(x).to_vec()))
            .collect();
        assert_eq!(theirs, mine, "{what}: xattrs");
        for (k, v) in &mine {
            assert_eq!(t.xattr_get(n, k), Some(&v[..]), "{what}: xattr {k:?}");
        }
        assert_eq!(t.xattr_get(n, b"user.not-there"), None);
        let ft = md.file_type();
        if ft.is_dir() {
            assert_eq!(n.kind, Kind::Dir, "{what}");
            assert_eq!(n.st_size(), 0);
            let mut src_names = BTreeSet::new();
            for e in fs::read_dir(&path).unwrap() {
                let e = e.unwrap();
                src_names.insert(e.file_name().as_bytes().to_vec());
                if e.file_type().unwrap().is_dir() {
                    *subdirs.entry(index).or_default() += 1;
                }
            }
            let entries = t.entries(n);
            let our_names: BTreeSet<Vec<u8>> = entries.iter().map(|e| t.name(e).to_vec()).collect();
            assert_eq!(src_names, our_names, "{what}: entries");
            assert_eq!(our_names.len(), entries.len(), "{what}: duplicate names");
            for (pos, e) in entries.iter().enumerate() {
                let name = t.name(e);
                let (p, found) = t.lookup(n, name).unwrap();
                assert_eq!((p, found), (pos, e), "{what}: lookup");
                assert_eq!(e.kind, t.inode(e.target).unwrap().kind, "{what}: d_type");
                *names.entry(e.target).or_default() += 1;
                stack.push((path.join(OsStr::from_bytes(name)), e.target));
            }
            assert!(t.lookup(n, b"does-not-exist").is_none());
        } else if ft.is_file() {
            assert_eq!(n.kind, Kind::File, "{what}");
            assert_eq!(n.file_size(), md.len(), "{what}: size");
            assert_eq!(n.st_size(), md.len(), "{what}: size");
            if first {
                data += md.len();
            }
            let expect = fs::read(&path).unwrap();
            let got = read_file(t, o, n, &mut blobs);
            assert!(got == expect, "{what}: contents");
            compressed += t.extents(n).iter().filter(|e| e.compressed()).count();
            // Finding the extent of an offset.
            let exts = t.extents(n);
            let size = n.file_size();
            for off in [0, size / 3, size / 2, size.saturating_sub(1), size] {
                match extent_for(exts, off) {
                    Some((i, start)) => {
                        let e = &exts[i];
                        assert!(start <= off && off < e.end, "{what}@{off}");
                        let d = t.blob(e.blob).unwrap().digest;
                        let b = &blobs[&(d, e.compressed())];
                        assert_eq!(
                            b[(e.offset + off - start) as usize],
                            expect[off as usize],
                            "{what}@{off}"
                        );
                    }
                    None => assert_eq!(off, size, "{what}@{off}"),
                }
            }
        } else if ft.is_symlink() {
            assert_eq!(n.kind, Kind::Symlink, "{what}");
            let target = fs::read_link(&path).unwrap();
            assert_eq!(t.symlink_target(n), target.as_os_str().as_bytes(), "{what}");
            assert_eq!(n.st_size(), md.len(), "{what}: size");
        } else if ft.is_fifo() {
            assert_eq!(n.kind, Kind::Fifo, "{what}");
        } else if ft.is_socket() {
            assert_eq!(n.kind, Kind::Sock, "{what}");
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                Kind::Chr
            } else {
                Kind::Blk
            };
            assert_eq!(n.kind, kind, "{what}");
            let (major, minor) = (libc::major(md.rdev()), libc::minor(md.rdev()));
            assert_eq!(n.rdev(), (major << 20) | minor, "{what}: rdev");
        } else {
            panic!("{what}: unexpected type");
        }
        if !ft.is_file() {
            assert!(t.extents(n).is_empty(), "{what}: extents");
        }
    }
    // Link counts, counted in the tree: directories 2 + subdirectories, others their names
    // (which the host agrees with: every name of a tree inode is in the tree).
    for (&index, &host) in &host_nlink {
        let n = t.inode(index).unwrap();
        let want = if n.kind == Kind::Dir {
            2 + subdirs.get(&index).copied().unwrap_or(0)
        } else {
            assert_eq!(names[&index], host, "ino {}: names in the tree", n.ino);
            names[&index]
        };
        assert_eq!(u64::from(n.nlink), want, "ino {}: nlink", n.ino);
    }
    // Every inode of the tables was reached; the totals.
    assert_eq!(ours_to_host.len(), t.inode_count(), "inodes reached");
    let s = t.stats();
    let dirs = t.inodes.iter().filter(|n| n.kind == Kind::Dir).count() as u64;
    let src_dirs = host_nlink
        .keys()
        .filter(|i| t.inode(**i).unwrap().kind == Kind::Dir)
        .count() as u64;
    assert_eq!(dirs, src_dirs);
    let files = host_to_ours
        .values()
        .filter(|i| t.inode(**i).unwrap().kind == Kind::File)
        .count() as u64;
    assert_eq!(
        (s.inodes, s.dirs, s.files, s.data_bytes, s.layers),
        (host_to_ours.len() as u64, src_dirs, files, data, layers),
        "stats"
    );
    if o.gen == Generation::B && compressed > 0 {
        eprintln!("{compressed} compressed extents");
    }
    paths
}

// ---- building with upstream ----

fn build_b(oci: &Path, src: &Path, tag: &str, base: Option<&str>) {
    let image = pb::oci::Image::new(oci).unwrap();
    match base {
        None => {
            pb::builder::build_initial_rootfs::<pb::compression::Noop>(src, &image, tag).unwrap();
        }
        Some(b) => {
            pb::builder::add_rootfs_delta::<pb::compression::Noop>(src, image, tag, b).unwrap();
        }
    }
}

/// `puzzlefs build -c`: chunks in the zstd seekable format.
fn build_b_zstd(oci: &Path, src: &Path, tag: &str, base: Option<&str>) {
    assert!(base.is_none());
    let image = pb::oci::Image::new(oci).unwrap();
    pb::builder::build_initial_rootfs::<pb::compression::Zstd>(src, &image, tag).unwrap();
}

/// `puzzlefs build -c` of 0.1.0: each compressed chunk one plain zstd stream.
fn build_a_zstd(oci: &Path, src: &Path, tag: &str, base: Option<&str>) {
    assert!(base.is_none());
    let image = pa::oci::Image::new(oci).unwrap();
    let d = pa::builder::build_initial_rootfs::<pa::compression::Zstd>(src, &image).unwrap();
    image.add_tag(tag, d).unwrap();
}

/// Every compressed chunk of the image read the driver's way (layout, seek table, frames) and
/// compared with upstream's decompressor: the chunk's size, and each frame, decompressed on
/// its own into a buffer of exactly its declared size, equal to upstream's bytes there.
/// Returns the number of frames checked.
fn check_compressed_chunks(oci: &Path, t: &HostTables, gen: Generation) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let mut frames = 0;
    let mut seen = BTreeSet::new();
    for e in t.extents.iter().filter(|e| e.compressed()) {
        let d = t.blob(e.blob).unwrap().digest;
        if !seen.insert(d) {
            continue;
        }
        let blob = read_blob(oci, &d);
        let mut hex = [0u8; 64];
        let name = digest_to_hex(&d, &mut hex).to_string();
        seed("seekable", &name, &blob);
        let mut upstream: Box<dyn FnMut(u64, usize) -> (u64, Vec<u8>)> = match gen {
            Generation::B => {
                let img = pb::oci::Image::open(oci).unwrap();
                let dg = pb::oci::Digest::try_from(name.as_str()).unwrap();
                let mut dec = img
                    .open_compressed_blob::<pb::compression::Zstd>(&dg, None)
                    .unwrap();
                Box::new(move |off, len| {
                    let size = dec.get_uncompressed_length().unwrap();
                    dec.seek(SeekFrom::Start(off)).unwrap();
                    let mut buf = vec![0u8; len];
                    dec.read_exact(&mut buf).unwrap();
                    (size, buf)
                })
            }
            Generation::A => {
                let img = pa::oci::Image::open(oci).unwrap();
                let dg = pa::oci::Digest::try_from(name.as_str()).unwrap();
                let mut dec = img
                    .open_compressed_blob::<pa::compression::Zstd>(&dg, None)
                    .unwrap();
                Box::new(move |off, len| {
                    let size = dec.get_uncompressed_length().unwrap();
                    dec.seek(SeekFrom::Start(off)).unwrap();
                    let mut buf = vec![0u8; len];
                    dec.read_exact(&mut buf).unwrap();
                    (size, buf)
                })
            }
        };
        match crate::seekable_index_result(&blob).unwrap_or_else(|e| panic!("blob {name}: {e}")) {
            crate::HostLayout::Seekable(list, size) => {
                assert_eq!(gen, Generation::B, "0.1.0 writes plain zstd streams");
                assert_eq!(upstream(0, 0).0, size, "blob {name}: chunk size");
                for (c_off, c_len, d_off, d_len) in list {
                    let src = &blob[c_off as usize..(c_off + u64::from(c_len)) as usize];
                    let mine = zstd::bulk::decompress(src, d_len as usize).unwrap();
                    assert_eq!(mine.len(), d_len as usize, "blob {name}: frame size");
                    assert_eq!(
                        mine,
                        upstream(d_off, d_len as usize).1,
                        "blob {name}: frame"
                    );
                    // One byte less room: zstd must refuse, not write past the buffer.
                    if d_len > 0 {
                        assert!(zstd::bulk::decompress(src, d_len as usize - 1).is_err());
                    }
                    frames += 1;
                }
            }
            crate::HostLayout::Plain => {
                assert_eq!(gen, Generation::A, "0.2.0 writes seekable blobs");
                let (size, _) = upstream(0, 0);
                let all = zstd::bulk::decompress(&blob, 256 << 10).unwrap();
                assert_eq!(all.len() as u64, size);
                assert_eq!(all, upstream(0, size as usize).1);
                frames += 1;
            }
        }
    }
    frames
}

fn build_a(oci: &Path, src: &Path, tag: &str, base: Option<&str>) {
    let image = pa::oci::Image::new(oci).unwrap();
    match base {
        None => {
            let d =
                pa::builder::build_initial_rootfs::<pa::compression::Noop>(src, &image).unwrap();
            image.add_tag(tag, d).unwrap();
        }
        Some(b) => {
            let (d, image) =
                pa::builder::add_rootfs_delta::<pa::compression::Noop>(src, image, b).unwrap();
            image.add_tag(tag, d).unwrap();
        }
    }
}

/// Compiles the image `tag` and compares it with upstream's reader and with `src`. Returns
/// the tables and the counts of inodes and paths compared.
fn check(
    oci: &Path,
    src: &Path,
    tag: &str,
    gen: Generation,
    layers: u32,
) -> (HostTables, usize, usize) {
    let o = Opened::open(oci, tag);
    assert_eq!(o.gen, gen);
    let t = o.compile();
    let inodes = match gen {
        Generation::B => {
            let pfs =
                pb::reader::PuzzleFS::open(pb::oci::Image::open(oci).unwrap(), tag, None).unwrap();
            compare_with_upstream!(&t, pfs)
        }
        Generation::A => {
            let pfs =
                pa::reader::PuzzleFS::open(pa::oci::Image::open(oci).unwrap(), tag, None).unwrap();
            compare_with_upstream!(&t, pfs)
        }
    };
    let paths = compare_with_tree(&o, &t, src, layers);
    (t, inodes, paths)
}

type TreeFn = fn(&Path, u64);

fn run_single(gen: Generation, tree: TreeFn, seed: u64) {
    run_single_with(gen, tree, seed, false)
}

fn run_single_with(gen: Generation, tree: TreeFn, seed: u64, zstd: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    tree(&src, seed);
    let oci = tmp.path().join("oci");
    match gen {
        Generation::B if zstd => build_b_zstd(&oci, &src, "t", None),
        Generation::B => build_b(&oci, &src, "t", None),
        Generation::A if zstd => build_a_zstd(&oci, &src, "t", None),
        Generation::A => build_a(&oci, &src, "t", None),
    }
    let (t, inodes, paths) = check(&oci, &src, "t", gen, 1);
    if zstd {
        let compressed = t.extents.iter().filter(|e| e.compressed()).count();
        assert!(compressed > 0, "no compressed chunk seen");
        let frames = check_compressed_chunks(&oci, &t, gen);
        assert!(frames > 0);
        eprintln!("{gen:?}: {frames} compressed frames agree with upstream's decompressor");
    }
    let linked = t
        .blobs
        .iter()
        .filter(|b| b.next != crate::format::tables::NO_BLOB)
        .count();
    eprintln!(
        "{gen:?} seed {seed}: {inodes} inodes, {paths} paths agree; {} table bytes for {} metadata bytes; {linked} of {} blobs have a successor",
        t.stats().table_bytes,
        t.stats().metadata_bytes,
        t.blobs.len()
    );
}

fn run_layered(gen: Generation, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    fs::create_dir(&base).unwrap();
    tree_layer_base(&base, seed);
    let top = tmp.path().join("top");
    copy_tree(&base, &top);
    tree_layer_top(&top, seed);
    let oci = tmp.path().join("oci");
    let build = match gen {
        Generation::B => build_b,
        Generation::A => build_a,
    };
    build(&oci, &base, "base", None);
    build(&oci, &top, "top", Some("base"));
    check(&oci, &base, "base", gen, 1);
    let (t, inodes, paths) = check(&oci, &top, "top", gen, 2);
    // The deleted names are whiteouts in the top layer (upstream lists the name and finds no
    // inode), and gone from our tables.
    let root = t.inode(ROOT_INDEX).unwrap();
    assert!(t.lookup(root, b"gone").is_none());
    assert!(t
        .lookup(
            t.inode(t.lookup(root, b"keep").unwrap().1.target).unwrap(),
            b"del"
        )
        .is_none());
    macro_rules! whiteout_seen {
        ($pfs:expr) => {{
            let pfs = $pfs;
            let root = theirs!(pfs, 1).unwrap();
            let gone = root
                .entries
                .iter()
                .find(|e| e.0 == b"gone")
                .expect("gone entry kept");
            assert!(pfs.find_inode(gone.1).is_err(), "gone is a whiteout");
        }};
    }
    match gen {
        Generation::B => whiteout_seen!(pb::reader::PuzzleFS::open(
            pb::oci::Image::open(&oci).unwrap(),
            "top",
            None
        )
        .unwrap()),
        Generation::A => whiteout_seen!(pa::reader::PuzzleFS::open(
            pa::oci::Image::open(&oci).unwrap(),
            "top",
            None
        )
        .unwrap()),
    }
    eprintln!("{gen:?} layered seed {seed}: {inodes} inodes, {paths} paths agree");
}

#[test]
fn gen_b_kitchen_sink() {
    run_single(Generation::B, tree_kitchen_sink, 1);
}
#[test]
fn gen_b_wide_deep() {
    run_single(Generation::B, tree_wide_deep, 2);
}
#[test]
fn gen_b_empty() {
    run_single(Generation::B, |_, _| {}, 3);
}
#[test]
fn gen_b_random() {
    for seed in [4, 5, 6] {
        run_single(Generation::B, tree_random, seed);
    }
}
#[test]
fn gen_b_compressed() {
    run_single_with(Generation::B, tree_compressible, 8, true);
}
#[test]
fn gen_a_compressed() {
    run_single_with(Generation::A, tree_compressible, 9, true);
}
#[test]
fn gen_b_layered() {
    run_layered(Generation::B, 7);
}
#[test]
fn gen_a_kitchen_sink() {
    run_single(Generation::A, tree_kitchen_sink, 11);
}
#[test]
fn gen_a_wide_deep() {
    run_single(Generation::A, tree_wide_deep, 12);
}
#[test]
fn gen_a_empty() {
    run_single(Generation::A, |_, _| {}, 13);
}
#[test]
fn gen_a_random() {
    for seed in [14, 15, 16] {
        run_single(Generation::A, tree_random, seed);
    }
}
#[test]
fn gen_a_layered() {
    run_layered(Generation::A, 17);
}
