// SPDX-License-Identifier: GPL-2.0

//! Reading files of another filesystem through a private mount.
//!
//! C headers: [`include/linux/mount.h`](srctree/include/linux/mount.h),
//! [`include/linux/namei.h`](srctree/include/linux/namei.h).
//!
//! # How a filesystem uses this module
//!
//! A filesystem whose data lives in files of another filesystem (e.g. under a directory given as
//! a mount parameter) resolves that directory once at mount time with [`PrivateMount::new`].
//! This takes a private clone of the mount (`clone_private_mount()`), so that later changes to
//! the mount tree (unmounts, mount propagation) do not affect it, and remembers the mounter's
//! credentials. It keeps the [`PrivateMount`] in its per-superblock data; dropping it (at
//! `kill_sb` or on a mount error) releases the mount (`kern_unmount()`).
//!
//! Files are opened read-only by a name relative to that directory with
//! [`PrivateMount::open_beneath`]: the lookup uses `LOOKUP_BENEATH`, so `..`, absolute symlinks
//! and symlinks leading outside the directory fail (`EXDEV`), and it runs with the mounter's
//! credentials, so it behaves the same when it happens later in a page fault of another user.
//! The result is a [`RegularFile`]: positioned reads into kernel buffers or folios
//! (`kernel_read()`), and its size. Dropping it releases the file (`fput()`).
//!
//! ```ignore
//! let dir = PrivateMount::new(c"/images/x", fc.cred())?;        // in fill_super
//! let blob = dir.open_beneath(c"blobs/sha256/0123...")?;
//! let mut buf = KVec::from_elem(0u8, blob.size()? as usize, GFP_KERNEL)?;
//! blob.read_exact_at(&mut buf, 0)?;
//! ```

use crate::{
    bindings,
    cred::Credential,
    error::{from_err_ptr, to_result, Result},
    fs::{folio::LockedFolio, File},
    prelude::*,
    sync::aref::ARef,
};
use core::ptr::NonNull;

use crate::fs::inode::mode::{S_IFMT, S_IFREG};
use bindings::{LOOKUP_BENEATH, LOOKUP_DIRECTORY, LOOKUP_FOLLOW, MAY_READ};

/// A private clone of the mount of a directory, with the credentials to access it.
///
/// # Invariants
///
/// `mnt` is a mount returned by `clone_private_mount()` on which we hold the reference; its
/// root is the directory given to [`PrivateMount::new`].
pub struct PrivateMount {
    mnt: NonNull<bindings::vfsmount>,
    cred: ARef<Credential>,
}

// SAFETY: A `vfsmount` reference may be used and dropped on any thread.
unsafe impl Send for PrivateMount {}
// SAFETY: The shared methods only do path walks and opens, which the VFS synchronises.
unsafe impl Sync for PrivateMount {}

/// A `struct path` we hold references on; `path_put()` on drop.
struct Path(bindings::path);

impl Drop for Path {
    fn drop(&mut self) {
        // SAFETY: A `Path` is only created from a successful lookup, which took the references.
        unsafe { bindings::path_put(&self.0) };
    }
}

/// Temporarily overrides the current task's credentials (`override_creds()`).
struct CredGuard(*const bindings::cred);

impl CredGuard {
    /// Overrides the current task's credentials with `cred` until the guard is dropped.
    ///
    /// # Safety
    ///
    /// `cred` must point to a valid credential that outlives the guard.
    unsafe fn from_raw(cred: *const bindings::cred) -> Self {
        // SAFETY: The caller guarantees that `cred` is valid for the life of the guard;
        // `override_creds` takes no reference and the guard restores the old credentials.
        Self(unsafe { bindings::override_creds(cred) })
    }

    fn new(cred: &Credential) -> Self {
        // SAFETY: `cred` is a valid credential that outlives the guard (the guard is a local of
        // a function that borrows it); `override_creds` takes no reference and the guard
        // restores the old credentials before returning.
        Self(unsafe { bindings::override_creds(cred.as_ptr()) })
    }
}

impl Drop for CredGuard {
    fn drop(&mut self) {
        // SAFETY: `self.0` is the task's credential replaced by `CredGuard::new` on this task.
        unsafe { bindings::revert_creds(self.0) };
    }
}

