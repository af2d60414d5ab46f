// SPDX-License-Identifier: GPL-2.0

//! The rootfs blob of both generations.
//!
//! Both rootfs schemas keep `manifestVersion` at ordinal 2 in the same data word, so the version
//! is read first and decides which schema applies: 3 is Generation B (`metadata.capnp` `Rootfs`,
//! inode vectors inline), 2 is Generation A (`manifest.capnp` `Rootfs`, one `BlobRef` per layer
//! blob). [`Rootfs::parse`] only reads what the driver needs before it can compile the image
//! (the generation and, for Generation A, the layer blobs to read); the compiler
//! ([`crate::format::compile`]) reads the rest.

use crate::format::compile::Env;
use crate::format::message;
use crate::format::{digest_from_bytes, manifest_capnp, metadata_capnp};
use crate::format::{Digest, Error, Generation, Result};

/// manifestVersion of Generation A.
pub(crate) const MANIFEST_VERSION_A: u64 = 2;

/// manifestVersion of Generation B.
pub(crate) const MANIFEST_VERSION_B: u64 = 3;

/// A parsed rootfs blob of either generation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rootfs<'a> {
    buf: &'a [u8],
    generation: Generation,
}

impl<'a> Rootfs<'a> {
    /// Parses a rootfs blob (8-byte aligned): its version, that it has 1 to
    /// [`crate::format::compile::MAX_LAYERS`] layers, and for Generation A that every layer
    /// reference is a plain blob (no offset, not compressed).
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Self> {
        let msg = message::open(buf)?;
        let b: metadata_capnp::rootfs::Reader<'_> = msg.get_root()?;
        let (generation, layers) = match b.get_manifest_version() {
            MANIFEST_VERSION_B => (Generation::B, b.get_metadatas()?.len()),
            MANIFEST_VERSION_A => {
                let a: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
                let m = a.get_metadatas()?;
                if m.len() as usize > crate::format::compile::MAX_LAYERS {
                    return Err(Error::TooManyLayers(m.len() as usize));
                }
                for (i, r) in m.iter().enumerate() {
                    digest_from_bytes(r.get_digest()?)?;
                    if r.get_compressed() || r.get_offset() != 0 {
                        return Err(Error::BadLayerRef(i));
                    }
                }
                (Generation::A, m.len())
            }
            v => return Err(Error::UnsupportedManifestVersion(v)),
        };
        if layers == 0 {
            return Err(Error::NoLayers);
        }
        if layers as usize > crate::format::compile::MAX_LAYERS {
            return Err(Error::TooManyLayers(layers as usize));
        }
        Ok(Self { buf, generation })
    }

    /// The image generation.
    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    /// Generation A: calls `f` with the digest of each layer blob, top first.
    pub(crate) fn for_each_layer_blob(
        &self,
        mut f: impl FnMut(Digest) -> Result<()>,
    ) -> Result<()> {
        if self.generation != Generation::A {
            return Err(Error::LayerIndex(0));
        }
        let msg = message::open(self.buf)?;
        let a: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
        for r in a.get_metadatas()?.iter() {
            f(digest_from_bytes(r.get_digest()?)?)?;
        }
        Ok(())
    }
}

impl Rootfs<'_> {
    /// Fills `out[i]` with the fs-verity digest the rootfs records for blob `digests[i]`, if
    /// any, in one pass over its `fsVerityData` (the driver asks for the Generation A layer
    /// blobs, at most [`crate::format::compile::MAX_LAYERS`]). Entries are checked for length;
    /// two different digests for one blob are an error.
    pub(crate) fn verity_for(
        &self,
        digests: &[Digest],
        out: &mut [Option<Digest>],
        env: &mut impl Env,
    ) -> Result<()> {
        let msg = message::open(self.buf)?;
        let mut n = 0usize;
        let mut visit = |d: &[u8], v: &[u8]| -> Result<()> {
            n = n.wrapping_add(1);
            if n.is_multiple_of(1024) {
                env.poll()?;
            }
            let v = digest_from_bytes(v)?;
            for (want, slot) in digests.iter().zip(out.iter_mut()) {
                if d == want.as_slice() {
                    match slot {
                        Some(old) if *old != v => return Err(Error::ConflictingVerity),
                        _ => *slot = Some(v),
                    }
                }
            }
            Ok(())
        };
        match self.generation {
            Generation::B => {
                let r: metadata_capnp::rootfs::Reader<'_> = msg.get_root()?;
                for e in r.get_fs_verity_data()?.iter() {
                    visit(e.get_digest()?, e.get_verity()?)?;
                }
            }
            Generation::A => {
                let r: manifest_capnp::rootfs::Reader<'_> = msg.get_root()?;
                for e in r.get_fs_verity_data()?.iter() {
                    visit(e.get_digest()?, e.get_verity()?)?;
                }
            }
        }
        Ok(())
    }
}
