// SPDX-License-Identifier: GPL-2.0

//! Directory entries (`struct dentry`).
//!
//! C headers: [`include/linux/dcache.h`](srctree/include/linux/dcache.h).
//!
//! # How a filesystem uses this module
//!
//! Its [`InodeOperations::lookup`](super::inode::InodeOperations::lookup) gets the name to look
//! up as an [`Unhashed`] dentry, finds the inode (if any) and ends with
//! [`Unhashed::splice_alias`] (C `d_splice_alias()`), which hashes the dentry, positive or
//! negative. The root dentry is made by the abstraction (`d_make_root()`) from the inode returned
//! by [`FileSystem::init_root`].
//!
//! ```ignore
//! fn lookup(dir: &INode<MyFs>, dentry: Unhashed<'_, MyFs>, _flags: u32)
//!     -> Result<Option<ARef<DEntry<MyFs>>>> {
//!     let inode = match dir.data().find(dentry.name()) {
//!         Some(ino) => Some(my_iget(dir.super_block(), ino)?),
//!         None => None,
//!     };
//!     dentry.splice_alias(inode)
//! }
//! ```

use crate::{
    bindings,
    error::{from_err_ptr, Result},
    fs::{fs_context::FileSystem, inode::INode},
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::{marker::PhantomData, ptr::NonNull};

/// A directory entry of filesystem `T`.
///
/// # Invariants
///
/// `self.0` is a live `struct dentry` of a superblock of type `T`, kept alive by a reference
/// (`d_lockref`) for as long as the `DEntry` is borrowed or an [`ARef`] to it exists.
#[repr(transparent)]
pub struct DEntry<T: FileSystem>(Opaque<bindings::dentry>, PhantomData<T>);

// SAFETY: Dentries may be used and released (`dput`) on any thread.
unsafe impl<T: FileSystem> Send for DEntry<T> {}
// SAFETY: The shared accessors use the VFS's own synchronisation.
unsafe impl<T: FileSystem> Sync for DEntry<T> {}

// SAFETY: The type invariant guarantees a live dentry; `dget`/`dput` manage its count.
unsafe impl<T: FileSystem> AlwaysRefCounted for DEntry<T> {
    fn inc_ref(&self) {
        // SAFETY: The existence of `&self` means the reference count is non-zero.
        unsafe { bindings::dget(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller passes ownership of one reference.
        unsafe { bindings::dput(obj.as_ptr().cast()) };
    }
}

impl<T: FileSystem> DEntry<T> {
    /// Creates a reference to a [`DEntry`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must satisfy the type invariants for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: `DEntry` is `repr(transparent)`; the caller guarantees the invariants.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw `struct dentry` pointer.
    pub fn as_raw(&self) -> *mut bindings::dentry {
        self.0.get()
    }
}

/// A new dentry passed to `lookup`: not hashed yet, its name stable.
///
/// # Invariants
///
/// `dentry` is a new, unhashed dentry of a superblock of type `T` passed to `lookup`, valid for
/// `'a`, whose name does not change during `'a`.
pub struct Unhashed<'a, T: FileSystem> {
    dentry: &'a DEntry<T>,
}

impl<'a, T: FileSystem> Unhashed<'a, T> {
    /// # Safety
    ///
    /// `ptr` must satisfy the type invariants for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::dentry) -> Self {
        // SAFETY: The caller guarantees that `ptr` is a valid dentry of type `T` for `'a`.
        let dentry = unsafe { DEntry::from_raw(ptr) };
        // INVARIANT: Guaranteed by the caller.
        Self { dentry }
    }

    /// Returns the name being looked up (without NUL terminator).
    pub fn name(&self) -> &'a [u8] {
        let d = self.dentry.as_raw();
        // SAFETY: By the type invariant the dentry is valid and its name is stable for `'a`;
        // `d_name.name` points to `d_name.len` bytes.
        unsafe {
            let mut len = 0u32;
            let name = bindings::dentry_name(d, &mut len);
            core::slice::from_raw_parts(name, len as usize)
        }
    }

    /// Attaches `inode` (or nothing: a negative dentry) to the dentry and hashes it
    /// (C `d_splice_alias()`).
    ///
    /// Returns the dentry to use instead of the one passed to `lookup`, if the inode is a
    /// directory that already has one; `lookup` returns this value.
    pub fn splice_alias(self, inode: Option<ARef<INode<T>>>) -> Result<Option<ARef<DEntry<T>>>> {
        let inode = inode.map_or(core::ptr::null_mut(), |i| ARef::into_raw(i).as_ptr().cast());
        // SAFETY: The dentry is the unhashed one passed to `lookup` (type invariant); `inode` is
        // NULL or an inode of the same superblock whose reference `d_splice_alias` takes over
        // (also on error). It returns NULL, an error or a new dentry reference.
        let ret = from_err_ptr(unsafe { bindings::d_splice_alias(inode, self.dentry.as_raw()) })?;
        // SAFETY: A non-NULL result is a dentry of this superblock with a reference we own.
        Ok(NonNull::new(ret).map(|d| unsafe { ARef::from_raw(d.cast::<DEntry<T>>()) }))
    }
}
