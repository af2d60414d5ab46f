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
//! distinct blob of the image has a slot ([`BlobSlot`], indexed like the compiled blob table)
//! whose pointers are set once and read without a lock: the read path goes from an extent to
//! its blob index to an open file in two array lookups. At most `max_open_blobs` blobs are kept
//! open per mount; past that, a read opens the blob for itself and closes it afterwards (kept
//! blobs are not evicted). A compressed blob's layout and frame index live in the slot too, so
//! they are loaded once even for blobs not kept open, within a per-mount budget. A blob that
//! cannot be opened because it is missing, is not a readable regular file, fails its fs-verity
//! check or is not a valid compressed chunk is remembered, so that every later read of it fails
//! at once instead of repeating the work.
//!
//! Blobs are opened in the read path, under the folio locks of the read: a path walk in
//! `blobs/sha256/` and an open of the backing file (LSM and fsnotify hooks, fs-verity's
//! descriptor). Like any stacked filesystem's, reads can then wait on the backing directory's
//! lock and on permission listeners of the backing filesystem.

use crate::format::{self, Digest, DIGEST_HEX_LEN};
use crate::internal::{image_gfp, KernelAlloc};
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use kernel::{
    alloc::KVVec,
    crypto::Sha256,
    fs::mount::{PrivateMount, ReadCache, RegularFile},
    prelude::*,
    str::CString,
    time::{Instant, Monotonic},
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

/// The frame index of a seekable compressed chunk blob.
pub(crate) type SeekIndex = format::seekable::SeekIndex<KernelAlloc>;

/// How a compressed chunk blob is laid out, once loaded.
pub(crate) enum Layout {
    /// Frames and their index.
    Seekable(SeekIndex),
    /// One plain zstd stream, decompressed whole.
    Plain,
}

/// A chunk blob, open for reading.
pub(crate) struct BlobFile {
    pub(crate) file: RegularFile,
    /// The size when it was opened: images are immutable, a blob that shrinks later reads short
    /// and fails with `EIO`.
    pub(crate) size: u64,
}

impl BlobFile {
    fn new(file: RegularFile, size: u64) -> Self {
        Self { file, size }
    }

    fn load_layout(&self) -> core::result::Result<Layout, SeekError> {
        use format::seekable::{blob_layout, Layout as L, FOOTER_LEN};
        let short = SeekError::Format(format::Error::Seekable("blob too short"));
        let footer_at = self.size.checked_sub(FOOTER_LEN as u64).ok_or(short)?;
        let mut tail = [0u8; FOOTER_LEN];
        let at = i64::try_from(footer_at).map_err(|_| SeekError::Io(EIO))?;
        self.file
            .read_exact_at(&mut tail, at)
            .map_err(SeekError::Io)?;
        let mut head = [0u8; 4];
        self.file
            .read_exact_at(&mut head, 0)
            .map_err(SeekError::Io)?;
        let footer = match blob_layout(&head, &tail, self.size).map_err(SeekError::Format)? {
            L::Plain => return Ok(Layout::Plain),
            L::Seekable(footer) => footer,
        };
        let table_len = footer.table_frame_len();
        let table_at =
            self.size
                .checked_sub(table_len)
                .ok_or(SeekError::Format(format::Error::Seekable(
                    "seek table larger than the blob",
                )))?;
        // At most 8 + 1024 * 12 + 9 bytes (`MAX_FRAMES`).
        let len = usize::try_from(table_len).map_err(|_| SeekError::Io(EIO))?;
        let mut table =
            KVVec::from_elem(0u8, len, image_gfp()).map_err(|_| SeekError::Io(ENOMEM))?;
        let at = i64::try_from(table_at).map_err(|_| SeekError::Io(EIO))?;
        self.file
            .read_exact_at(&mut table, at)
            .map_err(SeekError::Io)?;
        SeekIndex::build(&table, &footer, self.size)
            .map(Layout::Seekable)
            .map_err(SeekError::Format)
    }
}

/// Why a compressed blob's layout could not be loaded.
pub(crate) enum SeekError {
    /// Reading the blob failed.
    Io(Error),
    /// The blob is not a valid compressed chunk.
    Format(format::Error),
    /// The blob was found invalid before (the reason was reported then).
    Remembered,
    /// The frame indexes of the mount's blobs would exceed its limit.
    OverBudget,
}

impl core::fmt::Display for SeekError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SeekError::Io(e) => write!(f, "cannot read its seek table: error {}", e.to_errno()),
            SeekError::Format(e) => write!(f, "{e}"),
            SeekError::Remembered => f.write_str("not a valid compressed chunk (seen before)"),
            SeekError::OverBudget => f.write_str(
                "frame indexes exceed the mount's limit (see the metadata_max_mb parameter)",
            ),
        }
    }
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

