// SPDX-License-Identifier: GPL-2.0

//! What every file of the driver shares: the compiled tables in kernel memory, and the
//! environment the metadata compiler runs in at mount time.
//!
//! The format core ([`crate::format`]) knows nothing about the kernel: it asks its caller for
//! growable arrays ([`TableVec`]) and for a way to yield ([`Env`]). Here the arrays are `KVVec`s
//! allocated with `GFP_KERNEL_ACCOUNT`, so the tables of a mount are charged to the mounter's
//! memory cgroup, and yielding is `cond_resched()` plus a check for a fatal signal, so that a
//! mount of a huge image can be killed.

use crate::format::{self, compile::Env, tables::TableVec};
use kernel::alloc::{flags, Flags, KVVec};

/// Flags of every allocation whose size the image decides: charged to the mounter's memory
/// cgroup, and quiet on failure (the mount fails with `ENOMEM` and says so once).
pub(crate) fn image_gfp() -> Flags {
    flags::GFP_KERNEL_ACCOUNT | flags::__GFP_NOWARN
}

/// The allocator of the compiled tables: `KVVec` with [`image_gfp`].
pub(crate) struct KernelAlloc;

impl<T> TableVec<T> for KVVec<T> {
    fn new() -> Self {
        KVVec::new()
    }

    fn len(&self) -> usize {
        KVVec::len(self)
    }

    fn capacity(&self) -> usize {
        KVVec::capacity(self)
    }

    fn as_slice(&self) -> &[T] {
        KVVec::as_slice(self)
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        KVVec::as_mut_slice(self)
    }

    fn try_reserve(&mut self, additional: usize) -> format::Result<()> {
        self.reserve(additional, image_gfp())
            .map_err(|_| format::Error::OutOfMemory)
    }

    fn try_push(&mut self, value: T) -> format::Result<()> {
        self.push(value, image_gfp())
            .map_err(|_| format::Error::OutOfMemory)
    }

    fn try_extend_from_slice(&mut self, values: &[T]) -> format::Result<()>
    where
        T: Clone,
    {
        self.extend_from_slice(values, image_gfp())
            .map_err(|_| format::Error::OutOfMemory)
    }

    fn truncate(&mut self, len: usize) {
        KVVec::truncate(self, len);
    }

    fn shrink_to_fit(&mut self) {
        // Only saves memory: keeping the larger allocation is always correct.
        let _ = self.shrink_to(self.len(), image_gfp());
    }
}

impl format::tables::Alloc for KernelAlloc {
    type Vec<T> = KVVec<T>;
}

/// The compiled tables of a mount.
pub(crate) type Tables = format::tables::Tables<KernelAlloc>;

/// The format core's environment during `fill_super`: reschedule regularly, and stop when the
/// mounting task is killed.
#[derive(Debug)]
pub(crate) struct MountEnv;

impl MountEnv {
    /// Reschedules if needed; `Interrupted` if the task is being killed.
    pub(crate) fn yield_now() -> format::Result<()> {
        kernel::task::cond_resched();
        if kernel::current!().fatal_signal_pending() {
            return Err(format::Error::Interrupted);
        }
        Ok(())
    }
}

impl Env for MountEnv {
    fn poll(&mut self) -> format::Result<()> {
        Self::yield_now()
    }
}

impl format::json::Poll for MountEnv {
    fn poll(&self) -> format::Result<()> {
        Self::yield_now()
    }
}
