// SPDX-License-Identifier: GPL-2.0

//! Inodes (`struct inode`) with typed per-inode data, and inode operations
//! (`struct inode_operations`).
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h).
//!
//! # How a filesystem uses this module
//!
//! Inodes of a filesystem `T` are allocated from `T`'s own `kmem_cache` (owned by its
//! [`Registration`]); each object holds the `struct inode`
//! followed by a `T::INodeData`. A filesystem gets an inode by number with
//! [`SuperBlock::iget_locked`](super::sb::SuperBlock::iget_locked):
//!
//! - [`IGet::Cached`]: the inode was in the inode cache, already initialised.
//! - [`IGet::New`]: a new, locked (`I_NEW`) inode. The filesystem sets its attributes and
//!   operations on the [`NewINode`] and calls [`NewINode::init`] with the per-inode data, which
//!   unlocks it (`unlock_new_inode()`). Dropping a [`NewINode`] instead (e.g. on `?`) calls
//!   `iget_failed()`, so every error path releases the inode.
//!
//! The per-inode data is dropped in `free_inode`, after an RCU grace period, so RCU path walk
//! may read it. Inode references are [`ARef<INode<T>>`] (`ihold()`/`iput()`).
//!
//! ```ignore
//! fn my_iget(sb: &SuperBlock<MyFs>, ino: u64) -> Result<ARef<INode<MyFs>>> {
//!     let mut new = match sb.iget_locked(ino)? {
//!         IGet::Cached(inode) => return Ok(inode),
//!         IGet::New(new) => new,
//!     };
//!     let md = sb.data().find(ino)?;           // errors drop `new`: iget_failed()
//!     new.set_mode(md.mode).set_uid(md.uid).set_gid(md.gid).set_nlink(md.nlink);
//!     match md.mode & S_IFMT {
//!         S_IFDIR => { new.set_inode_ops::<MyDirOps>().set_file_ops::<MyDirOps>(); }
//!         S_IFREG => { new.set_size(md.size).set_generic_ro_file_ops().set_aops::<MyAops>(); }
//!         _ => { new.init_special(md.mode, md.rdev)?; }
//!     }
//!     Ok(new.init(MyInode { .. }))
//! }
//! ```

use crate::{
    bindings,
    error::{from_result, Result, VTABLE_DEFAULT_ERROR},
    fs::{
        address_space::{self, AddressSpaceOperations},
        dentry::{DEntry, Unhashed},
        dir::{self, FileOperations},
        fs_context::{FileSystem, Registration},
        xattr,
    },
    prelude::*,
    sync::aref::{ARef, AlwaysRefCounted},
    types::Opaque,
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::{ManuallyDrop, MaybeUninit},
    ptr::{self, NonNull},
};

/// File type bits of a mode (`S_IFMT` and friends, `include/uapi/linux/stat.h`).
pub mod mode {
    /// Mask of the file type bits.
    pub const S_IFMT: u16 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u16 = 0o140000;
    /// Symbolic link.
    pub const S_IFLNK: u16 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u16 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u16 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u16 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u16 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u16 = 0o010000;
    /// Permission bits including set-user-ID, set-group-ID and sticky.
    pub const S_IALLUGO: u16 = 0o7777;
}

/// The object in `T`'s inode cache: the VFS inode and the filesystem's data.
///
/// # Invariants
///
/// `data` is initialised if and only if `has_data` is true; `cache` is the cache the object
/// was allocated from.
#[repr(C)]
struct INodeWithData<D> {
    inode: bindings::inode,
    cache: *mut bindings::kmem_cache,
    has_data: bool,
    data: MaybeUninit<D>,
}

/// The `kmem_cache` of a filesystem's inodes.
///
/// # Invariants
///
/// `cache` is a valid cache of `INodeWithData<T::INodeData>` objects.
pub(crate) struct INodeCache<T: FileSystem> {
    cache: NonNull<bindings::kmem_cache>,
    _p: PhantomData<T>,
}

/// Flags of the inode cache: reclaimable, accounted to memcg, spread over cpusets, as C
/// filesystems use (`SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT` in `include/linux/slab.h`).
const INODE_CACHE_FLAGS: bindings::slab_flags_t =
    bindings::SLAB_RECLAIM_ACCOUNT | bindings::SLAB_ACCOUNT;