/// The state of one chunk blob.
///
/// # Invariants
///
/// `file` and `layout` are each null or a pointer from `KBox::into_raw` that is never changed
/// again and is owned by the slot (freed by its `Drop`). `failed` is 0 or a
/// [`BlobError::code`].
struct BlobSlot {
    /// The open file, kept.
    file: AtomicPtr<BlobFile>,
    /// Read compressed: its layout and frame index, kept (also for blobs not kept open).
    layout: AtomicPtr<Layout>,
    /// A failure to open or check the blob, remembered ([`BlobError::code`]).
    failed: AtomicI32,
    /// Whether its layout was found invalid.
    layout_failed: AtomicBool,
    /// Whether the read path has read it ahead whole ([`BlobStore::first_touch`]).
    touched: AtomicBool,
}

impl BlobSlot {
    fn new() -> Self {
        // INVARIANT: Nothing published yet.
        Self {
            file: AtomicPtr::new(core::ptr::null_mut()),
            layout: AtomicPtr::new(core::ptr::null_mut()),
            failed: AtomicI32::new(0),
            layout_failed: AtomicBool::new(false),
            touched: AtomicBool::new(false),
        }
    }
}

impl Drop for BlobSlot {
    fn drop(&mut self) {
        let file = *self.file.get_mut();
        if !file.is_null() {
            // SAFETY: A non-null pointer came from `KBox::into_raw` and is owned by the slot
            // (type invariant); it is freed once, here, when nothing can use the slot any more.
            drop(unsafe { KBox::from_raw(file) });
        }
        let layout = *self.layout.get_mut();
        if !layout.is_null() {
            // SAFETY: As for `file`.
            drop(unsafe { KBox::from_raw(layout) });
        }
    }
}

/// Publishes `value` in `slot` if it is still null, and returns what the slot then holds and
/// whether it is ours (else another thread published first, and ours is freed).
///
/// # Safety
///
/// `slot` must follow the rule of [`BlobSlot`]'s pointers: null, or a `KBox::into_raw` pointer
/// never changed again and freed only when the slot is dropped, which must outlive `'a`.
unsafe fn publish<'a, T>(slot: &'a AtomicPtr<T>, value: KBox<T>) -> (&'a T, bool) {
    let raw = KBox::into_raw(value);
    match slot.compare_exchange(
        core::ptr::null_mut(),
        raw,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // INVARIANT: `raw` is published once and owned by the slot from now on.
        // SAFETY: The slot owns `raw` until it is dropped, which outlives `'a` (caller).
        Ok(_) => (unsafe { &*raw }, true),
        Err(theirs) => {
            // SAFETY: `raw` came from `KBox::into_raw` above and was not published.
            drop(unsafe { KBox::from_raw(raw) });
            // SAFETY: `theirs` is non-null (the exchange failed), so it is a published pointer,
            // valid until the slot is dropped (caller).
            (unsafe { &*theirs }, false)
        }
    }
}

// The slots' pointers are shared between threads: what they point to must be `Send + Sync`.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<BlobFile>();
    shared::<Layout>();
};

/// How fs-verity is used (mount option `verity=`, spelled and meant as overlayfs's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verity {
    /// Digests are not checked.
    Off,
    /// A blob whose backing file has fs-verity must have the digest the image records for it.
    On,
    /// Every blob the image records a digest for must have fs-verity with that digest, and the
    /// image must record digests for its rootfs, layers and chunks.
    Require,
}

