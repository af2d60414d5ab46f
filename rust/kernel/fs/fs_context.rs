// SPDX-License-Identifier: GPL-2.0

//! File system types and the mount API (`struct file_system_type`, `struct fs_context`).
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/fs_context.h`](srctree/include/linux/fs_context.h).
//!
//! # How a filesystem uses this module
//!
//! A read-only filesystem implements [`FileSystem`] on a (usually empty) type `T`:
//!
//! - `T::Context` is the typed result of parsing the mount parameters. It is created (with
//!   [`Default`]) by `init_fs_context`, owned by the `fs_context`, filled by
//!   [`FileSystem::parse_param`] for each parameter described by [`FileSystem::PARAMETERS`], and
//!   dropped by the context's `free` operation.
//! - [`FileSystem::fill_super`] runs from `get_tree_nodev()`. It gets the parsed context and a
//!   [`NewSuperBlock`] on which it sets the superblock's magic, block size, etc., and returns the
//!   per-superblock data `T::Data`. The data is owned by the superblock (`s_fs_info`) from then on
//!   and dropped exactly once, by `kill_sb`, after all inodes have been evicted.
//! - [`FileSystem::init_root`] then returns the root inode, which becomes `s_root`.
//!
//! The type is registered with a [`Registration`], normally a field of the module's
//! `#[pin_data]` struct, so that unloading the module unregisters the filesystem. The
//! registration also owns the `kmem_cache` from which the inodes of `T` (with their typed
//! per-inode data, `T::INodeData`) are allocated.
//!
//! Errors that the user should see are reported with [`FsContext::errorf`] or
//! [`FsContext::invalf`]; the message then appears in the output of `mount(8)`/`fsconfig(2)` and
//! in the kernel log.
//!
//! ```ignore
//! struct MyFs;
//! impl FileSystem for MyFs {
//!     type Data = MySb;
//!     type INodeData = MyInode;
//!     type Context = MyOptions;
//!     type SuperOps = Self;
//!     const NAME: &'static CStr = c"myfs";
//!     const PARAMETERS: param::Parameters = MY_PARAMS.parameters();
//!     fn parse_param(fc: &FsContext, ctx: &mut MyOptions, opt: u8, v: param::Value<'_>)
//!         -> Result { /* store v in ctx */ }
//!     fn fill_super(fc: &FsContext, ctx: &mut MyOptions, sb: &mut NewSuperBlock<'_, Self>)
//!         -> Result<MySb> { sb.set_magic(MY_MAGIC); /* read metadata */ }
//!     fn init_root(sb: &SuperBlock<Self>) -> Result<ARef<INode<Self>>> { my_iget(sb, 1) }
//! }
//! ```

use crate::{
    bindings,
    error::{code::*, from_result, to_result, Error, Result},
    fmt,
    fs::{
        inode::{self, INode},
        param::{self, Parameters},
        sb::{NewSuperBlock, SuperBlock, SuperOperations},
    },
    prelude::*,
    sync::aref::ARef,
    types::Opaque,
    ThisModule,
};
use core::{ffi::c_int, marker::PhantomData, ptr};

/// A filesystem type: the `struct file_system_type` and `struct fs_context_operations` of a
/// filesystem, with its typed data.
///
/// See the [module documentation](self) for how the items are used.
pub trait FileSystem: Sized + Send + Sync + 'static {
    /// Per-superblock data, stored in `s_fs_info` from [`FileSystem::fill_super`] until `kill_sb`.
    type Data: Send + Sync;

    /// Per-inode data, stored next to the `struct inode` in the filesystem's `kmem_cache`.
    ///
    /// It is dropped in `free_inode`, i.e. after an RCU grace period, possibly in softirq
    /// context: its destructor must not sleep.
    type INodeData: Send + Sync;

    /// The typed mount parameters, owned by the `fs_context` while a mount is being set up.
    type Context: Default + Send;

    /// The superblock operations of the filesystem.
    type SuperOps: SuperOperations<FileSystem = Self>;

    /// The name of the filesystem type, as used by `mount -t`.
    const NAME: &'static CStr;

    /// `FS_*` flags of the filesystem type (`fs_flags`). `FS_USERNS_MOUNT` and
    /// `FS_USERNS_DELEGATABLE` are refused: mounts by user namespaces are not supported by
    /// these abstractions (they map ids through the initial user namespace only).
    const FS_FLAGS: u32 = 0;

    /// Description of the mount parameters.
    const PARAMETERS: Parameters = Parameters::EMPTY;

    /// Stores one mount parameter, already parsed and typed according to
    /// [`FileSystem::PARAMETERS`], into `ctx`. `opt` is the option number of the parameter.
    fn parse_param(
        fc: &FsContext,
        ctx: &mut Self::Context,
        opt: u8,
        value: param::Value<'_>,
    ) -> Result;

    /// Sets up a new superblock and returns its per-superblock data.
    fn fill_super(
        fc: &FsContext,
        ctx: &mut Self::Context,
        sb: &mut NewSuperBlock<'_, Self>,
    ) -> Result<Self::Data>;

    /// Returns the root inode of a superblock whose data [`FileSystem::fill_super`] has set.
    fn init_root(sb: &SuperBlock<Self>) -> Result<ARef<INode<Self>>>;
}

