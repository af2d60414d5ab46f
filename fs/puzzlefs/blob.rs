// SPDX-License-Identifier: GPL-2.0

//! The blobs of an image: the image directory, verified metadata blobs and the chunk blob cache.
//!
//! All blobs live under `blobs/sha256/<hex digest>` of the image directory, which is resolved
//! once at mount time into a private mount ([`PrivateMount`]), so that later changes to the mount
//! tree cannot change what the filesystem reads, and names cannot escape it.
//!
//! Metadata blobs (index, manifest, rootfs, inode vectors) are read whole at mount time into
//! 8-byte aligned kernel memory and checked against their name (sha256) before anything parses
//! them. Chunk blobs are opened when an inode that uses them is instantiated and kept open in a
//! per-superblock cache until unmount, so the read path does no path lookups in the common case.

use crate::format::{self, Digest, DIGEST_HEX_LEN};
use kernel::{
    alloc::KVVec,
    crypto::Sha256,
    fs::mount::{PrivateMount, RegularFile},
    new_mutex,
    prelude::*,
    str::CString,
    sync::{Arc, Mutex},
};
use zerocopy::IntoBytes;

/// Largest metadata blob read at mount time (bytes): bounds the allocation an image can ask for.
pub(crate) const MAX_METADATA_BLOB: usize = 256 << 20;

/// Largest JSON document read (`index.json`, image manifests).
pub(crate) const MAX_JSON_BLOB: usize = format::json::MAX_SIZE;

/// Bytes hashed per step when verifying a blob: bounds the time with preemption off.
const HASH_STEP: usize = 256 << 10;

/// Most chunk blobs kept open per mount. Past this, reads open the blob by name each time.
const MAX_CACHED_BLOBS: usize = 16384;

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
    pub(crate) digest: Digest,
    pub(crate) file: RegularFile,
    /// The size when it was opened: images are immutable, a blob that shrinks later reads short
    /// and fails with `EIO`.
    pub(crate) size: u64,
}

/// The open chunk blobs of one mount, sorted by digest.
#[pin_data]
pub(crate) struct BlobCache {
    #[pin]
    files: Mutex<KVec<Arc<BlobFile>>>,
}

/// The image directory of a mount and its chunk blob cache.
pub(crate) struct BlobStore {
    dir: PrivateMount,
    cache: Pin<KBox<BlobCache>>,
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

impl BlobStore {
    /// Resolves the image directory `root` (an absolute path) with the mounter's credentials.
    pub(crate) fn new(root: &CStr, cred: &kernel::cred::Credential) -> Result<Self> {
        let dir = PrivateMount::new(root, cred)?;
        let cache = KBox::pin_init(
            pin_init!(BlobCache {
                files <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )?;
        Ok(Self { dir, cache })
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
        let mut words = KVVec::from_elem(0u64, len.div_ceil(8), GFP_KERNEL)
            .map_err(|_| BlobError::Io(ENOMEM))?;
        let bytes = words
            .as_mut_slice()
            .as_mut_bytes()
            .get_mut(..len)
            .ok_or(BlobError::Io(EINVAL))?;
        file.read_exact_at(bytes, 0).map_err(BlobError::Io)?;
        Ok(Buffer { words, len })
    }

    /// Reads blob `digest` whole and checks that its sha256 is its name.
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
        }
        if hash.finish() != *digest {
            return Err(BlobError::Mismatch);
        }
        Ok(buf)
    }

    /// Opens chunk blob `digest`, without caching it.
    fn open_chunk(&self, digest: &Digest) -> Result<Arc<BlobFile>> {
        let file = self.open(&blob_path(digest)?)?;
        let size = u64::try_from(file.size()).map_err(|_| EIO)?;
        Ok(Arc::new(
            BlobFile {
                digest: *digest,
                file,
                size,
            },
            GFP_KERNEL,
        )?)
    }

    /// Opens chunk blob `digest` into the cache ahead of reads, if it is not there yet and the
    /// cache has room. Returns `false` once the cache is full (prefetching more is pointless).
    /// Errors are left for the read to report.
    pub(crate) fn prefetch(&self, digest: &Digest) -> bool {
        {
            let files = self.cache.files.lock();
            if files.binary_search_by(|f| f.digest.cmp(digest)).is_ok() {
                return true;
            }
            if files.len() >= MAX_CACHED_BLOBS {
                return false;
            }
        }
        let _ = self.chunk(digest);
        true
    }

    /// Returns chunk blob `digest` from the cache, opening (and caching) it if needed.
    pub(crate) fn chunk(&self, digest: &Digest) -> Result<Arc<BlobFile>> {
        {
            let files = self.cache.files.lock();
            if let Ok(i) = files.binary_search_by(|f| f.digest.cmp(digest)) {
                if let Some(f) = files.get(i) {
                    return Ok(f.clone());
                }
            }
        }
        // Open outside the lock: it is a path lookup and may sleep on I/O.
        let opened = self.open_chunk(digest)?;
        let mut files = self.cache.files.lock();
        match files.binary_search_by(|f| f.digest.cmp(digest)) {
            // Someone else cached it meanwhile: use theirs, drop ours.
            Ok(i) => Ok(files.get(i).map_or(opened, |f| f.clone())),
            Err(i) if files.len() < MAX_CACHED_BLOBS => {
                // Not caching is always correct (the read opens the blob itself), so a failed
                // allocation only costs speed.
                if files.reserve(1, GFP_KERNEL).is_ok() {
                    let _ = files.insert_within_capacity(i, opened.clone());
                }
                Ok(opened)
            }
            Err(_) => Ok(opened),
        }
    }
}
