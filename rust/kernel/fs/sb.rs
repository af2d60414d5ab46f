// SPDX-License-Identifier: GPL-2.0

//! Superblocks (`struct super_block`) and superblock operations (`struct super_operations`).
//!
//! C headers: [`include/linux/fs/super_types.h`](srctree/include/linux/fs/super_types.h),
//! [`include/linux/statfs.h`](srctree/include/linux/statfs.h).
//!
//! # How a filesystem uses this module
//!
//! - In [`FileSystem::fill_super`] it configures the [`NewSuperBlock`] (magic, block size, maximum
//!   file size, time granularity, xattr handlers). The superblock is always read-only
//!   (`SB_RDONLY`).
//! - Everywhere else it gets a [`SuperBlock<T>`], from which [`SuperBlock::data`] returns the
//!   per-superblock data and [`SuperBlock::iget_locked`] gets or creates inodes.
//! - It implements [`SuperOperations`] for `statfs` and `show_options`. `alloc_inode` and
//!   `free_inode` are provided by the abstraction (they manage the typed per-inode data), and
//!   eviction is the VFS default (`truncate_inode_pages_final` + `clear_inode`), which is all a
//!   read-only filesystem without on-disk state needs.

use crate::{
    bindings,
    error::{from_result, Result, VTABLE_DEFAULT_ERROR},
    fs::{
        fs_context::FileSystem,
        inode::{self, INode, NewINode},
        xattr,
    },
    prelude::*,
    seq_file::SeqFile,
    sync::aref::ARef,
    types::Opaque,
};
use core::{ffi::c_int, marker::PhantomData};

/// A superblock of filesystem type `T` whose per-superblock data is set.
///
/// # Invariants
///
/// `self.0` is a live `struct super_block` of filesystem type `T` (allocated by
/// [`FileSystem::fill_super`]'s caller) and its `s_fs_info` points to a `T::Data` owned by it.
/// Both stay valid while a reference to the `SuperBlock` exists: the VFS keeps the superblock
/// alive while any inode, dentry or open file of it is in use, and `kill_sb` drops the data only
/// after all of those are gone.
#[repr(transparent)]
pub struct SuperBlock<T: FileSystem>(Opaque<bindings::super_block>, PhantomData<T>);

