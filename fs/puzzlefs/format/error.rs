// SPDX-License-Identifier: GPL-2.0

//! Errors of the image format core.
//!
//! Every error says what is wrong and, where known, where (inode number,
//! layer, byte offset). The driver maps them to `-EUCLEAN` (corrupt image)
//! or `-EINVAL` (bad user input such as an unknown tag) and logs the
//! [`core::fmt::Display`] text once.

use core::fmt;

/// Result type of the format core.
pub(crate) type Result<T> = core::result::Result<T, Error>;

/// What is wrong with a file or xattr name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than 255 bytes.
    TooLong,
    /// The name contains a '/'.
    Slash,
    /// The name contains a NUL byte.
    Nul,
    /// The name is "." or "..".
    Dot,
}

/// A Cap'n Proto decoding error, reduced to its kind (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CapnpError(pub(crate) capnp::ErrorKind);

/// An error of the image format core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// A Cap'n Proto message could not be decoded.
    Capnp(CapnpError),
    /// A Cap'n Proto message exceeded its traversal limit (amplification).
    TraversalLimit,
    /// A Cap'n Proto message nests deeper than allowed.
    NestingLimit,
    /// A message buffer is not 8-byte aligned.
    Misaligned,
    /// A Cap'n Proto union has a discriminant this schema does not know.
    UnknownUnion(u16),
    /// No visible inode has this number.
    InodeNotFound(u64),
    /// An inode has number 0, which is reserved.
    ZeroIno {
        /// Layer index, top layer 0.
        layer: usize,
    },
    /// A layer's inodes are not sorted by ino.
    UnsortedInodes {
        /// Layer index, top layer 0.
        layer: usize,
        /// The first ino out of order.
        ino: u64,
    },
    /// A layer holds two inodes with the same number.
    DuplicateInode {
        /// Layer index, top layer 0.
        layer: usize,
        /// The duplicated ino.
        ino: u64,
    },
    /// A layer holds more inodes than this implementation supports.
    TooManyInodes {
        /// Layer index, top layer 0.
        layer: usize,
    },
    /// The image has no layer.
    NoLayers,
    /// The image has more layers than supported ([`crate::format::image::MAX_LAYERS`]).
    TooManyLayers(usize),
    /// A layer index is out of range.
    LayerIndex(usize),
    /// A digest has the wrong length (bytes, or hex digits when parsing text).
    BadDigestLength(usize),
    /// A digest's text is not hex.
    BadDigestHex,
    /// A directory entry name is invalid.
    BadName {
        /// The directory.
        ino: u64,
        /// What is wrong.
        why: NameError,
    },
    /// A directory entry names inode 0.
    BadDirEntryIno {
        /// The directory.
        ino: u64,
    },
    /// An xattr name is invalid (empty, over 255 bytes or containing NUL).
    BadXattrName {
        /// The inode.
        ino: u64,
    },
    /// An xattr value exceeds 65536 bytes.
    XattrTooLarge {
        /// The inode.
        ino: u64,
    },
    /// A symlink target is empty, longer than 4096 bytes or contains NUL.
    BadSymlinkTarget {
        /// The inode.
        ino: u64,
    },
    /// The inode is not a directory.
    NotADirectory(u64),
    /// The inode is not a regular file.
    NotAFile(u64),
    /// The inode is not a symlink.
    NotASymlink(u64),
    /// The inode has the `unknown` mode.
    UnknownInodeType(u64),
    /// A file's chunk lengths, or a chunk's offset plus length, overflow.
    ChunkOverflow {
        /// The inode.
        ino: u64,
    },
    /// A chunk index is out of range.
    ChunkIndex {
        /// The inode.
        ino: u64,
        /// The index asked for.
        index: usize,
    },
    /// A caller buffer has the wrong size.
    BufferSize {
        /// Entries needed.
        needed: usize,
        /// Entries given.
        given: usize,
    },
    /// A count or sum overflows during the mount-time walk.
    CountOverflow,
    /// The root inode (1) is missing or not a directory.
    BadRoot,
    /// The rootfs has a manifestVersion this driver does not read.
    UnsupportedManifestVersion(u64),
    /// A Generation A layer reference is compressed or has an offset.
    BadLayerRef(usize),
    /// Malformed or unexpected JSON.
    Json {
        /// Byte offset in the document.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A JSON document exceeds the size limit.
    JsonTooLarge(usize),
    /// The OCI index has an unsupported schemaVersion.
    UnsupportedSchemaVersion(i64),
    /// No manifest in the index has this tag.
    TagNotFound,
    /// The OCI manifest has no PuzzleFS rootfs layer.
    NoRootfsLayer,
}

