// SPDX-License-Identifier: GPL-2.0

//! zstd decompression with the kernel's zstd library.
//!
//! C header: [`include/linux/zstd.h`](srctree/include/linux/zstd.h).
//!
//! # How a user decompresses
//!
//! A [`DecompressCtx`] is a decompression context emplaced in a workspace of
//! [`DecompressCtx::workspace_size`] bytes that it allocates once (about 95 KiB on 64-bit
//! builds); it is reused for any number of frames, one call at a time (`&mut self`).
//! [`DecompressCtx::decompress`] decompresses whole frames into a caller buffer and fails if
//! they need more room than the buffer has: the output size is always bounded by the caller,
//! whatever the frames declare. [`frame_header`] and [`find_frame_compressed_size`] inspect a
//! frame before decompressing it.
//!
//! ```
//! use kernel::zstd::DecompressCtx;
//!
//! // The zstd frame of the 11 bytes "hello zstd\n" (`printf 'hello zstd\n' | zstd -3`).
//! const FRAME: [u8; 20] = [
//!     0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x59, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20,
//!     0x7a, 0x73, 0x74, 0x64, 0x0a,
//! ];
//! let mut ctx = DecompressCtx::new(GFP_KERNEL)?;
//! let mut out = [0u8; 16];
//! assert_eq!(ctx.decompress(&mut out, &FRAME), Ok(11));
//! assert_eq!(&out[..11], b"hello zstd\n");
//! // A frame that does not fit the buffer is an error, not an overflow.
//! assert!(ctx.decompress(&mut out[..10], &FRAME).is_err());
//! # Ok::<(), Error>(())
//! ```

use crate::{
    alloc::{Flags, KVVec},
    bindings,
    error::Result,
    prelude::*,
};
use core::ptr::NonNull;

/// A zstd error: the library's error code (`zstd_error_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZstdError(u32);

impl ZstdError {
    /// The library's error code.
    pub fn code(self) -> u32 {
        self.0
    }

    /// The library's name for the error (`zstd_get_error_name()`).
    pub fn name(self) -> &'static CStr {
        // `zstd_get_error_name()` takes a function result: rebuild the `(size_t)-code` form.
        let ret = 0usize.wrapping_sub(self.0 as usize);
        // SAFETY: `zstd_get_error_name` accepts any value and returns a pointer to a static,
        // NUL-terminated string.
        unsafe { CStr::from_char_ptr(bindings::zstd_get_error_name(ret)) }
    }
}

impl From<ZstdError> for Error {
    fn from(_: ZstdError) -> Error {
        EIO
    }
}

/// `ZSTD_error_srcSize_wrong` of `include/linux/zstd_errors.h`: the input is too short.
const SRC_SIZE_WRONG: u32 = 72;

/// `ZSTD_CONTENTSIZE_UNKNOWN` of `include/linux/zstd_lib.h`: a frame without its content size.
const CONTENTSIZE_UNKNOWN: u64 = u64::MAX;

/// Turns a `size_t` result of the zstd library into a value or a [`ZstdError`].
fn check(ret: usize) -> core::result::Result<usize, ZstdError> {
    // SAFETY: `zstd_is_error` and `zstd_get_error_code` accept any value.
    if unsafe { bindings::zstd_is_error(ret) } != 0 {
        // SAFETY: As above.
        Err(ZstdError(
            unsafe { bindings::zstd_get_error_code(ret) } as u32
        ))
    } else {
        Ok(ret)
    }
}

/// A zstd decompression context in a workspace of its own (`zstd_dctx`).
///
/// # Invariants
///
/// `dctx` was returned by `zstd_init_dctx()` for the heap memory of `workspace` (8-byte aligned:
/// a vector of `u64`s, as `zstd_init_dctx()` requires), which is never resized or freed while
/// the context exists, so its address is stable even when `Self` moves.
pub struct DecompressCtx {
    workspace: KVVec<u64>,
    dctx: NonNull<bindings::zstd_dctx>,
}

