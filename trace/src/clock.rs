//! The trace clock and the thread id.
//!
//! # What this module owns
//!
//! [`now_ns`], the single time source of every event, and [`current_tid`].
//!
//! # Why `CLOCK_MONOTONIC`
//!
//! All three processes stamp events with `CLOCK_MONOTONIC`
//! ([clock_gettime(2)](https://man7.org/linux/man-pages/man2/clock_gettime.2.html)):
//! one system-wide clock that never jumps with wall-clock changes, so a
//! timestamp taken in the GPU process and one taken in the renderer can be
//! subtracted directly. On x86-64 and aarch64 the read goes through the vDSO
//! and makes no system call; the kernel falls back to the real
//! `clock_gettime` system call when the clock source has no vDSO support (some
//! virtual machines), so a seccomp policy for a recording process allows
//! `clock_gettime`.
//!
//! One exception breaks comparability: a process inside a time namespace
//! ([time_namespaces(7)](https://man7.org/linux/man-pages/man7/time_namespaces.7.html),
//! `CLONE_NEWTIME`) sees `CLOCK_MONOTONIC` shifted by its namespace's offset.
//! No triptych process may be placed in one while tracing.
//!
//! # Thread ids
//!
//! [`current_tid`] calls
//! [gettid(2)](https://man7.org/linux/man-pages/man2/gettid.2.html) once per
//! thread and keeps the answer in a thread-local, so recording does not make a
//! system call per event (the sandboxed renderer's seccomp policy still has to
//! allow `gettid` for that first call). The id is the one the calling process
//! sees: inside a PID namespace it differs from the launcher's view, which is
//! why a [`Recorder`](crate::Recorder) is given its pid instead of asking for it.
//! A child created by `fork(2)` without `exec` inherits the cached value of the
//! forking thread; such a child must not record.

use std::cell::Cell;

/// Nanoseconds of `CLOCK_MONOTONIC`, comparable across the processes of one
/// machine (read by `triptych_sys::clock`).
///
/// # Panics
///
/// Only if the kernel refuses `CLOCK_MONOTONIC`, which clock_gettime(2) does
/// for an unknown clock id or a bad pointer, neither of which can happen here;
/// the clock exists on every Linux since 2.6.
pub fn now_ns() -> u64 {
    triptych_sys::clock::monotonic_ns()
}

thread_local! {
    /// This thread's id, 0 until first asked for (no thread has id 0).
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread's id as `gettid(2)` reports it, cached per thread.
pub fn current_tid() -> u32 {
    TID.with(|cached| {
        let known = cached.get();
        if known != 0 {
            return known;
        }
        let tid = triptych_sys::ids::gettid();
        cached.set(tid);
        tid
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_forward_across_a_sleep() {
        let before = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let after = now_ns();
        assert!(after >= before + 2_000_000, "{before} -> {after}");
        // Same clock as std's Instant on Linux: its elapsed time agrees.
        let start = std::time::Instant::now();
        let a = now_ns();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let b = now_ns();
        let std_elapsed = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        assert!(b - a <= std_elapsed, "{} > {std_elapsed}", b - a);
    }

    #[test]
    fn thread_ids_are_per_thread_and_match_proc() {
        let main = current_tid();
        assert_eq!(main, current_tid());
        assert!(std::path::Path::new(&format!("/proc/self/task/{main}")).exists());
        let other = std::thread::spawn(current_tid)
            .join()
            .expect("thread panicked");
        assert_ne!(main, other);
    }
}
