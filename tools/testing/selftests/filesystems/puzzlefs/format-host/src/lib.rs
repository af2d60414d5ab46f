// SPDX-License-Identifier: GPL-2.0

//! Host build of the PuzzleFS format core (`fs/puzzlefs/format.rs` and
//! `fs/puzzlefs/format/`), compiled unchanged and `no_std` as in the kernel,
//! so that `crate::format::...` paths are the same in both builds.
//!
//! The panic-freedom lints below are denied on the format core: image bytes
//! must not be able to reach a panic, an unchecked index or an overflowing
//! operation. The generated capnp readers opt out in `format.rs`.

#![cfg_attr(not(test), no_std)]

#[path = "../../../../../../../fs/puzzlefs/format.rs"]
#[deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::cast_possible_truncation,
    missing_docs,
    unsafe_code
)]
#[warn(unreachable_pub)]
#[allow(dead_code)]
pub mod format;

use core::ops::ControlFlow;
use format::image::{chunk_for_offset, Image, InodeKind, LinkCount};

/// Bounds of [`exercise_image`] so that a fuzz input cannot make it slow.
const EXERCISE_INODES: u64 = 256;

/// Runs every view of `img` over its first inodes and a mount-time walk
/// (fuzzing entry; errors are fine, panics are not). `scratch` is used for
/// link counts and chunk ends.
pub fn exercise_image(img_bufs: &[&[u8]], inline: bool, scratch: &mut [u64]) {
    let mut img = Image::new();
    if inline {
        let Some(buf) = img_bufs.first() else { return };
        let Ok(rootfs) = format::rootfs::Rootfs::parse(buf) else {
            return;
        };
        let _ = rootfs.layer_count();
        let _ = rootfs.verity_for(&[0u8; 32]);
        for i in 0..rootfs.verity_count().min(4) {
            let _ = rootfs.verity_entry(i);
        }
        if rootfs.generation() == format::Generation::A {
            for i in 0..rootfs.layer_count() {
                let _ = rootfs.layer_blob(i);
            }
            return;
        }
        match Image::from_rootfs(&rootfs) {
            Ok(i) => img = i,
            Err(_) => return,
        }
    } else {
        for b in img_bufs {
            if img.push_layer(b).is_err() {
                return;
            }
        }
    }
    for ino in 0..EXERCISE_INODES {
        let Ok(Some(inode)) = img.find_inode(ino) else {
            continue;
        };
        let _ = img.inode(ino);
        let _ = img.for_each_xattr(&inode, |_, _| ControlFlow::<()>::Continue(()));
        let _ = img.xattr_get(&inode, b"user.x");
        match inode.kind {
            InodeKind::Dir { .. } => {
                let _ = img.for_each_dir_entry(&inode, 0, |_| ControlFlow::<()>::Continue(()));
                let _ = img
                    .for_each_visible_dir_entry(&inode, 0, |_, _| ControlFlow::<()>::Continue(()));
                let _ = img.lookup(&inode, b"a");
            }
            InodeKind::File { chunks, size } => {
                let _ = img.chunk(&inode, 0);
                let _ = img.for_each_chunk(&inode, |_, _| ControlFlow::<()>::Continue(()));
                if let Some(ends) = scratch.get_mut(..chunks as usize) {
                    if img.fill_chunk_ends(&inode, ends).is_ok() {
                        let _ = chunk_for_offset(ends, size / 2);
                        let _ = chunk_for_offset(ends, size);
                    }
                }
            }
            InodeKind::Symlink => {
                let _ = img.symlink_target(&inode);
            }
            _ => {}
        }
    }
    let slots = img.inode_slots();
    let mut counts = [LinkCount::default(); 512];
    if let Some(out) = counts.get_mut(..slots) {
        let _ = img.count_links(out);
    }
}

/// Runs the JSON reader and the OCI parsers over `doc` (fuzzing entry).
pub fn exercise_json(doc: &[u8]) {
    if let Ok(v) = format::json::parse(doc) {
        let _ = v.as_i64();
        let _ = v.as_u64();
        if let Ok(o) = v.as_object() {
            let _ = o.get(b"schemaVersion");
            let _ = o.for_each(|k, v| {
                let mut buf = [0u8; 64];
                let _ = k.decode(&mut buf);
                let _ = v.as_str().map(|s| s.decode(&mut buf));
                ControlFlow::<()>::Continue(())
            });
        }
        if let Ok(a) = v.as_array() {
            let _ = a.for_each(|v| {
                let _ = v.as_i64();
                ControlFlow::<()>::Continue(())
            });
        }
    }
    if let Ok(i) = format::oci::Index::parse(doc) {
        let _ = i.find_tag(b"t");
        let _ = i.generation();
    }
    if let Ok(m) = format::oci::ImageManifest::parse(doc) {
        let _ = m.rootfs_layer();
    }
    let _ = format::oci::blob_kind(doc);
    let _ = format::parse_digest(doc);
}

#[cfg(test)]
mod unit_tests;

#[cfg(test)]
mod diff_tests;
