// SPDX-License-Identifier: GPL-2.0
//! pfs-bench: the timed part of `scripts/puzzlefs/run bench`, run inside the bench VM.
//!
//! One call measures one filesystem on one tree, for one repetition, and prints one line per
//! measurement, `PFS-BENCH {json}`, which the host collects from the console. Repetition 0 is the
//! byte check: it walks and reads everything with sha256 and compares with what the host computed
//! from the source tree (lists/expect); it is not timed, so hashing (slow under TCG) never
//! inflates a timed figure. Repetitions 1..N time, per metric, a cold run (unmount, drop_caches,
//! mount, first readdir) and then a warm run on the same mount.
//!
//! Exit status: 0 measured, 1 failed (bad bytes, a mount or read error), 3 unsupported (reading
//! failed with the errno given by --unsupported).

use sha2::{Digest, Sha256};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: pfs-bench enable-verity DIR
       pfs-bench run --tree T --fs F --rep R --lists DIR --mnt DIR --mount SPEC
                     [--metrics full,lstat,random,pread] [--unsupported ERRNO] [-- FUSE CMD...]
  SPEC: dir               MNT is a folder (ext4, tmpfs): cold = drop_caches only
        sys:FSTYPE:SOURCE[:DATA]   mount(2) read-only on MNT
        fuse              run FUSE CMD (words; {mnt} and {fifo} replaced), ready when the
                          daemon writes 's' to the fifo, unmounted with umount(2)
  R = 0: the byte check (sha256 of the walk, of every file, of the random files and preads,
         against DIR/expect); R >= 1: timed cold and warm runs of each metric
  DIR holds expect, random.txt (one path per line), preads.txt (OFFSET PATH per line)";

const BUF: usize = 128 * 1024;
const PREAD: usize = 4096;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_name(e: i32) -> String {
    let names = [
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::EIO, "EIO"),
        (libc::ENOMEM, "ENOMEM"),
        (libc::EACCES, "EACCES"),
        (libc::EBUSY, "EBUSY"),
        (libc::ENODEV, "ENODEV"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EINVAL, "EINVAL"),
        (libc::EFBIG, "EFBIG"),
        (libc::EROFS, "EROFS"),
        (libc::ENODATA, "ENODATA"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::EUCLEAN, "EUCLEAN"),
        (libc::EBADMSG, "EBADMSG"),
        (libc::ENOTCONN, "ENOTCONN"),
        (libc::E2BIG, "E2BIG"),
    ];
    for (v, n) in names {
        if v == e {
            return n.to_string();
        }
    }
    format!("errno {}", e)
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A failure that ends the call: the message, and the errno when a syscall gave one.
struct Fail {
    why: String,
    errno: i32,
}

fn fail_io(what: &str, path: &Path, e: std::io::Error) -> Fail {
    let n = io_errno(&e);
    Fail {
        why: format!("{} {}: {}", what, path.display(), errno_name(n)),
        errno: n,
    }
}

fn fail(why: String) -> Fail {
    Fail { why, errno: 0 }
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// One output line: fixed identity fields, then measurement fields.
struct Rec {
    fields: Vec<(String, String)>,
}

impl Rec {
    fn new(id: &Ident, metric: &str, phase: &str) -> Rec {
        let mut r = Rec { fields: Vec::new() };
        r.s("tree", &id.tree);
        r.s("fs", &id.fs);
        r.n("rep", id.rep as f64);
        r.s("metric", metric);
        r.s("phase", phase);
        r
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Rec {
        self.fields.push((k.to_string(), json_str(v)));
        self
    }
    fn n(&mut self, k: &str, v: f64) -> &mut Rec {
        let t = if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{:.3}", v)
        };
        self.fields.push((k.to_string(), t));
        self
    }
    fn print(&self) {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), v))
            .collect();
        println!("PFS-BENCH {{{}}}", body.join(","));
    }
}

struct Ident {
    tree: String,
    fs: String,
    rep: u32,
}

/// Kernel-wide CPU ticks (/proc/stat) and this process's system time.
#[derive(Clone, Copy)]
struct Cpu {
    user: u64,
    sys: u64,
    iowait: u64,
    self_sys_us: u64,
}