/// A mount context (`struct fs_context`) being set up.
///
/// # Invariants
///
/// `self.0` is a valid `struct fs_context` for the duration of the borrow.
#[repr(transparent)]
pub struct FsContext(Opaque<bindings::fs_context>);

impl FsContext {
    /// Creates a reference to an [`FsContext`] from a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct fs_context` that stays valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::fs_context) -> &'a Self {
        // SAFETY: `FsContext` is `repr(transparent)` over the C struct, and the caller
        // guarantees that the pointer is valid for `'a`.
        // INVARIANT: The caller guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    fn as_raw(&self) -> *mut bindings::fs_context {
        self.0.get()
    }

    fn log(&self, level: u8, args: fmt::Arguments<'_>) {
        let fc = self.as_raw();
        // SAFETY: By the type invariant `fc` is valid; `log.log` and `log.prefix` are set by
        // `alloc_fs_context()` (the prefix is the filesystem name) and `logfc()` accepts a NULL
        // log. The format string is a NUL-terminated "%pA", whose argument is a pointer to a
        // `fmt::Arguments` that lives until `logfc()` returns (it formats synchronously).
        unsafe {
            bindings::logfc(
                (*fc).log.log,
                (*fc).log.prefix,
                level as crate::ffi::c_char,
                c"%pA".as_char_ptr(),
                ptr::from_ref(&args).cast::<crate::ffi::c_void>(),
            )
        };
    }

    /// Reports an error to the user (C `errorfc()`): shown by `mount` and in the kernel log.
    pub fn errorf(&self, args: fmt::Arguments<'_>) {
        self.log(b'e', args);
    }

    /// Reports an informational message (C `infofc()`).
    pub fn infof(&self, args: fmt::Arguments<'_>) {
        self.log(b'i', args);
    }

    /// Reports an invalid parameter (C `invalfc()`) and returns `EINVAL` for the caller to return.
    pub fn invalf(&self, args: fmt::Arguments<'_>) -> Error {
        self.errorf(args);
        EINVAL
    }

    /// Returns the credentials of the task that created the mount context (the mounter).
    pub fn cred(&self) -> &crate::cred::Credential {
        // SAFETY: By the type invariant the context is valid; `fc->cred` is set at allocation and
        // holds a reference until the context is freed, which outlives `&self`.
        unsafe { crate::cred::Credential::from_ptr((*self.as_raw()).cred) }
    }
}

