// SPDX-License-Identifier: GPL-2.0

//! PuzzleFS: a read-only filesystem that mounts PuzzleFS container images directly.
//!
//! See `Documentation/filesystems/puzzlefs.rst`.

use kernel::prelude::*;

module! {
    type: PuzzleFsModule,
    name: "puzzlefs",
    authors: ["PuzzleFS developers"],
    description: "PuzzleFS container image filesystem",
    license: "GPL",
}

struct PuzzleFsModule;

impl kernel::Module for PuzzleFsModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("puzzlefs: format core ready\n");
        Ok(PuzzleFsModule)
    }
}

#[macros::kunit_tests(puzzlefs_capnp)]
mod tests {
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
                let st = root.get_as::<capnp::primitive_list::Reader<'_, u64>>();
                // The root is a struct, not a list: the reader must say so, not crash.
                assert!(st.is_err());
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
}
