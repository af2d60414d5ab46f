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
