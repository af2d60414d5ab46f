// SPDX-License-Identifier: GPL-2.0

//! Fuzzes reading compressed chunk blobs the driver's way: the layout (seekable or plain), the
//! seek table and the frame index, whose consistency `seekable_index` checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = puzzlefs_format_host::seekable_index(data);
});
