// SPDX-License-Identifier: GPL-2.0

//! The kernel's cryptographic library functions.
//!
//! C header: [`include/crypto/sha2.h`](srctree/include/crypto/sha2.h)
//!
//! These are the library interfaces (`lib/crypto/`), not the crypto API: plain functions over
//! byte buffers, with no allocation and no algorithm lookup. A user selects the matching
//! `CRYPTO_LIB_*` Kconfig symbol.

use crate::types::Opaque;

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

/// An incremental SHA-256 computation (`struct sha256_ctx`), for data that is hashed in steps.
///
/// The architecture's implementation may use the FPU, which disables preemption for the whole
/// of one update: hashing a large buffer in bounded steps (with
/// [`cond_resched`](crate::task::cond_resched) between them) keeps that section short.
///
/// # Invariants
///
/// `ctx` has been initialised by `sha256_init()`.
///
/// # Examples
///
/// ```
/// use kernel::crypto::{sha256, Sha256};
///
/// let mut h = Sha256::new();
/// h.update(b"a");
/// h.update(b"bc");
/// assert_eq!(h.finish(), sha256(b"abc"));
/// ```
pub struct Sha256 {
    ctx: Opaque<bindings::sha256_ctx>,
}

impl Sha256 {
    /// Starts a new computation (`sha256_init()`).
    pub fn new() -> Self {
        let ctx = Opaque::<bindings::sha256_ctx>::uninit();
        // SAFETY: `ctx.get()` is valid for writes of a `struct sha256_ctx`, which
        // `sha256_init()` initialises without reading it.
        unsafe { bindings::sha256_init(ctx.get()) };
        // INVARIANT: Initialised just above. Moving the context is fine: it holds no pointers
        // to itself.
        Self { ctx }
    }

    /// Adds `data` to the message (`sha256_update()`).
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: The context is initialised (type invariant) and exclusively ours; `data` is
        // valid for reads of `data.len()` bytes. `sha256_update()` is an inline wrapper of
        // exactly this call.
        unsafe {
            bindings::__sha256_update(
                core::ptr::addr_of_mut!((*self.ctx.get()).ctx),
                data.as_ptr(),
                data.len(),
            )
        };
    }

    /// Returns the digest of the message (`sha256_final()`).
    pub fn finish(self) -> [u8; SHA256_DIGEST_SIZE] {
        let mut out = [0u8; SHA256_DIGEST_SIZE];
        // SAFETY: The context is initialised (type invariant); `out` is valid for writes of
        // `SHA256_DIGEST_SIZE` bytes. `sha256_final()` also wipes the context.
        unsafe { bindings::sha256_final(self.ctx.get(), out.as_mut_ptr()) };
        out
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

#[macros::kunit_tests(rust_crypto_sha256)]
mod tests {
    use super::*;

    #[test]
    fn one_shot() {
        let d = sha256(b"abc");
        assert_eq!(d[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(d[28..], [0xf2, 0x00, 0x15, 0xad]);
    }

    #[test]
    fn steps_match_one_shot() {
        // Steps that split SHA-256's 64-byte blocks in every way, over several blocks.
        let mut data = [0u8; 300];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let want = sha256(&data);
        for step in [1usize, 3, 63, 64, 65, 128, 299, 300] {
            let mut h = Sha256::new();
            for piece in data.chunks(step) {
                h.update(piece);
            }
            assert_eq!(h.finish(), want);
        }
        let mut empty = Sha256::new();
        empty.update(&[]);
        assert_eq!(empty.finish(), sha256(&[]));
    }
}