fn cpu_now() -> Cpu {
    let mut c = Cpu {
        user: 0,
        sys: 0,
        iowait: 0,
        self_sys_us: 0,
    };
    if let Ok(s) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = s.lines().next() {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // user nice system idle iowait irq softirq steal ...
            if v.len() >= 7 {
                c.user = v[0] + v[1];
                c.sys = v[2] + v[5] + v[6];
                c.iowait = v[4];
            }
        }
    }
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        c.self_sys_us = ru.ru_stime.tv_sec as u64 * 1_000_000 + ru.ru_stime.tv_usec as u64;
    }
    c
}

fn ticks_ms() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1000.0 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// Cached + Buffers (page cache, including a loop device's block cache) and Slab, in KiB.
#[derive(Clone, Copy)]
struct Mem {
    cache_kb: i64,
    slab_kb: i64,
}

fn mem_now() -> Mem {
    let mut m = Mem {
        cache_kb: 0,
        slab_kb: 0,
    };
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
        for line in s.lines() {
            let mut it = line.split_whitespace();
            let k = it.next().unwrap_or("");
            let v: i64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            match k {
                "Cached:" | "Buffers:" => m.cache_kb += v,
                "Slab:" => m.slab_kb = v,
                _ => {}
            }
        }
    }
    m
}

/// Time and CPU of one measured region.
struct Span {
    t: Instant,
    c: Cpu,
}

impl Span {
    fn start() -> Span {
        let c = cpu_now();
        Span {
            t: Instant::now(),
            c,
        }
    }
    fn end(&self, r: &mut Rec) -> f64 {
        let ms = self.t.elapsed().as_secs_f64() * 1000.0;
        let c = cpu_now();
        let k = ticks_ms();
        r.n("ms", ms);
        r.n("sys_ms", (c.sys - self.c.sys) as f64 * k);
        r.n("user_ms", (c.user - self.c.user) as f64 * k);
        r.n("iowait_ms", (c.iowait - self.c.iowait) as f64 * k);
        r.n(
            "self_sys_ms",
            (c.self_sys_us - self.c.self_sys_us) as f64 / 1000.0,
        );
        ms
    }
}

fn drop_caches() -> Result<(), Fail> {
    // For a try-out on the host, where dropping everyone's caches would be rude.
    if std::env::var_os("PFS_BENCH_NO_DROP").is_some() {
        return Ok(());
    }
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", b"3")
        .map_err(|e| fail_io("write", Path::new("/proc/sys/vm/drop_caches"), e))
}

fn cstr(s: &OsStr) -> CString {
    CString::new(s.as_bytes()).unwrap_or_else(|_| CString::new("?").unwrap())
}

/// How the filesystem under test gets mounted.
enum MountSpec {
    Dir,
    Sys {
        fstype: String,
        source: String,
        data: String,
    },
    Fuse {
        cmd: Vec<String>,
    },
}

struct Mounted {
    child: Option<Child>,
}

struct Target {
    spec: MountSpec,
    mnt: PathBuf,
    mounted: Option<Mounted>,
    n: u32,
}

