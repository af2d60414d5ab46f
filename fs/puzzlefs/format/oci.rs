// SPDX-License-Identifier: GPL-2.0

//! OCI `index.json` and image manifest of PuzzleFS images.
//!
//! Generation B (`puzzlefs` 0.2.0) writes a standard OCI index
//! (`schemaVersion` 2, `mediaType`) whose manifests are OCI image manifests;
//! Generation A (`puzzlefs` 0.1.0) writes `"schemaVersion": -1` with
//! snake_case `media_type`, and its manifests name rootfs blobs directly.
//! In both, a manifest's tag is its `org.opencontainers.image.ref.name`
//! annotation.

use crate::format::json::{self, Object, Value};
use crate::format::{parse_digest, Digest, Error, Generation, Result};
use core::ops::ControlFlow;

/// `schemaVersion` of a Generation B index and of an OCI image manifest.
pub(crate) const OCI_SCHEMA_VERSION: i64 = 2;

/// `schemaVersion` of a Generation A index (chosen by puzzlefs 0.1.0).
pub(crate) const PUZZLEFS_A_SCHEMA_VERSION: i64 = -1;

/// Annotation holding a manifest's tag.
pub(crate) const REF_NAME_ANNOTATION: &[u8] = b"org.opencontainers.image.ref.name";

/// Media type of the rootfs layer of a Generation B image manifest.
pub(crate) const ROOTFS_MEDIA_TYPE: &[u8] = b"application/vnd.puzzlefs.image.rootfs.v1";

/// Annotation of the rootfs layer holding the rootfs blob's fs-verity digest.
pub(crate) const VERITY_ANNOTATION: &[u8] = b"io.puzzlefsoci.puzzlefs.puzzlefs_verity_root_hash";

/// A manifest entry of `index.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// The image generation, from the index's schemaVersion.
    pub(crate) generation: Generation,
    /// Digest of the blob the tag names: an OCI image manifest (Generation
    /// B) or a rootfs (Generation A).
    pub(crate) digest: Digest,
    /// Declared size of that blob.
    pub(crate) size: u64,
}

/// A parsed `index.json`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Index<'a> {
    root: Object<'a>,
    generation: Generation,
}

fn str_field(obj: &Object<'_>, key: &'static [u8], what: &'static str) -> Result<Digest> {
    let v = obj.require(key, what)?;
    let s = v.as_str()?;
    let mut buf = [0u8; 80];
    let text = s.decode(&mut buf)?;
    // OCI's grammar for sha256 is lowercase hex: an uppercase digest names no blob.
    if text.iter().any(u8::is_ascii_uppercase) {
        return Err(Error::BadDigestHex);
    }
    parse_digest(text)
}

fn annotation_eq(obj: &Object<'_>, name: &[u8], want: &[u8]) -> Result<bool> {
    let Some(ann) = obj.get(b"annotations")? else {
        return Ok(false);
    };
    if ann.kind() == json::Kind::Null {
        return Ok(false);
    }
    match ann.as_object()?.get(name)? {
        Some(v) => Ok(v.as_str()?.eq_bytes(want)),
        None => Ok(false),
    }
}

impl<'a> Index<'a> {
    /// Parses `index.json` of either generation.
    #[cfg(any(test, CONFIG_KUNIT, puzzlefs_host))]
    pub(crate) fn parse(doc: &'a [u8]) -> Result<Self> {
        Self::parse_polled(doc, &json::NoPoll)
    }

    /// Like [`Self::parse`], polling `poll` while scanning (see [`json::Poll`]).
    pub(crate) fn parse_polled(doc: &'a [u8], poll: &'a dyn json::Poll) -> Result<Self> {
        let root = json::parse_polled(doc, poll)?.as_object()?;
        let version = root
            .require(b"schemaVersion", "missing schemaVersion")?
            .as_i64()?;
        let generation = match version {
            OCI_SCHEMA_VERSION => Generation::B,
            PUZZLEFS_A_SCHEMA_VERSION => Generation::A,
            v => return Err(Error::UnsupportedSchemaVersion(v)),
        };
        root.require(b"manifests", "missing manifests")?
            .as_array()?;
        Ok(Self { root, generation })
    }

    /// The generation, from `schemaVersion`.
    // Only the self-tests ask; the mount path uses the generation of the entry it finds.
    #[cfg_attr(not(any(test, CONFIG_KUNIT)), allow(dead_code))]
    pub(crate) fn generation(&self) -> Generation {
        self.generation
    }

