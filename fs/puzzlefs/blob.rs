// SPDX-License-Identifier: GPL-2.0

//! The blobs of an image: the image directory, verified metadata blobs and the chunk blobs.
//!
//! All blobs live under `blobs/sha256/<hex digest>` of the image directory, which is resolved
//! once at mount time into a private mount ([`PrivateMount`]), so that later changes to the mount
//! tree cannot change what the filesystem reads, and names cannot escape it.
//!
//! Metadata blobs (index, manifest, rootfs, inode vectors) are read whole at mount time into
//! 8-byte aligned kernel memory, charged to the mounter, hashed in steps and checked against
//! their name (sha256) before anything parses them; they are freed once the image is compiled.
//!
//! Chunk blobs are opened lazily, the first time a read needs one, never for a `stat`. Each
//! distinct blob of the image has a slot ([`BlobSlot`], indexed like the compiled blob table) that
//! is set once and read without a lock: the read path goes from an extent to its blob index to
//! an open file in two array lookups. At most [`BlobStore::max_open`] blobs are kept open per
//! mount; past that, a read opens the blob for itself and closes it afterwards. A blob that
//! cannot be opened because it is missing or not a readable regular file is remembered, so that
//! every later read of it fails at once instead of repeating the path walk.

use crate::format::{self, Digest, DIGEST_HEX_LEN};
use crate::internal::image_gfp;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use kernel::{
    alloc::KVVec,
    crypto::Sha256,
    fs::mount::{PrivateMount, RegularFile},
    prelude::*,
    str::CString,
};
use zerocopy::IntoBytes;

/// Bytes hashed per step when verifying a blob: bounds the time with preemption off.
const HASH_STEP: usize = 256 << 10;

/// A blob read whole into 8-byte aligned memory (capnp messages must be aligned).
pub(crate) struct Buffer {
    words: KVVec<u64>,
    len: usize,
}

impl Buffer {
    /// The bytes of the blob.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.words
            .as_slice()
            .as_bytes()
            .get(..self.len)
            .unwrap_or(&[])
    }
}

/// Formats the path of blob `digest` relative to the image directory.
pub(crate) fn blob_path(digest: &Digest) -> Result<CString> {
    let mut hex = [0u8; DIGEST_HEX_LEN];
    let hex = format::digest_to_hex(digest, &mut hex);
    CString::try_from_fmt(fmt!("blobs/sha256/{hex}"))
}

/// A chunk blob, open for reading.
pub(crate) struct BlobFile {
    pub(crate) file: RegularFile,
    /// The size when it was opened: images are immutable, a blob that shrinks later reads short
    /// and fails with `EIO`.
    pub(crate) size: u64,
}

/// A chunk blob for one read: kept open by the store, or opened for this read only.
pub(crate) enum OpenBlob<'a> {
    /// Owned by the store until unmount.
    Kept(&'a BlobFile),
    /// Opened past the store's limit; closed when dropped.
    Once(BlobFile),
}

impl core::ops::Deref for OpenBlob<'_> {
    type Target = BlobFile;

    fn deref(&self) -> &BlobFile {
        match self {
            OpenBlob::Kept(f) => f,
            OpenBlob::Once(f) => f,
        }
    }
}

/// The open state of one chunk blob.
///
/// # Invariants
///
/// `file` is null or a pointer from `KBox::into_raw` that is never changed again and is owned by
/// the slot (freed by [`BlobStore`]'s `Drop`). `failed` is 0 or a negative errno.
struct BlobSlot {
    file: AtomicPtr<BlobFile>,
    failed: AtomicI32,
}

/// Why a blob could not be used.
pub(crate) enum BlobError {
    /// The blob could not be opened or read (errno from the underlying filesystem).
    Io(Error),
    /// The blob is larger than the limit for its kind.
    TooLarge(u64),
    /// The blob's sha256 does not match its name.
    Mismatch,
}

/// The image directory of a mount and its chunk blobs.
pub(crate) struct BlobStore {
    dir: PrivateMount,
    /// One slot per blob of the compiled blob table, in its order.
    slots: KVVec<BlobSlot>,
    open: AtomicUsize,
    max_open: usize,
}

/// Whether a failure to open a blob is a property of the image directory (remembered), rather
/// than of the moment (memory, a signal: tried again next time).
fn permanent(e: Error) -> bool {
    [ENOENT, ENOTDIR, EACCES, EPERM, EXDEV, ELOOP, EINVAL, EISDIR].contains(&e)
}

impl BlobStore {
    /// Resolves the image directory `root` (an absolute path) with the mounter's credentials.
    pub(crate) fn new(root: &CStr, cred: &kernel::cred::Credential) -> Result<Self> {
        Ok(Self {
            dir: PrivateMount::new(root, cred)?,
            slots: KVVec::new(),
            open: AtomicUsize::new(0),
            max_open: 0,
        })
    }

    /// The private mount of the image directory.
    pub(crate) fn dir(&self) -> &PrivateMount {
        &self.dir
    }

