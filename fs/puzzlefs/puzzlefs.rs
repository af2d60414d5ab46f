// SPDX-License-Identifier: GPL-2.0

//! PuzzleFS: a read-only filesystem that mounts PuzzleFS container images directly.
//!
//! A PuzzleFS image is an OCI image layout whose files are cut by content-defined chunking into
//! content-addressed chunk blobs; its metadata is a Cap'n Proto message. This driver reads and
//! verifies the metadata once at mount time, compiles it into compact tables, and then serves
//! inodes, directory entries, reads, extended attributes and statfs from those tables and the
//! chunk blobs.
//!
//! The files mirror the filesystem's anatomy:
//!
//! - `super_block.rs`: mount options, `fill_super` (read, verify and compile the metadata),
//!   statfs, `show_options`;
//! - `internal.rs`: the compiled tables in kernel memory, the compiler's environment;
//! - `blob.rs`: the image directory (a private mount), verified metadata blobs, the chunk blobs;
//! - `inode.rs`: inode instantiation; `namei.rs`: lookup; `dir.rs`: readdir;
//! - `data.rs`: `read_folio` and `readahead` from chunks; `decompress.rs`: compressed chunks;
//!   `xattr.rs`: extended attributes;
//! - `format/`: the image format and its compiler, which know nothing about the VFS.
//!
//! See `Documentation/filesystems/puzzlefs.rst`.

use kernel::{fs::fs_context::Registration, prelude::*};

mod blob;
mod data;
mod decompress;
mod dir;
mod format;
mod inode;
mod internal;
mod namei;
mod super_block;
mod xattr;

module! {
    type: PuzzleFsModule,
    name: "puzzlefs",
    authors: ["PuzzleFS developers"],
    description: "PuzzleFS container image filesystem",
    license: "GPL",
    params: {
        metadata_max_mb: u32 {
            default: 256,
            description: "Most MiB of metadata a mount reads and compiles (at most 1024)",
        },
        max_open_blobs: u32 {
            default: 4096,
            description: "Most chunk blobs a mount keeps open",
        },
    },
}

/// The filesystem type: see [`super_block`] for its [`kernel::fs::fs_context::FileSystem`]
/// implementation.
pub(crate) struct PuzzleFs;

#[pin_data]
struct PuzzleFsModule {
    #[pin]
    fs: Registration<PuzzleFs>,
}

impl kernel::InPlaceModule for PuzzleFsModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            fs <- Registration::new(module),
        })
    }
}

#[kunit_tests(puzzlefs_crates)]
mod tests {
    use kernel::prelude::*;

    /// A Cap'n Proto message of one segment whose root is a struct with one data word: the
    /// segment table (segment count - 1 = 0, segment size = 2 words), then the root pointer
    /// (struct, offset 0, 1 data word, 0 pointers), then the data word.
    const MESSAGE: [u64; 3] = [
        0x0000_0002_0000_0000,
        0x0000_0001_0000_0000,
        0x0123_4567_89ab_cdef,
    ];

    #[test]
    fn capnp_reads_a_flat_message_without_alloc() {
        let mut bytes = [0u8; 24];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(MESSAGE) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let mut slice: &[u8] = &bytes;
        let message = capnp::serialize::read_message_from_flat_slice_no_alloc(
            &mut slice,
            capnp::message::ReaderOptions::new(),
        );
        assert!(message.is_ok());
        if let Ok(message) = message {
            let root: capnp::Result<capnp::any_pointer::Reader<'_>> = message.get_root();
            assert!(root.is_ok());
            if let Ok(root) = root {
                // The root is a struct, not a list: the reader must say so, not crash.
                let list = root.get_as::<capnp::primitive_list::Reader<'_, u64>>();
                assert!(list.is_err());
            }
        }
        assert!(slice.is_empty());
    }

    #[test]
    fn hex_decodes_a_digest() {
        let mut out = [0u8; 4];
        assert!(hex::decode_to_slice(b"00ff10Ab", &mut out).is_ok());
        assert_eq!(out, [0x00, 0xff, 0x10, 0xab]);
        assert!(hex::decode_to_slice(b"00fg10ab", &mut out).is_err());
    }

    /// The format core's own test cases (`format/selftest.rs`), which also run on the host.
    #[test]
    fn format_selftests() {
        let mut failed = 0usize;
        let cases = crate::format::selftest::all::<crate::internal::KernelAlloc>();
        for (name, case) in cases {
            if let Err(why) = case() {
                pr_err!("format selftest {name} failed: {why}\n");
                failed += 1;
            }
        }
        assert_eq!(failed, 0);
        assert!(!cases.is_empty());
    }
}
