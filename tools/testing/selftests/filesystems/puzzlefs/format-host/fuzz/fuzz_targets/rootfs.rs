// SPDX-License-Identifier: GPL-2.0

//! Fuzzes rootfs and inode-vector bytes through every view of the format
//! core. The first input byte picks the layout: even = a rootfs blob
//! (Generation B inline layers, or a Generation A rootfs), odd = inode
//! vector blobs (Generation A layers), split in two at the second byte.

#![no_main]

use libfuzzer_sys::fuzz_target;

fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut v = vec![0u64; bytes.len().div_ceil(8)];
    for (w, c) in v.iter_mut().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        *w = u64::from_ne_bytes(b);
    }
    v
}

fn as_bytes(v: &[u64], len: usize) -> &[u8] {
    // SAFETY: `v` holds at least `len` initialized bytes; u8 has no alignment needs.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), len) }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut scratch = [0u64; 256];
    if mode & 1 == 0 {
        let a = aligned(rest);
        puzzlefs_format_host::exercise_image(&[as_bytes(&a, rest.len())], true, &mut scratch);
    } else {
        let Some((&cut, rest)) = rest.split_first() else {
            return;
        };
        let cut = (usize::from(cut) * 8).min(rest.len());
        let (x, y) = rest.split_at(cut);
        let (ax, ay) = (aligned(x), aligned(y));
        let layers: Vec<&[u8]> = if x.is_empty() {
            vec![as_bytes(&ay, y.len())]
        } else {
            vec![as_bytes(&ax, x.len()), as_bytes(&ay, y.len())]
        };
        puzzlefs_format_host::exercise_image(&layers, false, &mut scratch);
    }
});