impl<T: FileSystem> INodeCache<T> {
    /// Creates the inode cache, named after the filesystem.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        let size = u32::try_from(core::mem::size_of::<INodeWithData<T::INodeData>>())?;
        let align = u32::try_from(core::mem::align_of::<INodeWithData<T::INodeData>>())?;
        // SAFETY: All-zero is a valid `kmem_cache_args` ("unused" for every field).
        let mut args: bindings::kmem_cache_args = unsafe { core::mem::zeroed() };
        args.align = align;
        args.ctor = Some(Self::inode_init_once_callback);
        // SAFETY: `name` is a static NUL-terminated string (the cache keeps the pointer); `args`
        // is valid for the call.
        let cache = unsafe {
            bindings::__kmem_cache_create_args(
                name.as_char_ptr(),
                size,
                &mut args,
                INODE_CACHE_FLAGS,
            )
        };
        // INVARIANT: The cache was created for objects of this type.
        Ok(Self {
            cache: NonNull::new(cache).ok_or(ENOMEM)?,
            _p: PhantomData,
        })
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::kmem_cache {
        self.cache.as_ptr()
    }

    /// The slab constructor: initialises the parts of the inode that survive reuse.
    ///
    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn inode_init_once_callback(obj: *mut c_void) {
        let obj = obj.cast::<INodeWithData<T::INodeData>>();
        // SAFETY: The slab allocator passes a new object of the cache's size and alignment.
        unsafe { bindings::inode_init_once(&raw mut (*obj).inode) };
    }
}

impl<T: FileSystem> Drop for INodeCache<T> {
    fn drop(&mut self) {
        // SAFETY: `rcu_barrier` has no preconditions; it waits for the RCU-delayed
        // `free_inode` calls still pending, which free objects into this cache.
        unsafe { bindings::rcu_barrier() };
        // SAFETY: By the type invariant the cache is valid, and no object is allocated from it:
        // the filesystem is unregistered and all its inodes were freed (see above).
        unsafe { bindings::kmem_cache_destroy(self.cache.as_ptr()) };
    }
}

/// `super_operations::alloc_inode` for filesystem `T`.
///
/// # Safety
///
/// Only called by the C side as the operation it is installed as, with the arguments
/// its C prototype documents as valid for the duration of the call.
pub(crate) unsafe extern "C" fn alloc_inode_callback<T: FileSystem>(
    sb: *mut bindings::super_block,
) -> *mut bindings::inode {
    // SAFETY: The VFS calls `alloc_inode` with a live superblock of our type.
    let cache = unsafe { Registration::<T>::inode_cache_of(sb) };
    // SAFETY: `cache` is the inode cache of `T` and `sb` is valid.
    let obj = unsafe { bindings::alloc_inode_sb(sb, cache, bindings::GFP_KERNEL) }
        .cast::<INodeWithData<T::INodeData>>();
    if obj.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `obj` is a new object of the right type; the constructor initialised the inode.
    // INVARIANT: No data yet.
    unsafe {
        (*obj).cache = cache;
        (*obj).has_data = false;
        &raw mut (*obj).inode
    }
}

/// `super_operations::free_inode` for filesystem `T`. Called after an RCU grace period.
///
/// # Safety
///
/// Only called by the C side as the operation it is installed as, with the arguments
/// its C prototype documents as valid for the duration of the call.
pub(crate) unsafe extern "C" fn free_inode_callback<T: FileSystem>(inode: *mut bindings::inode) {
    // SAFETY: `inode` was allocated by `alloc_inode_callback::<T>`, so it is the `inode` field of
    // an `INodeWithData<T::INodeData>`.
    let obj = unsafe { crate::container_of!(inode, INodeWithData<T::INodeData>, inode) };
    // SAFETY: The VFS calls `free_inode` once, when no reference to the inode remains and an RCU
    // grace period has passed, so we own the object.
    unsafe {
        if (*obj).has_data {
            (*obj).data.assume_init_drop();
        }
        bindings::kmem_cache_free((*obj).cache, obj.cast());
    }
}