impl PrivateMount {
    /// Resolves the directory `path` (following symlinks) with the credentials `cred` (those of
    /// the mounter, e.g. [`FsContext::cred`](super::fs_context::FsContext::cred)) and takes a
    /// private clone of its mount, rooted at it.
    pub fn new(path: &CStr, cred: &Credential) -> Result<Self> {
        let _guard = CredGuard::new(cred);
        // SAFETY: All-zero is an empty `struct path`.
        let mut p: bindings::path = unsafe { core::mem::zeroed() };
        // SAFETY: `path` is a NUL-terminated string and `p` is valid for writing.
        to_result(unsafe {
            bindings::kern_path(path.as_char_ptr(), LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &mut p)
        })?;
        let p = Path(p);
        // SAFETY: `p` holds references to a directory and its mount. `clone_private_mount`
        // checks the mounter's capability in the mount's namespace and returns a new mount
        // rooted at `p.dentry`, with its own reference, or an error.
        let mnt = from_err_ptr(unsafe { bindings::clone_private_mount(&p.0) })?;
        // INVARIANT: `mnt` is the new private mount; `p` is released on return.
        Ok(Self {
            mnt: NonNull::new(mnt).ok_or(EINVAL)?,
            cred: cred.into(),
        })
    }

    /// Opens the regular file `name`, relative to the directory, read-only. The name cannot
    /// escape the directory (`LOOKUP_BENEATH`); anything but a regular file is refused with
    /// `EINVAL`. Permissions are checked with the mounter's credentials.
    pub fn open_beneath(&self, name: &CStr) -> Result<RegularFile> {
        let _guard = CredGuard::new(&self.cred);
        let mnt = self.mnt.as_ptr();
        // SAFETY: All-zero is an empty `struct path`.
        let mut p: bindings::path = unsafe { core::mem::zeroed() };
        // SAFETY: `mnt` is our mount (type invariant) and `mnt_root` its root dentry, both kept
        // alive by our reference; `name` is NUL-terminated; `p` is valid for writing.
        to_result(unsafe {
            bindings::vfs_path_lookup(
                (*mnt).mnt_root,
                mnt,
                name.as_char_ptr(),
                LOOKUP_FOLLOW | LOOKUP_BENEATH,
                &mut p,
            )
        })?;
        let p = Path(p);
        // SAFETY: A successful lookup returns a positive dentry, pinned by `p`.
        let inode = unsafe { (*p.0.dentry).d_inode };
        // SAFETY: `inode` is pinned by `p`; the file type of an inode never changes.
        if unsafe { (*inode).i_mode } & S_IFMT != S_IFREG {
            return Err(EINVAL);
        }
        // SAFETY: `inode` and `p.0.mnt` are pinned by `p`; `inode_permission` checks read
        // access for the current (overridden) credentials.
        to_result(unsafe {
            bindings::inode_permission((*p.0.mnt).mnt_idmap, inode, MAY_READ as i32)
        })?;
        // Reading must not write: no atime updates, where the mounter may ask for that (as
        // overlayfs does for its lower files; `O_NOATIME` needs ownership or `CAP_FOWNER`).
        let mut flags = bindings::O_RDONLY | bindings::O_LARGEFILE;
        // SAFETY: `inode` and `p.0.mnt` are pinned by `p`; the check uses the current
        // (overridden) credentials.
        if unsafe { bindings::inode_owner_or_capable((*p.0.mnt).mnt_idmap, inode) } {
            flags |= bindings::O_NOATIME;
        }
        // SAFETY: `p` is a valid path; `kernel_file_open` returns a new file, not accounted in
        // `nr_files` and not installed in a file table, with its own path references, or an
        // error.
        let file = from_err_ptr(unsafe {
            bindings::kernel_file_open(&p.0, flags as i32, self.cred.as_ptr())
        })?;
        let file = NonNull::new(file).ok_or(EINVAL)?;
        // SAFETY: `File` is `repr(transparent)` over `struct file`, and we own the reference
        // returned by `kernel_file_open`, which we transfer to the `ARef`.
        let file = unsafe { ARef::from_raw(file.cast::<File>()) };
        Ok(RegularFile { file })
    }
}

impl PrivateMount {
    /// Returns the stacking depth (`s_stack_depth`) of the filesystem the directory is on. A
    /// filesystem that reads its data through this mount stacks one level above it (see
    /// [`NewSuperBlock::set_stack_depth`](super::sb::NewSuperBlock::set_stack_depth)).
    pub fn stack_depth(&self) -> i32 {
        // SAFETY: `mnt` is our mount (type invariant); its superblock is pinned by the mount and
        // `s_stack_depth` is constant once the superblock is mounted.
        unsafe { (*(*self.mnt.as_ptr()).mnt_sb).s_stack_depth }
    }
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        // A clone from `clone_private_mount()` belongs to no namespace (`MNT_NS_INTERNAL`): a
        // plain `mntput()` only drops the count and never frees it (nor releases the superblock
        // it pins); `kern_unmount()` is the release its comment asks for.
        // SAFETY: We own the reference that `clone_private_mount()` returned (type invariant) and
        // give it up once, here. Files opened beneath the mount hold references of their own,
        // which they drop with `fput()`; the mount is freed after the last of them.
        unsafe { bindings::kern_unmount(self.mnt.as_ptr()) };
    }
}