// SAFETY: The context is plain memory owned by `self`; the zstd library keeps no thread-local or
// global state for it, so it may be used from any thread.
unsafe impl Send for DecompressCtx {}

// SAFETY: `&DecompressCtx` allows no operation; decompressing needs `&mut`.
unsafe impl Sync for DecompressCtx {}

impl DecompressCtx {
    /// Bytes of workspace a context takes (`zstd_dctx_workspace_bound()`).
    pub fn workspace_size() -> usize {
        // SAFETY: Always safe to call.
        unsafe { bindings::zstd_dctx_workspace_bound() }
    }

    /// Allocates a workspace with `flags` and initialises a context in it.
    pub fn new(flags: Flags) -> Result<Self> {
        let size = Self::workspace_size();
        let mut workspace = KVVec::from_elem(0u64, size.div_ceil(8), flags)?;
        // SAFETY: `workspace` is a live, 8-byte aligned allocation of at least `size` bytes that
        // outlives the context (type invariant); `zstd_init_dctx` returns a context placed inside
        // it, or NULL.
        let dctx = unsafe { bindings::zstd_init_dctx(workspace.as_mut_ptr().cast(), size) };
        let dctx = NonNull::new(dctx).ok_or(ENOMEM)?;
        // INVARIANT: `dctx` lives in `workspace`, which is moved in and never resized.
        Ok(Self { workspace, dctx })
    }

    /// Decompresses the zstd frames (and skippable frames) that make up all of `src` into
    /// `dst`, and returns the number of bytes written. Frames that would decompress to more
    /// than `dst.len()` bytes, corrupt or truncated frames, and trailing garbage are errors;
    /// `dst` may then hold partial output.
    pub fn decompress(
        &mut self,
        dst: &mut [u8],
        src: &[u8],
    ) -> core::result::Result<usize, ZstdError> {
        // SAFETY: `self.dctx` is a valid context (type invariant) used by one call at a time
        // (`&mut self`); `dst` and `src` are valid for their lengths for the duration of the
        // call, and zstd writes at most `dst.len()` bytes.
        check(unsafe {
            bindings::zstd_decompress_dctx(
                self.dctx.as_ptr(),
                dst.as_mut_ptr().cast(),
                dst.len(),
                src.as_ptr().cast(),
                src.len(),
            )
        })
    }

    /// Like [`Self::decompress`], into `len` bytes of raw memory at `dst`.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` bytes for the duration of the call, and nothing
    /// else may access that memory meanwhile.
    pub unsafe fn decompress_raw(
        &mut self,
        dst: *mut u8,
        len: usize,
        src: &[u8],
    ) -> core::result::Result<usize, ZstdError> {
        // SAFETY: As for `decompress`; the caller guarantees `dst` for `len` bytes.
        check(unsafe {
            bindings::zstd_decompress_dctx(
                self.dctx.as_ptr(),
                dst.cast(),
                len,
                src.as_ptr().cast(),
                src.len(),
            )
        })
    }

    /// The size of the workspace this context owns.
    pub fn size(&self) -> usize {
        self.workspace.len().saturating_mul(8)
    }
}

/// What a zstd frame header says (`zstd_frame_header`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The decompressed size, if the frame records it.
    pub content_size: Option<u64>,
    /// The window size the frame needs (0 for a skippable frame).
    pub window_size: u64,
    /// Whether the frame ends with a checksum of its content.
    pub checksum: bool,
    /// Whether it is a skippable frame.
    pub skippable: bool,
}

