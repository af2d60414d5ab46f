// SPDX-License-Identifier: GPL-2.0

//! Address space operations (`struct address_space_operations`) for reading into the page
//! cache.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h).
//!
//! # How a filesystem uses this module
//!
//! It implements [`AddressSpaceOperations::read_folio`] (and optionally
//! [`AddressSpaceOperations::readahead`]) and installs them on regular files with
//! [`NewINode::set_aops`](super::inode::NewINode::set_aops), together with
//! [`NewINode::set_generic_ro_file_ops`](super::inode::NewINode::set_generic_ro_file_ops) and,
//! if it can fill large folios, [`NewINode::set_large_folios`]. The page cache then serves
//! `read(2)`, `mmap(2)` and `splice(2)` from these callbacks.
//!
//! [`NewINode::set_large_folios`]: super::inode::NewINode::set_large_folios
//!
//! ```ignore
//! fn read_folio(inode: &INode<MyFs>, mut folio: LockedFolio<'_>) -> Result {
//!     let size = inode.size();
//!     let n = my_read(inode, folio.pos(), &mut folio)?;   // bytes of file data written
//!     folio.zero(n, folio.size() - n)?;
//!     folio.end_read(true);
//!     Ok(())
//! }
//! ```

use crate::{
    bindings,
    error::{Result, VTABLE_DEFAULT_ERROR},
    fs::{folio::LockedFolio, fs_context::FileSystem, inode::INode},
    prelude::*,
};
use core::{marker::PhantomData, ptr::NonNull};

/// A readahead request (`struct readahead_control`): a batch of locked folios to read.
///
/// # Invariants
///
/// `rac` is the valid `struct readahead_control` passed to `readahead`, exclusively ours for
/// `'a`.
pub struct ReadaheadControl<'a> {
    rac: NonNull<bindings::readahead_control>,
    _p: PhantomData<&'a mut bindings::readahead_control>,
}

impl<'a> ReadaheadControl<'a> {
    /// Returns the file position of the remaining batch (`readahead_pos()`).
    pub fn pos(&self) -> i64 {
        // SAFETY: The control is valid and ours (type invariant).
        unsafe { bindings::readahead_pos(self.rac.as_ptr()) }
    }

    /// Returns the number of bytes in the remaining batch (`readahead_length()`).
    pub fn length(&self) -> usize {
        // SAFETY: The control is valid and ours (type invariant).
        unsafe { bindings::readahead_length(self.rac.as_ptr()) }
    }

    /// Returns the next locked folio of the batch, in file order (`readahead_folio()`).
    ///
    /// Folios not taken are unlocked and dropped from the page cache by the VFS afterwards.
    pub fn next_folio(&mut self) -> Option<LockedFolio<'a>> {
        // SAFETY: The control is valid and ours; `readahead_folio` returns the next folio,
        // locked and in the page cache (it drops the batch's extra reference; the page cache's
        // reference stays while it is locked), or NULL.
        let folio = unsafe { bindings::readahead_folio(self.rac.as_ptr()) };
        // SAFETY: A non-NULL folio is locked, not up to date and ours to unlock.
        NonNull::new(folio).map(|f| unsafe { LockedFolio::from_raw(f) })
    }
}

/// The address space operations of a filesystem (`struct address_space_operations`).
#[vtable]
pub trait AddressSpaceOperations {
    /// The filesystem whose files these operations serve.
    type FileSystem: FileSystem;

    /// Reads one folio of `inode` (`read_folio`). The folio must be ended (see [`LockedFolio`]);
    /// returning an error after dropping it reports the error to the reader.
    ///
    /// The C callback's `struct file *` is not passed on: it may be NULL, and when it is not,
    /// neither [`File`](super::File) nor [`LocalFile`](super::LocalFile) describes it (the
    /// read may run on another task than one inside an unlocked `fdget_pos` section on it,
    /// e.g. after `pidfd_getfd()`, or from khugepaged). A filesystem that needs the opener's
    /// data will need a borrowed view that makes no `f_pos` promise.
    fn read_folio(inode: &INode<Self::FileSystem>, folio: LockedFolio<'_>) -> Result;

    /// Reads a batch of folios of `inode` ahead of use (`readahead`). Errors are not reported:
    /// failed folios are read again with `read_folio` when needed.
    fn readahead(_inode: &INode<Self::FileSystem>, _ractl: &mut ReadaheadControl<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `struct address_space_operations` table of `A`.
pub(crate) struct Tables<A: AddressSpaceOperations>(PhantomData<A>);

impl<A: AddressSpaceOperations> Tables<A> {
    const AOPS: bindings::address_space_operations = bindings::address_space_operations {
        read_folio: Some(Self::read_folio_callback),
        readahead: if A::HAS_READAHEAD {
            Some(Self::readahead_callback)
        } else {
            None
        },
        // SAFETY: All other fields are optional function pointers, for which all-zero (`None`)
        // is valid.
        ..unsafe { core::mem::zeroed() }
    };

    pub(crate) const fn build() -> &'static bindings::address_space_operations {
        &Self::AOPS
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn read_folio_callback(
        _file: *mut bindings::file,
        folio: *mut bindings::folio,
    ) -> crate::ffi::c_int {
        // SAFETY: The VFS passes a locked, not up-to-date folio of the page cache of an inode of
        // our filesystem (only `NewINode::set_aops` installs this table), which we must unlock.
        let (folio, inode) = unsafe {
            let inode = bindings::folio_inode(folio);
            (
                NonNull::new_unchecked(folio),
                INode::<A::FileSystem>::from_raw(inode),
            )
        };
        // SAFETY: See above.
        let folio = unsafe { LockedFolio::from_raw(folio) };
        match A::read_folio(inode, folio) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn readahead_callback(rac: *mut bindings::readahead_control) {
        // SAFETY: The VFS passes a valid control whose mapping belongs to an initialised inode
        // of our filesystem, for the duration of the call.
        let inode = unsafe { INode::<A::FileSystem>::from_raw((*(*rac).mapping).host) };
        // INVARIANT: The control is exclusively ours during the call.
        let mut ractl = ReadaheadControl {
            // SAFETY: The VFS passes a non-NULL control.
            rac: unsafe { NonNull::new_unchecked(rac) },
            _p: PhantomData,
        };
        A::readahead(inode, &mut ractl);
    }
}
