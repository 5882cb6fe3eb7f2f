//! Signals by name, and termination signals taken synchronously by one thread.
//!
//! [`Signal`] is the typed name of a signal everywhere in triptych: what a child is sent through
//! its pidfd ([`crate::pidfd::pidfd_send_signal`]), what a fault makes a process die by
//! ([`crate::fault::die_by`]), and what the launcher's signal thread hands on. It is nix's type,
//! re-exported so the other crates name it without depending on nix.
//!
//! [`Blocked`] is the `sigwait(3)` pattern: a thread blocks a set of signals
//! (`pthread_sigmask(SIG_BLOCK)`) before any other thread exists, every thread spawned later
//! inherits the mask, and one thread takes the signals one by one with [`Blocked::wait`], so no
//! asynchronous handler ever runs. A child started with `std::process::Command` gets an empty
//! mask back: the standard library resets it between fork and exec.
//!
//! See <https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html> and
//! <https://man7.org/linux/man-pages/man3/sigwait.3.html>.

#![forbid(unsafe_code)]

use nix::sys::signal::SigSet;

pub use nix::sys::signal::Signal;

use crate::Errno;

/// A set of signals blocked in the thread that made it (and in the threads it spawns after), to
/// be taken with [`Blocked::wait`]. Cheap to copy: a copy names the same set.
#[derive(Clone, Copy, Debug)]
pub struct Blocked(SigSet);

impl Blocked {
    /// Blocks `signals` in the calling thread. Call it before any other thread is spawned, so
    /// that every thread inherits the mask and none is interrupted by these signals.
    pub fn block(signals: &[Signal]) -> Result<Blocked, Errno> {
        let mut set = SigSet::empty();
        for s in signals {
            set.add(*s);
        }
        set.thread_block()?;
        Ok(Blocked(set))
    }

    /// Waits until one of the blocked signals is pending and takes it (`sigwait`).
    pub fn wait(&self) -> Result<Signal, Errno> {
        self.0.wait()
    }
}

/// The name of signal number `sig` (`"SIGKILL"`), or `"unknown"`.
pub fn name(sig: i32) -> &'static str {
    Signal::try_from(sig)
        .map(|s| s.as_str())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_number() {
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(11), "SIGSEGV");
        assert_eq!(name(0), "unknown");
    }

    #[test]
    fn a_blocked_signal_is_taken_by_wait() {
        // A thread of its own, so the test runner's mask stays as it was.
        std::thread::spawn(|| {
            let blocked = Blocked::block(&[Signal::SIGUSR2]).expect("block");
            // raise(3) sends to the calling thread, where the signal stays pending.
            nix::sys::signal::raise(Signal::SIGUSR2).expect("raise");
            assert_eq!(blocked.wait().expect("wait"), Signal::SIGUSR2);
        })
        .join()
        .expect("thread");
    }
}
