// SPDX-License-Identifier: GPL-2.0

//! Extended attributes: handlers (`struct xattr_handler`) and the buffers of `getxattr(2)` and
//! `listxattr(2)`.
//!
//! C headers: [`include/linux/xattr.h`](srctree/include/linux/xattr.h).
//!
//! # How a filesystem uses this module
//!
//! For each namespace it serves (`user.`, `trusted.`, `security.`) it implements
//! [`XattrHandler`] with that [`XattrHandler::PREFIX`]; the VFS strips the prefix and checks
//! permissions (e.g. `trusted.` needs `CAP_SYS_ADMIN`) before calling [`XattrHandler::get`].
//! The handlers are listed in a static [`Handlers`] table installed by
//! [`NewSuperBlock::set_xattr_handlers`](super::sb::NewSuperBlock::set_xattr_handlers).
//! Names are listed by the inode operation
//! [`listxattr`](super::inode::InodeOperations::listxattr) into a [`ListBuffer`], skipping the
//! names of a namespace whose handler says it may not be listed to the caller
//! ([`Handler::can_list`], e.g. `trusted.` without `CAP_SYS_ADMIN`), as C filesystems do.
//!
//! Both buffers implement the VFS's size protocol: with a zero size they only count the bytes
//! needed; when the value or list does not fit they fail with `ERANGE`. A missing attribute is
//! `ENODATA`, which [`XattrHandler::get`] returns itself.
//!
//! ```ignore
//! struct UserXattr;
//! impl XattrHandler for UserXattr {
//!     type FileSystem = MyFs;
//!     const PREFIX: &'static CStr = c"user.";
//!     fn get(inode: &INode<MyFs>, name: &CStr, value: &mut ValueBuffer<'_>) -> Result<usize> {
//!         value.set(inode.data().xattr(b"user.", name).ok_or(ENODATA)?)
//!     }
//! }
//! static USER: Handler<MyFs> = Handler::new::<UserXattr>();
//! static HANDLERS: Handlers<MyFs> = Handlers::new(&[Some(&USER), None]);
//! ```

use crate::{
    bindings,
    error::{from_result, Result, VTABLE_DEFAULT_ERROR},
    fs::{dentry::DEntry, fs_context::FileSystem, inode::INode},
    prelude::*,
};
use core::marker::PhantomData;

/// The caller's buffer for one attribute value.
///
/// # Invariants
///
/// If `size` is non-zero, `buf` is valid for writing `size` bytes for `'a`.
pub struct ValueBuffer<'a> {
    buf: *mut u8,
    size: usize,
    _p: PhantomData<&'a mut [u8]>,
}

impl ValueBuffer<'_> {
    /// # Safety
    ///
    /// `buf` must be NULL or valid for writing `size` bytes for `'a`.
    pub(crate) unsafe fn new(buf: *mut u8, size: usize) -> Self {
        // INVARIANT: A NULL buffer is treated as size 0.
        Self {
            buf,
            size: if buf.is_null() { 0 } else { size },
            _p: PhantomData,
        }
    }

    /// Returns the size of the caller's buffer; 0 means "only report the length".
    pub fn size(&self) -> usize {
        self.size
    }

    /// Stores `value` and returns its length, as `get` must return: if the buffer has size 0,
    /// only the length; if `value` is longer than the buffer, `ERANGE`.
    pub fn set(&mut self, value: &[u8]) -> Result<usize> {
        if self.size == 0 {
            return Ok(value.len());
        }
        if value.len() > self.size {
            return Err(ERANGE);
        }
        // SAFETY: By the type invariant `buf` is valid for `size >= value.len()` bytes; the
        // caller's kernel buffer cannot overlap our data.
        unsafe { core::ptr::copy_nonoverlapping(value.as_ptr(), self.buf, value.len()) };
        Ok(value.len())
    }
}

/// The caller's buffer for a list of attribute names, each NUL-terminated.
///
/// # Invariants
///
/// If `size` is non-zero, `buf` is valid for writing `size` bytes for `'a`; `len <= size` or
/// `size == 0`.
pub struct ListBuffer<'a> {
    buf: *mut u8,
    size: usize,
    len: usize,
    _p: PhantomData<&'a mut [u8]>,
}

