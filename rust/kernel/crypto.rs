// SPDX-License-Identifier: GPL-2.0

//! The kernel's cryptographic library functions.
//!
//! C header: [`include/crypto/sha2.h`](srctree/include/crypto/sha2.h)
//!
//! These are the library interfaces (`lib/crypto/`), not the crypto API: plain functions over
//! byte buffers, with no allocation and no algorithm lookup. A user selects the matching
//! `CRYPTO_LIB_*` Kconfig symbol.

/// Length in bytes of a SHA-256 digest.
pub const SHA256_DIGEST_SIZE: usize = bindings::SHA256_DIGEST_SIZE as usize;

/// Computes the SHA-256 digest of `data` in one call.
///
/// # Examples
///
/// ```
/// use kernel::crypto::sha256;
///
/// let digest = sha256(b"abc");
/// assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf]);
/// assert_eq!(digest[28..], [0xf2, 0x00, 0x15, 0xad]);
/// ```
pub fn sha256(data: &[u8]) -> [u8; SHA256_DIGEST_SIZE] {
    let mut out = [0u8; SHA256_DIGEST_SIZE];
    // SAFETY: `data` is valid for reads of `data.len()` bytes and `out` for writes of
    // `SHA256_DIGEST_SIZE` bytes, which is what `sha256()` reads and writes; it keeps neither
    // pointer after it returns and may be called in any context.
    unsafe { bindings::sha256(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out
}
