// SPDX-License-Identifier: GPL-2.0

//! Fuzzes the metadata compiler: a rootfs blob (Generation B, layers inline) or a Generation A
//! rootfs with one or two layer blobs, in the layout of
//! `puzzlefs_format_host::exercise_compile_input` (the first byte picks the generation and the
//! number of layers, little-endian word counts split the blobs). Errors are fine; a panic,
//! including a compiled table that breaks a documented invariant or a compile that polls too
//! rarely, is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    puzzlefs_format_host::exercise_compile_input(data);
});
