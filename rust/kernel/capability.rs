// SPDX-License-Identifier: GPL-2.0

//! POSIX capabilities of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h).

/// A capability number (`CAP_*` of `include/uapi/linux/capability.h`).
///
/// # Invariants
///
/// The number is a valid capability (at most `CAP_LAST_CAP`): the field is private and only
/// the constants of this module create values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(u32);

/// `CAP_SYS_ADMIN`: the catch-all administrative capability.
pub const CAP_SYS_ADMIN: Cap = Cap(bindings::CAP_SYS_ADMIN);

/// Returns whether the current task has capability `cap` in the initial user namespace
/// (`capable()`). As in C, the check may be audited (denials in particular), and a success
/// marks the task as having used a privilege (`PF_SUPERPRIV`).
pub fn capable(cap: Cap) -> bool {
    #[cfg(not(CONFIG_MULTIUSER))]
    {
        // As C's inline `capable()` without multi-user support: every task has every
        // capability.
        let _ = cap;
        true
    }
    #[cfg(CONFIG_MULTIUSER)]
    {
        // Valid capability numbers are small (type invariant), so this cannot fail; a failure
        // would mean "no".
        let Ok(cap) = crate::ffi::c_int::try_from(cap.0) else {
            return false;
        };
        // SAFETY: `cap` is a valid capability number (type invariant), as `capable()` requires
        // (it BUG()s on others); it only reads the current task's credentials.
        unsafe { bindings::capable(cap) }
    }
}