impl ListBuffer<'_> {
    /// # Safety
    ///
    /// `buf` must be NULL or valid for writing `size` bytes for `'a`.
    pub(crate) unsafe fn new(buf: *mut u8, size: usize) -> Self {
        // INVARIANT: A NULL buffer is treated as size 0.
        Self {
            buf,
            size: if buf.is_null() { 0 } else { size },
            len: 0,
            _p: PhantomData,
        }
    }

    /// Appends the name `prefix` + `name` and its NUL terminator. Fails with `ERANGE` if it
    /// does not fit in a non-zero-size buffer.
    pub fn push(&mut self, prefix: &[u8], name: &[u8]) -> Result {
        let n = prefix
            .len()
            .checked_add(name.len())
            .and_then(|n| n.checked_add(1))
            .ok_or(ERANGE)?;
        let end = self.len.checked_add(n).ok_or(ERANGE)?;
        if self.size != 0 {
            if end > self.size {
                return Err(ERANGE);
            }
            // SAFETY: By the type invariant `buf` is valid for `size >= end` bytes; the pieces
            // are written at `len..end`.
            unsafe {
                let dst = self.buf.add(self.len);
                core::ptr::copy_nonoverlapping(prefix.as_ptr(), dst, prefix.len());
                core::ptr::copy_nonoverlapping(name.as_ptr(), dst.add(prefix.len()), name.len());
                dst.add(n - 1).write(0);
            }
        }
        // INVARIANT: `end <= size` was checked if `size != 0`.
        self.len = end;
        Ok(())
    }

    /// Returns the number of bytes listed (or needed, for a zero-size buffer).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns `true` if no name was listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A handler of the extended attributes of one namespace (`struct xattr_handler`).
#[vtable]
pub trait XattrHandler {
    /// The filesystem whose inodes this handler serves.
    type FileSystem: FileSystem;

    /// The namespace prefix, e.g. `c"user."`.
    const PREFIX: &'static CStr;

    /// Gets the value of attribute `PREFIX` + `name` of `inode` into `value` (`get`). Returns
    /// the length of the value, or `ENODATA` if the attribute does not exist.
    fn get(
        inode: &INode<Self::FileSystem>,
        name: &CStr,
        value: &mut ValueBuffer<'_>,
    ) -> Result<usize>;

    /// Returns whether the names of this namespace may be listed for `dentry` to the calling
    /// task (`list`). Without it, they always may.
    fn list(_dentry: &DEntry<Self::FileSystem>) -> bool {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `list` of a `trusted.` handler: those names are listed only to tasks with
/// `CAP_SYS_ADMIN` (reading their values needs it too).
pub fn trusted_list() -> bool {
    crate::capability::capable(crate::capability::CAP_SYS_ADMIN)
}

/// A `struct xattr_handler` of filesystem `T`, built from an [`XattrHandler`].
///
/// # Invariants
///
/// The callbacks are those of an [`XattrHandler`] whose filesystem is `T`, and `prefix` is a
/// `'static` C string.
#[repr(transparent)]
pub struct Handler<T: FileSystem>(bindings::xattr_handler, PhantomData<T>);

// SAFETY: The handler is immutable and only points to static data and functions.
unsafe impl<T: FileSystem> Sync for Handler<T> {}

impl<T: FileSystem> Handler<T> {
    /// Builds the handler of `H`; use it to initialise a `static`.
    pub const fn new<H: XattrHandler<FileSystem = T>>() -> Self {
        // INVARIANT: The callbacks are `H`'s, whose filesystem is `T`; `H::PREFIX` is static.
        Self(
            bindings::xattr_handler {
                name: core::ptr::null(),
                prefix: crate::str::as_char_ptr_in_const_context(H::PREFIX),
                flags: 0,
                list: if H::HAS_LIST {
                    Some(list_callback::<H>)
                } else {
                    None
                },
                get: Some(get_callback::<H>),
                set: None,
            },
            PhantomData,
        )
    }

    /// Returns the namespace prefix, e.g. `b"user."`.
    pub fn prefix(&self) -> &[u8] {
        // SAFETY: By the type invariant `prefix` is a `'static` C string.
        unsafe { CStr::from_char_ptr(self.0.prefix) }.to_bytes()
    }

    /// Returns whether names of this handler's namespace may be listed for `dentry` to the
    /// calling task (`xattr_handler_can_list()`).
    pub fn can_list(&self, dentry: &DEntry<T>) -> bool {
        // SAFETY: The handler is valid and its `list`, if any, expects a dentry of `T` (type
        // invariant), which `dentry` is; the caller holds it for the call.
        unsafe { bindings::xattr_handler_can_list(&self.0, dentry.as_raw()) }
    }
}

/// # Safety
///
/// Only called by the C side as the operation it is installed as, with the arguments
/// its C prototype documents as valid for the duration of the call.
unsafe extern "C" fn list_callback<H: XattrHandler>(dentry: *mut bindings::dentry) -> bool {
    // SAFETY: The caller passes a live dentry, held for the call, of `H::FileSystem`:
    // `Handler::can_list` takes a `DEntry<H::FileSystem>`, and the VFS only asks handlers of a
    // superblock's own `s_xattr` (see `get_callback`).
    let dentry = unsafe { DEntry::<H::FileSystem>::from_raw(dentry) };
    H::list(dentry)
}

/// # Safety
///
/// Only called by the C side as the operation it is installed as, with the arguments
/// its C prototype documents as valid for the duration of the call.
unsafe extern "C" fn get_callback<H: XattrHandler>(
    _handler: *const bindings::xattr_handler,
    _dentry: *mut bindings::dentry,
    inode: *mut bindings::inode,
    name: *const crate::ffi::c_char,
    buffer: *mut crate::ffi::c_void,
    size: usize,
) -> crate::ffi::c_int {
    from_result(|| {
        // SAFETY: The VFS calls `get` with a live inode, held for the call, of a superblock
        // whose `s_xattr` holds this handler: `NewSuperBlock::set_xattr_handlers` only installs
        // `Handlers<H::FileSystem>` on superblocks of `H::FileSystem`.
        let inode = unsafe { INode::<H::FileSystem>::from_raw(inode) };
        // SAFETY: `name` is the NUL-terminated name after the prefix, valid for the call.
        let name = unsafe { CStr::from_char_ptr(name) };
        // SAFETY: `buffer` is NULL or valid for writing `size` bytes during the call.
        let mut value = unsafe { ValueBuffer::new(buffer.cast(), size) };
        let len = H::get(inode, name, &mut value)?;
        crate::ffi::c_int::try_from(len).map_err(|_| E2BIG)
    })
}

/// A NULL-terminated table of the handlers of filesystem `T`, for `s_xattr`.
///
/// # Invariants
///
/// `list` ends with `None`.
pub struct Handlers<T: FileSystem> {
    list: &'static [Option<&'static Handler<T>>],
}

impl<T: FileSystem> Handlers<T> {
    /// Builds the table; the last entry must be `None` (checked at compile time for a `static`).
    pub const fn new(list: &'static [Option<&'static Handler<T>>]) -> Self {
        assert!(matches!(list.last(), Some(None)));
        // INVARIANT: Checked above.
        Self { list }
    }

