// SPDX-License-Identifier: GPL-2.0
//! pfs-check: the PuzzleFS selftest agent.
//!
//! A static binary run inside the test VM (and on the host against an
//! extracted or FUSE-mounted image). It compares a mount with the manifest of
//! its source tree and with the source files, and performs the mount(2) calls
//! whose errno the tests check. Every result is one line
//! `PFS-TEST: ok NAME` or `PFS-TEST: not ok NAME: REASON`; details of a failure
//! follow as `# ` lines, capped.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

const USAGE: &str = "\
usage: pfs-check COMMAND ARGS...
  walk NAME MOUNT MANIFEST [--skip F,F..]   compare a mount with a manifest
        fields for --skip: mode uid gid nlink rdev xattr hardlink dots dtype xerrno lsize
        blocks times
        readdir (enumerate by lookup of the manifest's paths only)
        --absent OLD_MANIFEST: paths of OLD not in MANIFEST must be ENOENT
  pread NAME MOUNT SRC SEED N               random preads vs the source tree
  mmap NAME MOUNT SRC                       mmap reads vs the source tree
  readers NAME MOUNT MANIFEST K [ROUNDS]    K threads reading, drop_caches between
  statfs NAME MOUNT MAGIC MANIFEST|-        f_type, bsize, namelen, files, ro
  mount-errno NAME EXPECT FSTYPE TARGET DATA [FLAGS]
        EXPECT: ok | keep (stay mounted) | errno name (EINVAL, ENOENT, ...) |
        A|B|... (any of these outcomes; a '# mount/NAME: mounted' or 'failed with E' line says which) |
        any (success, kept, or any errno)
        FLAGS: ro (default) | rw | remount-rw
  read-errno NAME EXPECT FILE [OFFSET LEN]  read (whole file by default)
  cycles NAME N FSTYPE TARGET DATA FILE     N mount/read/unmount cycles
  umount NAME TARGET
  xattr-unpriv NAME MOUNT MANIFEST          as uid/gid 65534: listxattr hides trusted.*
        names (others listed as stored), getxattr of them is ENODATA
  resident DIR                              bytes of DIR's regular files in the page cache
        and in all (mincore), printed as: RESIDENT TOTAL
  crawl NAME MOUNT [--max-entries N] [--max-bytes N]
        walk a (hostile) mount: readdir, lstat, readlink, xattrs, read every file,
        map a few; ok when every error is a clean one (EUCLEAN EIO ENOENT ENODATA
        E2BIG ERANGE ENOMEM EOPNOTSUPP ENAMETOOLONG) and the answers agree
Paths in manifests are percent-encoded bytes; see manifest.py.";

static DETAILS: AtomicUsize = AtomicUsize::new(0);
const MAX_DETAILS_TOTAL: usize = 40;
static FAILED: AtomicBool = AtomicBool::new(false);

fn detail(s: &str) {
    if DETAILS.fetch_add(1, Ordering::Relaxed) < MAX_DETAILS_TOTAL {
        println!("# {}", s.replace('\n', "\\n"));
    }
}

/// One named check: collects failures, prints one line.
struct Check {
    name: String,
    fails: Vec<String>,
    nfails: usize,
}

impl Check {
    fn new(name: &str) -> Self {
        Check {
            name: name.to_string(),
            fails: Vec::new(),
            nfails: 0,
        }
    }
    fn fail(&mut self, s: String) {
        self.nfails += 1;
        if self.fails.len() < 12 {
            self.fails.push(s);
        }
    }
    fn done(self) -> bool {
        if self.nfails == 0 {
            println!("PFS-TEST: ok {}", self.name);
            true
        } else {
            FAILED.store(true, Ordering::Relaxed);
            let first = self.fails[0].replace('\n', "\\n");
            println!(
                "PFS-TEST: not ok {}: {} failure(s), first: {}",
                self.name, self.nfails, first
            );
            for f in self.fails.iter().skip(1) {
                detail(f);
            }
            if self.nfails > self.fails.len() {
                detail(&format!("... {} more", self.nfails - self.fails.len()));
            }
            false
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EIO", libc::EIO),
    ("E2BIG", libc::E2BIG),
    ("EBADF", libc::EBADF),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("ENOTBLK", libc::ENOTBLK),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("ENODEV", libc::ENODEV),
    ("ENOTDIR", libc::ENOTDIR),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ERANGE", libc::ERANGE),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ELOOP", libc::ELOOP),
    ("ENODATA", libc::ENODATA),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EUCLEAN", libc::EUCLEAN),
    ("EBADMSG", libc::EBADMSG),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("ENOTSUP", libc::ENOTSUP),
];

fn errno_name(e: i32) -> String {
    ERRNOS
        .iter()
        .find(|(_, v)| *v == e)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("errno{}", e))
}

fn errno_value(name: &str) -> Option<i32> {
    ERRNOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .or_else(|| name.parse().ok())
}

fn cpath(p: &[u8]) -> CString {
    CString::new(p.to_vec()).unwrap_or_else(|_| CString::new("/nonexistent-nul").unwrap())
}

fn join(a: &[u8], rel: &[u8]) -> Vec<u8> {
    // rel starts with '/', or is "/" for the root
    let mut v = a.to_vec();
    while v.len() > 1 && v.ends_with(b"/") {
        v.pop();
    }
    if rel != b"/" {
        v.extend_from_slice(rel);
    }
    v
}

fn show(p: &[u8]) -> String {
    pct(p)
}

fn pct(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        if c.is_ascii_alphanumeric() || b"._/+,=~@-".contains(&c) {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{:02X}", c));
        }
    }
    s
}

fn unpct(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{:02x}", c)).collect()
}

#[derive(Default, Clone)]
struct Rec {
    typ: char,
    path: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: Option<u64>,
    sha256: Option<String>,
    target: Option<Vec<u8>>,
    rdev: Option<(u64, u64)>,
    link: Option<u64>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn read_manifest(path: &str) -> Result<Vec<Rec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {}", path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some("# pfs-manifest 1") {
        return Err(format!("{}: not a pfs-manifest 1", path));
    }
    let mut recs = Vec::new();
    let mut end = None;
    for line in lines {
        if let Some(n) = line.strip_prefix("# end ") {
            end = n.parse::<usize>().ok();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut it = line.split(' ');
        let typ = it
            .next()
            .and_then(|t| t.chars().next())
            .ok_or("empty line")?;
        let p = it.next().ok_or_else(|| format!("no path: {}", line))?;
        let mut r = Rec {
            typ,
            path: unpct(p),
            ..Default::default()
        };
        for kv in it {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("bad field {}", kv))?;
            let num = || v.parse::<u64>().map_err(|_| format!("bad number {}", kv));
            match k {
                "mode" => {
                    r.mode = u32::from_str_radix(v, 8).map_err(|_| format!("bad mode {}", v))?
                }
                "uid" => r.uid = num()? as u32,
                "gid" => r.gid = num()? as u32,
                "nlink" => r.nlink = num()?,
                "size" => r.size = Some(num()?),
                "sha256" => r.sha256 = Some(v.to_string()),
                "target" => r.target = Some(unpct(v)),
                "rdev" => {
                    let (a, b) = v.split_once(':').ok_or("bad rdev")?;
                    r.rdev = Some((a.parse().unwrap_or(0), b.parse().unwrap_or(0)));
                }
                "link" => r.link = Some(num()?),
                "x" => {
                    let (xk, xv) = v.split_once(':').ok_or("bad xattr")?;
                    r.xattrs.push((unpct(xk), unhex(xv)));
                }
                _ => {} // unknown keys: newer manifest, ignore
            }
        }
        recs.push(r);
    }
    if end != Some(recs.len()) {
        return Err(format!(
            "{}: truncated manifest ({} records, end {:?})",
            path,
            recs.len(),
            end
        ));
    }
    Ok(recs)
}

fn lstat(p: &[u8]) -> Result<libc::stat, i32> {
    let c = cpath(p);
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string, st a valid out pointer.
    let r = unsafe { libc::lstat(c.as_ptr(), &mut st) };
    if r == 0 {
        Ok(st)
    } else {
        Err(errno())
    }
}

fn type_char(mode: u32) -> char {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFREG => 'f',
        libc::S_IFLNK => 'l',
        libc::S_IFIFO => 'p',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFSOCK => 's',
        _ => '?',
    }
}

fn dtype_char(d: u8) -> char {
    match d {
        libc::DT_DIR => 'd',
        libc::DT_REG => 'f',
        libc::DT_LNK => 'l',
        libc::DT_FIFO => 'p',
        libc::DT_CHR => 'c',
        libc::DT_BLK => 'b',
        libc::DT_SOCK => 's',
        _ => '?',
    }
}