/// Checks the fs-verity digest of the open blob `file` against `expected` under `policy`.
fn check_verity(
    file: &RegularFile,
    policy: Verity,
    expected: Option<&Digest>,
) -> core::result::Result<(), BlobError> {
    if policy == Verity::Off {
        return Ok(());
    }
    let actual = file.fsverity_digest().map_err(BlobError::Io)?;
    match (actual, expected) {
        (None, _) if policy == Verity::On => Ok(()),
        (None, _) => Err(BlobError::NoVerity),
        (Some(_), None) if policy == Verity::On => Ok(()),
        (Some(_), None) => Err(BlobError::NoRecordedVerity),
        (Some(a), Some(e)) => {
            if a.sha256().as_ref() == Some(e) {
                Ok(())
            } else {
                Err(BlobError::VerityMismatch)
            }
        }
    }
}

/// Why a blob could not be used.
pub(crate) enum BlobError {
    /// The blob could not be opened or read (errno from the underlying filesystem).
    Io(Error),
    /// The blob is larger than the limit for its kind.
    TooLarge(u64),
    /// The blob's sha256 does not match its name.
    Mismatch,
    /// The blob's fs-verity digest is not the one the image records.
    VerityMismatch,
    /// `verity=require`, and the blob's backing file has no fs-verity.
    NoVerity,
    /// `verity=require`, and the image records no fs-verity digest for the blob.
    NoRecordedVerity,
}

impl BlobError {
    /// A non-zero code to remember the error by: a negative errno, or a positive number for the
    /// other kinds. Whoever meets a remembered error reports the same reason as the first
    /// reader (which may have been a read-ahead that reports nothing).
    fn code(&self) -> i32 {
        match self {
            BlobError::Io(e) => e.to_errno(),
            BlobError::TooLarge(_) => EIO.to_errno(),
            BlobError::Mismatch => 1,
            BlobError::VerityMismatch => 2,
            BlobError::NoVerity => 3,
            BlobError::NoRecordedVerity => 4,
        }
    }

    /// The error remembered as `code` (see [`Self::code`]).
    fn from_code(code: i32) -> Self {
        match code {
            1 => BlobError::Mismatch,
            2 => BlobError::VerityMismatch,
            3 => BlobError::NoVerity,
            4 => BlobError::NoRecordedVerity,
            c if c < 0 => BlobError::Io(Error::from_errno(c)),
            _ => BlobError::Io(EIO),
        }
    }
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlobError::Io(e) => write!(f, "error {}", e.to_errno()),
            BlobError::TooLarge(n) => write!(f, "too large ({n} bytes)"),
            BlobError::Mismatch => f.write_str("sha256 does not match its name"),
            BlobError::VerityMismatch => {
                f.write_str("fs-verity digest differs from the one the image records")
            }
            BlobError::NoVerity => f.write_str("no fs-verity on its file (verity=require)"),
            BlobError::NoRecordedVerity => {
                f.write_str("the image records no fs-verity digest for it (verity=require)")
            }
        }
    }
}

/// The image directory of a mount and its chunk blobs.
pub(crate) struct BlobStore {
    dir: PrivateMount,
    verity: Verity,
    /// Whether the blob files' own page cache is dropped once read (mount option `blob_cache`).
    cache: ReadCache,
    /// Nanoseconds spent hashing metadata blobs (for the mount message).
    hash_ns: AtomicU64,
    /// One slot per blob of the compiled blob table, in its order.
    slots: KVVec<BlobSlot>,
    open: AtomicUsize,
    max_open: usize,
    /// Bytes of frame indexes loaded, and their limit.
    index_bytes: AtomicUsize,
    index_limit: usize,
}

/// Whether a failure to open a blob is a property of the image directory (remembered), rather
/// than of the moment (memory, a signal: tried again next time).
fn permanent(e: Error) -> bool {
    [ENOENT, ENOTDIR, EACCES, EPERM, EXDEV, ELOOP, EINVAL, EISDIR].contains(&e)
}

impl BlobStore {
    /// Resolves the image directory `root` (an absolute path) with the mounter's credentials;
    /// blobs will be checked and read as `verity` and `cache` say.
    pub(crate) fn new(
        root: &CStr,
        cred: &kernel::cred::Credential,
        verity: Verity,
        cache: ReadCache,
    ) -> Result<Self> {
        Ok(Self {
            dir: PrivateMount::new(root, cred)?,
            verity,
            cache,
            hash_ns: AtomicU64::new(0),
            slots: KVVec::new(),
            open: AtomicUsize::new(0),
            max_open: 0,
            index_bytes: AtomicUsize::new(0),
            index_limit: 0,
        })
    }