    /// Returns the handlers, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &'static Handler<T>> {
        self.list.iter().flatten().copied()
    }

    pub(crate) fn as_raw(&self) -> *const *const bindings::xattr_handler {
        // `Option<&Handler<T>>` has the layout of a nullable pointer to `struct xattr_handler`
        // (`Handler` is `repr(transparent)` over it and a ZST), so the slice is a
        // NULL-terminated pointer array.
        self.list.as_ptr().cast()
    }
}

#[macros::kunit_tests(rust_fs_xattr)]
mod tests {
    use super::*;

    #[test]
    fn value_size_protocol() -> Result {
        // Size 0: only the length is reported.
        // SAFETY: A NULL buffer is allowed.
        let mut v = unsafe { ValueBuffer::new(core::ptr::null_mut(), 0) };
        assert_eq!(v.set(b"abc")?, 3);

        let mut buf = [0u8; 4];
        // SAFETY: `buf` is valid for 4 bytes during the test.
        let mut v = unsafe { ValueBuffer::new(buf.as_mut_ptr(), buf.len()) };
        assert_eq!(v.set(b"abcd")?, 4);
        assert_eq!(&buf, b"abcd");

        let mut small = [0u8; 2];
        // SAFETY: `small` is valid for 2 bytes during the test.
        let mut v = unsafe { ValueBuffer::new(small.as_mut_ptr(), small.len()) };
        assert_eq!(v.set(b"abc"), Err(ERANGE));
        Ok(())
    }

    #[test]
    fn list_size_protocol() -> Result {
        // SAFETY: A NULL buffer is allowed.
        let mut l = unsafe { ListBuffer::new(core::ptr::null_mut(), 0) };
        l.push(b"user.", b"a")?;
        l.push(b"trusted.", b"bc")?;
        assert_eq!(l.len(), 7 + 11);

        let mut buf = [0xffu8; 18];
        // SAFETY: `buf` is valid for its length during the test.
        let mut l = unsafe { ListBuffer::new(buf.as_mut_ptr(), buf.len()) };
        l.push(b"user.", b"a")?;
        l.push(b"trusted.", b"bc")?;
        assert_eq!(&buf, b"user.a\0trusted.bc\0");

        let mut small = [0u8; 8];
        // SAFETY: `small` is valid for its length during the test.
        let mut l = unsafe { ListBuffer::new(small.as_mut_ptr(), small.len()) };
        l.push(b"user.", b"a")?;
        assert_eq!(l.push(b"user.", b"b"), Err(ERANGE));
        assert_eq!(l.len(), 7);
        Ok(())
    }
}
