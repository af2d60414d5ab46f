# SPDX-License-Identifier: GPL-2.0
#
# PuzzleFS per-inode metadata, as written by puzzlefs 0.1.0 and 0.2.0.
#
# The file id and every ordinal are part of the on-disk format and must stay
# as they are: images built by the upstream tools are read with this schema.
# `Rootfs` here is the Generation B rootfs (manifestVersion 3), whose inode
# vectors are stored inline. The Generation A rootfs is in manifest.capnp.

@0x84ae5e6e88b7cbb7;

# Character device numbers.
struct Chr {
    major @0 :UInt64;
    minor @1 :UInt64;
}

# One directory entry: a name and the inode number it names.
struct DirEntry {
    ino @0 :UInt64;
    name @1 :Data;
}

# Directory contents in stored order.
struct Dir {
    entries @0 :List(DirEntry);
    lookBelow @1 :Bool;
}

# Block device numbers.
struct Blk {
    major @0 :UInt64;
    minor @1 :UInt64;
}

# `len` bytes of a regular file, taken from `blob` at `blob.offset`.
struct FileChunk {
    blob @0 :BlobRef;
    len @1 :UInt64;
}

# A content-addressed blob: sha256 `digest` (32 raw bytes), an offset into
# its uncompressed contents, and whether it is zstd-seekable compressed.
struct BlobRef {
    digest @0 :Data;
    offset @1 :UInt64;
    compressed @2 :Bool;
}

# An extended attribute.
struct Xattr {
    key @0 :Data;
    val @1 :Data;
}

# Rarely present inode data.
struct InodeAdditional {
    xattrs @0 :List(Xattr);
    symlinkTarget @1 :Data;
}

# An inode. `permissions` is `st_mode & 0o7777`; the type is the union.
struct Inode {
    ino @0 :UInt64;
    mode :union {
        unknown @1 :Void;
        fifo @2 :Void;
        chr @3 :Chr;
        dir @4 :Dir;
        blk @5 :Blk;
        file @6 :List(FileChunk);
        lnk @7 :Void;
        sock @8 :Void;
        wht @9 :Void;
    }
    uid @10 :UInt32;
    gid @11 :UInt32;
    permissions @12 :UInt16;
    additional @13 :InodeAdditional;
}

# One layer: all its inodes, sorted by `ino`.
struct InodeVector {
    inodes @0 :List(Inode);
}

# Maps a blob's sha256 to its fs-verity digest.
struct VerityData {
    digest @0 :Data;
    verity @1 :Data;
}

# Generation B rootfs: layers inline, top layer first.
struct Rootfs {
    metadatas @0 :List(InodeVector);
    fsVerityData @1 :List(VerityData);
    manifestVersion @2 :UInt64;
}