/// An initialised inode of filesystem `T`.
///
/// # Invariants
///
/// `self.0` is a live `struct inode` of a superblock of type `T` (whose data is set), allocated
/// by `alloc_inode_callback::<T>`, whose per-inode data is initialised. The VFS keeps it alive
/// while a reference is held ([`ARef`], or the borrow of an operation's argument).
#[repr(transparent)]
pub struct INode<T: FileSystem>(Opaque<bindings::inode>, PhantomData<T>);

// SAFETY: Inodes may be used and released (`iput`) from any thread; `T::INodeData` is
// `Send + Sync`.
unsafe impl<T: FileSystem> Send for INode<T> {}
// SAFETY: As above; shared methods only read fields that are constant after initialisation or
// use the C accessors' own synchronisation.
unsafe impl<T: FileSystem> Sync for INode<T> {}

// SAFETY: The type invariants guarantee the inode is live; `ihold`/`iput` manage `i_count`.
unsafe impl<T: FileSystem> AlwaysRefCounted for INode<T> {
    fn inc_ref(&self) {
        // SAFETY: The existence of `&self` means `i_count` is non-zero.
        unsafe { bindings::ihold(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller passes ownership of one reference.
        unsafe { bindings::iput(obj.as_ptr().cast()) };
    }
}

impl<T: FileSystem> INode<T> {
    /// Creates a reference to an [`INode`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must satisfy the type invariants for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::inode) -> &'a Self {
        // SAFETY: `INode` is `repr(transparent)`; the caller guarantees the invariants.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw `struct inode` pointer.
    pub fn as_raw(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// Returns the per-inode data given to [`NewINode::init`].
    pub fn data(&self) -> &T::INodeData {
        // SAFETY: By the type invariant the inode is the `inode` field of an initialised
        // `INodeWithData`, whose data lives until `free_inode`, after every reference is gone.
        unsafe {
            let obj = crate::container_of!(self.as_raw(), INodeWithData<T::INodeData>, inode);
            (*obj).data.assume_init_ref()
        }
    }

    /// Returns the inode number (`i_ino`).
    pub fn ino(&self) -> u64 {
        // SAFETY: `i_ino` is constant after `iget_locked`.
        unsafe { (*self.as_raw()).i_ino }
    }

    /// Returns the mode (`i_mode`), file type and permission bits.
    pub fn mode(&self) -> u16 {
        // SAFETY: `i_mode` is set before `unlock_new_inode` and never changed by a read-only fs.
        unsafe { (*self.as_raw()).i_mode }
    }

    /// Returns the file size (`i_size_read()`).
    pub fn size(&self) -> i64 {
        // SAFETY: The inode is live; `i_size_read` handles concurrent updates.
        unsafe { bindings::i_size_read(self.as_raw()) }
    }
}

/// Result of [`SuperBlock::iget_locked`](super::sb::SuperBlock::iget_locked).
pub enum IGet<T: FileSystem> {
    /// The inode was already cached and initialised.
    Cached(ARef<INode<T>>),
    /// A new inode that the caller must initialise.
    New(NewINode<T>),
}

/// A new, locked (`I_NEW`) inode being initialised.
///
/// Dropping it without calling [`NewINode::init`] calls `iget_failed()`, which marks the inode
/// bad, unlocks it and drops the reference.
///
/// # Invariants
///
/// `inode` was returned by `iget_locked` with `I_NEW` set for a superblock of type `T` (data
/// set); we own its reference and are the only one initialising it; its data is not set.
pub struct NewINode<T: FileSystem> {
    inode: NonNull<bindings::inode>,
    _p: PhantomData<T>,
}

/// A point in time, seconds and nanoseconds since the epoch.
#[derive(Default, Clone, Copy, Debug)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds, below 1 000 000 000.
    pub nsec: u32,
}

impl<T: FileSystem> NewINode<T> {
    /// # Safety
    ///
    /// `inode` must satisfy the type invariants.
    pub(crate) unsafe fn from_raw(inode: NonNull<bindings::inode>) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            inode,
            _p: PhantomData,
        }
    }

