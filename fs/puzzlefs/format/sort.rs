// SPDX-License-Identifier: GPL-2.0

//! An in-place sort that can stop and yield: heapsort with a poll every few hundred steps.
//!
//! The compiler sorts image-sized arrays (a directory's entries, the chunks of every file by
//! blob digest). `core`'s sorts cannot be interrupted, and on a kernel without preemption a
//! sort of millions of entries would hold the CPU for seconds. Heapsort is in place (no scratch
//! memory), O(n log n) in the worst case whatever the input, and its outer loops are natural
//! points to poll. It is not stable: the compiler only sorts keys it then requires to be
//! distinct, or whose equal keys are interchangeable.

use crate::format::compile::Env;
use crate::format::Result;
use core::cmp::Ordering;

/// Sift-down steps between two polls.
const POLL_STEPS: usize = 256;

struct Sorter<'e, E: Env> {
    env: &'e mut E,
    steps: usize,
}

impl<E: Env> Sorter<'_, E> {
    fn step(&mut self) -> Result<()> {
        self.steps = self.steps.wrapping_add(1);
        if self.steps.is_multiple_of(POLL_STEPS) {
            self.env.poll()?;
        }
        Ok(())
    }

    /// Restores the heap property below `root` in `v[..end]`.
    fn sift_down<T>(
        &mut self,
        v: &mut [T],
        mut root: usize,
        end: usize,
        less: &mut impl FnMut(&T, &T) -> bool,
    ) -> Result<()> {
        loop {
            self.step()?;
            let Some(mut child) = root.checked_mul(2).and_then(|c| c.checked_add(1)) else {
                return Ok(());
            };
            if child >= end {
                return Ok(());
            }
            let right = child.saturating_add(1);
            if right < end {
                if let (Some(l), Some(r)) = (v.get(child), v.get(right)) {
                    if less(l, r) {
                        child = right;
                    }
                }
            }
            match (v.get(root), v.get(child)) {
                (Some(p), Some(c)) if less(p, c) => v.swap(root, child),
                _ => return Ok(()),
            }
            root = child;
        }
    }
}

/// Sorts `v` by `cmp`, calling `env.poll()` regularly; a poll error stops the sort (leaving `v`
/// permuted) and is returned.
pub(crate) fn sort_by<T, E: Env>(
    v: &mut [T],
    env: &mut E,
    mut cmp: impl FnMut(&T, &T) -> Ordering,
) -> Result<()> {
    let mut less = |a: &T, b: &T| cmp(a, b) == Ordering::Less;
    let mut s = Sorter { env, steps: 0 };
    // Already sorted (what honest images mostly are): one linear pass.
    if !any_pair(v, s.env, |a, b| less(b, a))? {
        return Ok(());
    }
    let n = v.len();
    for root in (0..n / 2).rev() {
        s.sift_down(v, root, n, &mut less)?;
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        s.sift_down(v, 0, end, &mut less)?;
    }
    Ok(())
}

/// Whether `pred` holds for any two neighbours of `v`, calling `env.poll()` regularly.
pub(crate) fn any_pair<T, E: Env>(
    v: &[T],
    env: &mut E,
    mut pred: impl FnMut(&T, &T) -> bool,
) -> Result<bool> {
    for (i, w) in v.windows(2).enumerate() {
        if i.is_multiple_of(POLL_STEPS) {
            env.poll()?;
        }
        if let [a, b] = w {
            if pred(a, b) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