/// A regular file opened read-only by [`PrivateMount::open_beneath`].
///
/// It holds its own references to the file's mount and dentry, so it may outlive the
/// [`PrivateMount`]; dropping it calls `fput()`.
pub struct RegularFile {
    file: ARef<File>,
}

impl RegularFile {
    /// Returns the file's current size (`i_size_read()`).
    pub fn size(&self) -> i64 {
        // SAFETY: The file is open, which pins its inode.
        unsafe { bindings::i_size_read(bindings::file_inode(self.file.as_ptr())) }
    }

    /// Reads up to `buf.len()` bytes at byte position `pos` (`kernel_read()`); returns how many
    /// were read (0 at end of file).
    pub fn read_at(&self, buf: &mut [u8], pos: i64) -> Result<usize> {
        // Read as the opener, like the open itself: `kernel_read()` checks permissions (LSM,
        // fsnotify) against the current task, which in a page fault may be any other user.
        // SAFETY: `f_cred` is set when the file is opened and stays valid and unchanged while
        // it is open, which it is for the life of `self`.
        let _creds = unsafe { CredGuard::from_raw((*self.file.as_ptr()).f_cred) };
        let mut pos = pos;
        // SAFETY: The file is open for reading; `buf` is a kernel buffer valid for `buf.len()`
        // bytes; `pos` is a local. `kernel_read` does not keep any of them.
        let n = unsafe {
            bindings::kernel_read(
                self.file.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut pos,
            )
        };
        usize::try_from(n).map_err(|_| Error::from_errno(n as i32))
    }

    /// Fills `buf` from byte position `pos`; a file too short for that is `EIO`.
    pub fn read_exact_at(&self, buf: &mut [u8], pos: i64) -> Result {
        let mut done = 0;
        while done < buf.len() {
            let at = pos.checked_add(done as i64).ok_or(EINVAL)?;
            let n = self.read_at(&mut buf[done..], at)?;
            if n == 0 {
                return Err(EIO);
            }
            done += n;
        }
        Ok(())
    }

    /// Whether the file's filesystem can read without caching (`FOP_DONTCACHE`, and not a DAX
    /// file, which has no page cache), i.e. whether [`ReadCache::DontCache`] has an effect.
    pub fn can_dontcache(&self) -> bool {
        let file = self.file.as_ptr();
        // SAFETY: The file is open, so `f_op` is valid and constant, and its inode is pinned;
        // `S_DAX` in `i_flags` does not change while the file is open.
        unsafe {
            (*(*file).f_op).fop_flags & bindings::FOP_DONTCACHE != 0
                && !bindings::IS_DAX(bindings::file_inode(file))
        }
    }

    /// Starts reading bytes `[pos, pos + len)` of the file into its page cache and returns
    /// without waiting for them (`vfs_fadvise()` with `POSIX_FADV_WILLNEED`): a later read of
    /// the range finds its folios present or under I/O. Pages already cached are skipped; the
    /// file's filesystem may read less than asked (generic readahead stops at its device's
    /// largest request). A hint: nothing is read for files without a page cache.
    pub fn will_need(&self, pos: i64, len: i64) -> Result {
        self.fadvise(pos, len, bindings::POSIX_FADV_WILLNEED)
    }

    /// Drops the file's cached folios that lie wholly inside bytes `[pos, pos + len)`
    /// (`vfs_fadvise()` with `POSIX_FADV_DONTNEED`), for a caller that has read them and keeps
    /// the data elsewhere. Folios that the range covers only in part are kept (a last page
    /// partly past end of file counts as covered when the range reaches end of file), and so
    /// are folios that are mapped, dirty, under writeback, locked or in use by another reader
    /// at that moment. Dirty pages in the range are first written back, whoever dirtied them.
    /// When a folio cannot be dropped, the kernel drains every CPU's LRU batches and tries
    /// again (`lru_add_drain_all()`, which waits for work on all CPUs): callers should not hold
    /// locks others wait for. A hint, like [`Self::will_need`].
    pub fn dont_need(&self, pos: i64, len: i64) -> Result {
        self.fadvise(pos, len, bindings::POSIX_FADV_DONTNEED)
    }

