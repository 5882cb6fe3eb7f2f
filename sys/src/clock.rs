//! The monotonic clock: `clock_gettime(CLOCK_MONOTONIC)`; and a thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), which the benchmarks read.
//!
//! One system-wide clock that never jumps with wall-clock changes, so a reading taken in one
//! process and one taken in another can be subtracted directly; `triptych-trace` stamps every
//! event with it. On x86-64 and aarch64 the C library reads it through the vDSO without a system
//! call; where the clock source has no vDSO support (some virtual machines) the kernel's
//! `clock_gettime` system call is made instead, which is why the seccomp policies allow it.
//! The call is nix's (the C library's `clock_gettime`). A process inside a time namespace
//! (`CLONE_NEWTIME`) reads the clock shifted by its namespace's offset.
//!
//! See <https://man7.org/linux/man-pages/man2/clock_gettime.2.html> and
//! <https://man7.org/linux/man-pages/man7/time_namespaces.7.html>.

#![forbid(unsafe_code)]

use nix::time::{clock_gettime, ClockId};

/// Nanoseconds of `CLOCK_MONOTONIC` (time since boot, not counting suspend).
///
/// # Panics
///
/// Only if the kernel refuses `CLOCK_MONOTONIC`, which clock_gettime(2) does for an unknown
/// clock id or a bad pointer, neither of which can happen here; the clock exists on every Linux
/// since 2.6.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC)
        .expect("clock_gettime(CLOCK_MONOTONIC) cannot fail on Linux");
    // CLOCK_MONOTONIC counts up from boot, so both parts are non-negative and tv_nsec < 1e9;
    // u64 nanoseconds cover 584 years of uptime.
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Nanoseconds of CPU time, user and system, the calling thread has used
/// (`CLOCK_THREAD_CPUTIME_ID`); `None` if the kernel refuses the clock.
pub fn thread_cpu_ns() -> Option<u64> {
    let ts = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u64::try_from(ts.tv_nsec()).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_forward_with_std_instant() {
        // std's Instant reads the same clock on Linux: the elapsed times agree.
        let start = std::time::Instant::now();
        let a = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let b = monotonic_ns();
        let std_elapsed = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        assert!(
            b - a >= 1_000_000 && b - a <= std_elapsed,
            "{a} -> {b}, std {std_elapsed}"
        );
    }

    #[test]
    fn thread_cpu_time_counts_work_and_not_sleep() {
        let a = thread_cpu_ns().expect("the thread's CPU clock");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = thread_cpu_ns().expect("the thread's CPU clock");
        // Sleeping costs next to no CPU time.
        assert!(b - a < 10_000_000, "{a} -> {b} over a 20 ms sleep");
        // Spinning advances it, however loaded the machine (within a generous cap).
        let cap = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut x = 0u64;
        let mut c = b;
        while c - b < 5_000_000 && std::time::Instant::now() < cap {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            c = thread_cpu_ns().expect("the thread's CPU clock");
        }
        assert!(c - b >= 5_000_000, "{b} -> {c} in 10 s of spinning ({x})");
    }
}