/// readdir through libc: all names including "." and "..", with d_type.
fn readdir(p: &[u8]) -> Result<Vec<(Vec<u8>, u8)>, i32> {
    let c = cpath(p);
    // SAFETY: valid C string.
    let d = unsafe { libc::opendir(c.as_ptr()) };
    if d.is_null() {
        return Err(errno());
    }
    let mut out = Vec::new();
    loop {
        // SAFETY: errno reset so that end-of-directory and an error can be told apart.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: d is an open DIR*.
        let e = unsafe { libc::readdir64(d) };
        if e.is_null() {
            let err = errno();
            // SAFETY: d is open.
            unsafe { libc::closedir(d) };
            if err != 0 {
                return Err(err);
            }
            break;
        }
        // SAFETY: e points to a valid dirent64 until the next readdir call.
        let (name, dt) = unsafe {
            let n = std::ffi::CStr::from_ptr((*e).d_name.as_ptr());
            (n.to_bytes().to_vec(), (*e).d_type)
        };
        out.push((name, dt));
    }
    Ok(out)
}

fn readlink(p: &[u8]) -> Result<Vec<u8>, i32> {
    std::fs::read_link(OsStr::from_bytes(p))
        .map(|t| t.into_os_string().as_bytes().to_vec())
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

fn llistxattr(p: &[u8], size: usize) -> Result<Vec<u8>, i32> {
    let c = cpath(p);
    let mut buf = vec![0u8; size];
    // SAFETY: buf has `size` bytes.
    let r = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr() as *mut libc::c_char, size) };
    if r < 0 {
        return Err(errno());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

fn lgetxattr(p: &[u8], name: &[u8], size: usize) -> Result<Vec<u8>, i32> {
    let c = cpath(p);
    let n = cpath(name);
    let mut buf = vec![0u8; size];
    // SAFETY: buf has `size` bytes; c and n are C strings.
    let r = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            n.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            size,
        )
    };
    if r < 0 {
        return Err(errno());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// All xattrs of p (sorted), using the size query then the exact-size read.
fn xattrs_of(p: &[u8], c: &mut Check, xerrno: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>, i32> {
    let sz = llistxattr(p, 0)?.len();
    let c0 = cpath(p);
    // SAFETY: size query with a null buffer.
    let need = unsafe { libc::llistxattr(c0.as_ptr(), std::ptr::null_mut(), 0) };
    let _ = sz;
    if need < 0 {
        return Err(errno());
    }
    let need = need as usize;
    let list = if need == 0 {
        Vec::new()
    } else {
        llistxattr(p, need)?
    };
    if list.len() != need {
        c.fail(format!(
            "{}: listxattr size query {} but list {}",
            show(p),
            need,
            list.len()
        ));
    }
    if xerrno && need > 0 {
        match llistxattr(p, need - 1) {
            Err(libc::ERANGE) => {}
            other => c.fail(format!(
                "{}: listxattr with small buffer: {:?}, want ERANGE",
                show(p),
                other.map(|v| v.len())
            )),
        }
    }
    let mut out = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cn = cpath(name);
        // SAFETY: size query.
        let vlen = unsafe { libc::lgetxattr(c0.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
        if vlen < 0 {
            c.fail(format!(
                "{}: getxattr({}) size: {}",
                show(p),
                show(name),
                errno_name(errno())
            ));
            continue;
        }
        let v = match lgetxattr(p, name, vlen as usize) {
            Ok(v) => v,
            Err(e) => {
                c.fail(format!(
                    "{}: getxattr({}): {}",
                    show(p),
                    show(name),
                    errno_name(e)
                ));
                continue;
            }
        };
        if v.len() != vlen as usize {
            c.fail(format!(
                "{}: getxattr({}) size query {} but value {}",
                show(p),
                show(name),
                vlen,
                v.len()
            ));
        }
        if xerrno && vlen > 1 {
            match lgetxattr(p, name, vlen as usize - 1) {
                Err(libc::ERANGE) => {}
                other => c.fail(format!(
                    "{}: getxattr({}) small buffer: {:?}, want ERANGE",
                    show(p),
                    show(name),
                    other.map(|v| v.len())
                )),
            }
        }
        out.push((name.to_vec(), v));
    }
    out.sort();
    Ok(out)
}

fn sha256_path(p: &[u8]) -> Result<String, String> {
    let mut f = std::fs::File::open(OsStr::from_bytes(p)).map_err(|e| format!("open: {}", e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 17];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("read: {}", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn walk(args: &[String]) -> i32 {
    if args.len() < 3 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let name = &args[0];
    let mnt = args[1].as_bytes();
    let mut skip: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut absent: Option<String> = None;
    let mut i = 3;
    while i < args.len() {
        if args[i] == "--skip" && i + 1 < args.len() {
            skip.extend(args[i + 1].split(',').map(|s| s.to_string()));
            i += 1;
        } else if args[i] == "--absent" && i + 1 < args.len() {
            absent = Some(args[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    let ck = |n: &str| Check::new(&format!("walk/{}/{}", name, n));
    let recs = match read_manifest(&args[2]) {
        Ok(r) => r,
        Err(e) => {
            let mut c = ck("manifest");
            c.fail(e);
            c.done();
            return 1;
        }
    };
    let want: BTreeMap<Vec<u8>, &Rec> = recs.iter().map(|r| (r.path.clone(), r)).collect();

    // 1. readdir: the set of paths, "." and "..", d_type, no duplicates
    let mut c_paths = ck("paths");
    let mut c_dots = ck("readdir-dots");
    let mut c_dtype = ck("readdir-dtype");
    let mut found: BTreeMap<Vec<u8>, libc::stat> = BTreeMap::new();
    let mut stack: Vec<Vec<u8>> = vec![b"/".to_vec()];
    while let Some(rel) = stack.pop() {
        let abs = join(mnt, &rel);
        let st = match lstat(&abs) {
            Ok(s) => s,
            Err(e) => {
                c_paths.fail(format!("lstat {}: {}", show(&rel), errno_name(e)));
                continue;
            }
        };
        found.insert(rel.clone(), st);
        if skip.contains("readdir") {
            // lookup only: enumerate the manifest's paths, not the directories
            if rel == b"/" {
                stack.extend(want.keys().filter(|k| k.as_slice() != b"/").cloned());
            }
            continue;
        }
        if type_char(st.st_mode) != 'd' {
            continue;
        }
        let ents = match readdir(&abs) {
            Ok(e) => e,
            Err(e) => {
                c_paths.fail(format!("readdir {}: {}", show(&rel), errno_name(e)));
                continue;
            }
        };
        let dots = ents.iter().filter(|(n, _)| n == b".").count();
        let dotdots = ents.iter().filter(|(n, _)| n == b"..").count();
        if !skip.contains("dots") && (dots != 1 || dotdots != 1) {
            c_dots.fail(format!("{}: '.' x{} '..' x{}", show(&rel), dots, dotdots));
        }
        let mut seen = HashSet::new();
        for (n, dt) in ents {
            if n == b"." || n == b".." {
                continue;
            }
            if !seen.insert(n.clone()) {
                c_paths.fail(format!("{}: duplicate entry {}", show(&rel), show(&n)));
                continue;
            }
            let child = if rel == b"/" {
                [b"/".as_slice(), &n].concat()
            } else {
                [rel.as_slice(), b"/", &n].concat()
            };
            if dt != libc::DT_UNKNOWN && !skip.contains("dtype") {
                if let Ok(cst) = lstat(&join(mnt, &child)) {
                    if dtype_char(dt) != type_char(cst.st_mode) {
                        c_dtype.fail(format!(
                            "{}: d_type {} but lstat {}",
                            show(&child),
                            dtype_char(dt),
                            type_char(cst.st_mode)
                        ));
                    }
                }
            }
            stack.push(child);
        }
    }
    for p in want.keys() {
        if !found.contains_key(p) {
            c_paths.fail(format!("missing {}", show(p)));
        }
    }
    for p in found.keys() {
        if !want.contains_key(p) {
            c_paths.fail(format!("unexpected {}", show(p)));
        }
    }
    // a name that does not exist is ENOENT
    match lstat(&join(mnt, b"/pfs-check-no-such-name")) {
        Err(libc::ENOENT) => {}
        r => c_paths.fail(format!(
            "lstat of a missing name: {:?}, want ENOENT",
            r.map(|_| "ok")
        )),
    }

    // names of an older tree that are gone (deleted in an upper layer): ENOENT
    let mut c_del = ck("deleted");
    let mut ndel = 0;
    if let Some(a) = &absent {
        match read_manifest(a) {
            Ok(old) => {
                for r in old.iter().filter(|r| !want.contains_key(&r.path)) {
                    ndel += 1;
                    match lstat(&join(mnt, &r.path)) {
                        // ENOTDIR: a parent became a non-directory
                        Err(libc::ENOENT) | Err(libc::ENOTDIR) => {}
                        Err(e) => c_del.fail(format!(
                            "deleted {}: lstat {}, want ENOENT",
                            show(&r.path),
                            errno_name(e)
                        )),
                        Ok(_) => c_del.fail(format!("deleted {} is still there", show(&r.path))),
                    }
                }
            }
            Err(e) => c_del.fail(e),
        }
    }

    // 2. per-path attributes
    let mut c_type = ck("types");
    let mut c_mode = ck("modes");
    let mut c_owner = ck("owners");
    let mut c_size = ck("sizes");
    let mut c_data = ck("content");
    let mut c_link = ck("symlinks");
    let mut c_rdev = ck("rdev");
    let mut c_nlink = ck("nlink");
    let mut c_blocks = ck("blocks");
    let mut c_times = ck("times");
    let mut c_x = ck("xattrs");
    let mut c_xe = ck("xattr-errno");
    let mut nx = 0usize;
    for (p, r) in &want {
        let st = match found.get(p) {
            Some(s) => *s,
            None => continue,
        };
        let abs = join(mnt, p);
        let t = type_char(st.st_mode);
        if t != r.typ {
            c_type.fail(format!("{}: type {} want {}", show(p), t, r.typ));
            continue;
        }
        if !skip.contains("mode") && st.st_mode & 0o7777 != r.mode {
            c_mode.fail(format!(
                "{}: mode {:04o} want {:04o}",
                show(p),
                st.st_mode & 0o7777,
                r.mode
            ));
        }
        if !skip.contains("uid") && st.st_uid != r.uid {
            c_owner.fail(format!("{}: uid {} want {}", show(p), st.st_uid, r.uid));
        }
        if !skip.contains("gid") && st.st_gid != r.gid {
            c_owner.fail(format!("{}: gid {} want {}", show(p), st.st_gid, r.gid));
        }
        // st_blocks covers the data, in 512-byte units, at most page-rounded
        if !skip.contains("blocks") && r.typ == 'f' {
            let (b, sz) = (st.st_blocks as u64 * 512, st.st_size as u64);
            if b < sz || b > sz.div_ceil(4096) * 4096 {
                c_blocks.fail(format!(
                    "{}: st_blocks {} for size {}",
                    show(p),
                    st.st_blocks,
                    sz
                ));
            }
        }
        // the format stores no timestamps: all are the epoch
        if !skip.contains("times") && (st.st_mtime != 0 || st.st_ctime != 0 || st.st_atime != 0) {
            c_times.fail(format!(
                "{}: atime {} mtime {} ctime {}, want 0",
                show(p),
                st.st_atime,
                st.st_mtime,
                st.st_ctime
            ));
        }
        if !skip.contains("nlink") && st.st_nlink != r.nlink {
            c_nlink.fail(format!(
                "{}: nlink {} want {}",
                show(p),
                st.st_nlink,
                r.nlink
            ));
        }
        if let Some(sz) = r.size {
            if st.st_size as u64 != sz && !(r.typ == 'l' && skip.contains("lsize")) {
                c_size.fail(format!("{}: size {} want {}", show(p), st.st_size, sz));
            }
        }
        if let Some(h) = &r.sha256 {
            match sha256_path(&abs) {
                Ok(got) if &got == h => {}
                Ok(got) => c_data.fail(format!("{}: sha256 {} want {}", show(p), got, h)),
                Err(e) => c_data.fail(format!("{}: {}", show(p), e)),
            }
        }
        if let Some(tg) = &r.target {
            match readlink(&abs) {
                Ok(got) if &got == tg => {}
                Ok(got) => c_link.fail(format!(
                    "{}: target {} want {}",
                    show(p),
                    show(&got),
                    show(tg)
                )),
                Err(e) => c_link.fail(format!("{}: readlink {}", show(p), errno_name(e))),
            }
        }
        if let Some((ma, mi)) = r.rdev {
            if !skip.contains("rdev") {
                let (gma, gmi) = (
                    libc::major(st.st_rdev) as u64,
                    libc::minor(st.st_rdev) as u64,
                );
                if (gma, gmi) != (ma, mi) {
                    c_rdev.fail(format!(
                        "{}: rdev {}:{} want {}:{}",
                        show(p),
                        gma,
                        gmi,
                        ma,
                        mi
                    ));
                }
            }
        }
        if !skip.contains("xattr") {
            let xerr = !skip.contains("xerrno");
            match xattrs_of(&abs, &mut c_xe, xerr) {
                Ok(got) => {
                    nx += got.len();
                    if got != r.xattrs {
                        let gk: Vec<String> = got
                            .iter()
                            .map(|(k, v)| format!("{}({})", show(k), v.len()))
                            .collect();
                        let wk: Vec<String> = r
                            .xattrs
                            .iter()
                            .map(|(k, v)| format!("{}({})", show(k), v.len()))
                            .collect();
                        let mut msg = format!(
                            "{}: xattrs [{}] want [{}]",
                            show(p),
                            gk.join(","),
                            wk.join(",")
                        );
                        for ((k1, v1), (k2, v2)) in got.iter().zip(r.xattrs.iter()) {
                            if k1 == k2 && v1 != v2 {
                                msg.push_str(&format!(
                                    " ({} value {} want {})",
                                    show(k1),
                                    short_hex(v1),
                                    short_hex(v2)
                                ));
                                break;
                            }
                        }
                        c_x.fail(msg);
                    }
                }
                Err(libc::EOPNOTSUPP) if r.xattrs.is_empty() => {}
                Err(e) => c_x.fail(format!("{}: listxattr {}", show(p), errno_name(e))),
            }
        }
    }
    // ENODATA for a missing name, on the root and on the first file
    if !skip.contains("xerrno") {
        for p in [b"/".to_vec()]
            .into_iter()
            .chain(want.values().find(|r| r.typ == 'f').map(|r| r.path.clone()))
        {
            match lgetxattr(&join(mnt, &p), b"user.pfs-check-missing", 64) {
                Err(libc::ENODATA) => {}
                r => c_xe.fail(format!(
                    "{}: getxattr of a missing name: {:?}, want ENODATA",
                    show(&p),
                    r.map(|v| v.len()).map_err(errno_name)
                )),
            }
        }
    }

    // 3. hard links: one st_ino per group, distinct otherwise, nlink = names
    let mut c_hl = ck("hardlinks");
    if !skip.contains("hardlink") {
        let mut by_group: HashMap<u64, Vec<(&Vec<u8>, u64)>> = HashMap::new();
        let mut owner_of_ino: HashMap<u64, (Option<u64>, Vec<u8>)> = HashMap::new();
        for (p, r) in &want {
            let st = match found.get(p) {
                Some(s) => s,
                None => continue,
            };
            if r.typ == 'd' {
                continue;
            }
            if let Some(g) = r.link {
                by_group.entry(g).or_default().push((p, st.st_ino as u64));
            }
            match owner_of_ino.get(&(st.st_ino as u64)) {
                Some((og, op)) if *og != r.link || r.link.is_none() => {
                    c_hl.fail(format!(
                        "{} and {} share ino {} but are not linked",
                        show(op),
                        show(p),
                        st.st_ino
                    ));
                }
                Some(_) => {}
                None => {
                    owner_of_ino.insert(st.st_ino as u64, (r.link, p.clone()));
                }
            }
        }
        for (g, members) in &by_group {
            let ino0 = members[0].1;
            if members.iter().any(|m| m.1 != ino0) {
                c_hl.fail(format!(
                    "link group {} ({}): different inode numbers",
                    g,
                    show(members[0].0)
                ));
            }
        }
    }
    let npaths = want.len();
    let mut checks = Vec::new();
    if absent.is_some() {
        checks.push(c_del);
    }
    checks.extend([
        c_paths, c_dots, c_dtype, c_type, c_mode, c_owner, c_size, c_data, c_link, c_rdev, c_nlink,
        c_blocks, c_times, c_x, c_xe, c_hl,
    ]);
    let n = checks.len();
    let failed: Vec<&Check> = checks.iter().filter(|c| c.nfails > 0).collect();
    let wname = format!("walk/{}", name);
    let ok = failed.is_empty();
    if ok {
        println!("PFS-TEST: ok {}", wname);
    } else {
        FAILED.store(true, Ordering::Relaxed);
        let list: Vec<String> = failed
            .iter()
            .map(|c| format!("{}({})", c.name.rsplit('/').next().unwrap_or(""), c.nfails))
            .collect();
        println!("PFS-TEST: not ok {}: failed {}", wname, list.join(" "));
        for c in &failed {
            let sub = c.name.rsplit('/').next().unwrap_or("");
            for f in &c.fails {
                detail(&format!("{}: {}", sub, f));
            }
            if c.nfails > c.fails.len() {
                detail(&format!("{}: ... {} more", sub, c.nfails - c.fails.len()));
            }
        }
    }
    let skipped: Vec<&String> = skip.iter().collect();
    println!(
        "# {}: {} paths, {} xattrs, {} deleted names; {} sub-checks, {} failed{}",
        wname,
        npaths,
        nx,
        ndel,
        n,
        failed.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped {:?}", skipped)
        }
    );
    if ok {
        0
    } else {
        1
    }
}

fn short_hex(v: &[u8]) -> String {
    if v.len() <= 16 {
        hex(v)
    } else {
        format!("{}..({} bytes)", hex(&v[..16]), v.len())
    }
}

/// splitmix64: a small deterministic PRNG.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Regular files of a source tree: (relative path starting with '/', size).
fn src_files(src: &[u8]) -> Vec<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![b"/".to_vec()];
    while let Some(rel) = stack.pop() {
        let abs = join(src, &rel);
        let st = match lstat(&abs) {
            Ok(s) => s,
            Err(_) => continue,
        };
        match type_char(st.st_mode) {
            'f' => out.push((rel, st.st_size as u64)),
            'd' => {
                if let Ok(ents) = readdir(&abs) {
                    for (n, _) in ents {
                        if n == b"." || n == b".." {
                            continue;
                        }
                        let child = if rel == b"/" {
                            [b"/".as_slice(), &n].concat()
                        } else {
                            [rel.as_slice(), b"/", &n].concat()
                        };
                        stack.push(child);
                    }
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

fn pread_full(f: &std::fs::File, off: u64, len: usize) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.raw_os_error().unwrap_or(0)),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

fn pick_offset(rng: &mut Rng, size: u64) -> u64 {
    const B: [u64; 6] = [4096, 16384, 65536, 131072, 262144, 1 << 20];
    match rng.below(4) {
        0 => rng.below(size + 1),
        1 => {
            // around a page/chunk-size boundary
            let b = B[rng.below(B.len() as u64) as usize];
            let k = if size >= b {
                rng.below(size / b + 1)
            } else {
                0
            };
            (k * b)
                .wrapping_add(rng.below(9))
                .wrapping_sub(4)
                .min(size + 4096)
        }
        2 => size.saturating_sub(rng.below(70000)),
        _ => size + rng.below(10000), // at and past EOF
    }
}

fn cmd_pread(args: &[String]) -> i32 {
    if args.len() != 5 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, mnt, src) = (&args[0], args[1].as_bytes(), args[2].as_bytes());
    let seed: u64 = args[3].parse().unwrap_or(1);
    let n: u64 = args[4].parse().unwrap_or(1000);
    let mut c = Check::new(&format!("pread/{}", name));
    let files = src_files(src);
    if files.is_empty() {
        c.fail("no source files".into());
        return if c.done() { 0 } else { 1 };
    }
    // weight toward larger files: half the picks among files >= 64 KiB
    let big: Vec<&(Vec<u8>, u64)> = files.iter().filter(|f| f.1 >= 65536).collect();
    let mut rng = Rng(seed);
    let mut bytes = 0u64;
    for _ in 0..n {
        let (rel, size) = if !big.is_empty() && rng.below(2) == 0 {
            big[rng.below(big.len() as u64) as usize].clone()
        } else {
            files[rng.below(files.len() as u64) as usize].clone()
        };
        let off = pick_offset(&mut rng, size);
        let len = match rng.below(3) {
            0 => rng.below(4097) as usize,
            1 => rng.below(70000) as usize,
            _ => rng.below(300000) as usize,
        };
        let a = match std::fs::File::open(OsStr::from_bytes(&join(mnt, &rel))) {
            Ok(f) => f,
            Err(e) => {
                c.fail(format!("{}: open: {}", show(&rel), e));
                continue;
            }
        };
        let b = match std::fs::File::open(OsStr::from_bytes(&join(src, &rel))) {
            Ok(f) => f,
            Err(e) => {
                c.fail(format!("{}: open source: {}", show(&rel), e));
                continue;
            }
        };
        match (pread_full(&a, off, len), pread_full(&b, off, len)) {
            (Ok(x), Ok(y)) => {
                bytes += x.len() as u64;
                if x != y {
                    let at = x
                        .iter()
                        .zip(y.iter())
                        .position(|(p, q)| p != q)
                        .unwrap_or(x.len().min(y.len()));
                    c.fail(format!(
                        "{}: pread({}, {}) got {} bytes want {}, first difference at +{}",
                        show(&rel),
                        off,
                        len,
                        x.len(),
                        y.len(),
                        at
                    ));
                }
            }
            (Err(e), _) => c.fail(format!(
                "{}: pread({}, {}): {}",
                show(&rel),
                off,
                len,
                errno_name(e)
            )),
            (_, Err(e)) => c.fail(format!("{}: source pread: {}", show(&rel), errno_name(e))),
        }
    }
    println!(
        "# pread/{}: {} reads, {} bytes, {} files",
        name,
        n,
        bytes,
        files.len()
    );
    if c.done() {
        0
    } else {
        1
    }
}

fn mmap_compare(path: &[u8], want: &[u8], off: u64) -> Result<(), String> {
    let f = std::fs::File::open(OsStr::from_bytes(path)).map_err(|e| format!("open: {}", e))?;
    let len = want.len();
    if len == 0 {
        return Ok(());
    }
    use std::os::unix::io::AsRawFd;
    // SAFETY: read-only private mapping of an open file, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            off as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", errno_name(errno())));
    }
    // SAFETY: the mapping covers len bytes and the file is not truncated (read-only fs).
    let got = unsafe { std::slice::from_raw_parts(p as *const u8, len) };
    let mut res = Ok(());
    if got != want {
        let at = got
            .iter()
            .zip(want.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        res = Err(format!("mapped bytes differ at {}", at));
    } else {
        // the rest of the last page reads as zeroes
        let page = 4096usize;
        let end = len.div_ceil(page) * page;
        // SAFETY: the mapping extends to the page end.
        let tail = unsafe { std::slice::from_raw_parts((p as *const u8).add(len), end - len) };
        if tail.iter().any(|&b| b != 0) {
            res = Err("bytes past EOF in the last page are not zero".into());
        }
    }
    // SAFETY: p/len from the mmap above.
    unsafe { libc::munmap(p, len) };
    res
}

fn cmd_mmap(args: &[String]) -> i32 {
    if args.len() != 3 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, mnt, src) = (&args[0], args[1].as_bytes(), args[2].as_bytes());
    let mut c = Check::new(&format!("mmap/{}", name));
    let files = src_files(src);
    let mut n = 0;
    for (i, (rel, size)) in files.iter().enumerate() {
        // every file >= 4 KiB, and every 7th smaller one
        if *size < 4096 && i % 7 != 0 {
            continue;
        }
        let want = match std::fs::read(OsStr::from_bytes(&join(src, rel))) {
            Ok(w) => w,
            Err(e) => {
                c.fail(format!("{}: read source: {}", show(rel), e));
                continue;
            }
        };
        n += 1;
        if let Err(e) = mmap_compare(&join(mnt, rel), &want, 0) {
            c.fail(format!("{}: {}", show(rel), e));
        }
        // a mapping that starts inside the file (page-aligned, not chunk-aligned)
        if *size > 3 * 65536 {
            let off = 65536 + 4096 * (i as u64 % 7 + 1);
            if let Err(e) = mmap_compare(&join(mnt, rel), &want[off as usize..], off) {
                c.fail(format!("{}: at offset {}: {}", show(rel), off, e));
            }
        }
    }
    println!("# mmap/{}: {} files", name, n);
    if c.done() {
        0
    } else {
        1
    }
}

fn drop_caches() -> Result<(), String> {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", b"3").map_err(|e| format!("drop_caches: {}", e))
}

fn cmd_readers(args: &[String]) -> i32 {
    if args.len() < 4 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let name = args[0].clone();
    let mnt = args[1].as_bytes().to_vec();
    let k: usize = args[3].parse().unwrap_or(8);
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut c = Check::new(&format!("readers/{}", name));
    let recs = match read_manifest(&args[2]) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            c.fail(e);
            c.done();
            return 1;
        }
    };
    let fails = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    for round in 0..rounds {
        if let Err(e) = drop_caches() {
            c.fail(e);
        }
        stop.store(false, Ordering::SeqCst);
        // a dropper thread keeps dropping caches while the readers run
        let st2 = stop.clone();
        let dropper = std::thread::spawn(move || {
            let mut n = 0;
            while !st2.load(Ordering::SeqCst) {
                let _ = drop_caches();
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            n
        });
        let mut hs = Vec::new();
        for t in 0..k {
            let recs = recs.clone();
            let mnt = mnt.clone();
            let fails = fails.clone();
            hs.push(std::thread::spawn(move || {
                // each thread starts at a different place and strides differently
                let n = recs.len();
                let stride = [1usize, 3, 7, 11, 13, 17, 19, 23][t % 8];
                let mut idx = (t * n) / k.max(1) + round;
                for _ in 0..n {
                    idx = (idx + stride) % n;
                    let r = &recs[idx];
                    let p = join(&mnt, &r.path);
                    let st = match lstat(&p) {
                        Ok(s) => s,
                        Err(e) => {
                            fails.lock().unwrap().push(format!(
                                "t{} lstat {}: {}",
                                t,
                                show(&r.path),
                                errno_name(e)
                            ));
                            continue;
                        }
                    };
                    if type_char(st.st_mode) != r.typ {
                        fails
                            .lock()
                            .unwrap()
                            .push(format!("t{} {}: type", t, show(&r.path)));
                    }
                    match r.typ {
                        'f' => match sha256_path(&p) {
                            Ok(h) if Some(&h) == r.sha256.as_ref() => {}
                            Ok(_) => fails.lock().unwrap().push(format!(
                                "t{} {}: content differs",
                                t,
                                show(&r.path)
                            )),
                            Err(e) => fails.lock().unwrap().push(format!(
                                "t{} {}: {}",
                                t,
                                show(&r.path),
                                e
                            )),
                        },
                        'd' => {
                            if let Err(e) = readdir(&p) {
                                fails.lock().unwrap().push(format!(
                                    "t{} readdir {}: {}",
                                    t,
                                    show(&r.path),
                                    errno_name(e)
                                ));
                            }
                        }
                        'l' => {
                            if readlink(&p).ok() != r.target {
                                fails.lock().unwrap().push(format!(
                                    "t{} {}: readlink",
                                    t,
                                    show(&r.path)
                                ));
                            }
                        }
                        _ => {}
                    }
                }
            }));
        }
        for h in hs {
            if h.join().is_err() {
                c.fail("reader thread panicked".into());
            }
        }
        stop.store(true, Ordering::SeqCst);
        let _ = dropper.join();
    }
    for f in fails.lock().unwrap().iter() {
        c.fail(f.clone());
    }
    println!(
        "# readers/{}: {} threads x {} rounds over {} paths",
        name,
        k,
        rounds,
        recs.len()
    );
    if c.done() {
        0
    } else {
        1
    }
}

fn do_mount(fstype: &str, target: &str, data: &str, flags: &str) -> Result<(), i32> {
    let src = CString::new("none").unwrap();
    let fst = CString::new(fstype).unwrap();
    let tgt = CString::new(target).unwrap();
    let dat = CString::new(data).unwrap();
    let fl = match flags {
        "rw" => 0,
        "remount-rw" => libc::MS_REMOUNT,
        "remount-ro" => libc::MS_REMOUNT | libc::MS_RDONLY,
        _ => libc::MS_RDONLY,
    };
    // SAFETY: all pointers are valid C strings.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ptr(),
            fl,
            dat.as_ptr() as *const libc::c_void,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn do_umount(target: &str) -> Result<(), i32> {
    let tgt = CString::new(target).unwrap();
    // SAFETY: valid C string.
    if unsafe { libc::umount2(tgt.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn cmd_mount_errno(args: &[String]) -> i32 {
    if args.len() < 5 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, expect, fstype, target, data) = (&args[0], &args[1], &args[2], &args[3], &args[4]);
    let flags = args.get(5).map(|s| s.as_str()).unwrap_or("ro");
    let mut c = Check::new(&format!("mount/{}", name));
    let r = do_mount(fstype, target, data, flags);
    if expect.contains('|') || expect == "any" {
        // A list of acceptable outcomes (ok, keep, errno names) or any outcome: the mount
        // stays if it succeeded and "keep" or "any" is listed. One detail line says what
        // happened, for the caller to count.
        let alts: Vec<&str> = expect.split('|').collect();
        match r {
            Ok(()) => {
                println!("# mount/{}: mounted", name);
                if !alts.iter().any(|a| matches!(*a, "ok" | "keep" | "any")) {
                    let _ = do_umount(target);
                    c.fail(format!("mount succeeded, expected {}", expect));
                } else if !alts.iter().any(|a| matches!(*a, "keep" | "any")) {
                    if let Err(e) = do_umount(target) {
                        c.fail(format!("umount: {}", errno_name(e)));
                    }
                }
            }
            Err(e) => {
                println!("# mount/{}: failed with {}", name, errno_name(e));
                if !alts
                    .iter()
                    .any(|a| *a == "any" || errno_value(a) == Some(e))
                {
                    c.fail(format!("errno {} expected {}", errno_name(e), expect));
                }
            }
        }
        return if c.done() { 0 } else { 1 };
    }
    match (expect.as_str(), r) {
        ("ok", Ok(())) => {
            if flags != "remount-rw" && flags != "remount-ro" {
                if let Err(e) = do_umount(target) {
                    c.fail(format!("umount: {}", errno_name(e)));
                }
            }
        }
        ("keep", Ok(())) => {}
        ("ok" | "keep", Err(e)) => c.fail(format!(
            "mount failed with {}, expected success",
            errno_name(e)
        )),
        (want, Ok(())) => {
            if flags != "remount-rw" {
                let _ = do_umount(target);
            }
            c.fail(format!("mount succeeded, expected {}", want));
        }
        (want, Err(e)) => {
            if errno_value(want) != Some(e) {
                c.fail(format!("errno {} expected {}", errno_name(e), want));
            }
        }
    }
    if c.done() {
        0
    } else {
        1
    }
}

fn cmd_read_errno(args: &[String]) -> i32 {
    if args.len() != 3 && args.len() != 5 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, expect, file) = (&args[0], &args[1], &args[2]);
    let mut c = Check::new(&format!("read/{}", name));
    let res = std::fs::File::open(file)
        .map_err(|e| e.raw_os_error().unwrap_or(0))
        .and_then(|f| {
            if args.len() == 5 {
                let off = args[3].parse().unwrap_or(0);
                let len = args[4].parse().unwrap_or(0);
                pread_full(&f, off, len).map(|v| v.len())
            } else {
                let mut v = Vec::new();
                let mut f = f;
                f.read_to_end(&mut v)
                    .map(|_| v.len())
                    .map_err(|e| e.raw_os_error().unwrap_or(0))
            }
        });
    match (expect.as_str(), res) {
        ("ok", Ok(_)) => {}
        ("ok", Err(e)) => c.fail(format!("read failed with {}", errno_name(e))),
        (want, Ok(n)) => c.fail(format!("read {} bytes, expected {}", n, want)),
        (want, Err(e)) => {
            if errno_value(want) != Some(e) {
                c.fail(format!("errno {} expected {}", errno_name(e), want));
            }
        }
    }
    if c.done() {
        0
    } else {
        1
    }
}

fn cmd_statfs(args: &[String]) -> i32 {
    if args.len() != 4 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let name = &args[0];
    let mut c = Check::new(&format!("statfs/{}", name));
    let magic = u64::from_str_radix(args[2].trim_start_matches("0x"), 16).unwrap_or(0);
    let mp = cpath(args[1].as_bytes());
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    if unsafe { libc::statfs(mp.as_ptr(), &mut s) } != 0 {
        c.fail(format!("statfs: {}", errno_name(errno())));
        return if c.done() { 0 } else { 1 };
    }
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::statvfs(mp.as_ptr(), &mut sv) };
    if s.f_type as u64 != magic {
        c.fail(format!("f_type {:#x} want {:#x}", s.f_type, magic));
    }
    if s.f_bsize != 4096 {
        c.fail(format!("f_bsize {} want 4096", s.f_bsize));
    }
    if s.f_namelen != 255 {
        c.fail(format!("f_namelen {} want 255", s.f_namelen));
    }
    if sv.f_flag & libc::ST_RDONLY == 0 {
        c.fail("not read-only (ST_RDONLY missing)".into());
    }
    if s.f_bfree != 0 || s.f_bavail != 0 || s.f_ffree != 0 {
        c.fail(format!(
            "free counts not zero: bfree {} bavail {} ffree {}",
            s.f_bfree, s.f_bavail, s.f_ffree
        ));
    }
    if args[3] != "-" {
        match read_manifest(&args[3]) {
            Ok(recs) => {
                // inode count: every directory plus every distinct non-directory inode
                let mut groups = HashSet::new();
                let mut n = 0u64;
                let mut bytes = 0u64;
                for r in &recs {
                    match r.link {
                        Some(g) if !groups.insert(g) => continue,
                        _ => {}
                    }
                    n += 1;
                    if r.typ == 'f' {
                        bytes += r.size.unwrap_or(0);
                    }
                }
                if s.f_files != n {
                    c.fail(format!("f_files {} want {} (inodes)", s.f_files, n));
                }
                let min_blocks = bytes / 4096;
                if (s.f_blocks as u64) < min_blocks {
                    c.fail(format!(
                        "f_blocks {} < data size {} / 4096",
                        s.f_blocks, bytes
                    ));
                }
            }
            Err(e) => c.fail(e),
        }
    }
    if c.done() {
        0
    } else {
        1
    }
}

fn cmd_cycles(args: &[String]) -> i32 {
    if args.len() != 6 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, fstype, target, data, file) = (&args[0], &args[2], &args[3], &args[4], &args[5]);
    let n: usize = args[1].parse().unwrap_or(200);
    let mut c = Check::new(&format!("cycles/{}", name));
    let path = format!(
        "{}/{}",
        target.trim_end_matches('/'),
        file.trim_start_matches('/')
    );
    let mut first: Option<String> = None;
    for i in 0..n {
        if let Err(e) = do_mount(fstype, target, data, "ro") {
            c.fail(format!("cycle {}: mount: {}", i, errno_name(e)));
            break;
        }
        match sha256_path(path.as_bytes()) {
            Ok(h) => match &first {
                None => first = Some(h),
                Some(f) if *f != h => c.fail(format!("cycle {}: content changed", i)),
                _ => {}
            },
            Err(e) => c.fail(format!("cycle {}: read {}: {}", i, path, e)),
        }
        if let Err(e) = do_umount(target) {
            c.fail(format!("cycle {}: umount: {}", i, errno_name(e)));
            break;
        }
    }
    println!("# cycles/{}: {} cycles", name, n);
    if c.done() {
        0
    } else {
        1
    }
}

fn cmd_umount(args: &[String]) -> i32 {
    if args.len() != 2 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let mut c = Check::new(&format!("umount/{}", args[0]));
    if let Err(e) = do_umount(&args[1]) {
        c.fail(format!("umount {}: {}", args[1], errno_name(e)));
    }
    if c.done() {
        0
    } else {
        1
    }
}

/// Drops to uid/gid 65534 (no capabilities left) and checks what listxattr and getxattr show of
/// every path with xattrs: `trusted.` names are neither listed nor readable (the VFS's
/// xattr_permission() answers ENODATA), the others are listed as stored. Ends the process's privileges: run it as its own command.
fn cmd_xattr_unpriv(args: &[String]) -> i32 {
    if args.len() != 3 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, mnt) = (&args[0], args[1].as_bytes());
    let mut c = Check::new(&format!("xattr-unpriv/{}", name));
    let recs = match read_manifest(&args[2]) {
        Ok(r) => r,
        Err(e) => {
            c.fail(format!("manifest: {}", e));
            c.done();
            return 1;
        }
    };
    // SAFETY: Plain syscalls; group first, while still privileged.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0
        || unsafe { libc::setgid(65534) } != 0
        || unsafe { libc::setuid(65534) } != 0
    {
        c.fail(format!("cannot drop privileges: {}", errno_name(errno())));
        c.done();
        return 1;
    }
    let mut trusted = 0usize;
    for r in recs.iter().filter(|r| !r.xattrs.is_empty()) {
        let abs = join(mnt, &r.path);
        let want: Vec<&[u8]> = r
            .xattrs
            .iter()
            .map(|(k, _)| k.as_slice())
            .filter(|k| !k.starts_with(b"trusted."))
            .collect();
        let hidden: Vec<&[u8]> = r
            .xattrs
            .iter()
            .map(|(k, _)| k.as_slice())
            .filter(|k| k.starts_with(b"trusted."))
            .collect();
        match llistxattr(&abs, 1 << 16) {
            // A path under a directory that 65534 may not search: nothing to see.
            Err(libc::EACCES) => continue,
            Ok(list) => {
                trusted += hidden.len();
                let mut got: Vec<&[u8]> =
                    list.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
                got.sort();
                let mut want = want.clone();
                want.sort();
                if got != want {
                    c.fail(format!(
                        "{}: listxattr [{}] want [{}]",
                        show(&r.path),
                        got.iter().map(|n| show(n)).collect::<Vec<_>>().join(" "),
                        want.iter().map(|n| show(n)).collect::<Vec<_>>().join(" ")
                    ));
                }
            }
            Err(e) => c.fail(format!("{}: listxattr: {}", show(&r.path), errno_name(e))),
        }
        for k in hidden {
            match lgetxattr(&abs, k, 1 << 16) {
                Err(libc::ENODATA) => {}
                other => c.fail(format!(
                    "{}: getxattr({}) unprivileged: {:?}, want ENODATA",
                    show(&r.path),
                    show(k),
                    other.map(|v| v.len()).map_err(errno_name)
                )),
            }
        }
    }
    if trusted == 0 {
        c.fail("the manifest has no trusted.* xattrs: nothing was checked".to_string());
    }
    if c.done() {
        0
    } else {
        1
    }
}

/// Errnos a hostile image may legitimately produce while it is walked: the
/// driver refused something (EUCLEAN, EIO), a name is gone or too long, a
/// buffer or an allocation is too small, an operation is unsupported.
const CLEAN_ERRNOS: &[i32] = &[
    libc::EUCLEAN,
    libc::EIO,
    libc::ENOENT,
    libc::ENODATA,
    libc::E2BIG,
    libc::ERANGE,
    libc::ENOMEM,
    libc::EOPNOTSUPP,
    libc::ENAMETOOLONG,
];

/// What `crawl` met: counts of objects and of clean errors by name.
#[derive(Default)]
struct Crawl {
    dirs: u64,
    files: u64,
    symlinks: u64,
    other: u64,
    entries: u64,
    xattrs: u64,
    bytes: u64,
    mmaps: u64,
    errors: BTreeMap<String, u64>,
    stopped: Option<&'static str>,
}

impl Crawl {
    /// Counts a clean errno; anything else fails the check.
    fn error(&mut self, c: &mut Check, path: &[u8], op: &str, e: i32) {
        if CLEAN_ERRNOS.contains(&e) {
            *self.errors.entry(errno_name(e)).or_insert(0) += 1;
        } else {
            c.fail(format!(
                "{}: {} failed with {}",
                show(path),
                op,
                errno_name(e)
            ));
        }
    }
}

fn at_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    // paths are for messages only: keep them short
    if p.len() > 200 {
        let tail = p[p.len() - 120..].to_vec();
        p = [b"...".as_slice(), &tail].concat();
    }
    p
}

fn fstatat_nofollow(dirfd: i32, name: &CString) -> Result<libc::stat, i32> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: dirfd is an open directory, name a C string, st an out pointer.
    let r = unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    if r == 0 {
        Ok(st)
    } else {
        Err(errno())
    }
}

fn chdir_c(p: &[u8]) -> Result<(), i32> {
    let c = cpath(p);
    // SAFETY: a C string.
    if unsafe { libc::chdir(c.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn cwd_stat() -> Result<libc::stat, i32> {
    lstat(b".")
}

/// Names and d_types of directory entries.
type DirEntries = Vec<(Vec<u8>, u8)>;

/// Entries of the current directory (no "." and ".."), at most `max`, and
/// whether there were more.
fn read_cwd(max: u64) -> Result<(DirEntries, bool), i32> {
    let dot = CString::new(".").unwrap();
    // SAFETY: a C string; the fd goes to fdopendir (closed by closedir).
    let fd = unsafe {
        libc::open(
            dot.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: fd is an open directory.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = errno();
        // SAFETY: fd is open and not owned by a DIR.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let mut out = Vec::new();
    let mut cut = false;
    let res = loop {
        if out.len() as u64 >= max {
            cut = true;
            break Ok(());
        }
        // SAFETY: errno reset so that end-of-directory and an error can be told apart.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: d is an open DIR*.
        let e = unsafe { libc::readdir64(d) };
        if e.is_null() {
            let err = errno();
            break if err != 0 { Err(err) } else { Ok(()) };
        }
        // SAFETY: e points to a valid dirent64 until the next readdir call.
        let (name, dt) = unsafe {
            let n = std::ffi::CStr::from_ptr((*e).d_name.as_ptr());
            (n.to_bytes().to_vec(), (*e).d_type)
        };
        if name != b"." && name != b".." {
            out.push((name, dt));
        }
    };
    // SAFETY: d is open.
    unsafe { libc::closedir(d) };
    res.map(|_| (out, cut))
}

/// Lists and reads every xattr of `name` (relative to the current directory).
fn crawl_xattrs(cr: &mut Crawl, c: &mut Check, path: &[u8], name: &[u8]) {
    let cn = cpath(name);
    // SAFETY: size query with a null buffer.
    let need = unsafe { libc::llistxattr(cn.as_ptr(), std::ptr::null_mut(), 0) };
    if need < 0 {
        let e = errno();
        if e != libc::EOPNOTSUPP {
            cr.error(c, path, "listxattr", e);
        }
        return;
    }
    if need == 0 {
        return;
    }
    let list = match llistxattr(name, need as usize) {
        Ok(l) => l,
        Err(e) => return cr.error(c, path, "listxattr", e),
    };
    for key in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        cr.xattrs += 1;
        let ck = cpath(key);
        // SAFETY: size query.
        let vlen = unsafe { libc::lgetxattr(cn.as_ptr(), ck.as_ptr(), std::ptr::null_mut(), 0) };
        if vlen < 0 {
            cr.error(c, path, &format!("getxattr({})", show(key)), errno());
            continue;
        }
        match lgetxattr(name, key, vlen as usize) {
            Ok(v) if v.len() == vlen as usize => {}
            Ok(v) => c.fail(format!(
                "{}: getxattr({}) size query {} but value {}",
                show(path),
                show(key),
                vlen,
                v.len()
            )),
            Err(e) => cr.error(c, path, &format!("getxattr({})", show(key)), e),
        }
    }
}

/// The failure line a SIGBUS while `mmap_check` reads a mapping prints (set
/// around the access; the crawl is single-threaded).
static BUS_MSG: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static BUS_LEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigbus(_sig: libc::c_int) {
    let p = BUS_MSG.load(Ordering::Relaxed);
    let n = BUS_LEN.load(Ordering::Relaxed);
    if !p.is_null() {
        // SAFETY: p/n describe a live buffer (see mmap_check); write and _exit are
        // async-signal-safe.
        unsafe { libc::write(1, p as *const libc::c_void, n) };
    }
    // SAFETY: ends the process without running anything else.
    unsafe { libc::_exit(1) };
}

/// Maps the first page of an open file and compares it with what read() gave.
/// A fault in the mapping (SIGBUS) of a file that read fine is a failure: the
/// handler prints the check's failure line and ends the process (no fork per
/// file: forks are slow in the test VM).
fn mmap_check(fd: i32, want: &[u8], check: &str, path: &[u8]) -> Result<(), String> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.swap(true, Ordering::Relaxed) {
        // SAFETY: a plain handler for SIGBUS, installed once.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as usize;
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    }
    // SAFETY: read-only private mapping of an open file, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            want.len(),
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap failed with {}", errno_name(errno())));
    }
    let msg = format!(
        "PFS-TEST: not ok {}: {}: SIGBUS reading the mapping of a file that read fine\n",
        check,
        show(path)
    );
    BUS_MSG.store(msg.as_ptr() as *mut u8, Ordering::Relaxed);
    BUS_LEN.store(msg.len(), Ordering::Relaxed);
    // SAFETY: the mapping covers want.len() bytes.
    let same = unsafe { std::slice::from_raw_parts(p as *const u8, want.len()) } == want;
    BUS_MSG.store(std::ptr::null_mut(), Ordering::Relaxed);
    drop(msg);
    // SAFETY: p/len from the mmap above.
    unsafe { libc::munmap(p, want.len()) };
    if same {
        Ok(())
    } else {
        Err("mapped bytes differ from read bytes".into())
    }
}

/// Reads a regular file (relative to the current directory) to its end or
/// to the byte budget; maps its first page if it read cleanly.
fn crawl_file(
    cr: &mut Crawl,
    c: &mut Check,
    path: &[u8],
    name: &[u8],
    st: &libc::stat,
    max_bytes: u64,
) {
    let cn = cpath(name);
    // SAFETY: a C string.
    let fd = unsafe {
        libc::open(
            cn.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return cr.error(c, path, "open", errno());
    }
    let mut buf = vec![0u8; 1 << 17];
    let mut first = Vec::new();
    let mut total = 0u64;
    let mut ok = true;
    let mut cut = false;
    loop {
        if cr.bytes >= max_bytes {
            cut = true;
            break;
        }
        let want = buf.len().min((max_bytes - cr.bytes) as usize);
        // SAFETY: buf has at least `want` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, want) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            cr.error(c, path, &format!("read at {}", total), e);
            ok = false;
            break;
        }
        if n == 0 {
            break;
        }
        if first.len() < 4096 {
            let k = (4096 - first.len()).min(n as usize);
            first.extend_from_slice(&buf[..k]);
        }
        total += n as u64;
        cr.bytes += n as u64;
    }
    if ok && !cut && total != st.st_size as u64 {
        c.fail(format!(
            "{}: read {} bytes to EOF, st_size {}",
            show(path),
            total,
            st.st_size
        ));
    }
    if ok && !first.is_empty() && cr.mmaps < 4 {
        cr.mmaps += 1;
        if let Err(e) = mmap_check(fd, &first, &c.name, path) {
            c.fail(format!("{}: mmap: {}", show(path), e));
        }
    }
    // SAFETY: fd is open.
    unsafe { libc::close(fd) };
}

/// crawl CASE MNT [--max-entries N] [--max-bytes N]: walk the whole mounted
/// tree (readdir with d_type checked against lstat, lstat, readlink, every
/// xattr, every regular file read once per inode, the first pages of four
/// mapped),
/// by relative paths (chdir down, ".." up) so that any depth works. Passes
/// when every error met is a clean one (CLEAN_ERRNOS) and what was read is
/// consistent (no directory reached twice, no name listed twice, d_type and
/// symlink sizes as lstat says, files as long as st_size).
fn cmd_crawl(args: &[String]) -> i32 {
    if args.len() < 2 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let (name, mnt) = (&args[0], args[1].as_bytes());
    let mut max_entries = u64::MAX;
    let mut max_bytes = u64::MAX;
    let mut i = 2;
    while i + 1 < args.len() {
        let v = args[i + 1].parse().unwrap_or(u64::MAX);
        match args[i].as_str() {
            "--max-entries" => max_entries = v,
            "--max-bytes" => max_bytes = v,
            _ => {
                eprintln!("{}", USAGE);
                return 2;
            }
        }
        i += 2;
    }
    let mut c = Check::new(&format!("crawl/{}", name));
    let mut cr = Crawl::default();
    if let Err(e) = chdir_c(mnt) {
        cr.error(&mut c, mnt, "chdir", e);
        return crawl_done(c, cr, name);
    }
    let root = match cwd_stat() {
        Ok(s) => s,
        Err(e) => {
            cr.error(&mut c, mnt, "lstat", e);
            return crawl_done(c, cr, name);
        }
    };
    crawl_xattrs(&mut cr, &mut c, b"/", b".");
    // One frame per directory on the way down: its ino, path (for messages),
    // and the subdirectories still to visit.
    struct Frame {
        ino: u64,
        path: Vec<u8>,
        subdirs: Vec<(Vec<u8>, u64)>,
    }
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut read_inodes: HashSet<(u64, u64)> = HashSet::new();
    seen_dirs.insert((root.st_dev, root.st_ino));
    let mut stack: Vec<Frame> = Vec::new();
    let mut cur = Some((b"/".to_vec(), root.st_ino));
    'walk: loop {
        if let Some((path, ino)) = cur.take() {
            // in the directory `path`: list it, look at every entry
            cr.dirs += 1;
            let mut frame = Frame {
                ino,
                path: path.clone(),
                subdirs: Vec::new(),
            };
            let left = max_entries.saturating_sub(cr.entries);
            match read_cwd(left) {
                Err(e) => cr.error(&mut c, &path, "readdir", e),
                Ok((ents, cut)) => {
                    if cut {
                        cr.stopped = Some("max entries");
                    }
                    let dot = CString::new(".").unwrap();
                    // SAFETY: a C string.
                    let dirfd = unsafe {
                        libc::open(
                            dot.as_ptr(),
                            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                        )
                    };
                    let mut names = HashSet::new();
                    for (n, dt) in ents {
                        cr.entries += 1;
                        let p = at_path(&path, &n);
                        if !names.insert(n.clone()) {
                            c.fail(format!("{}: name listed twice by readdir", show(&p)));
                            continue;
                        }
                        let cn = cpath(&n);
                        let st = match fstatat_nofollow(dirfd, &cn) {
                            Ok(s) => s,
                            Err(e) => {
                                cr.error(&mut c, &p, "lstat", e);
                                continue;
                            }
                        };
                        let t = type_char(st.st_mode);
                        if dt != libc::DT_UNKNOWN && dtype_char(dt) != t {
                            c.fail(format!(
                                "{}: readdir d_type {} but lstat type {}",
                                show(&p),
                                dtype_char(dt),
                                t
                            ));
                        }
                        crawl_xattrs(&mut cr, &mut c, &p, &n);
                        match t {
                            'd' => {
                                if seen_dirs.insert((st.st_dev, st.st_ino)) {
                                    frame.subdirs.push((n, st.st_ino));
                                } else {
                                    c.fail(format!(
                                        "{}: directory inode {} reached twice",
                                        show(&p),
                                        st.st_ino
                                    ));
                                }
                            }
                            'l' => {
                                cr.symlinks += 1;
                                let mut buf = vec![0u8; 65536];
                                // SAFETY: buf has buf.len() bytes; dirfd is open.
                                let r = unsafe {
                                    libc::readlinkat(
                                        dirfd,
                                        cn.as_ptr(),
                                        buf.as_mut_ptr() as *mut libc::c_char,
                                        buf.len(),
                                    )
                                };
                                if r < 0 {
                                    cr.error(&mut c, &p, "readlink", errno());
                                } else if r as i64 != st.st_size {
                                    c.fail(format!(
                                        "{}: readlink gave {} bytes, st_size {}",
                                        show(&p),
                                        r,
                                        st.st_size
                                    ));
                                }
                            }
                            'f' => {
                                cr.files += 1;
                                if read_inodes.insert((st.st_dev, st.st_ino)) {
                                    crawl_file(&mut cr, &mut c, &p, &n, &st, max_bytes);
                                }
                            }
                            _ => cr.other += 1,
                        }
                    }
                    if dirfd >= 0 {
                        // SAFETY: dirfd is open.
                        unsafe { libc::close(dirfd) };
                    }
                }
            }
            frame.subdirs.reverse();
            stack.push(frame);
        }
        if cr.entries >= max_entries {
            cr.stopped = Some("max entries");
            break 'walk;
        }
        // next subdirectory of the innermost frame that has one left
        loop {
            let Some(top) = stack.last_mut() else {
                break 'walk;
            };
            if let Some((n, ino)) = top.subdirs.pop() {
                let p = at_path(&top.path, &n);
                match chdir_c(&n) {
                    Err(e) => cr.error(&mut c, &p, "chdir", e),
                    Ok(()) => match cwd_stat() {
                        Ok(s) if s.st_ino == ino => {
                            cur = Some((p, ino));
                            break;
                        }
                        other => {
                            c.fail(format!(
                                "{}: after chdir, '.' is {:?}, lstat said inode {}",
                                show(&p),
                                other.map(|s| s.st_ino),
                                ino
                            ));
                            break 'walk;
                        }
                    },
                }
                continue;
            }
            // done with this directory: back up
            let done = stack.pop().unwrap();
            let Some(parent) = stack.last() else {
                break 'walk;
            };
            let back = chdir_c(b"..").and_then(|_| cwd_stat());
            match back {
                Ok(s) if s.st_ino == parent.ino => {}
                other => {
                    c.fail(format!(
                        "{}: '..' leads to {:?}, not the parent (inode {})",
                        show(&done.path),
                        other.map(|s| s.st_ino),
                        parent.ino
                    ));
                    break 'walk;
                }
            }
        }
    }
    let _ = chdir_c(b"/");
    crawl_done(c, cr, name)
}

fn crawl_done(c: Check, cr: Crawl, name: &str) -> i32 {
    let errs: Vec<String> = cr
        .errors
        .iter()
        .map(|(k, v)| format!("{} {}", k, v))
        .collect();
    println!(
        "# crawl/{}: {} dirs, {} files, {} symlinks, {} other, {} entries, {} xattrs, {} bytes read, {} mmaps; errors: {}{}",
        name,
        cr.dirs,
        cr.files,
        cr.symlinks,
        cr.other,
        cr.entries,
        cr.xattrs,
        cr.bytes,
        cr.mmaps,
        if errs.is_empty() { "none".to_string() } else { errs.join(", ") },
        cr.stopped.map(|s| format!("; stopped at {}", s)).unwrap_or_default()
    );
    if c.done() {
        0
    } else {
        1
    }
}

/// Bytes of `path` in the page cache (`mincore()` of a shared read-only mapping, which faults
/// nothing in) and its size. Run as root: for a file the caller could not write, `mincore()`
/// reports every page as resident.
fn resident_bytes(path: &std::path::Path) -> Result<(u64, u64), String> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| format!("open {}: {}", path.display(), e))?;
    let len = f.metadata().map_err(|e| format!("stat: {}", e))?.len();
    if len == 0 {
        return Ok((0, 0));
    }
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u64,
        _ => return Err("sysconf(_SC_PAGESIZE) failed".into()),
    };
    let pages = len.div_ceil(page) as usize;
    // SAFETY: a fresh shared read-only mapping of an open file; it is only passed to mincore
    // and unmapped below, never read.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(format!("mmap {}: {}", path.display(), errno_name(errno())));
    }
    let mut vec = vec![0u8; pages];
    // SAFETY: `addr` maps `len` bytes (above); `vec` has one byte per page of them.
    let r = unsafe { libc::mincore(addr, len as usize, vec.as_mut_ptr()) };
    let e = errno();
    // SAFETY: `addr` and `len` are the mapping made above.
    unsafe { libc::munmap(addr, len as usize) };
    if r != 0 {
        return Err(format!("mincore {}: {}", path.display(), errno_name(e)));
    }
    let mut resident = 0u64;
    for (i, v) in vec.iter().enumerate() {
        if v & 1 != 0 {
            // The last page counts for the bytes of the file it holds.
            resident += (len - i as u64 * page).min(page);
        }
    }
    Ok((resident, len))
}

/// `resident DIR`: how much of the regular files directly in DIR is cached.
fn cmd_resident(args: &[String]) -> i32 {
    if args.len() != 1 {
        eprintln!("{}", USAGE);
        return 2;
    }
    let entries = match std::fs::read_dir(&args[0]) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("resident: {}: {}", args[0], e);
            return 1;
        }
    };
    let (mut resident, mut total) = (0u64, 0u64);
    for e in entries {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                eprintln!("resident: {}: {}", args[0], err);
                return 1;
            }
        };
        if !e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        match resident_bytes(&e.path()) {
            Ok((r, t)) => {
                resident += r;
                total += t;
            }
            Err(m) => {
                eprintln!("resident: {}", m);
                return 1;
            }
        }
    }
    println!("{} {}", resident, total);
    0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("{}", USAGE);
        std::process::exit(2);
    }
    let rest = &args[2..];
    let rc = match args[1].as_str() {
        "walk" => walk(rest),
        "pread" => cmd_pread(rest),
        "mmap" => cmd_mmap(rest),
        "readers" => cmd_readers(rest),
        "statfs" => cmd_statfs(rest),
        "mount-errno" => cmd_mount_errno(rest),
        "read-errno" => cmd_read_errno(rest),
        "cycles" => cmd_cycles(rest),
        "umount" => cmd_umount(rest),
        "xattr-unpriv" => cmd_xattr_unpriv(rest),
        "crawl" => cmd_crawl(rest),
        "resident" => cmd_resident(rest),
        _ => {
            eprintln!("{}", USAGE);
            2
        }
    };
    std::process::exit(if rc == 0 && FAILED.load(Ordering::Relaxed) {
        1
    } else {
        rc
    });
}
