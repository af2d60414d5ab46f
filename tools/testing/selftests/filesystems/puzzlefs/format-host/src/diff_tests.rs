// SPDX-License-Identifier: GPL-2.0

//! Differential tests: images built by the real upstream `puzzlefs-lib`
//! (0.2.0 for Generation B, 0.1.0 for Generation A) from generated trees are
//! read by our format core and compared, inode by inode, with what the
//! upstream reader sees, and, path by path, with the source tree itself
//! (types, permissions, owners, sizes, file bytes read through our chunk
//! lists, symlink targets, device numbers, xattrs, link counts).
//!
//! Set `PUZZLEFS_SEED_DIR` to copy every image's blobs there (fuzz seeds).

use crate::format::image::{self, chunk_for_offset, Image, Inode, InodeKind, LinkCount};
use crate::format::oci::{self, BlobKind};
use crate::format::rootfs::Rootfs;
use crate::format::{digest_to_hex, Digest, Generation};
use crate::unit_tests::Aligned;
use core::ops::ControlFlow;
use puzzlefs_lib_a as pa;
use puzzlefs_lib_b as pb;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

// ---- tree generation ----

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
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o640) }, 0);
}

fn mknod_chr(p: &Path, major: u32, minor: u32) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o600,
            libc::makedev(major, minor),
        ) == 0
    }
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// A tree with every kind of inode, files around the chunk sizes, hard
/// links, identical files and xattrs.
fn tree_kitchen_sink(root: &Path, seed: u64) {
    let mut r = Rng(seed | 1);
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
    mknod_chr(&root.join("a/null"), 1, 3);
    set_xattr(&root.join("a/f2"), "user.one", b"1");
    set_xattr(&root.join("a/f2"), "user.two", &r.bytes(300));
    set_xattr(&root.join("a/b"), "user.dir", b"");
    set_xattr(&root.join("hl"), "user.hl", b"shared");
    fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o1777)).unwrap();
    chown(&root.join("a/f3"), 1234, 5678);
    chown(&root.join("rel"), 42, 43);
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
    let mut r = Rng(seed | 1);
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
    let mut r = Rng(seed | 1);
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
    write(&root.join("keep/mod"), &Rng(seed).bytes(100_000), 0o644);
    write(&root.join("keep/perm"), b"perm", 0o644);
    symlink("old", root.join("keep/link")).unwrap();
}

/// The next layer: deleted file and directory, modified file, permission
/// and symlink changes, new entries. (No hard-link name is deleted: 0.2.0's
/// `build -b` cannot do that.)
fn tree_layer_top(root: &Path, seed: u64) {
    fs::remove_dir_all(root.join("gone")).unwrap();
    fs::remove_file(root.join("keep/del")).unwrap();
    let mut m = Rng(seed ^ 0x55).bytes(120_000);
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

// ---- our reader ----

fn read_blob(oci: &Path, d: &Digest) -> Vec<u8> {
    let mut hex = [0u8; 64];
    let name = digest_to_hex(d, &mut hex);
    let bytes = fs::read(oci.join("blobs/sha256").join(name)).unwrap();
    assert_eq!(Sha256::digest(&bytes).as_slice(), d, "blob {name} hash");
    if let Ok(dir) = std::env::var("PUZZLEFS_SEED_DIR") {
        let _ = fs::create_dir_all(&dir);
        let _ = fs::write(Path::new(&dir).join(name), &bytes);
    }
    bytes
}

struct Opened {
    gen: Generation,
    bufs: Vec<Aligned>,
    oci: PathBuf,
}

impl Opened {
    fn open(oci: &Path, tag: &str) -> Self {
        let index = fs::read(oci.join("index.json")).unwrap();
        let idx = oci::Index::parse(&index).unwrap();
        let e = idx.find_tag(tag.as_bytes()).unwrap();
        assert_eq!(e.generation, idx.generation());
        let blob = read_blob(oci, &e.digest);
        assert_eq!(blob.len() as u64, e.size);
        let mut bufs = vec![];
        match oci::blob_kind(&blob) {
            BlobKind::OciManifest => {
                assert_eq!(e.generation, Generation::B);
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
                bufs.push(a);
            }
            BlobKind::Rootfs => {
                assert_eq!(e.generation, Generation::A);
                let a = Aligned::new(&blob);
                let r = Rootfs::parse(a.get()).unwrap();
                assert_eq!(r.generation(), Generation::A);
                let layers: Vec<_> = (0..r.layer_count())
                    .map(|i| r.layer_blob(i).unwrap())
                    .collect();
                bufs.push(a);
                for d in layers {
                    bufs.push(Aligned::new(&read_blob(oci, &d)));
                }
            }
        }
        Self {
            gen: e.generation,
            bufs,
            oci: oci.to_path_buf(),
        }
    }

    fn image(&self) -> Image<'_> {
        match self.gen {
            Generation::B => {
                Image::from_rootfs(&Rootfs::parse(self.bufs[0].get()).unwrap()).unwrap()
            }
            Generation::A => {
                let mut img = Image::new();
                for b in &self.bufs[1..] {
                    img.push_layer(b.get()).unwrap();
                }
                img
            }
        }
    }
}