/// Reads the header of the frame at the start of `src` (`zstd_get_frame_header()`). A header
/// that does not fit in `src` is an error.
pub fn frame_header(src: &[u8]) -> core::result::Result<FrameHeader, ZstdError> {
    // SAFETY: All-zero is a valid `zstd_frame_header` (plain integers).
    let mut h: bindings::zstd_frame_header = unsafe { core::mem::zeroed() };
    // SAFETY: `h` is valid for writes; `src` is valid for `src.len()` bytes.
    let need =
        check(unsafe { bindings::zstd_get_frame_header(&mut h, src.as_ptr().cast(), src.len()) })?;
    if need != 0 {
        // More bytes needed than `src` has: truncated.
        return Err(ZstdError(SRC_SIZE_WRONG));
    }
    Ok(FrameHeader {
        content_size: (h.frameContentSize != CONTENTSIZE_UNKNOWN).then_some(h.frameContentSize),
        window_size: h.windowSize,
        checksum: h.checksumFlag != 0,
        skippable: h.frameType == bindings::ZSTD_FrameType_e_ZSTD_skippableFrame,
    })
}

/// The compressed size of the frame at the start of `src`
/// (`zstd_find_frame_compressed_size()`).
pub fn find_frame_compressed_size(src: &[u8]) -> core::result::Result<usize, ZstdError> {
    // SAFETY: `src` is valid for `src.len()` bytes.
    check(unsafe { bindings::zstd_find_frame_compressed_size(src.as_ptr().cast(), src.len()) })
}

#[macros::kunit_tests(rust_kernel_zstd)]
mod tests {
    use super::*;

    /// `printf 'hello zstd\n' | zstd -3`: no content size, no checksum.
    const FRAME: [u8; 20] = [
        0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x59, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20,
        0x7a, 0x73, 0x74, 0x64, 0x0a,
    ];

    /// A skippable frame (magic 0x184D2A50) with 4 bytes of content.
    const SKIPPABLE: [u8; 12] = [0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];

    #[test]
    fn decompresses_and_bounds_output() -> Result {
        let mut ctx = DecompressCtx::new(GFP_KERNEL)?;
        assert!(ctx.size() >= DecompressCtx::workspace_size());
        let mut out = [0u8; 32];
        assert_eq!(ctx.decompress(&mut out, &FRAME), Ok(11));
        assert_eq!(&out[..11], b"hello zstd\n");
        // Too small a buffer, a truncated frame, a flipped byte, trailing garbage: errors.
        assert!(ctx.decompress(&mut out[..10], &FRAME).is_err());
        assert!(ctx.decompress(&mut out, &FRAME[..19]).is_err());
        let mut bad = FRAME;
        bad[6] ^= 0x40;
        assert!(ctx.decompress(&mut out, &bad).is_err());
        let mut long = [0u8; 21];
        long[..20].copy_from_slice(&FRAME);
        long[20] = 0x28;
        assert!(ctx.decompress(&mut out, &long).is_err());
        // A skippable frame decompresses to nothing; frames may be concatenated.
        let mut two = [0u8; 32];
        two[..12].copy_from_slice(&SKIPPABLE);
        two[12..].copy_from_slice(&FRAME);
        assert_eq!(ctx.decompress(&mut out, &two), Ok(11));
        // The context is reusable after errors.
        assert_eq!(ctx.decompress(&mut out, &FRAME), Ok(11));
        Ok(())
    }

    #[test]
    fn frame_headers_and_sizes() {
        let h = frame_header(&FRAME);
        assert_eq!(
            h.map(|h| (h.content_size, h.checksum, h.skippable)),
            Ok((None, false, false))
        );
        assert!(h.is_ok_and(|h| h.window_size > 0));
        assert_eq!(frame_header(&FRAME[..3]), Err(ZstdError(SRC_SIZE_WRONG)));
        assert!(frame_header(&SKIPPABLE).is_ok_and(|h| h.skippable));
        assert_eq!(find_frame_compressed_size(&FRAME), Ok(20));
        assert_eq!(find_frame_compressed_size(&SKIPPABLE), Ok(12));
        assert!(find_frame_compressed_size(&FRAME[..12]).is_err());
        assert!(find_frame_compressed_size(b"not zstd").is_err());
        assert!(!ZstdError(SRC_SIZE_WRONG).name().is_empty());
    }
}
