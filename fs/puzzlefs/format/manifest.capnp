# SPDX-License-Identifier: GPL-2.0
#
# PuzzleFS Generation A rootfs (manifestVersion 2), as written by puzzlefs
# 0.1.0: each layer is a separate blob holding one `InodeVector` message.
# The file id and ordinals are part of the on-disk format.

@0xe0b6d460b1f22bb5;

using Metadata = import "metadata.capnp";

# Maps a blob's sha256 to its fs-verity digest.
struct VerityData {
    digest @0 :Data;
    verity @1 :Data;
}

# Generation A rootfs: references to the layer blobs, top layer first.
struct Rootfs {
    metadatas @0 :List(Metadata.BlobRef);
    fsVerityData @1 :List(VerityData);
    manifestVersion @2 :UInt64;
}
