// SPDX-License-Identifier: GPL-2.0

//! Filling locked page-cache folios (`struct folio`) for reads.
//!
//! C headers: [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h),
//! [`include/linux/highmem.h`](srctree/include/linux/highmem.h).
//!
//! # How a filesystem uses this module
//!
//! `read_folio` and `readahead` hand the filesystem [`LockedFolio`]s: locked folios of the page
//! cache, possibly large, that are not up to date. The filesystem writes file data into them at
//! byte offsets ([`LockedFolio::write`], or [`LockedFolio::fill`] to let a reader such as
//! `kernel_read()` write into the mapped memory directly), zeroes what lies beyond the end of
//! the file ([`LockedFolio::zero`]) and then calls [`LockedFolio::end_read`] with `true`, which
//! marks the folio up to date and unlocks it. Dropping a [`LockedFolio`] without that (e.g. on
//! `?`) ends the read as failed: the folio is unlocked and stays not up to date, so the reader
//! gets `EIO`. Each folio is thus unlocked exactly once.
//!
//! Memory is mapped one page at a time with `kmap_local_folio()`, so this also works for
//! large folios in highmem.

use crate::{bindings, error::Result, prelude::*};
use core::{marker::PhantomData, ptr::NonNull};

/// A locked folio of the page cache that is being read.
///
/// # Invariants
///
/// `folio` is locked, not up to date, in the page cache of a live mapping, and we are the ones
/// who must unlock it; the page cache holds a reference to it until it is unlocked. `'a` is the
/// duration of the `read_folio`/`readahead` call.
pub struct LockedFolio<'a> {
    folio: NonNull<bindings::folio>,
    _p: PhantomData<&'a mut bindings::folio>,
}

// SAFETY: A locked folio may be filled and unlocked from another thread (e.g. a work item).
unsafe impl Send for LockedFolio<'_> {}

impl<'a> LockedFolio<'a> {
    /// # Safety
    ///
    /// `folio` must satisfy the type invariants for `'a`.
    pub(crate) unsafe fn from_raw(folio: NonNull<bindings::folio>) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            folio,
            _p: PhantomData,
        }
    }

    /// Returns the raw `struct folio` pointer, for reads that the abstractions in this crate
    /// direct into the folio while it is locked (e.g. a `bio_vec` over its memory).
    pub(crate) fn as_raw(&self) -> *mut bindings::folio {
        self.folio.as_ptr()
    }

    /// Returns the byte position of the folio in the file (`folio_pos()`).
    pub fn pos(&self) -> i64 {
        // SAFETY: The folio is locked in the page cache (type invariant), so its index is stable.
        unsafe { bindings::folio_pos(self.folio.as_ptr()) }
    }

    /// Returns the size of the folio in bytes (`folio_size()`).
    pub fn size(&self) -> usize {
        // SAFETY: The folio is valid and locked (type invariant).
        unsafe { bindings::folio_size(self.folio.as_ptr()) }
    }

    /// Calls `f` on the folio's memory from byte `offset` for `len` bytes, one mapped piece of
    /// at most a page at a time; `f` gets the piece and its offset relative to `offset`.
    pub fn fill(
        &mut self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(&mut [u8], usize) -> Result,
    ) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.size() {
            return Err(EINVAL);
        }
        let mut done = 0;
        while done < len {
            let at = offset + done;
            let n = (bindings::PAGE_SIZE - at % bindings::PAGE_SIZE).min(len - done);
            // SAFETY: `at` is inside the folio (checked above), which is locked and ours.
            // `kmap_local_folio` maps the page containing `at` and returns the address of `at`;
            // the `n` bytes from there stay inside that page.
            let addr = unsafe { bindings::kmap_local_folio(self.folio.as_ptr(), at) };
            // SAFETY: `addr` is mapped for `n` bytes until `kunmap_local`; nobody else accesses
            // a locked folio that is not up to date.
            let buf = unsafe { core::slice::from_raw_parts_mut(addr.cast::<u8>(), n) };
            let r = f(buf, done);
            // SAFETY: `addr` was returned by `kmap_local_folio` above, mappings nest properly.
            unsafe { bindings::kunmap_local(addr) };
            r?;
            done += n;
        }
        Ok(())
    }

    /// Calls `f` with bytes `[offset, offset + len)` of the folio as one slice, if the folio's
    /// memory is mapped contiguously (it is not in highmem); returns `None` without calling `f`
    /// otherwise, and the caller falls back to [`Self::fill`] or [`Self::write`]. Useful to
    /// have a decompressor write straight into the page cache.
    pub fn with_contiguous<R>(
        &mut self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<Option<R>> {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.size() {
            return Err(EINVAL);
        }
        // SAFETY: The folio is valid and locked (type invariant).
        if unsafe { bindings::folio_test_highmem(self.folio.as_ptr()) } {
            return Ok(None);
        }
        // SAFETY: A folio outside highmem is in the kernel's linear map, where its physically
        // contiguous pages are virtually contiguous too: `folio_address()` is the address of
        // its first byte and the `len` bytes from `offset` are inside it (checked above).
        // Nobody else accesses a locked folio that is not up to date, and `&mut self` keeps
        // other borrows of it out for the duration of `f`.
        let buf = unsafe {
            let base = bindings::folio_address(self.folio.as_ptr()).cast::<u8>();
            core::slice::from_raw_parts_mut(base.add(offset), len)
        };
        Ok(Some(f(buf)))
    }

    /// Copies `data` into the folio at byte `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.fill(offset, data.len(), |buf, done| {
            let src = data.get(done..done + buf.len()).ok_or(EINVAL)?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    /// Zeroes `len` bytes of the folio from byte `offset` (`folio_zero_segment()`).
    pub fn zero(&mut self, offset: usize, len: usize) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if end > self.size() {
            return Err(EINVAL);
        }
        // SAFETY: The folio is locked and ours; the range is inside it (checked above).
        unsafe { bindings::folio_zero_segment(self.folio.as_ptr(), offset, end) };
        Ok(())
    }

    /// Ends the read (`folio_end_read()`): if `success`, marks the folio up to date; unlocks it.
    pub fn end_read(self, success: bool) {
        let folio = self.folio.as_ptr();
        core::mem::forget(self);
        // SAFETY: The folio is locked and we must unlock it (type invariant); `self` is
        // forgotten, so this happens once. The data written through `kmap_local_folio` is made
        // visible to user mappings first.
        unsafe {
            if success {
                bindings::folio_flush_dcache(folio);
            }
            bindings::folio_end_read(folio, success);
        }
    }
}

impl Drop for LockedFolio<'_> {
    fn drop(&mut self) {
        // SAFETY: The folio is locked and ours to unlock (type invariant); `end_read` forgets
        // `self`, so this only runs when the read was not ended.
        unsafe { bindings::folio_end_read(self.folio.as_ptr(), false) };
    }
}