    fn raw(&mut self) -> *mut bindings::inode {
        self.inode.as_ptr()
    }

    /// Returns the inode number.
    pub fn ino(&self) -> u64 {
        // SAFETY: The inode is valid; `i_ino` was set by `iget_locked`.
        unsafe { (*self.inode.as_ptr()).i_ino }
    }

    /// Returns the superblock of the inode.
    pub fn super_block(&self) -> &super::sb::SuperBlock<T> {
        // SAFETY: By the type invariant the superblock is of type `T` with data set, and it
        // outlives its inodes.
        unsafe { super::sb::SuperBlock::from_raw((*self.inode.as_ptr()).i_sb) }
    }

    /// Sets the mode (`i_mode`): file type and permission bits, including set-user-ID,
    /// set-group-ID and sticky. Bits outside `S_IFMT | S_IALLUGO` are ignored.
    pub fn set_mode(&mut self, m: u16) -> &mut Self {
        // SAFETY: We own the new inode exclusively (type invariant).
        unsafe { (*self.raw()).i_mode = m & (mode::S_IFMT | mode::S_IALLUGO) };
        self
    }

    /// Sets the owner from a user ID of the initial user namespace (the superblock's).
    pub fn set_uid(&mut self, uid: u32) -> &mut Self {
        // SAFETY: We own the new inode exclusively; `i_uid_write` maps through `i_user_ns()`,
        // which is `init_user_ns` because `FS_USERNS_MOUNT` is refused.
        unsafe { bindings::i_uid_write(self.raw(), uid) };
        self
    }

    /// Sets the group from a group ID of the initial user namespace.
    pub fn set_gid(&mut self, gid: u32) -> &mut Self {
        // SAFETY: As for `set_uid`.
        unsafe { bindings::i_gid_write(self.raw(), gid) };
        self
    }

    /// Sets the file size (`i_size`) and the number of 512-byte blocks it occupies (`i_blocks`).
    pub fn set_size(&mut self, size: i64) -> &mut Self {
        let blocks = (size.max(0) as u64).div_ceil(512);
        // SAFETY: We own the new inode exclusively.
        unsafe {
            bindings::i_size_write(self.raw(), size);
            (*self.raw()).i_blocks = blocks;
        }
        self
    }

    /// Sets the number of 512-byte blocks (`i_blocks`) explicitly.
    pub fn set_blocks(&mut self, blocks: u64) -> &mut Self {
        // SAFETY: We own the new inode exclusively.
        unsafe { (*self.raw()).i_blocks = blocks };
        self
    }

    /// Sets the link count (`set_nlink()`).
    pub fn set_nlink(&mut self, nlink: u32) -> &mut Self {
        // SAFETY: We own the new inode exclusively.
        unsafe { bindings::set_nlink(self.raw(), nlink) };
        self
    }

    /// Sets access, modification and change times.
    pub fn set_times(&mut self, atime: Timespec, mtime: Timespec, ctime: Timespec) -> &mut Self {
        // SAFETY: We own the new inode exclusively.
        unsafe {
            bindings::inode_set_atime(self.raw(), atime.sec, atime.nsec as crate::ffi::c_long);
            bindings::inode_set_mtime(self.raw(), mtime.sec, mtime.nsec as crate::ffi::c_long);
            bindings::inode_set_ctime(self.raw(), ctime.sec, ctime.nsec as crate::ffi::c_long);
        }
        self
    }

    /// Makes the inode a FIFO, socket or device node (`init_special_inode()`), with `rdev` in
    /// the kernel's `dev_t` encoding (`MKDEV(major, minor)` = `major << 20 | minor`).
    pub fn init_special(&mut self, m: u16, rdev: u32) -> Result<&mut Self> {
        match m & mode::S_IFMT {
            mode::S_IFIFO | mode::S_IFSOCK | mode::S_IFCHR | mode::S_IFBLK => {}
            _ => return Err(EINVAL),
        }
        // SAFETY: We own the new inode exclusively; the mode is a special file type, for which
        // `init_special_inode` installs the VFS's own file operations.
        unsafe {
            bindings::init_special_inode(self.raw(), m & (mode::S_IFMT | mode::S_IALLUGO), rdev)
        };
        Ok(self)
    }

