// SPDX-License-Identifier: GPL-2.0

//! Directory file operations (`struct file_operations` with `iterate_shared`) and
//! `struct dir_context`.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h).
//!
//! # How a filesystem uses this module
//!
//! It implements [`FileOperations::iterate_shared`] and installs it on directory inodes with
//! [`NewINode::set_file_ops`](super::inode::NewINode::set_file_ops); `llseek` is
//! `generic_file_llseek` and `read` is `generic_read_dir` (`EISDIR`). The position
//! ([`DirContext::pos`]) is the filesystem's to define; positions 0 and 1 are `.` and `..`
//! ([`DirContext::emit_dots`]). Using `2 + index of the entry` keeps positions valid across
//! calls and `lseek`, because a read-only directory never changes.
//!
//! ```ignore
//! fn iterate_shared(file: &File, dir: &INode<MyFs>, ctx: &mut DirContext<'_>) -> Result {
//!     if !ctx.emit_dots(file) { return Ok(()); }
//!     for e in dir.data().entries().skip((ctx.pos() - 2) as usize) {
//!         if !ctx.emit(e.name, e.ino, DirEntryType::from_mode(e.mode)) { break; }
//!         ctx.advance(1);
//!     }
//!     Ok(())
//! }
//! ```

use crate::{
    bindings,
    error::{from_result, Result, VTABLE_DEFAULT_ERROR},
    fs::{fs_context::FileSystem, inode::INode, File},
    prelude::*,
    types::Opaque,
};
use core::marker::PhantomData;

/// Type of a directory entry (`DT_*`, `include/linux/fs_dirent.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DirEntryType {
    /// Unknown.
    Unknown = 0,
    /// FIFO.
    Fifo = 1,
    /// Character device.
    Chr = 2,
    /// Directory.
    Dir = 4,
    /// Block device.
    Blk = 6,
    /// Regular file.
    Reg = 8,
    /// Symbolic link.
    Lnk = 10,
    /// Socket.
    Sock = 12,
}

impl DirEntryType {
    /// Returns the type of the entry for an inode of mode `mode` (C `fs_umode_to_dtype()`).
    pub fn from_mode(mode: u16) -> Self {
        match (mode >> 12) & 0xf {
            1 => Self::Fifo,
            2 => Self::Chr,
            4 => Self::Dir,
            6 => Self::Blk,
            8 => Self::Reg,
            10 => Self::Lnk,
            12 => Self::Sock,
            _ => Self::Unknown,
        }
    }
}

/// The state of a `readdir` call (`struct dir_context`).
///
/// # Invariants
///
/// `self.0` is the valid `struct dir_context` passed to `iterate_shared`, exclusively ours for
/// the borrow.
#[repr(transparent)]
pub struct DirContext(Opaque<bindings::dir_context>);

impl DirContext {
    /// Returns the current position.
    pub fn pos(&self) -> i64 {
        // SAFETY: By the type invariant the context is valid and ours.
        unsafe { (*self.0.get()).pos }
    }

    /// Sets the position of the next entry.
    pub fn set_pos(&mut self, pos: i64) {
        // SAFETY: By the type invariant the context is valid and ours.
        unsafe { (*self.0.get()).pos = pos };
    }

    /// Advances the position by `n`.
    pub fn advance(&mut self, n: i64) {
        self.set_pos(self.pos().saturating_add(n));
    }

    /// Emits one entry at the current position (C `dir_emit()`). Returns `false` when the caller's
    /// buffer is full: the filesystem must then stop without advancing the position.
    pub fn emit(&mut self, name: &[u8], ino: u64, dtype: DirEntryType) -> bool {
        let Ok(len) = i32::try_from(name.len()) else {
            return false;
        };
        // SAFETY: The context is valid and ours; `name` is valid for `len` bytes during the call.
        unsafe { bindings::dir_emit(self.0.get(), name.as_ptr().cast(), len, ino, dtype as u32) }
    }

    /// Emits `.` and `..` if the position is below 2 (C `dir_emit_dots()`), advancing the
    /// position. Returns `false` when the caller's buffer is full.
    pub fn emit_dots(&mut self, file: &File) -> bool {
        // SAFETY: The context is valid and ours; `file` is the open directory being read.
        unsafe { bindings::dir_emit_dots(file.as_ptr(), self.0.get()) }
    }
}

/// The file operations of a directory (`struct file_operations`).
#[vtable]
pub trait FileOperations {
    /// The filesystem whose directories these operations serve.
    type FileSystem: FileSystem;

    /// Reads directory entries from the position in `ctx` (`iterate_shared`, called with the
    /// directory's `i_rwsem` held shared).
    fn iterate_shared(
        _file: &File,
        _dir: &INode<Self::FileSystem>,
        _ctx: &mut DirContext,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `struct file_operations` table of `F`.
pub(crate) struct Tables<F: FileOperations>(PhantomData<F>);

impl<F: FileOperations> Tables<F> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        llseek: Some(bindings::generic_file_llseek),
        read: Some(bindings::generic_read_dir),
        iterate_shared: if F::HAS_ITERATE_SHARED {
            Some(Self::iterate_shared_callback)
        } else {
            None
        },
        // SAFETY: All other fields are optional function pointers or flags, for which all-zero
        // is valid.
        ..unsafe { core::mem::zeroed() }
    };

    pub(crate) const fn build() -> &'static bindings::file_operations {
        &Self::FOPS
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn iterate_shared_callback(
        file: *mut bindings::file,
        ctx: *mut bindings::dir_context,
    ) -> crate::ffi::c_int {
        from_result(|| {
            // SAFETY: The VFS passes an open file with a reference held during the call.
            let f = unsafe { File::from_raw_file(file) };
            // SAFETY: The file's inode is an initialised inode of our filesystem (only
            // `NewINode::set_file_ops` installs this table) and is pinned by the open file.
            let dir = unsafe { INode::<F::FileSystem>::from_raw(bindings::file_inode(file)) };
            // SAFETY: `ctx` is valid and exclusively ours during the call; `DirContext` is
            // `repr(transparent)`.
            let ctx = unsafe { &mut *ctx.cast::<DirContext>() };
            F::iterate_shared(f, dir, ctx)?;
            Ok(0)
        })
    }
}

#[macros::kunit_tests(rust_fs_dir)]
mod tests {
    use super::*;

    #[test]
    fn dtype_from_mode() {
        assert_eq!(DirEntryType::from_mode(0o040755), DirEntryType::Dir);
        assert_eq!(DirEntryType::from_mode(0o100644), DirEntryType::Reg);
        assert_eq!(DirEntryType::from_mode(0o120777), DirEntryType::Lnk);
        assert_eq!(DirEntryType::from_mode(0o020600), DirEntryType::Chr);
        assert_eq!(DirEntryType::from_mode(0o060600), DirEntryType::Blk);
        assert_eq!(DirEntryType::from_mode(0o010600), DirEntryType::Fifo);
        assert_eq!(DirEntryType::from_mode(0o140600), DirEntryType::Sock);
        assert_eq!(DirEntryType::from_mode(0o000600), DirEntryType::Unknown);
    }
}
