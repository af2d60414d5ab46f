// SPDX-License-Identifier: GPL-2.0

//! Fuzzes the JSON reader, `index.json` and OCI manifest parsing.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    puzzlefs_format_host::exercise_json(data);
});
