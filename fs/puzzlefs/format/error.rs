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
    /// A message's segment table is malformed.
    BadSegmentTable,
    /// A message has more segments than supported.
    TooManySegments,
    /// A message or a slice of it ends before its declared size.
    Truncated,
    /// Bytes follow the last segment of a message.
    TrailingBytes(usize),
    /// A Cap'n Proto union has a discriminant this schema does not know.
    UnknownUnion(u16),
    /// An entry names an inode number that no layer has.
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
    /// The image has no layer.
    NoLayers,
    /// The image has more layers than supported ([`crate::format::compile::MAX_LAYERS`]).
    TooManyLayers(usize),
    /// A layer index is out of range.
    LayerIndex(usize),
    /// A Generation B rootfs was given separate layer blobs.
    UnexpectedLayers,
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
    /// A directory has two visible entries with the same name.
    DuplicateName {
        /// The directory.
        dir: u64,
    },
    /// A directory entry names the root directory.
    EntryNamesRoot {
        /// The directory holding the entry.
        dir: u64,
    },
    /// A directory is named by a second entry: it would have two parents, or be its own
    /// ancestor.
    DirectoryTwice {
        /// The directory.
        ino: u64,
    },
    /// An xattr name is invalid (empty, over 255 bytes, containing NUL, or a bare namespace).
    BadXattrName {
        /// The inode.
        ino: u64,
    },
    /// An inode has two xattrs with the same name.
    DuplicateXattr {
        /// The inode.
        ino: u64,
    },
    /// An inode's xattr names, with their NULs, exceed 65536 bytes (what `listxattr` can
    /// return).
    XattrListTooLarge {
        /// The inode.
        ino: u64,
    },
    /// An xattr value exceeds 65536 bytes.
    XattrTooLarge {
        /// The inode.
        ino: u64,
    },
    /// A symlink target is missing, empty, 4096 bytes or longer, or contains NUL.
    BadSymlinkTarget {
        /// The inode.
        ino: u64,
    },
    /// Permission bits outside 0o7777.
    BadPermissions {
        /// The inode.
        ino: u64,
        /// The stored permissions.
        permissions: u16,
    },
    /// A device number Linux cannot represent.
    BadDevice {
        /// The inode.
        ino: u64,
    },
    /// The inode has the `unknown` mode.
    UnknownInodeType(u64),
    /// A file's chunk lengths, or a chunk's offset plus length, overflow.
    ChunkOverflow {
        /// The inode.
        ino: u64,
    },
    /// A file is larger than the largest file size.
    FileTooLarge {
        /// The inode.
        ino: u64,
    },
    /// The fs-verity data gives two digests for one blob.
    ConflictingVerity,
    /// A count or sum overflows.
    CountOverflow,
    /// The root inode (1) is missing, whited out or not a directory.
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
    /// The OCI index has an unsupported schemaVersion.
    UnsupportedSchemaVersion(i64),
    /// No manifest in the index has this tag.
    TagNotFound,
    /// The OCI manifest has no PuzzleFS rootfs layer.
    NoRootfsLayer,
    /// A compressed chunk's seek table is malformed or lies about its frames.
    Seekable(&'static str),
    /// The compiled tables would exceed the memory limit of a mount.
    TooLarge,
    /// An allocation failed.
    OutOfMemory,
    /// The environment asked to stop (a fatal signal in the kernel).
    Interrupted,
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
            Error::BadSegmentTable => f.write_str("malformed capnp segment table"),
            Error::TooManySegments => f.write_str("capnp message has too many segments"),
            Error::Truncated => f.write_str("message truncated"),
            Error::TrailingBytes(n) => write!(f, "{n} bytes after the capnp message"),
            Error::UnknownUnion(d) => write!(f, "unknown union discriminant {d}"),
            Error::InodeNotFound(ino) => write!(f, "inode {ino} not found"),
            Error::ZeroIno { layer } => write!(f, "layer {layer}: inode number 0"),
            Error::UnsortedInodes { layer, ino } => {
                write!(f, "layer {layer}: inodes not sorted at ino {ino}")
            }
            Error::DuplicateInode { layer, ino } => write!(f, "layer {layer}: duplicate ino {ino}"),
            Error::NoLayers => f.write_str("image has no layers"),
            Error::TooManyLayers(n) => write!(f, "too many layers ({n})"),
            Error::LayerIndex(i) => write!(f, "layer index {i} out of range"),
            Error::UnexpectedLayers => f.write_str("layer blobs given for an inline rootfs"),
            Error::BadDigestLength(n) => write!(f, "digest has bad length {n}"),
            Error::BadDigestHex => f.write_str("digest is not hex"),
            Error::BadName { ino, why } => write!(f, "directory {ino}: {why}"),
            Error::BadDirEntryIno { ino } => write!(f, "directory {ino}: entry names inode 0"),
            Error::DuplicateName { dir } => write!(f, "directory {dir}: duplicate name"),
            Error::EntryNamesRoot { dir } => write!(f, "directory {dir}: entry names the root"),
            Error::DirectoryTwice { ino } => {
                write!(
                    f,
                    "directory {ino} has a second name (two parents or a cycle)"
                )
            }
            Error::BadXattrName { ino } => write!(f, "inode {ino}: bad xattr name"),
            Error::DuplicateXattr { ino } => write!(f, "inode {ino}: duplicate xattr name"),
            Error::XattrListTooLarge { ino } => write!(f, "inode {ino}: too many xattr names"),
            Error::XattrTooLarge { ino } => write!(f, "inode {ino}: xattr value too large"),
            Error::BadSymlinkTarget { ino } => write!(f, "inode {ino}: bad symlink target"),
            Error::BadPermissions { ino, permissions } => {
                write!(f, "inode {ino}: bad permissions {permissions:#o}")
            }
            Error::BadDevice { ino } => write!(f, "inode {ino}: device number out of range"),
            Error::UnknownInodeType(ino) => write!(f, "inode {ino} has unknown type"),
            Error::ChunkOverflow { ino } => write!(f, "inode {ino}: chunk sizes overflow"),
            Error::FileTooLarge { ino } => write!(f, "inode {ino}: file too large"),
            Error::ConflictingVerity => f.write_str("conflicting fs-verity digests for a blob"),
            Error::CountOverflow => f.write_str("count overflow"),
            Error::BadRoot => f.write_str("root inode missing or not a directory"),
            Error::UnsupportedManifestVersion(v) => write!(f, "unsupported manifestVersion {v}"),
            Error::BadLayerRef(i) => write!(f, "layer reference {i} is not a plain blob"),
            Error::Json { offset, what } => write!(f, "JSON at byte {offset}: {what}"),
            Error::UnsupportedSchemaVersion(v) => write!(f, "unsupported schemaVersion {v}"),
            Error::TagNotFound => f.write_str("tag not found in index"),
            Error::NoRootfsLayer => f.write_str("manifest has no puzzlefs rootfs layer"),
            Error::Seekable(what) => write!(f, "compressed chunk: {what}"),
            Error::TooLarge => f.write_str("metadata exceeds the mount's memory limit"),
            Error::OutOfMemory => f.write_str("out of memory"),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}