impl Target {
    /// Mount (timed) and read the root folder (timed); returns (mount ms, readdir ms).
    fn mount(&mut self) -> Result<(f64, f64), Fail> {
        let t0 = Instant::now();
        match &self.spec {
            MountSpec::Dir => {
                self.mounted = Some(Mounted { child: None });
            }
            MountSpec::Sys {
                fstype,
                source,
                data,
            } => {
                let src = CString::new(source.as_str()).unwrap();
                let fst = CString::new(fstype.as_str()).unwrap();
                let tgt = cstr(self.mnt.as_os_str());
                let dat = CString::new(data.as_str()).unwrap();
                // SAFETY: all pointers are valid C strings that outlive the call.
                let r = unsafe {
                    libc::mount(
                        src.as_ptr(),
                        tgt.as_ptr(),
                        fst.as_ptr(),
                        libc::MS_RDONLY,
                        dat.as_ptr() as *const libc::c_void,
                    )
                };
                if r != 0 {
                    let e = errno();
                    return Err(Fail {
                        why: format!("mount -t {} {}: {}", fstype, source, errno_name(e)),
                        errno: e,
                    });
                }
                self.mounted = Some(Mounted { child: None });
            }
            MountSpec::Fuse { cmd } => {
                self.n += 1;
                let fifo = format!("/tmp/pfs-bench-fifo.{}.{}", std::process::id(), self.n);
                let cfifo = CString::new(fifo.as_str()).unwrap();
                // SAFETY: valid C string.
                if unsafe { libc::mkfifo(cfifo.as_ptr(), 0o600) } != 0 {
                    return Err(fail(format!("mkfifo {}: {}", fifo, errno_name(errno()))));
                }
                // Open the reading end first, without blocking: the daemon's open for writing
                // then returns at once and its 's' (mounted) or 'f' (failed) waits in the fifo.
                // SAFETY: valid C string.
                let fd = unsafe { libc::open(cfifo.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
                if fd < 0 {
                    return Err(fail(format!("open {}: {}", fifo, errno_name(errno()))));
                }
                let mnt = self.mnt.to_string_lossy().to_string();
                let words: Vec<String> = cmd
                    .iter()
                    .map(|w| w.replace("{mnt}", &mnt).replace("{fifo}", &fifo))
                    .collect();
                let log = File::create(format!("/tmp/pfs-bench-fuse.{}.log", self.n)).ok();
                let mut c = Command::new(&words[0]);
                c.args(&words[1..]).stdin(Stdio::null());
                if let Some(l) = log {
                    if let Ok(l2) = l.try_clone() {
                        c.stdout(l2);
                    }
                    c.stderr(l);
                }
                let mut child = c
                    .spawn()
                    .map_err(|e| fail(format!("spawn {}: {}", words[0], e)))?;
                let mut ok = None;
                let deadline = Instant::now() + Duration::from_secs(600);
                while ok.is_none() {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    let r = unsafe { libc::poll(&mut p, 1, 20) };
                    if r > 0 {
                        let mut b = [0u8; 1];
                        // SAFETY: reading one byte into a valid buffer.
                        let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, 1) };
                        if n == 1 {
                            ok = Some(b[0] == b's');
                        } else if n == 0 {
                            ok = Some(false);
                        }
                    }
                    if ok.is_none() {
                        if let Ok(Some(_)) = child.try_wait() {
                            ok = Some(false);
                        } else if Instant::now() > deadline {
                            let _ = child.kill();
                            ok = Some(false);
                        }
                    }
                }
                // SAFETY: fd is ours.
                unsafe { libc::close(fd) };
                let _ = std::fs::remove_file(&fifo);
                if ok != Some(true) {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log =
                        std::fs::read_to_string(format!("/tmp/pfs-bench-fuse.{}.log", self.n))
                            .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    return Err(fail(format!(
                        "FUSE daemon did not mount: {}",
                        tail.join(" | ")
                    )));
                }
                self.mounted = Some(Mounted { child: Some(child) });
            }
        }
        let mount_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let t1 = Instant::now();
        let rd = std::fs::read_dir(&self.mnt).map_err(|e| fail_io("opendir", &self.mnt, e))?;
        for e in rd {
            e.map_err(|e| fail_io("readdir", &self.mnt, e))?;
        }
        Ok((mount_ms, t1.elapsed().as_secs_f64() * 1000.0))
    }