/// Per-filesystem-type operation tables, built at compile time.
struct Tables<T: FileSystem>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    const CONTEXT_OPS: bindings::fs_context_operations = bindings::fs_context_operations {
        free: Some(Self::free_callback),
        parse_param: Some(Self::parse_param_callback),
        get_tree: Some(Self::get_tree_callback),
        reconfigure: Some(Self::reconfigure_callback),
        // SAFETY: All other fields are optional function pointers, for which all-zero (`None`)
        // is valid.
        ..unsafe { core::mem::zeroed() }
    };

    const fn context_ops() -> &'static bindings::fs_context_operations {
        &Self::CONTEXT_OPS
    }

    /// # Safety
    ///
    /// Called by the VFS with a valid, newly allocated `fc` for a filesystem of type `T`.
    unsafe extern "C" fn init_fs_context_callback(fc: *mut bindings::fs_context) -> c_int {
        from_result(|| {
            let ctx = KBox::new(T::Context::default(), GFP_KERNEL)?;
            // SAFETY: `fc` is valid (see the function's safety requirements) and we have
            // exclusive access to it during `init_fs_context`. `fs_private` takes ownership of
            // the box; it is freed by `free_callback`, which the VFS calls once `ops` is set.
            unsafe {
                (*fc).fs_private = KBox::into_raw(ctx).cast();
                (*fc).ops = Self::context_ops();
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `fc` is valid and its `fs_private` was set by `init_fs_context_callback`.
    unsafe fn context<'a>(fc: *mut bindings::fs_context) -> &'a mut T::Context {
        // SAFETY: `fs_private` points to the live `T::Context` boxed by `init_fs_context_callback`
        // and the VFS serialises the context operations (under `fc->uapi_mutex` or during mount
        // set-up), so no other reference exists.
        unsafe { &mut *(*fc).fs_private.cast::<T::Context>() }
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn free_callback(fc: *mut bindings::fs_context) {
        // SAFETY: The VFS calls `free` once, with a valid `fc`, when the context is destroyed.
        let p = unsafe { (*fc).fs_private };
        if !p.is_null() {
            // SAFETY: `p` came from `KBox::into_raw` in `init_fs_context_callback`, and `free` is
            // the last user of it.
            drop(unsafe { KBox::from_raw(p.cast::<T::Context>()) });
        }
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn parse_param_callback(
        fc: *mut bindings::fs_context,
        param: *mut bindings::fs_parameter,
    ) -> c_int {
        from_result(|| {
            // SAFETY: The VFS passes a valid context, set up by `init_fs_context_callback`.
            let (fsc, ctx) = unsafe { (FsContext::from_raw(fc), Self::context(fc)) };
            // SAFETY: `fc` and `param` are valid for the duration of this callback.
            let (opt, value) = unsafe { T::PARAMETERS.parse(&raw mut (*fc).log, param) }?;
            T::parse_param(fsc, ctx, opt, value)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn get_tree_callback(fc: *mut bindings::fs_context) -> c_int {
        // SAFETY: `fc` is valid; `get_tree_nodev` allocates an anonymous superblock and calls
        // `fill_super_callback` with it and `fc`.
        unsafe { bindings::get_tree_nodev(fc, Some(Self::fill_super_callback)) }
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn reconfigure_callback(fc: *mut bindings::fs_context) -> c_int {
        // SAFETY: The VFS passes a valid context for a remount.
        let (flags, mask) = unsafe { ((*fc).sb_flags, (*fc).sb_flags_mask) };
        // `SB_RDONLY` is bit 0, so it fits the `unsigned int` of `sb_flags`.
        let rdonly = bindings::SB_RDONLY as u32;
        if mask & rdonly != 0 && flags & rdonly == 0 {
            // SAFETY: `fc` is valid for this callback.
            let fsc = unsafe { FsContext::from_raw(fc) };
            return fsc.invalf(fmt!("the filesystem is read-only")).to_errno();
        }
        0
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn fill_super_callback(
        sb_ptr: *mut bindings::super_block,
        fc: *mut bindings::fs_context,
    ) -> c_int {
        from_result(|| {
            // SAFETY: `get_tree_nodev` passes a valid, new superblock that we own exclusively
            // until we return, and the context it was called for.
            let (fsc, ctx) = unsafe { (FsContext::from_raw(fc), Self::context(fc)) };
            // SAFETY: As above: `sb_ptr` is a new superblock of type `T` not yet visible to
            // anyone else.
            let mut new_sb = unsafe { NewSuperBlock::<T>::new(sb_ptr) };
            let data = T::fill_super(fsc, ctx, &mut new_sb)?;
            let data = KBox::new(data, GFP_KERNEL)?;
            // SAFETY: `sb_ptr` is valid. Ownership of the box moves to `s_fs_info`; `kill_sb`
            // (which the VFS calls on every superblock `get_tree_nodev` allocated, also when we
            // fail below) frees it.
            unsafe { (*sb_ptr).s_fs_info = KBox::into_raw(data).cast() };

            // SAFETY: `s_fs_info` now holds `T::Data`, which is the invariant of `SuperBlock`.
            let sb = unsafe { SuperBlock::<T>::from_raw(sb_ptr) };
            let root = T::init_root(sb)?;
            // SAFETY: `d_make_root` takes over the inode reference we pass (it drops it on
            // failure). The inode belongs to `sb`.
            let dentry = unsafe { bindings::d_make_root(ARef::into_raw(root).as_ptr().cast()) };
            if dentry.is_null() {
                return Err(ENOMEM);
            }
            // SAFETY: `sb_ptr` is valid and exclusively ours; `s_root` takes the dentry reference,
            // which `generic_shutdown_super` drops.
            unsafe { (*sb_ptr).s_root = dentry };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Only called by the C side as the operation it is installed as, with the arguments
    /// its C prototype documents as valid for the duration of the call.
    unsafe extern "C" fn kill_sb_callback(sb_ptr: *mut bindings::super_block) {
        // SAFETY: The VFS calls `kill_sb` once per superblock, with a valid pointer.
        let data = unsafe { (*sb_ptr).s_fs_info };
        // SAFETY: As above. This evicts all inodes and releases the anonymous device; afterwards
        // no operation of ours can be called on this superblock.
        unsafe { bindings::kill_anon_super(sb_ptr) };
        if !data.is_null() {
            // SAFETY: A non-NULL `s_fs_info` was set by `fill_super_callback` from
            // `KBox::into_raw`; nothing uses it after `kill_anon_super`.
            drop(unsafe { KBox::from_raw(data.cast::<T::Data>()) });
        }
    }
}

/// A registered filesystem type.
///
/// It must live in static memory (e.g. a field of the module struct built by `module!`),
/// because lockdep keys are embedded in `struct file_system_type`.
///
/// # Invariants
///
/// `fs` is registered with the VFS (`register_filesystem()` succeeded) from the end of
/// [`Registration::new`] until `drop`, and `inode_cache` is the cache of `T`'s inodes.
#[pin_data(PinnedDrop)]
pub struct Registration<T: FileSystem> {
    inode_cache: inode::INodeCache<T>,
    #[pin]
    fs: Opaque<bindings::file_system_type>,
}

// SAFETY: `Registration` has no interior state used without the VFS's own locking; it only
// unregisters on drop, which may happen on any thread.
unsafe impl<T: FileSystem> Send for Registration<T> {}

// SAFETY: A shared `&Registration` gives no access to its contents.
unsafe impl<T: FileSystem> Sync for Registration<T> {}

impl<T: FileSystem> Registration<T> {
    /// Creates the inode cache of `T` and registers `T` with the VFS.
    pub fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            inode_cache: inode::INodeCache::new(T::NAME)?,
            fs <- Opaque::try_ffi_init(|fs: *mut bindings::file_system_type| {
                let userns = bindings::FS_USERNS_MOUNT | bindings::FS_USERNS_DELEGATABLE;
                if T::FS_FLAGS & userns != 0 {
                    return Err(EINVAL);
                }
                // SAFETY: `fs` points to pinned, uninitialised memory of the right type that we
                // may initialise; all-zero is a valid `file_system_type`.
                unsafe {
                    fs.write(core::mem::zeroed());
                    (*fs).owner = module.as_ptr();
                    (*fs).name = T::NAME.as_char_ptr();
                    (*fs).init_fs_context = Some(Tables::<T>::init_fs_context_callback);
                    (*fs).parameters = T::PARAMETERS.as_raw();
                    (*fs).kill_sb = Some(Tables::<T>::kill_sb_callback);
                    (*fs).fs_flags = T::FS_FLAGS as c_int;
                }
                // SAFETY: `fs` is initialised and pinned; it stays registered until `drop`
                // unregisters it.
                to_result(unsafe { bindings::register_filesystem(fs) })
            }),
        })
    }

    /// Returns the inode cache of the filesystem type of `sb`.
    ///
    /// # Safety
    ///
    /// `sb` must be a live superblock of filesystem type `T`.
    pub(crate) unsafe fn inode_cache_of(
        sb: *mut bindings::super_block,
    ) -> *mut bindings::kmem_cache {
        // SAFETY: `sb` is live and of type `T`, so `s_type` points to the `fs` field of a
        // `Registration<T>`, which is still registered (it unregisters only after all its
        // superblocks are gone).
        unsafe {
            let fs = (*sb).s_type.cast::<Opaque<bindings::file_system_type>>();
            let reg = crate::container_of!(fs, Registration<T>, fs);
            (*reg).inode_cache.as_raw()
        }
    }
}

#[pinned_drop]
impl<T: FileSystem> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant `fs` is registered. After this no new superblocks of
        // type `T` can be created; the module reference count kept them from existing now.
        unsafe { bindings::unregister_filesystem(self.fs.get()) };
        // `inode_cache` is dropped after this, and waits for RCU-delayed inode frees first.
    }
}
