//! Who the caller is: its thread id and whether it runs as root.
//!
//! - [`gettid`]: the calling thread's id as the calling process sees it, from `gettid(2)`.
//!   Inside a PID namespace it differs from the id the launcher sees for the same thread.
//! - [`running_as_root`]: whether the effective uid is 0 (`geteuid(2)`), which the launcher
//!   asks to know whether it may drop privileges itself or needs a user namespace for that.
//!
//! The calls are nix's. Both are system calls each time; a caller that asks often caches the
//! answer (`triptych-trace` keeps the thread id in a thread-local).
//!
//! See <https://man7.org/linux/man-pages/man2/gettid.2.html> and
//! <https://man7.org/linux/man-pages/man2/geteuid.2.html>.

#![forbid(unsafe_code)]

/// The calling thread's id (`gettid(2)`). Thread ids are positive, so never 0.
pub fn gettid() -> u32 {
    // A pid_t the kernel hands out is positive, so the conversion holds.
    u32::try_from(nix::unistd::gettid().as_raw()).unwrap_or(0)
}

/// Whether the calling process's effective uid is 0 (`geteuid(2)`).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_ids_are_the_kernels() {
        let main = gettid();
        assert!(std::path::Path::new(&format!("/proc/self/task/{main}")).exists());
        let other = std::thread::spawn(gettid).join().expect("thread");
        assert_ne!(main, other);
    }
}