    /// Sets the inode operations (`i_op`) to those of `I`.
    pub fn set_inode_ops<I: InodeOperations<FileSystem = T>>(&mut self) -> &mut Self {
        // SAFETY: We own the new inode exclusively; the table is static.
        unsafe { (*self.raw()).i_op = Tables::<I>::build() };
        self
    }

    /// Makes the inode a symbolic link whose target is `target`, served by `simple_get_link()`
    /// from `i_link`, with the other inode operations (e.g. `listxattr`) of `I`.
    ///
    /// # Safety
    ///
    /// `target` must stay valid and unchanged until the inode is freed, which is after an RCU
    /// grace period that follows its eviction (RCU path walks may still read `i_link` until
    /// then). Memory owned by the inode's own data (`T::INodeData`, dropped in `free_inode`)
    /// satisfies this. Per-superblock data does not: it is dropped at `kill_sb`, before the
    /// RCU-delayed frees of the superblock's last inodes.
    pub unsafe fn set_i_link<I: InodeOperations<FileSystem = T>>(
        &mut self,
        target: &CStr,
    ) -> &mut Self {
        // SAFETY: We own the new inode exclusively; the caller guarantees that `target`
        // outlives the inode; the table is static.
        unsafe {
            bindings::inode_set_i_link(self.raw(), target.as_char_ptr().cast_mut());
            (*self.raw()).i_op = Tables::<I>::build_i_link();
        }
        self
    }

    /// Sets the file operations (`i_fop`) to those of `F` (for directories: `iterate_shared`).
    pub fn set_file_ops<F: FileOperations<FileSystem = T>>(&mut self) -> &mut Self {
        // SAFETY: We own the new inode exclusively; the table is static.
        unsafe { bindings::inode_set_i_fop(self.raw(), dir::Tables::<F>::build()) };
        self
    }

    /// Sets the VFS's generic read-only file operations (`generic_ro_fops`: `read_iter`,
    /// `mmap`, `splice_read`, `llseek` over the page cache) for a regular file.
    pub fn set_generic_ro_file_ops(&mut self) -> &mut Self {
        // SAFETY: We own the new inode exclusively; `generic_ro_fops` is a static table.
        unsafe { bindings::inode_set_i_fop(self.raw(), &bindings::generic_ro_fops) };
        self
    }

    /// Sets the address space operations (`i_mapping->a_ops`) to those of `A`.
    pub fn set_aops<A: AddressSpaceOperations<FileSystem = T>>(&mut self) -> &mut Self {
        // SAFETY: We own the new inode exclusively; `i_data` is its own mapping; the table is
        // static.
        unsafe { (*self.raw()).i_data.a_ops = address_space::Tables::<A>::build() };
        self
    }

    /// Allows the page cache to use large folios for this inode (`mapping_set_large_folios()`).
    /// The [`AddressSpaceOperations`] must then fill folios of any size.
    pub fn set_large_folios(&mut self) -> &mut Self {
        // SAFETY: We own the new inode exclusively; nothing is cached in its mapping yet.
        unsafe { bindings::mapping_set_large_folios(&raw mut (*self.raw()).i_data) };
        self
    }

    /// Stores the per-inode data, unlocks the inode (`unlock_new_inode()`) and returns it.
    pub fn init(self, data: T::INodeData) -> ARef<INode<T>> {
        let me = ManuallyDrop::new(self);
        let inode = me.inode.as_ptr();
        // SAFETY: The inode was allocated by `alloc_inode_callback::<T>` (type invariant).
        let obj = unsafe { crate::container_of!(inode, INodeWithData<T::INodeData>, inode) };
        // SAFETY: We own the new inode exclusively and its data is not set (type invariant).
        // After `unlock_new_inode` others may see it, with its data set.
        // INVARIANT: `has_data` is set together with `data`.
        unsafe {
            (*obj).data.write(data);
            (*obj).has_data = true;
            bindings::unlock_new_inode(inode);
        }
        // SAFETY: The inode is initialised; we transfer our reference to the `ARef`.
        unsafe { ARef::from_raw(me.inode.cast::<INode<T>>()) }
    }
}

