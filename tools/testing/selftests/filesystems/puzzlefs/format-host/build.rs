// SPDX-License-Identifier: GPL-2.0

//! The two upstream oracles (test-only dependencies) each bundle a copy of
//! the zstd C library (through `zstd-sys` and `zstd-seekable`); let the test
//! binaries link with both copies present.

fn main() {
    println!("cargo:rustc-link-arg=-Wl,--allow-multiple-definition");
    println!("cargo:rerun-if-changed=build.rs");
}