impl<T: FileSystem> SuperBlock<T> {
    /// Creates a reference to a [`SuperBlock`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be a superblock of type `T` whose `s_fs_info` is set by `fill_super`, valid for
    /// `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is `repr(transparent)` over the C struct; the caller guarantees
        // the type invariants for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw `struct super_block` pointer.
    pub fn as_raw(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// Returns the per-superblock data returned by [`FileSystem::fill_super`].
    pub fn data(&self) -> &T::Data {
        // SAFETY: By the type invariant `s_fs_info` points to a `T::Data` that outlives `self`;
        // it is only accessed through shared references until `kill_sb`.
        unsafe { &*(*self.as_raw()).s_fs_info.cast::<T::Data>() }
    }

    /// Gets the inode `ino` of this superblock from the inode cache, or allocates a new, locked
    /// one (C `iget_locked()`) for the caller to initialise.
    pub fn iget_locked(&self, ino: u64) -> Result<inode::IGet<T>> {
        // SAFETY: `self.as_raw()` is a live superblock (type invariant); `iget_locked` returns a
        // referenced inode or NULL on allocation failure.
        let ptr = unsafe { bindings::iget_locked(self.as_raw(), ino) };
        let ptr = core::ptr::NonNull::new(ptr).ok_or(ENOMEM)?;
        // SAFETY: `ptr` is valid and we own one reference to it.
        let state = unsafe { bindings::inode_state_read_once(ptr.as_ptr()) };
        if state & bindings::inode_state_flags_enum_I_NEW != 0 {
            // SAFETY: The inode is new (`I_NEW`), locked, belongs to `self` (so it was allocated
            // by our `alloc_inode`), and we own its only reference.
            Ok(inode::IGet::New(unsafe { NewINode::from_raw(ptr) }))
        } else {
            // SAFETY: The inode is not new, so it was initialised by `NewINode::init` (or waiting
            // for that happened in `iget_locked`); we transfer our reference to the `ARef`.
            Ok(inode::IGet::Cached(unsafe {
                ARef::from_raw(ptr.cast::<INode<T>>())
            }))
        }
    }
}

// SAFETY: The C side allows superblocks to be used from any thread; `T::Data` is `Send + Sync`.
unsafe impl<T: FileSystem> Send for SuperBlock<T> {}
// SAFETY: As above; the shared accessors only read fields that are constant after mount.
unsafe impl<T: FileSystem> Sync for SuperBlock<T> {}

/// A superblock being set up by [`FileSystem::fill_super`]: no data, no root, not yet visible.
///
/// # Invariants
///
/// `sb` is a new superblock of type `T`, exclusively owned by the `fill_super` call that lives
/// for `'a`.
pub struct NewSuperBlock<'a, T: FileSystem> {
    sb: *mut bindings::super_block,
    _p: PhantomData<(&'a mut bindings::super_block, T)>,
}

/// The largest file size the page cache can address on this architecture
/// (`MAX_LFS_FILESIZE`): the default and the upper bound of `s_maxbytes`.
pub const MAX_LFS_FILESIZE: i64 = bindings::MAX_LFS_FILESIZE;

impl<'a, T: FileSystem> NewSuperBlock<'a, T> {
    /// Wraps a new superblock and applies the defaults: read-only, `PAGE_SIZE` blocks,
    /// `MAX_LFS_FILESIZE`, 1 ns time granularity, the operations of `T`.
    ///
    /// # Safety
    ///
    /// `sb` must be a new superblock of type `T` that the caller owns exclusively for `'a`.
    pub(crate) unsafe fn new(sb: *mut bindings::super_block) -> Self {
        // SAFETY: The caller guarantees exclusive access to the new superblock.
        unsafe {
            (*sb).s_flags |= bindings::SB_RDONLY as crate::ffi::c_ulong;
            (*sb).s_op = Tables::<T>::build();
            (*sb).s_maxbytes = MAX_LFS_FILESIZE;
            (*sb).s_time_gran = 1;
            (*sb).s_blocksize = bindings::PAGE_SIZE as crate::ffi::c_ulong;
            (*sb).s_blocksize_bits = bindings::PAGE_SHIFT as u8;
        }
        // INVARIANT: The caller guarantees exclusive ownership for `'a`.
        Self {
            sb,
            _p: PhantomData,
        }
    }

    /// Sets the magic number reported by `statfs` (`s_magic`).
    pub fn set_magic(&mut self, magic: u64) -> &mut Self {
        // SAFETY: By the type invariant we own the new superblock exclusively.
        unsafe { (*self.sb).s_magic = magic as crate::ffi::c_ulong };
        self
    }

