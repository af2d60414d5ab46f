// SPDX-License-Identifier: GPL-2.0

//! The rootfs blob of both generations, and reading capnp messages safely.
//!
//! Both rootfs schemas keep `manifestVersion` at ordinal 2 in the same data
//! word, so the version is read first and decides which schema applies:
//! 3 is Generation B (`metadata.capnp` `Rootfs`, inode vectors inline), 2 is
//! Generation A (`manifest.capnp` `Rootfs`, one `BlobRef` per layer blob).

use crate::format::{digest_from_bytes, manifest_capnp, metadata_capnp};
use crate::format::{Digest, Error, Generation, Result};
use capnp::message::{Reader, ReaderOptions};
use capnp::serialize::NoAllocSliceSegments;

/// manifestVersion of Generation A.
pub(crate) const MANIFEST_VERSION_A: u64 = 2;

/// manifestVersion of Generation B.
pub(crate) const MANIFEST_VERSION_B: u64 = 3;

/// Nesting limit of our messages (the deepest path, rootfs → vector →
/// inode → dir → entry, is 6 levels).
const NESTING_LIMIT: i32 = 16;

/// Words of traversal allowed per byte-size word of the message, per
/// operation. One operation reads each list pointer a small number of times.
const TRAVERSAL_FACTOR: usize = 8;

/// Traversal words allowed on top, so that tiny messages still work.
const TRAVERSAL_FLOOR: usize = 1024;

/// Opens a capnp message over `buf` (which must be 8-byte aligned) with a
/// traversal limit derived from its size. Open a fresh reader per
/// operation: the limit is cumulative.
pub(crate) fn open_message(buf: &[u8]) -> Result<Reader<NoAllocSliceSegments<'_>>> {
    if buf.as_ptr().align_offset(8) != 0 {
        return Err(Error::Misaligned);
    }
    let words = buf.len() / 8;
    let mut opts = ReaderOptions::new();
    opts.traversal_limit_in_words(Some(
        words
            .saturating_mul(TRAVERSAL_FACTOR)
            .saturating_add(TRAVERSAL_FLOOR),
    ))
    .nesting_limit(NESTING_LIMIT);
    let mut slice = buf;
    Ok(capnp::serialize::read_message_from_flat_slice_no_alloc(
        &mut slice, opts,
    )?)
}

/// Turns `data`, borrowed from a reader over `buf`, into a slice of `buf`
/// itself, so it outlives the reader. Fails if `data` is not inside `buf`.
pub(crate) fn rebase<'a>(buf: &'a [u8], data: &[u8]) -> Result<&'a [u8]> {
    if data.is_empty() {
        return Ok(&[]);
    }
    let bad = Error::Capnp(crate::format::CapnpError(
        capnp::ErrorKind::MessageEndsPrematurely(0, 0),
    ));
    let off = (data.as_ptr() as usize)
        .checked_sub(buf.as_ptr() as usize)
        .ok_or(bad)?;
    let end = off.checked_add(data.len()).ok_or(bad)?;
    buf.get(off..end).ok_or(bad)
}

/// A parsed rootfs blob of either generation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rootfs<'a> {
    buf: &'a [u8],
    generation: Generation,
    layers: u32,
    // The fs-verity table is validated at parse time and read by the self-tests; the driver
    // does not check fs-verity digests yet.
    #[cfg_attr(not(any(test, CONFIG_KUNIT)), allow(dead_code))]
    verity: u32,
}

fn check_verity_entry(digest: &[u8], verity: &[u8]) -> Result<(Digest, Digest)> {
    Ok((digest_from_bytes(digest)?, digest_from_bytes(verity)?))
}

