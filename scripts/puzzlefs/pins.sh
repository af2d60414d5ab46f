# SPDX-License-Identifier: GPL-2.0
#
# Versions everything is pinned to. Changing one of these invalidates the matching caches.

KERNEL_SERIES=7.3
# Debian's linux-source-7.3 from trixie-backports (arch all; depends only on binutils, xz-utils).
KERNEL_PKG_VERSION=7.3.4-1~bpo13+1
# rustc-web / rust-web-src from bookworm-security.
RUST_WEB_VERSION=1.96
BINDGEN_VERSION=0.72.1
# The upstream image builders (crates registry).
PUZZLEFS_NEW_VERSION=0.2.0
PUZZLEFS_OLD_VERSION=0.1.0
# capnp and hex for the kernel build: pinned with checksums in scripts/puzzlefs/crates/Cargo.lock.