    /// Sets the block size to `1 << bits` (`s_blocksize`, `s_blocksize_bits`).
    pub fn set_blocksize_bits(&mut self, bits: u8) -> Result<&mut Self> {
        if !(9..=bindings::PAGE_SHIFT as u8).contains(&bits) {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariant we own the new superblock exclusively.
        unsafe {
            (*self.sb).s_blocksize_bits = bits;
            (*self.sb).s_blocksize = 1 << bits;
        }
        Ok(self)
    }

    /// Sets the maximum file size (`s_maxbytes`), at most [`MAX_LFS_FILESIZE`].
    pub fn set_maxbytes(&mut self, max: i64) -> &mut Self {
        let max = max.clamp(0, MAX_LFS_FILESIZE);
        // SAFETY: By the type invariant we own the new superblock exclusively.
        unsafe { (*self.sb).s_maxbytes = max };
        self
    }

    /// Sets the granularity of timestamps in nanoseconds (`s_time_gran`).
    pub fn set_time_gran(&mut self, gran: u32) -> &mut Self {
        // SAFETY: By the type invariant we own the new superblock exclusively.
        unsafe { (*self.sb).s_time_gran = gran };
        self
    }

    /// Installs the extended attribute handlers of the filesystem (`s_xattr`).
    pub fn set_xattr_handlers(&mut self, handlers: &'static xattr::Handlers<T>) -> &mut Self {
        // SAFETY: By the type invariant we own the new superblock exclusively. The handler table
        // is static, NULL-terminated and immutable, as `s_xattr` requires.
        unsafe { (*self.sb).s_xattr = handlers.as_raw() };
        self
    }

    /// Sets the stacking depth (`s_stack_depth`): a filesystem that reads files of another one
    /// is one level above it (e.g. `PrivateMount::stack_depth() + 1`). Each level nests the
    /// lower filesystem's I/O in the upper one's on the same kernel stack, so depths above
    /// `FILESYSTEM_MAX_STACK_DEPTH` are refused with `EINVAL`, as overlayfs does.
    pub fn set_stack_depth(&mut self, depth: i32) -> Result<&mut Self> {
        let max = bindings::FILESYSTEM_MAX_STACK_DEPTH as i32;
        if !(0..=max).contains(&depth) {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariant we own the new superblock exclusively.
        unsafe { (*self.sb).s_stack_depth = depth };
        Ok(self)
    }

    /// Gives the superblock a backing device info of its own (`super_setup_bdi()`), with the
    /// default readahead window. Superblocks without a block device otherwise share
    /// `noop_backing_dev_info`, whose readahead window is zero: every read would then reach
    /// `read_folio` one folio at a time and `readahead` would never be called.
    ///
    /// Calling it again has no effect.
    pub fn setup_bdi(&mut self) -> Result<&mut Self> {
        // SAFETY: By the type invariant we own the new superblock exclusively.
        let noop = unsafe { (*self.sb).s_bdi == &raw mut bindings::noop_backing_dev_info };
        if !noop {
            return Ok(self);
        }
        // SAFETY: By the type invariant we own the new superblock exclusively, and it still has
        // the shared `noop_backing_dev_info` (checked above: a second bdi would leak the first);
        // the VFS frees the new bdi with the superblock.
        crate::error::to_result(unsafe { bindings::super_setup_bdi(self.sb) })?;
        Ok(self)
    }

    /// Sets the readahead window of the superblock's own backing device info (see
    /// [`Self::setup_bdi`]) to `bytes`, in whole pages: the most the VFS asks `readahead` for at
    /// once on a sequential read. `EINVAL` if the superblock has no backing device info of its
    /// own. The administrator can still change it (`/sys/class/bdi/*/read_ahead_kb`).
    pub fn set_readahead(&mut self, bytes: usize) -> Result<&mut Self> {
        // SAFETY: By the type invariant we own the new superblock exclusively.
        let bdi = unsafe { (*self.sb).s_bdi };
        if bdi.is_null() || bdi == &raw mut bindings::noop_backing_dev_info {
            return Err(EINVAL);
        }
        // SAFETY: `bdi` is the superblock's own (from `super_setup_bdi`, checked above), freed
        // with it. Its readahead window is a plain word that the VFS reads without a lock and
        // sysfs writes the same way, as this does.
        unsafe { (*bdi).ra_pages = (bytes >> crate::page::PAGE_SHIFT) as crate::ffi::c_ulong };
        Ok(self)
    }

    /// Returns the device number of the (anonymous) superblock, e.g. for `statfs`'s `f_fsid`.
    pub fn dev(&self) -> u32 {
        // SAFETY: By the type invariant the superblock is valid; `s_dev` is set by
        // `get_tree_nodev` before `fill_super` runs.
        unsafe { (*self.sb).s_dev }
    }
}

/// Values reported by `statfs(2)`, filled in by [`SuperOperations::statfs`].
///
/// The VFS zeroes the `struct kstatfs` first; the abstraction sets `f_type` from `s_magic`,
/// `f_fsid` from the device number, and `f_flags` from the mount.
#[derive(Default, Clone, Copy, Debug)]
pub struct Stat {
    /// Optimal transfer block size (`f_bsize`).
    pub bsize: i64,
    /// Total data blocks (`f_blocks`), in units of `bsize`.
    pub blocks: u64,
    /// Free blocks (`f_bfree`).
    pub bfree: u64,
    /// Free blocks available to unprivileged users (`f_bavail`).
    pub bavail: u64,
    /// Total inodes (`f_files`).
    pub files: u64,
    /// Free inodes (`f_ffree`).
    pub ffree: u64,
    /// Maximum length of file names (`f_namelen`).
    pub namelen: i64,
}

/// The superblock operations of a filesystem (`struct super_operations`).
#[vtable]
pub trait SuperOperations {
    /// The filesystem whose superblocks these operations serve.
    type FileSystem: FileSystem;

    /// Returns filesystem statistics (`statfs`).
    fn statfs(_sb: &SuperBlock<Self::FileSystem>) -> Result<Stat> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Writes the mount options of `sb` to `seq` (`show_options`), e.g. with [`show_option`].
    fn show_options(_sb: &SuperBlock<Self::FileSystem>, _seq: &SeqFile) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// Writes `,name` or `,name=value` to `seq`, escaping the value as `mount` expects
/// (C `seq_show_option()`).
pub fn show_option(seq: &SeqFile, name: &CStr, value: Option<&CStr>) {
    let value = value.map_or(core::ptr::null(), |v| v.as_char_ptr());
    // SAFETY: `SeqFile` is a `repr(transparent)` wrapper of a valid `struct seq_file`; `name` and
    // `value` (if not NULL) are NUL-terminated strings valid for the call.
    unsafe {
        bindings::seq_show_option(
            core::ptr::from_ref(seq).cast_mut().cast(),
            name.as_char_ptr(),
            value,
        )
    };
}

/// The `struct super_operations` of a filesystem.
pub(crate) struct Tables<T: FileSystem>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    const SUPER_OPS: bindings::super_operations = bindings::super_operations {
        alloc_inode: Some(inode::alloc_inode_callback::<T>),
        free_inode: Some(inode::free_inode_callback::<T>),
        statfs: if <T::SuperOps as SuperOperations>::HAS_STATFS {
            Some(Self::statfs_callback)
        } else {
            None
        },
        show_options: if <T::SuperOps as SuperOperations>::HAS_SHOW_OPTIONS {
            Some(Self::show_options_callback)
        } else {
            None
        },
        // SAFETY: All other fields are optional function pointers, for which all-zero (`None`)
        // is valid and means the VFS default.
        ..unsafe { core::mem::zeroed() }
    };

    pub(crate) const fn build() -> &'static bindings::super_operations {
        &Self::SUPER_OPS
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn statfs_callback(
        dentry: *mut bindings::dentry,
        buf: *mut bindings::kstatfs,
    ) -> c_int {
        from_result(|| {
            // SAFETY: The VFS passes a valid dentry of a mounted superblock of type `T` (whose
            // data is set) and holds a reference to it for the duration of the call.
            let sb_ptr = unsafe { (*dentry).d_sb };
            // SAFETY: See above.
            let sb = unsafe { SuperBlock::<T>::from_raw(sb_ptr) };
            let stat = T::SuperOps::statfs(sb)?;
            // SAFETY: `buf` is a valid, zeroed `kstatfs` owned by the caller; `sb_ptr` is valid.
            unsafe {
                let dev = (*sb_ptr).s_dev;
                (*buf).f_type = (*sb_ptr).s_magic as crate::ffi::c_long;
                (*buf).f_bsize = stat.bsize as crate::ffi::c_long;
                (*buf).f_blocks = stat.blocks;
                (*buf).f_bfree = stat.bfree;
                (*buf).f_bavail = stat.bavail;
                (*buf).f_files = stat.files;
                (*buf).f_ffree = stat.ffree;
                (*buf).f_namelen = stat.namelen as crate::ffi::c_long;
                // The encoding of `huge_encode_dev()` for a 32-bit `dev_t`, split like
                // `u64_to_fsid()`.
                let (major, minor) = (dev >> 20, dev & 0xfffff);
                let enc = u64::from((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12));
                (*buf).f_fsid.val = [enc as i32, (enc >> 32) as i32];
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn show_options_callback(
        seq: *mut bindings::seq_file,
        dentry: *mut bindings::dentry,
    ) -> c_int {
        from_result(|| {
            // SAFETY: The VFS passes the root dentry of a mounted superblock of type `T`, valid
            // during the call.
            let sb = unsafe { SuperBlock::<T>::from_raw((*dentry).d_sb) };
            // SAFETY: `seq` is a valid seq_file for the duration of the call.
            let seq = unsafe { SeqFile::from_raw(seq) };
            T::SuperOps::show_options(sb, seq)?;
            Ok(0)
        })
    }
}

impl<T: FileSystem> INode<T> {
    /// Returns the superblock the inode belongs to.
    pub fn super_block(&self) -> &SuperBlock<T> {
        // SAFETY: `i_sb` of a live inode is constant and its superblock outlives the inode; it
        // is of type `T` with data set by the invariants of `INode`.
        unsafe { SuperBlock::from_raw((*self.as_raw()).i_sb) }
    }
}
