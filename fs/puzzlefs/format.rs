// SPDX-License-Identifier: GPL-2.0

//! The PuzzleFS image format: from image bytes to validated, owned tables.
//!
//! This module turns the bytes of an image into typed data. It knows nothing about the VFS and
//! depends on `core`, `capnp` and `hex` only, never on `kernel::`, so the very same files are
//! compiled into the kernel module and into the host test crate under
//! `tools/testing/selftests/filesystems/puzzlefs/format-host/` (unit and differential tests,
//! fuzzing). Memory for the compiled tables comes from the caller's [`tables::Alloc`].
//!
//! All image bytes are untrusted. Every length, offset, count and index read from the image is
//! checked, and every problem is reported as an [`Error`] value, never as a panic. Hashes are
//! not checked here: the caller verifies each blob's sha256 against its name before handing it
//! over.
//!
//! # Image generations
//!
//! - Generation B (`puzzlefs` 0.2.0, manifestVersion 3): `index.json` is a standard OCI index;
//!   a tag names an OCI image manifest (JSON), whose rootfs layer names the rootfs blob (capnp),
//!   which holds the inode vectors of all layers inline.
//! - Generation A (`puzzlefs` 0.1.0, manifestVersion 2): `index.json` has `"schemaVersion": -1`;
//!   a tag names the rootfs blob directly, which names one blob per layer, each holding one
//!   `InodeVector` message.
//!
//! # How the driver uses it, at mount time
//!
//! 1. [`oci::Index::find_tag`] on `index.json` (or the user's `image_manifest=` digest) gives a
//!    blob digest; [`oci::blob_kind`] tells whether that blob is an OCI manifest (Generation B)
//!    or a rootfs (Generation A).
//! 2. For an OCI manifest, [`oci::ImageManifest::rootfs_layer`] gives the rootfs blob's digest,
//!    size and fs-verity annotation.
//! 3. [`rootfs::Rootfs::parse`] on the rootfs blob gives the generation and, for Generation A,
//!    the layer blobs to read ([`rootfs::Rootfs::for_each_layer_blob`]).
//! 4. [`compile::compile`] reads every message once and returns the [`tables::Tables`]: inodes,
//!    sorted directory entries, file extents over a table of distinct blobs, xattrs, symlink
//!    targets, link counts and totals. The message buffers can be freed then; every VFS
//!    operation afterwards is served from the tables.
//!
//! Blob paths are `blobs/sha256/<hex>`: [`digest_to_hex`] formats the name.
//!
//! The format stores no link counts and no timestamps: the compiler computes link counts;
//! timestamps are the epoch.

#[path = "format/compile.rs"]
pub(crate) mod compile;
#[path = "format/error.rs"]
mod error;
#[path = "format/json.rs"]
pub(crate) mod json;
#[path = "format/message.rs"]
pub(crate) mod message;
#[path = "format/oci.rs"]
pub(crate) mod oci;
#[path = "format/rootfs.rs"]
pub(crate) mod rootfs;
#[path = "format/seekable.rs"]
pub(crate) mod seekable;
#[cfg(any(test, CONFIG_KUNIT))]
#[path = "format/selftest.rs"]
pub(crate) mod selftest;
#[path = "format/sort.rs"]
mod sort;
#[path = "format/tables.rs"]
pub(crate) mod tables;

/// Generated reader of `format/metadata.capnp` (see `scripts/puzzlefs/regen-capnp`).
#[path = "format/metadata_capnp.rs"]
#[rustfmt::skip]
#[allow(
    missing_docs,
    unreachable_pub,
    unused,
    clippy::all,
    clippy::pedantic,
    clippy::restriction,
    unsafe_op_in_unsafe_fn,
    unused_qualifications
)]
pub(crate) mod metadata_capnp;

/// Generated reader of `format/manifest.capnp` (see `scripts/puzzlefs/regen-capnp`).
#[path = "format/manifest_capnp.rs"]
#[rustfmt::skip]
#[allow(
    missing_docs,
    unreachable_pub,
    unused,
    clippy::all,
    clippy::pedantic,
    clippy::restriction,
    unsafe_op_in_unsafe_fn,
    unused_qualifications
)]
pub(crate) mod manifest_capnp;

pub(crate) use error::{Error, NameError, Result};

/// Length in bytes of a sha256 digest.
pub(crate) const DIGEST_LEN: usize = 32;

/// Length of a sha256 digest written as lowercase hex.
pub(crate) const DIGEST_HEX_LEN: usize = 64;

/// The optional algorithm prefix of a digest in OCI JSON.
pub(crate) const DIGEST_PREFIX: &[u8] = b"sha256:";

/// A sha256 digest, the name of every blob.
pub(crate) type Digest = [u8; DIGEST_LEN];

/// The two image generations (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Generation {
    /// `puzzlefs` 0.1.0: `index.json` schemaVersion -1, manifestVersion 2,
    /// one blob per layer.
    A,
    /// `puzzlefs` 0.2.0: standard OCI layout, manifestVersion 3, layers
    /// inline in the rootfs blob.
    B,
}

/// Parses a digest: 64 hex digits (either case), optionally prefixed by
/// `sha256:`.
pub(crate) fn parse_digest(s: &[u8]) -> Result<Digest> {
    let hex_part = s.strip_prefix(DIGEST_PREFIX).unwrap_or(s);
    if hex_part.len() != DIGEST_HEX_LEN {
        return Err(Error::BadDigestLength(hex_part.len()));
    }
    let mut out = [0u8; DIGEST_LEN];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| Error::BadDigestHex)?;
    Ok(out)
}

/// Turns raw digest bytes from the image into a [`Digest`], checking the length.
pub(crate) fn digest_from_bytes(b: &[u8]) -> Result<Digest> {
    Digest::try_from(b).map_err(|_| Error::BadDigestLength(b.len()))
}

/// Writes `digest` as 64 lowercase hex digits into `out` and returns them as
/// a string (the blob's file name under `blobs/sha256/`).
pub(crate) fn digest_to_hex<'b>(digest: &Digest, out: &'b mut [u8; DIGEST_HEX_LEN]) -> &'b str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
        if let [hi, lo] = pair {
            *hi = HEX.get(usize::from(byte >> 4)).copied().unwrap_or(b'0');
            *lo = HEX.get(usize::from(byte & 0xf)).copied().unwrap_or(b'0');
        }
    }
    // Only ASCII hex digits were written, so this cannot fail.
    core::str::from_utf8(&out[..]).unwrap_or("")
}