    fn fadvise(&self, pos: i64, len: i64, advice: u32) -> Result {
        if pos < 0 || len <= 0 {
            return Err(EINVAL);
        }
        let advice = crate::ffi::c_int::try_from(advice).map_err(|_| EINVAL)?;
        // SAFETY: The file is open for the life of `self`; `vfs_fadvise` neither keeps it nor
        // needs any lock held by the caller. WILLNEED and DONTNEED check no permissions (the
        // opener's were checked at open) and act on the page cache of the file's mapping:
        // WILLNEED starts reads that complete in the background, DONTNEED starts writeback of
        // dirty pages and evicts only clean, unused folios.
        let r = unsafe { bindings::vfs_fadvise(self.file.as_ptr(), pos, len, advice) };
        if r < 0 {
            Err(Error::from_errno(r))
        } else {
            Ok(())
        }
    }

    /// Fills `buf` with the file's bytes from position `pos` with one read call (repeated only
    /// if it returns short), as [`Self::read_into_folios`] does for folios. With
    /// [`ReadCache::DontCache`] the file's own page cache is dropped once read
    /// (`RWF_DONTCACHE`), where its filesystem supports that ([`Self::can_dontcache`]). A file
    /// too short for that is `EIO`.
    pub fn read_into_slice(&self, buf: &mut [u8], pos: i64, cache: ReadCache) -> Result {
        let total = buf.len();
        let rwf = match cache {
            ReadCache::DontCache if self.can_dontcache() => bindings::RWF_DONTCACHE,
            _ => 0,
        };
        let kv = bindings::kvec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: total,
        };
        // SAFETY: All-zero is a valid (empty) `iov_iter`.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: `kv` describes `buf`, which is exclusively borrowed for this call; `kv` and
        // the iterator are locals that outlive every read below.
        unsafe { bindings::iov_iter_kvec(&mut iter, bindings::ITER_DEST, &kv, 1, total) };
        // SAFETY: `iter` describes `total` bytes of memory that only this read writes and that
        // outlives it (above).
        unsafe { self.read_iter_exact(&mut iter, total, pos, rwf) }
    }

    /// Fills the folio ranges `ranges` (at most [`MAX_FOLIO_RANGES`]), in order, with the file's
    /// bytes from position `pos` on, with one read call (`vfs_iter_read()` over a `bio_vec` per
    /// range: the file's filesystem copies straight into the folios, page by page, without a
    /// bounce buffer), repeated only if it returns short. A file too short for that is `EIO`.
    /// The file's page cache keeps what was read; [`Self::dont_need`] releases it.
    pub fn read_into_folios<'f, 'a: 'f>(
        &self,
        ranges: impl IntoIterator<Item = FolioRange<'f, 'a>>,
        pos: i64,
    ) -> Result {
        // SAFETY: All-zero is a valid (empty) `bio_vec`.
        let mut bvecs: [bindings::bio_vec; MAX_FOLIO_RANGES] = unsafe { core::mem::zeroed() };
        let mut total = 0usize;
        let mut nr = 0usize;
        for r in ranges {
            let bv = bvecs.get_mut(nr).ok_or(EINVAL)?;
            nr += 1;
            let end = r.offset.checked_add(r.len).ok_or(EINVAL)?;
            if end > r.folio.size() || u32::try_from(r.len).is_err() {
                return Err(EINVAL);
            }
            // SAFETY: `r.offset..end` is inside the folio (checked above), which is locked and
            // ours until it is ended (type invariant of `LockedFolio`), and borrowed for `'f`,
            // which outlives this call. A `LockedFolio` gives access to the folio's memory only
            // through `&mut self` methods, so no Rust reference to that memory exists while we
            // hold `&LockedFolio`; only the read below writes it (ranges that overlap would be
            // written twice, which is harmless). `r.len` fits in a `u32`.
            unsafe { bindings::bvec_set_folio(bv, r.folio.as_raw(), r.len, r.offset) };
            total = total.checked_add(r.len).ok_or(EINVAL)?;
        }
        // SAFETY: All-zero is a valid (empty) `iov_iter`.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: `bvecs[..nr]` describe `total` bytes of locked folios (above); the array and
        // the iterator are locals that outlive every read below.
        unsafe {
            bindings::iov_iter_bvec(
                &mut iter,
                bindings::ITER_DEST,
                bvecs.as_ptr(),
                nr as crate::ffi::c_ulong,
                total,
            )
        };
        // SAFETY: `iter` describes `total` bytes of memory that only this read writes and that
        // outlives it (above).
        unsafe { self.read_iter_exact(&mut iter, total, pos, 0) }
    }

    /// Reads `total` bytes from position `pos` into what `iter` describes, as the opener, with
    /// `vfs_iter_read()` calls until done; a file too short for that is `EIO`.
    ///
    /// # Safety
    ///
    /// `iter` must describe `total` bytes of memory that nothing else accesses during the call.
    unsafe fn read_iter_exact(
        &self,
        iter: &mut bindings::iov_iter,
        total: usize,
        pos: i64,
        rwf: bindings::rwf_t,
    ) -> Result {
        // As the opener, once for the whole request (see `read_at`).
        // SAFETY: `f_cred` is set when the file is opened and stays valid and unchanged while
        // it is open, which it is for the life of `self`.
        let _creds = unsafe { CredGuard::from_raw((*self.file.as_ptr()).f_cred) };
        let mut p = pos;
        let mut done = 0usize;
        while done < total {
            // SAFETY: The file is open for reading; `iter` describes the rest of the memory
            // (caller) and `vfs_iter_read` advances it by what it read; `p` is a local. The read
            // completes before `vfs_iter_read` returns (it is not given a kiocb to complete
            // later).
            let r = unsafe { bindings::vfs_iter_read(self.file.as_ptr(), iter, &mut p, rwf) };
            let r = usize::try_from(r).map_err(|_| Error::from_errno(r as i32))?;
            if r == 0 {
                return Err(EIO);
            }
            done = done.saturating_add(r);
        }
        Ok(())
    }
}

