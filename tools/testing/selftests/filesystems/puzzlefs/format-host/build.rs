// SPDX-License-Identifier: GPL-2.0

//! The two upstream oracles (test-only dependencies) each bundle a copy of
//! the zstd C library (through `zstd-sys` and `zstd-seekable`); let the test
//! binaries link with both copies present.

fn main() {
    // Test-only entry points of the format core (`json::parse` and the like,
    // which the kernel build leaves out) stay in this crate for the fuzz targets.
    println!("cargo:rustc-cfg=puzzlefs_host");
    println!("cargo:rustc-link-arg=-Wl,--allow-multiple-definition");
    println!("cargo:rerun-if-changed=build.rs");
}