impl<'a> Rootfs<'a> {
    /// Parses a rootfs blob. `buf` must be 8-byte aligned and stay alive as
    /// long as the views built from it.
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Self> {
        let msg = open_message(buf)?;
        let b: metadata_capnp::rootfs::Reader<'_> = msg.get_root()?;
        let (generation, layers, verity) = match b.get_manifest_version() {
            MANIFEST_VERSION_B => {
                let layers = b.get_metadatas()?.len();
                let v = b.get_fs_verity_data()?;
                for e in v.iter() {
                    check_verity_entry(e.get_digest()?, e.get_verity()?)?;
                }
                (Generation::B, layers, v.len())
            }
            MANIFEST_VERSION_A => {
                let a: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
                let m = a.get_metadatas()?;
                for (i, r) in m.iter().enumerate() {
                    digest_from_bytes(r.get_digest()?)?;
                    if r.get_compressed() || r.get_offset() != 0 {
                        return Err(Error::BadLayerRef(i));
                    }
                }
                let v = a.get_fs_verity_data()?;
                for e in v.iter() {
                    check_verity_entry(e.get_digest()?, e.get_verity()?)?;
                }
                (Generation::A, m.len(), v.len())
            }
            v => return Err(Error::UnsupportedManifestVersion(v)),
        };
        if layers == 0 {
            return Err(Error::NoLayers);
        }
        if layers as usize > crate::format::image::MAX_LAYERS {
            return Err(Error::TooManyLayers(layers as usize));
        }
        Ok(Self {
            buf,
            generation,
            layers,
            verity,
        })
    }

    /// The rootfs bytes.
    pub(crate) fn buf(&self) -> &'a [u8] {
        self.buf
    }

    /// The image generation.
    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    /// Number of layers (at least 1, at most [`crate::format::image::MAX_LAYERS`]).
    pub(crate) fn layer_count(&self) -> usize {
        self.layers as usize
    }

    /// Generation A: the digest of the blob holding layer `i` (0 is the top).
    pub(crate) fn layer_blob(&self, i: usize) -> Result<Digest> {
        if self.generation != Generation::A {
            return Err(Error::LayerIndex(i));
        }
        let msg = open_message(self.buf)?;
        let a: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
        let idx = u32::try_from(i).map_err(|_| Error::LayerIndex(i))?;
        let r = a
            .get_metadatas()?
            .try_get(idx)
            .ok_or(Error::LayerIndex(i))?;
        digest_from_bytes(r.get_digest()?)
    }

    /// Number of fs-verity entries.
    #[cfg_attr(not(any(test, CONFIG_KUNIT)), allow(dead_code))]
    pub(crate) fn verity_count(&self) -> usize {
        self.verity as usize
    }

    /// fs-verity entry `i`: (blob sha256, fs-verity digest).
    #[cfg_attr(not(any(test, CONFIG_KUNIT)), allow(dead_code))]
    pub(crate) fn verity_entry(&self, i: usize) -> Result<(Digest, Digest)> {
        let msg = open_message(self.buf)?;
        let idx = u32::try_from(i).map_err(|_| Error::LayerIndex(i))?;
        let (d, v) = match self.generation {
            Generation::B => {
                let r: metadata_capnp::rootfs::Reader<'_> = msg.get_root()?;
                let e = r
                    .get_fs_verity_data()?
                    .try_get(idx)
                    .ok_or(Error::LayerIndex(i))?;
                (e.get_digest()?, e.get_verity()?)
            }
            Generation::A => {
                let r: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
                let e = r
                    .get_fs_verity_data()?
                    .try_get(idx)
                    .ok_or(Error::LayerIndex(i))?;
                (e.get_digest()?, e.get_verity()?)
            }
        };
        check_verity_entry(d, v)
    }

    /// The fs-verity digest recorded for the blob `digest`, if any (linear scan).
    #[cfg_attr(not(any(test, CONFIG_KUNIT)), allow(dead_code))]
    pub(crate) fn verity_for(&self, digest: &Digest) -> Result<Option<Digest>> {
        let msg = open_message(self.buf)?;
        let mut found = None;
        let mut visit = |d: &[u8], v: &[u8]| -> Result<bool> {
            if d == digest.as_slice() {
                found = Some(digest_from_bytes(v)?);
                return Ok(true);
            }
            Ok(false)
        };
        match self.generation {
            Generation::B => {
                let r: metadata_capnp::rootfs::Reader<'_> = msg.get_root()?;
                for e in r.get_fs_verity_data()?.iter() {
                    if visit(e.get_digest()?, e.get_verity()?)? {
                        break;
                    }
                }
            }
            Generation::A => {
                let r: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
                for e in r.get_fs_verity_data()?.iter() {
                    if visit(e.get_digest()?, e.get_verity()?)? {
                        break;
                    }
                }
            }
        }
        Ok(found)
    }
}