impl RegularFile {
    /// Returns the file's fs-verity digest (`fsverity_get_digest()`), or `None` if fs-verity
    /// is not enabled on it (or not built into the kernel).
    ///
    /// Once a file has fs-verity, its filesystem checks every page read from it against the
    /// Merkle tree this digest is the root of, so comparing the digest once, after opening, with
    /// one recorded elsewhere authenticates everything read through the open file afterwards.
    pub fn fsverity_digest(&self) -> Result<Option<VerityDigest>> {
        let mut d = VerityDigest {
            alg: 0,
            len: 0,
            bytes: [0u8; MAX_DIGEST],
        };
        let mut halg: bindings::hash_algo = 0;
        // SAFETY: The file is open, which pins its inode and (for a file with fs-verity)
        // loaded its verity info. `d.bytes` has room for `FS_VERITY_MAX_DIGEST_SIZE` bytes and
        // the other two pointers are locals, all valid for writes during the call.
        let n = unsafe {
            bindings::fsverity_get_digest(
                bindings::file_inode(self.file.as_ptr()),
                d.bytes.as_mut_ptr(),
                &mut d.alg,
                &mut halg,
            )
        };
        let n = usize::try_from(n).map_err(|_| Error::from_errno(n))?;
        if n == 0 {
            return Ok(None);
        }
        if n > d.bytes.len() {
            return Err(EINVAL);
        }
        d.len = n;
        Ok(Some(d))
    }
}

/// `FS_VERITY_HASH_ALG_SHA256`: the digest algorithm number of fs-verity's SHA-256.
pub const FS_VERITY_HASH_ALG_SHA256: u8 = bindings::FS_VERITY_HASH_ALG_SHA256 as u8;

/// An fs-verity file digest: the hash algorithm (`FS_VERITY_HASH_ALG_*`) and the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerityDigest {
    alg: u8,
    len: usize,
    bytes: [u8; MAX_DIGEST],
}

/// `FS_VERITY_MAX_DIGEST_SIZE`: room for the largest fs-verity digest.
const MAX_DIGEST: usize = bindings::FS_VERITY_MAX_DIGEST_SIZE as usize;

impl VerityDigest {
    /// The hash algorithm (`FS_VERITY_HASH_ALG_*`).
    pub fn algorithm(&self) -> u8 {
        self.alg
    }

    /// The digest.
    pub fn digest(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// The digest, if it is a SHA-256 one.
    pub fn sha256(&self) -> Option<[u8; 32]> {
        if self.alg != FS_VERITY_HASH_ALG_SHA256 {
            return None;
        }
        self.digest().try_into().ok()
    }
}

/// Most folio ranges one [`RegularFile::read_into_folios`] call takes.
pub const MAX_FOLIO_RANGES: usize = 16;

/// A byte range of a locked folio, for [`RegularFile::read_into_folios`].
pub struct FolioRange<'f, 'a> {
    /// The folio.
    pub folio: &'f LockedFolio<'a>,
    /// Offset of the range in the folio.
    pub offset: usize,
    /// Length of the range.
    pub len: usize,
}

/// How a read through [`RegularFile::read_into_slice`] uses the file's own page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadCache {
    /// Like any other read: the data stays cached in the file's page cache as well.
    Keep,
    /// Drop the file's cached pages once read (`RWF_DONTCACHE`) where supported.
    DontCache,
}