impl<T: FileSystem> Drop for NewINode<T> {
    fn drop(&mut self) {
        // SAFETY: The inode is new and we own its reference (type invariant); `iget_failed`
        // marks it bad, unhashes and unlocks it and drops the reference. Its data is not set, so
        // `free_inode` will not drop any.
        unsafe { bindings::iget_failed(self.inode.as_ptr()) };
    }
}

/// The inode operations of a filesystem (`struct inode_operations`).
#[vtable]
pub trait InodeOperations {
    /// The filesystem whose inodes these operations serve.
    type FileSystem: FileSystem;

    /// Looks up `dentry`'s name in directory `dir` (`lookup`).
    ///
    /// Implementations end with [`Unhashed::splice_alias`], passing `None` for a name that does
    /// not exist (a negative dentry).
    fn lookup(
        _dir: &INode<Self::FileSystem>,
        _dentry: Unhashed<'_, Self::FileSystem>,
        _flags: u32,
    ) -> Result<Option<ARef<DEntry<Self::FileSystem>>>> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Lists the names of the extended attributes of `inode` into `list` (`listxattr`).
    fn listxattr(
        _dentry: &DEntry<Self::FileSystem>,
        _inode: &INode<Self::FileSystem>,
        _list: &mut xattr::ListBuffer<'_>,
    ) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `struct inode_operations` tables of `I`.
pub(crate) struct Tables<I: InodeOperations>(PhantomData<I>);

impl<I: InodeOperations> Tables<I> {
    const IOPS: bindings::inode_operations = Self::table(None);
    const IOPS_I_LINK: bindings::inode_operations = Self::table(Some(bindings::simple_get_link));

    const fn table(
        get_link: Option<
            unsafe extern "C" fn(
                *mut bindings::dentry,
                *mut bindings::inode,
                *mut bindings::delayed_call,
            ) -> *const crate::ffi::c_char,
        >,
    ) -> bindings::inode_operations {
        bindings::inode_operations {
            lookup: if I::HAS_LOOKUP {
                Some(Self::lookup_callback)
            } else {
                None
            },
            get_link,
            listxattr: if I::HAS_LISTXATTR {
                Some(Self::listxattr_callback)
            } else {
                None
            },
            // SAFETY: All other fields are optional function pointers, for which all-zero
            // (`None`) is valid.
            ..unsafe { core::mem::zeroed() }
        }
    }

    pub(crate) const fn build() -> &'static bindings::inode_operations {
        &Self::IOPS
    }

    pub(crate) const fn build_i_link() -> &'static bindings::inode_operations {
        &Self::IOPS_I_LINK
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn lookup_callback(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        flags: u32,
    ) -> *mut bindings::dentry {
        // SAFETY: The VFS calls `lookup` on an initialised directory inode of our filesystem
        // (only `NewINode::set_inode_ops` installs this table) and holds it during the call.
        let dir = unsafe { INode::<I::FileSystem>::from_raw(dir) };
        // SAFETY: The VFS passes a new dentry that is not yet hashed, whose name is stable, with
        // the parent's `i_rwsem` held shared, for the duration of the call.
        let dentry = unsafe { Unhashed::from_raw(dentry) };
        match I::lookup(dir, dentry, flags) {
            Ok(Some(d)) => ARef::into_raw(d).as_ptr().cast(),
            Ok(None) => ptr::null_mut(),
            Err(e) => e.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn listxattr_callback(
        dentry: *mut bindings::dentry,
        buf: *mut crate::ffi::c_char,
        size: usize,
    ) -> isize {
        from_result(|| {
            // SAFETY: The VFS passes a positive dentry of our filesystem, held for the call.
            let (d, inode) = unsafe {
                (
                    DEntry::<I::FileSystem>::from_raw(dentry),
                    INode::<I::FileSystem>::from_raw((*dentry).d_inode),
                )
            };
            // SAFETY: `buf` is NULL or valid for writing `size` bytes, for the call.
            let mut list = unsafe { xattr::ListBuffer::new(buf.cast(), size) };
            I::listxattr(d, inode, &mut list)?;
            Ok(list.len() as isize)
        })
    }
}