    fn umount(&mut self) -> Result<(), Fail> {
        let m = match self.mounted.take() {
            Some(m) => m,
            None => return Ok(()),
        };
        if let MountSpec::Dir = self.spec {
            return Ok(());
        }
        let tgt = cstr(self.mnt.as_os_str());
        // SAFETY: valid C string.
        if unsafe { libc::umount2(tgt.as_ptr(), 0) } != 0 {
            let e = errno();
            return Err(Fail {
                why: format!("umount {}: {}", self.mnt.display(), errno_name(e)),
                errno: e,
            });
        }
        if let Some(mut c) = m.child {
            // The daemon ends once the kernel closes the connection.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        Ok(())
    }
}

/// Depth-first walk, names sorted bytewise, the root itself excluded. `visit` gets the relative
/// path, the absolute path and the lstat metadata of every entry.
fn walk<F>(root: &Path, rel: &mut Vec<u8>, visit: &mut F) -> Result<(), Fail>
where
    F: FnMut(&[u8], &Path, &std::fs::Metadata) -> Result<(), Fail>,
{
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    };
    let mut names: Vec<OsString> = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| fail_io("opendir", &dir, e))? {
        names.push(e.map_err(|e| fail_io("readdir", &dir, e))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for n in names {
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(n.as_bytes());
        let p = dir.join(&n);
        let md = std::fs::symlink_metadata(&p).map_err(|e| fail_io("lstat", &p, e))?;
        visit(rel, &p, &md)?;
        if md.file_type().is_dir() {
            walk(root, rel, visit)?;
        }
        rel.truncate(len);
    }
    Ok(())
}

fn type_char(ft: &std::fs::FileType) -> char {
    if ft.is_dir() {
        'd'
    } else if ft.is_file() {
        'f'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else if ft.is_socket() {
        's'
    } else {
        '?'
    }
}

/// Read a whole file in BUF-sized reads; `sink` sees the bytes when given.
fn read_file(p: &Path, buf: &mut [u8], mut sink: Option<&mut Sha256>) -> Result<u64, Fail> {
    let mut f = File::open(p).map_err(|e| fail_io("open", p, e))?;
    let mut n = 0u64;
    loop {
        let k = f.read(buf).map_err(|e| fail_io("read", p, e))?;
        if k == 0 {
            break;
        }
        if let Some(h) = sink.as_deref_mut() {
            h.update(&buf[..k]);
        }
        n += k as u64;
    }
    Ok(n)
}

struct Lists {
    random: Vec<Vec<u8>>,
    preads: Vec<(u64, Vec<u8>)>,
    expect: Vec<(String, String)>,
}

fn read_lists(dir: &Path) -> Result<Lists, Fail> {
    let lines = |name: &str| -> Result<Vec<Vec<u8>>, Fail> {
        let p = dir.join(name);
        let f = File::open(&p).map_err(|e| fail_io("open", &p, e))?;
        let mut v = Vec::new();
        for l in BufReader::new(f).split(b'\n') {
            let l = l.map_err(|e| fail_io("read", &p, e))?;
            if !l.is_empty() {
                v.push(l);
            }
        }
        Ok(v)
    };
    let mut preads = Vec::new();
    for l in lines("preads.txt")? {
        let sp = l
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| fail("bad preads.txt".into()))?;
        let off: u64 = std::str::from_utf8(&l[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail("bad preads.txt offset".into()))?;
        preads.push((off, l[sp + 1..].to_vec()));
    }
    let mut expect = Vec::new();
    for l in lines("expect")? {
        let s = String::from_utf8_lossy(&l).to_string();
        let mut it = s.splitn(2, ' ');
        let k = it.next().unwrap_or("").to_string();
        let v = it.next().unwrap_or("").to_string();
        expect.push((k, v));
    }
    Ok(Lists {
        random: lines("random.txt")?,
        preads,
        expect,
    })
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

/// The byte check: everything the timed metrics read, hashed, against the host's oracle.
fn verify(id: &Ident, mnt: &Path, lists: &Lists) -> Result<(), Fail> {
    let span = Span::start();
    let mut walk_h = Sha256::new();
    let mut data_h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let (mut files, mut bytes, mut entries) = (0u64, 0u64, 0u64);
    walk(mnt, &mut Vec::new(), &mut |rel, p, md| {
        let ft = md.file_type();
        let t = type_char(&ft);
        entries += 1;
        walk_h.update([t as u8, b' ']);
        walk_h.update(rel);
        if ft.is_file() {
            let n = read_file(p, &mut buf, Some(&mut data_h))?;
            if n != md.len() {
                return Err(fail(format!(
                    "{}: read {} bytes, st_size {}",
                    p.display(),
                    n,
                    md.len()
                )));
            }
            walk_h.update(format!(" {}", n).as_bytes());
            files += 1;
            bytes += n;
        }
        walk_h.update(b"\n");
        Ok(())
    })?;
    let mut rand_h = Sha256::new();
    for rel in &lists.random {
        read_file(
            &mnt.join(OsStr::from_bytes(rel)),
            &mut buf,
            Some(&mut rand_h),
        )?;
    }
    let mut pread_h = Sha256::new();
    let mut cur: Option<(Vec<u8>, File)> = None;
    for (off, rel) in &lists.preads {
        if cur.as_ref().map(|c| &c.0 != rel).unwrap_or(true) {
            let p = mnt.join(OsStr::from_bytes(rel));
            cur = Some((
                rel.clone(),
                File::open(&p).map_err(|e| fail_io("open", &p, e))?,
            ));
        }
        let f = &cur.as_ref().unwrap().1;
        let mut b = [0u8; PREAD];
        f.read_exact_at(&mut b, *off)
            .map_err(|e| fail_io("pread", Path::new(OsStr::from_bytes(rel)), e))?;
        pread_h.update(b);
    }
    let got = [
        ("walk", hexs(&walk_h.finalize())),
        ("content", hexs(&data_h.finalize())),
        ("random", hexs(&rand_h.finalize())),
        ("pread", hexs(&pread_h.finalize())),
        ("files", files.to_string()),
        ("bytes", bytes.to_string()),
    ];
    let mut r = Rec::new(id, "verify", "check");
    span.end(&mut r);
    r.n("files", files as f64)
        .n("bytes", bytes as f64)
        .n("entries", entries as f64);
    let mut bad = Vec::new();
    for (k, v) in &got {
        match lists.expect.iter().find(|(ek, _)| ek == k) {
            Some((_, ev)) if ev == v => {}
            Some((_, ev)) => bad.push(format!("{}: got {} want {}", k, v, ev)),
            None => bad.push(format!("{}: nothing expected", k)),
        }
        if v.len() == 64 {
            r.s(k, v);
        }
    }
    r.s("status", if bad.is_empty() { "ok" } else { "fail" });
    if !bad.is_empty() {
        r.s("why", &bad.join("; "));
    }
    r.print();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(fail(format!("byte check: {}", bad.join("; "))))
    }
}

fn run_full(mnt: &Path) -> Result<(u64, u64), Fail> {
    let mut buf = vec![0u8; BUF];
    let (mut files, mut bytes) = (0u64, 0u64);
    walk(mnt, &mut Vec::new(), &mut |_, p, md| {
        if md.file_type().is_file() {
            bytes += read_file(p, &mut buf, None)?;
            files += 1;
        }
        Ok(())
    })?;
    Ok((files, bytes))
}

fn run_lstat(mnt: &Path) -> Result<(u64, u64), Fail> {
    let mut n = 0u64;
    walk(mnt, &mut Vec::new(), &mut |_, _, _| {
        n += 1;
        Ok(())
    })?;
    Ok((n, 0))
}

fn run_random(mnt: &Path, lists: &Lists) -> Result<(u64, u64), Fail> {
    let mut buf = vec![0u8; BUF];
    let mut bytes = 0u64;
    for rel in &lists.random {
        bytes += read_file(&mnt.join(OsStr::from_bytes(rel)), &mut buf, None)?;
    }
    Ok((lists.random.len() as u64, bytes))
}

/// (offset, index in the open files) of each pread.
type PreadPlan = Vec<(u64, usize)>;

/// Opens the files of the pread list, each once; returns them and the plan.
fn open_preads(mnt: &Path, lists: &Lists) -> Result<(Vec<File>, PreadPlan), Fail> {
    let mut idx = Vec::new();
    let mut names: Vec<&Vec<u8>> = Vec::new();
    let mut files = Vec::new();
    for (off, rel) in &lists.preads {
        let i = match names.iter().position(|n| *n == rel) {
            Some(i) => i,
            None => {
                let p = mnt.join(OsStr::from_bytes(rel));
                files.push(File::open(&p).map_err(|e| fail_io("open", &p, e))?);
                names.push(rel);
                names.len() - 1
            }
        };
        idx.push((*off, i));
    }
    Ok((files, idx))
}

fn run_pread(files: &[File], idx: &[(u64, usize)]) -> Result<(u64, u64), Fail> {
    let mut b = [0u8; PREAD];
    for (off, i) in idx {
        files[*i]
            .read_exact_at(&mut b, *off)
            .map_err(|e| fail(format!("pread at {}: {}", off, errno_name(io_errno(&e)))))?;
    }
    Ok((idx.len() as u64, (idx.len() * PREAD) as u64))
}

struct Args {
    id: Ident,
    lists: PathBuf,
    metrics: Vec<String>,
    unsupported: Option<String>,
    target: Target,
}

fn parse_args(a: &[String]) -> Result<Args, String> {
    let mut tree = None;
    let mut fs = None;
    let mut rep = None;
    let mut lists = None;
    let mut mnt = None;
    let mut spec = None;
    let mut metrics = "full,lstat,random,pread".to_string();
    let mut unsupported = None;
    let mut fuse_cmd = Vec::new();
    let mut i = 0;
    while i < a.len() {
        if a[i] == "--" {
            fuse_cmd = a[i + 1..].to_vec();
            break;
        }
        let v = a
            .get(i + 1)
            .cloned()
            .ok_or(format!("{} needs a value", a[i]))?;
        match a[i].as_str() {
            "--tree" => tree = Some(v),
            "--fs" => fs = Some(v),
            "--rep" => rep = Some(v.parse::<u32>().map_err(|_| "bad --rep".to_string())?),
            "--lists" => lists = Some(PathBuf::from(v)),
            "--mnt" => mnt = Some(PathBuf::from(v)),
            "--mount" => spec = Some(v),
            "--metrics" => metrics = v,
            "--unsupported" => unsupported = Some(v),
            x => return Err(format!("unknown option {}", x)),
        }
        i += 2;
    }
    let spec = spec.ok_or("--mount is required")?;
    let spec = if spec == "dir" {
        MountSpec::Dir
    } else if spec == "fuse" {
        if fuse_cmd.is_empty() {
            return Err("--mount fuse needs a command after --".into());
        }
        MountSpec::Fuse { cmd: fuse_cmd }
    } else if let Some(r) = spec.strip_prefix("sys:") {
        let mut it = r.splitn(3, ':');
        MountSpec::Sys {
            fstype: it.next().unwrap_or("").to_string(),
            source: it.next().unwrap_or("none").to_string(),
            data: it.next().unwrap_or("").to_string(),
        }
    } else {
        return Err(format!("bad --mount {}", spec));
    };
    Ok(Args {
        id: Ident {
            tree: tree.ok_or("--tree is required")?,
            fs: fs.ok_or("--fs is required")?,
            rep: rep.ok_or("--rep is required")?,
        },
        lists: lists.ok_or("--lists is required")?,
        metrics: metrics.split(',').map(|s| s.to_string()).collect(),
        unsupported,
        target: Target {
            spec,
            mnt: mnt.ok_or("--mnt is required")?,
            mounted: None,
            n: 0,
        },
    })
}

/// Unmount, drop the caches, mount: the cold start of every metric. Prints the mount record.
/// The memory figures come from the full read's mount only: before it, the caches are dropped
/// twice a second apart, so that the dentries and inodes the previous filesystem left behind
/// (freed after an RCU grace period) do not show up as negative slab in this one's figures.
fn cold_mount(a: &mut Args, metric: &str) -> Result<Mem, Fail> {
    let settle = metric == "full";
    a.target.umount()?;
    drop_caches()?;
    if settle {
        std::thread::sleep(Duration::from_secs(1));
        drop_caches()?;
    }
    let before = mem_now();
    let span = Span::start();
    let (mount_ms, readdir_ms) = a.target.mount()?;
    if let MountSpec::Dir = a.target.spec {
        return Ok(before);
    }
    let mut r = Rec::new(&a.id, "mount", "cold");
    span.end(&mut r);
    let after = mem_now();
    r.n("mount_ms", mount_ms).n("readdir_ms", readdir_ms);
    if settle {
        r.n("cache_kb", (after.cache_kb - before.cache_kb) as f64)
            .n("slab_kb", (after.slab_kb - before.slab_kb) as f64);
    }
    r.s("for", metric);
    r.print();
    Ok(before)
}

fn measure(a: &mut Args, lists: &Lists) -> Result<(), Fail> {
    if a.id.rep == 0 {
        cold_mount(a, "verify")?;
        let mnt = a.target.mnt.clone();
        verify(&a.id, &mnt, lists)?;
        return a.target.umount();
    }
    for m in a.metrics.clone() {
        if (m == "random" && lists.random.is_empty()) || (m == "pread" && lists.preads.is_empty()) {
            continue;
        }
        let before = cold_mount(a, &m)?;
        let mnt = a.target.mnt.clone();
        let mut files = Vec::new();
        let mut idx = Vec::new();
        let mut open_ms = 0.0;
        if m == "pread" {
            let t = Instant::now();
            (files, idx) = open_preads(&mnt, lists)?;
            open_ms = t.elapsed().as_secs_f64() * 1000.0;
        }
        for phase in ["cold", "warm"] {
            let mut r = Rec::new(&a.id, &m, phase);
            let span = Span::start();
            let (n, bytes) = match m.as_str() {
                "full" => run_full(&mnt)?,
                "lstat" => run_lstat(&mnt)?,
                "random" => run_random(&mnt, lists)?,
                "pread" => run_pread(&files, &idx)?,
                x => return Err(fail(format!("unknown metric {}", x))),
            };
            span.end(&mut r);
            r.n("count", n as f64).n("bytes", bytes as f64);
            if m == "pread" {
                r.n("open_ms", if phase == "cold" { open_ms } else { 0.0 });
            }
            if phase == "cold" {
                let after = mem_now();
                r.n("cache_kb", (after.cache_kb - before.cache_kb) as f64)
                    .n("slab_kb", (after.slab_kb - before.slab_kb) as f64);
            }
            r.print();
        }
        drop(files);
    }
    a.target.umount()
}

/// `struct fsverity_enable_arg` of `include/uapi/linux/fsverity.h`.
#[repr(C)]
struct FsverityEnableArg {
    version: u32,
    hash_algorithm: u32,
    block_size: u32,
    salt_size: u32,
    salt_ptr: u64,
    sig_size: u32,
    reserved1: u32,
    sig_ptr: u64,
    reserved2: [u64; 11],
}

/// `FS_IOC_ENABLE_VERITY`: `_IOW('f', 133, struct fsverity_enable_arg)`.
const FS_IOC_ENABLE_VERITY: libc::c_ulong = (1 << 30)
    | ((std::mem::size_of::<FsverityEnableArg>() as libc::c_ulong) << 16)
    | ((b'f' as libc::c_ulong) << 8)
    | 133;

/// `pfs-bench enable-verity DIR`: turns fs-verity on for every regular file in DIR, with what
/// upstream `puzzlefs` records (SHA-256, 4 KiB blocks, no salt); files that have it already are
/// counted, not failed. The puzzlefs-verity case of the bench mounts such a copy of the image
/// with verity=require.
fn enable_verity(dir: &Path) -> Result<(usize, usize), String> {
    let (mut enabled, mut had) = (0, 0);
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {}", dir.display(), e))?;
    for ent in entries {
        let ent = ent.map_err(|e| format!("{}: {}", dir.display(), e))?;
        if !ent.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        let path = ent.path();
        let f = File::open(&path).map_err(|e| format!("{}: {}", path.display(), e))?;
        let arg = FsverityEnableArg {
            version: 1,
            hash_algorithm: 1, // FS_VERITY_HASH_ALG_SHA256
            block_size: 4096,
            salt_size: 0,
            salt_ptr: 0,
            sig_size: 0,
            reserved1: 0,
            sig_ptr: 0,
            reserved2: [0; 11],
        };
        // SAFETY: `f` is an open file and `arg` a valid fsverity_enable_arg that outlives the
        // call; the kernel only reads it.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                FS_IOC_ENABLE_VERITY as _,
                &arg,
            )
        };
        if rc == 0 {
            enabled += 1;
        } else if errno() == libc::EEXIST {
            had += 1;
        } else {
            return Err(format!(
                "FS_IOC_ENABLE_VERITY {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok((enabled, had))
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.len() == 3 && argv[1] == "enable-verity" {
        match enable_verity(Path::new(&argv[2])) {
            Ok((n, had)) => println!("fs-verity enabled on {} files ({} had it)", n, had),
            Err(e) => {
                eprintln!("pfs-bench: {}", e);
                std::process::exit(1);
            }
        }
        return;
    }
    if argv.len() < 2 || argv[1] != "run" {
        eprintln!("{}", USAGE);
        std::process::exit(2);
    }
    let mut a = match parse_args(&argv[2..]) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pfs-bench: {}\n{}", e, USAGE);
            std::process::exit(2);
        }
    };
    let res = read_lists(&a.lists).and_then(|l| measure(&mut a, &l));
    if let Err(f) = res {
        let _ = a.target.umount();
        let unsupported = a
            .unsupported
            .as_deref()
            .map(|u| f.errno != 0 && errno_name(f.errno) == u)
            .unwrap_or(false);
        let mut r = Rec::new(
            &a.id,
            "status",
            if unsupported { "unsupported" } else { "fail" },
        );
        r.s("why", &f.why);
        r.print();
        std::process::exit(if unsupported { 3 } else { 1 });
    }
}
