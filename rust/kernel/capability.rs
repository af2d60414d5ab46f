// SPDX-License-Identifier: GPL-2.0

//! POSIX capabilities of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h).

/// A capability number (`CAP_*` of `include/uapi/linux/capability.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(u32);

/// `CAP_SYS_ADMIN`: the catch-all administrative capability.
pub const CAP_SYS_ADMIN: Cap = Cap(bindings::CAP_SYS_ADMIN);

/// Returns whether the current task has capability `cap` in the initial user namespace
/// (`capable()`). As in C, a successful check may be audited and marks the task as having
/// used a privilege (`PF_SUPERPRIV`).
pub fn capable(cap: Cap) -> bool {
    // `CAP_*` numbers are small (below `CAP_LAST_CAP`), so the conversion cannot fail; a
    // failure would mean "no".
    let Ok(cap) = crate::ffi::c_int::try_from(cap.0) else {
        return false;
    };
    // SAFETY: `capable()` only reads the current task's credentials, which is always valid in
    // process context.
    unsafe { bindings::capable(cap) }
}