fn entries(img: &Image<'_>, dir: &Inode, visible: bool) -> Vec<(Vec<u8>, u64)> {
    let mut v = vec![];
    if visible {
        let _ = img
            .for_each_visible_dir_entry(dir, 0, |e, _| {
                v.push((e.name.to_vec(), e.ino));
                ControlFlow::<()>::Continue(())
            })
            .unwrap();
    } else {
        let _ = img
            .for_each_dir_entry(dir, 0, |e| {
                v.push((e.name.to_vec(), e.ino));
                ControlFlow::<()>::Continue(())
            })
            .unwrap();
    }
    v
}

fn xattrs(img: &Image<'_>, i: &Inode) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v = vec![];
    let _ = img
        .for_each_xattr(i, |k, val| {
            v.push((k.to_vec(), val.to_vec()));
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    v
}

fn chunks(img: &Image<'_>, i: &Inode) -> Vec<image::Chunk> {
    let mut v = vec![];
    let _ = img
        .for_each_chunk(i, |_, c| {
            v.push(c);
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    v
}

/// Our inode mode in upstream's `Debug` notation, for exact comparison.
fn mode_debug(img: &Image<'_>, i: &Inode) -> String {
    match i.kind {
        InodeKind::Dir { look_below, .. } => {
            let e: Vec<String> = entries(img, i, false)
                .into_iter()
                .map(|(n, ino)| format!("DirEnt {{ ino: {ino}, name: {n:?} }}"))
                .collect();
            format!(
                "Dir {{ dir_list: DirList {{ look_below: {look_below}, entries: [{}] }} }}",
                e.join(", ")
            )
        }
        InodeKind::File { .. } => {
            let c: Vec<String> = chunks(img, i)
                .into_iter()
                .map(|c| {
                    format!(
                        "FileChunk {{ blob: BlobRef {{ digest: {:?}, offset: {}, compressed: {} }}, len: {} }}",
                        c.digest, c.offset, c.compressed, c.len
                    )
                })
                .collect();
            format!("File {{ chunks: [{}] }}", c.join(", "))
        }
        InodeKind::Symlink => "Lnk".into(),
        InodeKind::Fifo => "Fifo".into(),
        InodeKind::Sock => "Sock".into(),
        InodeKind::Whiteout => "Wht".into(),
        InodeKind::Chr { major, minor } => format!("Chr {{ major: {major}, minor: {minor} }}"),
        InodeKind::Blk { major, minor } => format!("Blk {{ major: {major}, minor: {minor} }}"),
    }
}

/// Compares every inode number up to max + 1 with what the upstream reader returns.
macro_rules! compare_with_upstream {
    ($img:expr, $pfs:expr) => {{
        let img = $img;
        let pfs = $pfs;
        let max = pfs.max_inode().unwrap();
        let mut seen = 0;
        for ino in 0..=max + 1 {
            let theirs = pfs.find_inode(ino).ok();
            let ours = img.find_inode(ino).unwrap();
            match (&theirs, ours) {
                (None, None) => {}
                // Upstream reports a whited-out inode as not found.
                (None, Some(o)) if o.kind == InodeKind::Whiteout => {
                    assert!(img.inode(ino).is_err());
                }
                (Some(t), Some(o)) => {
                    seen += 1;
                    assert_eq!(t.ino, o.ino);
                    assert_eq!(
                        (t.uid, t.gid, t.permissions & 0o7777),
                        (o.uid, o.gid, o.permissions),
                        "ino {ino}"
                    );
                    assert_eq!(format!("{:?}", t.mode), mode_debug(&img, &o), "ino {ino}");
                    let (tx, tl) = match &t.additional {
                        Some(a) => (
                            a.xattrs
                                .iter()
                                .map(|x| (x.key.clone(), x.val.clone()))
                                .collect::<Vec<_>>(),
                            a.symlink_target.clone(),
                        ),
                        None => (vec![], None),
                    };
                    assert_eq!(tx, xattrs(&img, &o), "xattrs of ino {ino}");
                    if o.kind == InodeKind::Symlink {
                        assert_eq!(
                            tl.as_deref(),
                            Some(img.symlink_target(&o).unwrap()),
                            "ino {ino}"
                        );
                    }
                }
                _ => panic!("ino {ino}: upstream {:?} ours {:?}", theirs.is_some(), ours),
            }
        }
        assert!(seen > 0);
        seen
    }};
}

/// Walks the source tree and our image side by side.
fn compare_with_tree(o: &Opened, src: &Path) -> usize {
    let img = o.image();
    let mut counts = vec![LinkCount::default(); img.inode_slots()];
    let totals = img.count_links(&mut counts).unwrap();
    let mut blobs: HashMap<Digest, Vec<u8>> = HashMap::new();
    let mut host_to_ours: HashMap<u64, u64> = HashMap::new();
    let mut n = 0;
    let mut data = 0u64;
    let mut seen_inos = BTreeSet::new();
    let mut stack = vec![(src.to_path_buf(), img.inode(image::ROOT_INO).unwrap())];
    while let Some((path, inode)) = stack.pop() {
        n += 1;
        let md = fs::symlink_metadata(&path).unwrap();
        let what = path.display().to_string();
        assert_eq!(inode.permissions as u32, md.mode() & 0o7777, "{what}");
        assert_eq!((inode.uid, inode.gid), (md.uid(), md.gid()), "{what}");
        assert_eq!(
            *host_to_ours.entry(md.ino()).or_insert(inode.ino),
            inode.ino,
            "{what}: hard links"
        );
        let fresh = seen_inos.insert(inode.ino);
        if path != src {
            assert_eq!(
                image::nlink_of(&counts[..totals.used], inode.ino),
                Some(md.nlink() as u32),
                "{what}: nlink"
            );
        }
        let mut theirs: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for k in xattr::list(&path).unwrap() {
            let v = xattr::get(&path, &k).unwrap().unwrap_or_default();
            theirs.insert(k.as_encoded_bytes().to_vec(), v);
        }
        let ours: BTreeMap<_, _> = xattrs(&img, &inode).into_iter().collect();
        assert_eq!(theirs, ours, "{what}: xattrs");
        for (k, v) in &ours {
            assert_eq!(img.xattr_get(&inode, k).unwrap(), Some(&v[..]));
        }
        let ft = md.file_type();
        if ft.is_dir() {
            assert!(matches!(inode.kind, InodeKind::Dir { .. }), "{what}");
            let mut src_names: Vec<Vec<u8>> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().as_encoded_bytes().to_vec())
                .collect();
            src_names.sort();
            let ents = entries(&img, &inode, true);
            let mut our_names: Vec<Vec<u8>> = ents.iter().map(|e| e.0.clone()).collect();
            our_names.sort();
            assert_eq!(src_names, our_names, "{what}: entries");
            for (name, ino) in ents {
                let child = img.lookup(&inode, &name).unwrap().unwrap();
                assert_eq!(child.ino, ino);
                let p = path.join(std::ffi::OsStr::from_encoded_bytes_unchecked_safe(&name));
                stack.push((p, child));
            }
            assert!(img.lookup(&inode, b"does-not-exist").unwrap().is_none());
        } else if ft.is_file() {
            let InodeKind::File {
                size,
                chunks: nchunks,
            } = inode.kind
            else {
                panic!("{what}: not a file")
            };
            assert_eq!(size, md.len(), "{what}: size");
            if fresh {
                data += size;
            }
            let expect = fs::read(&path).unwrap();
            let mut got = Vec::with_capacity(expect.len());
            let cs = chunks(&img, &inode);
            for c in &cs {
                let b = blobs.entry(c.digest).or_insert_with(|| {
                    let raw = read_blob(&o.oci, &c.digest);
                    if c.compressed {
                        zstd::stream::decode_all(&raw[..]).unwrap()
                    } else {
                        raw
                    }
                });
                got.extend_from_slice(&b[c.offset as usize..(c.offset + c.len) as usize]);
            }
            assert!(got == expect, "{what}: contents");
            let mut ends = vec![0u64; nchunks as usize];
            img.fill_chunk_ends(&inode, &mut ends).unwrap();
            for off in [0, size / 3, size / 2, size.saturating_sub(1), size] {
                match chunk_for_offset(&ends, off) {
                    Some((i, within)) => {
                        let c = &cs[i];
                        let b = &blobs[&c.digest];
                        assert_eq!(
                            b[(c.offset + within) as usize],
                            expect[off as usize],
                            "{what}@{off}"
                        );
                    }
                    None => assert_eq!(off, size),
                }
            }
        } else if ft.is_symlink() {
            assert_eq!(inode.kind, InodeKind::Symlink, "{what}");
            let t = fs::read_link(&path).unwrap();
            assert_eq!(
                img.symlink_target(&inode).unwrap(),
                t.as_os_str().as_encoded_bytes(),
                "{what}"
            );
        } else if ft.is_fifo() {
            assert_eq!(inode.kind, InodeKind::Fifo, "{what}");
        } else if ft.is_char_device() {
            let InodeKind::Chr {
                major: ma,
                minor: mi,
            } = inode.kind
            else {
                panic!("{what}: not a character device: {:?}", inode.kind)
            };
            assert_eq!(
                (ma, mi),
                (libc::major(md.rdev()) as u64, libc::minor(md.rdev()) as u64),
                "{what}"
            );
        } else {
            panic!("{what}: unexpected type");
        }
    }
    assert_eq!(
        totals.inodes as usize,
        seen_inos.len(),
        "reachable inode count"
    );
    assert_eq!(totals.data_bytes, data, "data bytes");
    n
}

trait OsStrExt2 {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr;
}
impl OsStrExt2 for std::ffi::OsStr {
    fn from_encoded_bytes_unchecked_safe(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
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

fn check(oci: &Path, src: &Path, tag: &str, gen: Generation) -> (usize, usize) {
    let o = Opened::open(oci, tag);
    assert_eq!(o.gen, gen);
    let img = o.image();
    let inodes = match gen {
        Generation::B => {
            let pfs =
                pb::reader::PuzzleFS::open(pb::oci::Image::open(oci).unwrap(), tag, None).unwrap();
            compare_with_upstream!(img, pfs)
        }
        Generation::A => {
            let pfs =
                pa::reader::PuzzleFS::open(pa::oci::Image::open(oci).unwrap(), tag, None).unwrap();
            compare_with_upstream!(img, pfs)
        }
    };
    // The fuzzing entry point must be happy with real images too.
    let bufs: Vec<&[u8]> = match gen {
        Generation::B => vec![o.bufs[0].get()],
        Generation::A => o.bufs[1..].iter().map(|b| b.get()).collect(),
    };
    crate::exercise_image(&bufs, gen == Generation::B, &mut [0u64; 64]);
    (inodes, compare_with_tree(&o, src))
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
        Generation::A => build_a(&oci, &src, "t", None),
    }
    let (inodes, paths) = check(&oci, &src, "t", gen);
    if zstd {
        let o = Opened::open(&oci, "t");
        let img = o.image();
        let mut compressed = 0;
        for ino in 1..1000 {
            if let Ok(i) = img.inode(ino) {
                if let InodeKind::File { .. } = i.kind {
                    compressed += chunks(&img, &i).iter().filter(|c| c.compressed).count();
                }
            }
        }
        assert!(compressed > 0, "no compressed chunk seen");
    }
    eprintln!("{gen:?} seed {seed}: {inodes} inodes, {paths} paths agree");
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
    let o = Opened::open(&oci, "top");
    assert_eq!(o.image().layer_count(), 2, "two layers");
    check(&oci, &base, "base", gen);
    let (inodes, paths) = check(&oci, &top, "top", gen);
    // The deleted names are whiteouts in the top layer, and gone from our view.
    let img = o.image();
    let root = img.inode(1).unwrap();
    let gone = entries(&img, &root, false)
        .into_iter()
        .find(|e| e.0 == b"gone")
        .expect("gone entry kept");
    assert_eq!(
        img.find_inode(gone.1).unwrap().unwrap().kind,
        InodeKind::Whiteout
    );
    assert!(img.lookup(&root, b"gone").unwrap().is_none());
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