    /// The private mount of the image directory.
    pub(crate) fn dir(&self) -> &PrivateMount {
        &self.dir
    }

    /// Makes room for the `count` chunk blobs of the compiled image, of which at most `max_open`
    /// are kept open at once, and whose frame indexes may take `index_limit` bytes. Called once,
    /// before any read.
    pub(crate) fn set_chunk_blobs(
        &mut self,
        count: usize,
        max_open: usize,
        index_limit: usize,
    ) -> Result {
        if !self.slots.is_empty() {
            return Err(EINVAL);
        }
        let mut slots = KVVec::with_capacity(count, image_gfp())?;
        for _ in 0..count {
            slots.push(BlobSlot::new(), image_gfp())?;
        }
        self.slots = slots;
        self.max_open = max_open;
        self.index_limit = index_limit;
        Ok(())
    }

    /// The layout of chunk blob `index`, open as `blob`, read as a compressed chunk: loaded
    /// from the blob on first use (charged to the mount's index budget) and kept in its slot,
    /// also when the blob itself is not kept open. An invalid blob is remembered.
    pub(crate) fn layout(
        &self,
        index: u32,
        blob: &BlobFile,
    ) -> core::result::Result<&Layout, SeekError> {
        let slot = self.slots.get(index as usize).ok_or(SeekError::Io(EIO))?;
        let p = slot.layout.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: A non-null slot pointer came from `KBox::into_raw` and stays valid and
            // unchanged until the slot is dropped with the store (type invariant of
            // `BlobSlot`), which outlives the returned borrow of `self`.
            return Ok(unsafe { &*p });
        }
        if slot.layout_failed.load(Ordering::Relaxed) {
            return Err(SeekError::Remembered);
        }
        let layout = blob.load_layout().inspect_err(|e| {
            if matches!(e, SeekError::Format(_)) {
                slot.layout_failed.store(true, Ordering::Relaxed);
            }
        })?;
        let cost = match &layout {
            Layout::Seekable(ix) => ix
                .len()
                .saturating_mul(size_of::<format::seekable::Frame>()),
            Layout::Plain => 0,
        };
        if self
            .index_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(cost).filter(|&n| n <= self.index_limit)
            })
            .is_err()
        {
            return Err(SeekError::OverBudget);
        }
        let boxed = KBox::new(layout, image_gfp()).map_err(|_| SeekError::Io(ENOMEM))?;
        // SAFETY: `slot.layout` follows the rule of `BlobSlot`'s pointers, and the slot lives
        // as long as `self`.
        Ok(unsafe { publish(&slot.layout, boxed) }.0)
    }

    /// Returns `true` to the first caller for chunk blob `index` in this mount, `false` to every
    /// later one: the read path reads a blob ahead whole once.
    pub(crate) fn first_touch(&self, index: u32) -> bool {
        self.slots
            .get(index as usize)
            .is_some_and(|slot| !slot.touched.swap(true, Ordering::Relaxed))
    }

    /// Opens a file of the image directory by its relative name.
    pub(crate) fn open(&self, name: &CStr) -> Result<RegularFile> {
        self.dir.open_beneath(name)
    }

    /// The fs-verity policy.
    pub(crate) fn verity(&self) -> Verity {
        self.verity
    }

    /// How chunk blobs are read (mount option `blob_cache`).
    pub(crate) fn cache(&self) -> ReadCache {
        self.cache
    }

    /// Microseconds spent hashing metadata blobs so far.
    pub(crate) fn hash_us(&self) -> u64 {
        self.hash_ns.load(Ordering::Relaxed) / 1000
    }

    /// Reads the whole file `name` (at most `max` bytes) into aligned memory, after checking
    /// its fs-verity digest against `verity` (see [`Verity`]), if given.
    pub(crate) fn read_file(
        &self,
        name: &CStr,
        max: usize,
        verity: Option<Option<&Digest>>,
    ) -> core::result::Result<Buffer, BlobError> {
        let file = self.open(name).map_err(BlobError::Io)?;
        if let Some(expected) = verity {
            check_verity(&file, self.verity, expected)?;
        }
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

    /// Reads blob `digest` whole (at most `max` bytes) and checks that its sha256 is its name,
    /// and its fs-verity digest against `verity` (the digest the image records, if any).
    pub(crate) fn read_verified(
        &self,
        digest: &Digest,
        max: usize,
        verity: Option<&Digest>,
    ) -> core::result::Result<Buffer, BlobError> {
        self.read_hashed(digest, max, Some(verity))
    }

    /// Reads blob `digest` whole (at most `max` bytes) and checks that its sha256 is its name;
    /// for the blob a mount names, whose digest is the root of trust, so no fs-verity digest of
    /// it is recorded anywhere.
    pub(crate) fn read_file_verified(
        &self,
        digest: &Digest,
        max: usize,
    ) -> core::result::Result<Buffer, BlobError> {
        self.read_hashed(digest, max, None)
    }

    fn read_hashed(
        &self,
        digest: &Digest,
        max: usize,
        verity: Option<Option<&Digest>>,
    ) -> core::result::Result<Buffer, BlobError> {
        let name = blob_path(digest).map_err(BlobError::Io)?;
        let buf = self.read_file(&name, max, verity)?;
        // In steps: one step is one FPU section (preemption off) in the arch's sha256.
        let t0 = Instant::<Monotonic>::now();
        let mut hash = Sha256::new();
        for step in buf.bytes().chunks(HASH_STEP) {
            hash.update(step);
            kernel::task::cond_resched();
            if kernel::current!().fatal_signal_pending() {
                return Err(BlobError::Io(EINTR));
            }
        }
        let ok = hash.finish() == *digest;
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(0);
        self.hash_ns.fetch_add(ns, Ordering::Relaxed);
        if !ok {
            return Err(BlobError::Mismatch);
        }
        Ok(buf)
    }

    /// Opens chunk blob `blob` and checks its fs-verity digest.
    fn open_chunk(&self, blob: &format::tables::Blob) -> core::result::Result<BlobFile, BlobError> {
        let file = self
            .open(&blob_path(&blob.digest).map_err(BlobError::Io)?)
            .map_err(BlobError::Io)?;
        check_verity(&file, self.verity, blob.verity.as_ref())?;
        let size = u64::try_from(file.size()).map_err(|_| BlobError::Io(EIO))?;
        Ok(BlobFile::new(file, size))
    }

    /// Returns chunk blob `index` of the compiled blob table (`blob` is its entry) open for
    /// reading: from its slot, or opened now (and kept, while fewer than `max_open` are). A
    /// blob that fails its fs-verity check, or cannot be opened for good (missing, not a
    /// readable regular file), is remembered as failed: later reads fail at once, with the same
    /// error.
    pub(crate) fn chunk(
        &self,
        index: u32,
        blob: &format::tables::Blob,
    ) -> core::result::Result<OpenBlob<'_>, BlobError> {
        let slot = self.slots.get(index as usize).ok_or(BlobError::Io(EIO))?;
        let kept = slot.file.load(Ordering::Acquire);
        if !kept.is_null() {
            // SAFETY: A non-null slot pointer came from `KBox::into_raw` and stays valid and
            // unchanged until the store is dropped (type invariant of `BlobSlot`), which outlives
            // the returned borrow of `self`.
            return Ok(OpenBlob::Kept(unsafe { &*kept }));
        }
        let failed = slot.failed.load(Ordering::Relaxed);
        if failed != 0 {
            return Err(BlobError::from_code(failed));
        }
        let opened = self.open_chunk(blob).inspect_err(|e| match e {
            BlobError::Io(e) if !permanent(*e) => {}
            _ => slot.failed.store(e.code(), Ordering::Relaxed),
        })?;
        // A place among the kept blobs, reserved before publishing so that racing openers
        // cannot exceed `max_open`.
        if self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_open).then_some(n + 1)
            })
            .is_err()
        {
            return Ok(OpenBlob::Once(opened));
        }
        let boxed = match KBox::new(opened, image_gfp()) {
            Ok(b) => b,
            Err(_) => {
                self.open.fetch_sub(1, Ordering::Relaxed);
                return Err(BlobError::Io(ENOMEM));
            }
        };
        // SAFETY: `slot.file` follows the rule of `BlobSlot`'s pointers, and the slot lives as
        // long as `self`.
        let (kept, ours) = unsafe { publish(&slot.file, boxed) };
        if !ours {
            // Another reader's was kept: give the place back.
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(OpenBlob::Kept(kept))
    }
}