impl From<capnp::Error> for Error {
    fn from(e: capnp::Error) -> Self {
        match e.kind {
            capnp::ErrorKind::ReadLimitExceeded => Error::TraversalLimit,
            capnp::ErrorKind::MessageIsTooDeeplyNested
            | capnp::ErrorKind::MessageIsTooDeeplyNestedOrContainsCycles
            | capnp::ErrorKind::NestingLimitExceeded => Error::NestingLimit,
            kind => Error::Capnp(CapnpError(kind)),
        }
    }
}

impl From<capnp::NotInSchema> for Error {
    fn from(e: capnp::NotInSchema) -> Self {
        Error::UnknownUnion(e.0)
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "empty name",
            NameError::TooLong => "name longer than 255 bytes",
            NameError::Slash => "name contains '/'",
            NameError::Nul => "name contains NUL",
            NameError::Dot => "name is '.' or '..'",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Capnp(CapnpError(kind)) => write!(f, "capnp: {kind}"),
            Error::TraversalLimit => f.write_str("capnp traversal limit exceeded"),
            Error::NestingLimit => f.write_str("capnp nesting limit exceeded"),
            Error::Misaligned => f.write_str("message buffer not 8-byte aligned"),
            Error::UnknownUnion(d) => write!(f, "unknown union discriminant {d}"),
            Error::InodeNotFound(ino) => write!(f, "inode {ino} not found"),
            Error::ZeroIno { layer } => write!(f, "layer {layer}: inode number 0"),
            Error::UnsortedInodes { layer, ino } => {
                write!(f, "layer {layer}: inodes not sorted at ino {ino}")
            }
            Error::DuplicateInode { layer, ino } => write!(f, "layer {layer}: duplicate ino {ino}"),
            Error::TooManyInodes { layer } => write!(f, "layer {layer}: too many inodes"),
            Error::NoLayers => f.write_str("image has no layers"),
            Error::TooManyLayers(n) => write!(f, "too many layers ({n})"),
            Error::LayerIndex(i) => write!(f, "layer index {i} out of range"),
            Error::BadDigestLength(n) => write!(f, "digest has bad length {n}"),
            Error::BadDigestHex => f.write_str("digest is not hex"),
            Error::BadName { ino, why } => write!(f, "directory {ino}: {why}"),
            Error::BadDirEntryIno { ino } => write!(f, "directory {ino}: entry names inode 0"),
            Error::BadXattrName { ino } => write!(f, "inode {ino}: bad xattr name"),
            Error::XattrTooLarge { ino } => write!(f, "inode {ino}: xattr value too large"),
            Error::BadSymlinkTarget { ino } => write!(f, "inode {ino}: bad symlink target"),
            Error::NotADirectory(ino) => write!(f, "inode {ino} is not a directory"),
            Error::NotAFile(ino) => write!(f, "inode {ino} is not a regular file"),
            Error::NotASymlink(ino) => write!(f, "inode {ino} is not a symlink"),
            Error::UnknownInodeType(ino) => write!(f, "inode {ino} has unknown type"),
            Error::ChunkOverflow { ino } => write!(f, "inode {ino}: chunk sizes overflow"),
            Error::ChunkIndex { ino, index } => write!(f, "inode {ino}: no chunk {index}"),
            Error::BufferSize { needed, given } => {
                write!(f, "buffer of {given} entries, {needed} needed")
            }
            Error::CountOverflow => f.write_str("inode counts overflow"),
            Error::BadRoot => f.write_str("root inode missing or not a directory"),
            Error::UnsupportedManifestVersion(v) => write!(f, "unsupported manifestVersion {v}"),
            Error::BadLayerRef(i) => write!(f, "layer reference {i} is not a plain blob"),
            Error::Json { offset, what } => write!(f, "JSON at byte {offset}: {what}"),
            Error::JsonTooLarge(n) => write!(f, "JSON document too large ({n} bytes)"),
            Error::UnsupportedSchemaVersion(v) => write!(f, "unsupported schemaVersion {v}"),
            Error::TagNotFound => f.write_str("tag not found in index"),
            Error::NoRootfsLayer => f.write_str("manifest has no puzzlefs rootfs layer"),
        }
    }
}