    fn manifests(&self) -> Result<json::Array<'a>> {
        self.root
            .require(b"manifests", "missing manifests")?
            .as_array()
    }

    /// Finds the first manifest tagged `tag`.
    pub(crate) fn find_tag(&self, tag: &[u8]) -> Result<IndexEntry> {
        let generation = self.generation;
        find_first(self.manifests()?, Error::TagNotFound, |m| {
            let obj = m.as_object()?;
            if !annotation_eq(&obj, REF_NAME_ANNOTATION, tag)? {
                return Ok(None);
            }
            let digest = str_field(&obj, b"digest", "manifest without digest")?;
            let size = obj.require(b"size", "manifest without size")?.as_u64()?;
            Ok(Some(IndexEntry {
                generation,
                digest,
                size,
            }))
        })
    }
}

/// Returns the first `Some` that `f` gives for the elements of `array`, in order; the first
/// error stops the search. `not_found` if there is none.
fn find_first<'a, T>(
    array: json::Array<'a>,
    not_found: Error,
    mut f: impl FnMut(Value<'a>) -> Result<Option<T>>,
) -> Result<T> {
    let mut result = Err(not_found);
    let _ = array.for_each(|v| match f(v) {
        Ok(None) => ControlFlow::Continue(()),
        Ok(Some(found)) => {
            result = Ok(found);
            ControlFlow::Break(())
        }
        Err(e) => {
            result = Err(e);
            ControlFlow::Break(())
        }
    })?;
    result
}

/// The rootfs layer of a Generation B image manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RootfsLayer {
    /// Digest of the rootfs blob.
    pub(crate) digest: Digest,
    /// Declared size of the rootfs blob.
    pub(crate) size: u64,
    /// fs-verity digest of the rootfs blob, if the manifest carries one.
    pub(crate) verity: Option<Digest>,
}

/// A parsed OCI image manifest (Generation B).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImageManifest<'a> {
    layers: json::Array<'a>,
}

impl<'a> ImageManifest<'a> {
    /// Parses an OCI image manifest.
    #[cfg(any(test, CONFIG_KUNIT, puzzlefs_host))]
    pub(crate) fn parse(doc: &'a [u8]) -> Result<Self> {
        Self::parse_polled(doc, &json::NoPoll)
    }

    /// Like [`Self::parse`], polling `poll` while scanning (see [`json::Poll`]): manifests list
    /// every chunk blob of an image.
    pub(crate) fn parse_polled(doc: &'a [u8], poll: &'a dyn json::Poll) -> Result<Self> {
        let root = json::parse_polled(doc, poll)?.as_object()?;
        // One walk: the layers array is most of the document.
        let [version, layers] = root.get_all([b"schemaVersion", b"layers"])?;
        let version = version
            .ok_or_else(|| root.missing("missing schemaVersion"))?
            .as_i64()?;
        if version != OCI_SCHEMA_VERSION {
            return Err(Error::UnsupportedSchemaVersion(version));
        }
        let layers = layers
            .ok_or_else(|| root.missing("missing layers"))?
            .as_array()?;
        Ok(Self { layers })
    }

    /// Finds the first layer with the PuzzleFS rootfs media type.
    pub(crate) fn rootfs_layer(&self) -> Result<RootfsLayer> {
        find_first(self.layers, Error::NoRootfsLayer, |l| {
            let obj = l.as_object()?;
            let mt = obj
                .require(b"mediaType", "layer without mediaType")?
                .as_str()?;
            if !mt.eq_bytes(ROOTFS_MEDIA_TYPE) {
                return Ok(None);
            }
            let digest = str_field(&obj, b"digest", "layer without digest")?;
            let size = obj.require(b"size", "layer without size")?.as_u64()?;
            let mut verity = None;
            if let Some(ann) = obj.get(b"annotations")? {
                if ann.kind() != json::Kind::Null {
                    if let Some(v) = ann.as_object()?.get(VERITY_ANNOTATION)? {
                        let mut buf = [0u8; 80];
                        verity = Some(parse_digest(v.as_str()?.decode(&mut buf)?)?);
                    }
                }
            }
            Ok(Some(RootfsLayer {
                digest,
                size,
                verity,
            }))
        })
    }
}

/// What a blob named by `image_manifest=` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlobKind {
    /// A JSON OCI image manifest (Generation B).
    OciManifest,
    /// A capnp rootfs message (Generation A).
    Rootfs,
}

/// Tells by content whether a blob is a JSON manifest or a capnp rootfs.
///
/// A JSON manifest starts with `{` after optional whitespace. A capnp
/// message starts with a little-endian segment count minus one, which for
/// our single- or few-segment messages is a small number whose first byte is
/// never `{` (0x7b would mean 124 segments) nor JSON whitespace followed by
/// `{`. The chosen parser then validates the blob fully.
pub(crate) fn blob_kind(buf: &[u8]) -> BlobKind {
    let first = buf
        .iter()
        .copied()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(b'{') {
        BlobKind::OciManifest
    } else {
        BlobKind::Rootfs
    }
}
