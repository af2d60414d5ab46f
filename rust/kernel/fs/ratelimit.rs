// SPDX-License-Identifier: GPL-2.0

//! Rate limiting of error messages, for filesystems that report corrupt or unreadable data.
//!
//! C header: [`include/linux/ratelimit_types.h`](srctree/include/linux/ratelimit_types.h).
//!
//! # How a filesystem uses this module
//!
//! A filesystem keeps a [`RateLimit`] per superblock (in its per-superblock data) or in a
//! `static`, and prints an error only when [`RateLimit::allow`] says so, the way C code uses
//! `__ratelimit()` with a `struct ratelimit_state`. At most `burst` messages are allowed per
//! `interval`; when a new interval starts after messages were suppressed, their number is
//! logged once. Unlike `struct ratelimit_state` it is lock-free and can be moved, so it can live
//! in data that is built before it is placed (e.g. returned from `fill_super`). Races between
//! CPUs at an interval boundary may let a few extra messages through, which is harmless.
//!
//! ```
//! use kernel::fs::ratelimit::RateLimit;
//!
//! static RL: RateLimit = RateLimit::new(5000, 2);
//! let allowed = (0..5).filter(|_| RL.allow()).count();
//! assert_eq!(allowed, 2);
//! ```

use crate::{bindings, prelude::*, time::msecs_to_jiffies};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

/// `DEFAULT_RATELIMIT_INTERVAL` (5 s) in milliseconds and `DEFAULT_RATELIMIT_BURST` (10) of
/// `include/linux/ratelimit_types.h`.
const DEFAULT_INTERVAL_MS: u32 = 5000;
const DEFAULT_BURST: u32 = 10;

/// A message rate limit: at most `burst` messages per `interval_ms` milliseconds.
pub struct RateLimit {
    interval_ms: u32,
    burst: u32,
    /// Start of the current interval in jiffies; 0 before the first message.
    begin: AtomicUsize,
    printed: AtomicU32,
    missed: AtomicU32,
}

impl RateLimit {
    /// Creates a rate limit of `burst` messages per `interval_ms` milliseconds.
    pub const fn new(interval_ms: u32, burst: u32) -> Self {
        Self {
            interval_ms,
            burst,
            begin: AtomicUsize::new(0),
            printed: AtomicU32::new(0),
            missed: AtomicU32::new(0),
        }
    }

    /// The kernel's default: 10 messages per 5 seconds.
    pub const fn default_limit() -> Self {
        Self::new(DEFAULT_INTERVAL_MS, DEFAULT_BURST)
    }

    /// Returns `true` if a message may be printed now, and counts it.
    pub fn allow(&self) -> bool {
        // SAFETY: `jiffies` is a kernel global updated by the timer interrupt; a volatile read
        // of an aligned word is how C reads it (`READ_ONCE`).
        let now = unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) };
        let now = now.max(1);
        let begin = self.begin.load(Relaxed);
        let interval = msecs_to_jiffies(self.interval_ms);
        if (begin == 0 || now.wrapping_sub(begin) >= interval)
            && self
                .begin
                .compare_exchange(begin, now, Relaxed, Relaxed)
                .is_ok()
        {
            let missed = self.missed.swap(0, Relaxed);
            self.printed.store(0, Relaxed);
            if missed > 0 {
                pr_warn!("{missed} messages suppressed\n");
            }
        }
        if self.printed.fetch_add(1, Relaxed) < self.burst {
            true
        } else {
            self.printed.fetch_sub(1, Relaxed);
            self.missed.fetch_add(1, Relaxed);
            false
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::default_limit()
    }
}