    /// Makes room for the `count` chunk blobs of the compiled image, of which at most `max_open`
    /// are kept open at once.
    pub(crate) fn set_chunk_blobs(&mut self, count: usize, max_open: usize) -> Result {
        let mut slots = KVVec::with_capacity(count, image_gfp())?;
        for _ in 0..count {
            slots.push(
                BlobSlot {
                    file: AtomicPtr::new(core::ptr::null_mut()),
                    failed: AtomicI32::new(0),
                },
                image_gfp(),
            )?;
        }
        self.slots = slots;
        self.max_open = max_open;
        Ok(())
    }

    /// Opens a file of the image directory by its relative name.
    pub(crate) fn open(&self, name: &CStr) -> Result<RegularFile> {
        self.dir.open_beneath(name)
    }

    /// Reads the whole file `name` (at most `max` bytes) into aligned memory.
    pub(crate) fn read_file(
        &self,
        name: &CStr,
        max: usize,
    ) -> core::result::Result<Buffer, BlobError> {
        let file = self.open(name).map_err(BlobError::Io)?;
        let size = u64::try_from(file.size()).map_err(|_| BlobError::Io(EIO))?;
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l <= max)
            .ok_or(BlobError::TooLarge(size))?;
        let mut words = KVVec::from_elem(0u64, len.div_ceil(8), image_gfp())
            .map_err(|_| BlobError::Io(ENOMEM))?;
        let bytes = words
            .as_mut_slice()
            .as_mut_bytes()
            .get_mut(..len)
            .ok_or(BlobError::Io(EINVAL))?;
        file.read_exact_at(bytes, 0).map_err(BlobError::Io)?;
        Ok(Buffer { words, len })
    }

    /// Reads blob `digest` whole (at most `max` bytes) and checks that its sha256 is its name.
    pub(crate) fn read_verified(
        &self,
        digest: &Digest,
        max: usize,
    ) -> core::result::Result<Buffer, BlobError> {
        let name = blob_path(digest).map_err(BlobError::Io)?;
        let buf = self.read_file(&name, max)?;
        // In steps: one step is one FPU section (preemption off) in the arch's sha256.
        let mut hash = Sha256::new();
        for step in buf.bytes().chunks(HASH_STEP) {
            hash.update(step);
            kernel::task::cond_resched();
            if kernel::current!().fatal_signal_pending() {
                return Err(BlobError::Io(EINTR));
            }
        }
        if hash.finish() != *digest {
            return Err(BlobError::Mismatch);
        }
        Ok(buf)
    }

    /// Opens chunk blob `digest`.
    fn open_chunk(&self, digest: &Digest) -> Result<BlobFile> {
        let file = self.open(&blob_path(digest)?)?;
        let size = u64::try_from(file.size()).map_err(|_| EIO)?;
        Ok(BlobFile { file, size })
    }

    /// Returns chunk blob `index` (of the compiled blob table, whose digest is `digest`) open
    /// for reading: from its slot, or opened now (and kept, while fewer than `max_open` are).
    pub(crate) fn chunk(&self, index: u32, digest: &Digest) -> Result<OpenBlob<'_>> {
        let slot = self.slots.get(index as usize).ok_or(EIO)?;
        let kept = slot.file.load(Ordering::Acquire);
        if !kept.is_null() {
            // SAFETY: A non-null slot pointer came from `KBox::into_raw` and stays valid and
            // unchanged until the store is dropped (type invariant of `BlobSlot`), which outlives
            // the returned borrow of `self`.
            return Ok(OpenBlob::Kept(unsafe { &*kept }));
        }
        let failed = slot.failed.load(Ordering::Relaxed);
        if failed != 0 {
            return Err(Error::from_errno(failed));
        }
        let opened = self.open_chunk(digest).inspect_err(|&e| {
            if permanent(e) {
                slot.failed.store(e.to_errno(), Ordering::Relaxed);
            }
        })?;
        if self.open.load(Ordering::Relaxed) >= self.max_open {
            return Ok(OpenBlob::Once(opened));
        }
        let boxed = match KBox::new(opened, image_gfp()) {
            Ok(b) => b,
            Err(_) => return Err(ENOMEM),
        };
        let raw = KBox::into_raw(boxed);
        match slot.file.compare_exchange(
            core::ptr::null_mut(),
            raw,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.open.fetch_add(1, Ordering::Relaxed);
                // SAFETY: We just stored `raw` in the slot, which now owns it until the store is
                // dropped (type invariant of `BlobSlot`).
                Ok(OpenBlob::Kept(unsafe { &*raw }))
            }
            Err(theirs) => {
                // Another reader opened it first: use theirs, close ours.
                // SAFETY: `raw` came from `KBox::into_raw` above and was not published.
                drop(unsafe { KBox::from_raw(raw) });
                // SAFETY: As for `kept` above: a published pointer lives as long as the store.
                Ok(OpenBlob::Kept(unsafe { &*theirs }))
            }
        }
    }
}

impl Drop for BlobStore {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            let p = slot.file.swap(core::ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: A non-null slot pointer came from `KBox::into_raw` and is owned by the
                // slot (type invariant); we take it out of the slot, so it is freed once.
                drop(unsafe { KBox::from_raw(p) });
            }
        }
    }
}
