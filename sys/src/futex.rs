//! Waiting on, and waking, a 32-bit word of memory that two processes map: the shared futex
//! (`FUTEX_WAIT` and `FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`, so the kernel keys the word by
//! the file and offset it is mapped from, not by this process's address space).
//!
//! The calls are rustix's safe ones; this module gives them the project's error type and says
//! what each outcome means, so that a mailbox's reader can tell a wake-up from a word that
//! changed and from a deadline.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex::{self, Flags, Timespec};

use crate::Errno;

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// A wake-up came (from a writer, or from anyone else who maps the word).
    Woken,
    /// The word no longer held the value expected when the wait began.
    Changed,
    /// The deadline passed.
    TimedOut,
    /// A signal interrupted the wait.
    Interrupted,
}

/// Waits while `word` holds `expected`, for at most `timeout`.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<Waited, Errno> {
    let ts = Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match futex::wait(word, Flags::empty(), expected, Some(&ts)) {
        Ok(()) => Ok(Waited::Woken),
        Err(e) if e == rustix::io::Errno::AGAIN => Ok(Waited::Changed),
        Err(e) if e == rustix::io::Errno::TIMEDOUT => Ok(Waited::TimedOut),
        Err(e) if e == rustix::io::Errno::INTR => Ok(Waited::Interrupted),
        Err(e) => Err(Errno::from_raw(e.raw_os_error())),
    }
}

/// Wakes at most `n` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, n: u32) -> Result<usize, Errno> {
    futex::wake(word, Flags::empty(), n).map_err(|e| Errno::from_raw(e.raw_os_error()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_wait_ends_by_its_deadline_a_changed_word_or_a_wake_in_another_mapping() {
        let word = AtomicU32::new(5);
        assert_eq!(wait(&word, 4, Duration::from_secs(5)), Ok(Waited::Changed));
        assert_eq!(
            wait(&word, 5, Duration::from_millis(10)),
            Ok(Waited::TimedOut)
        );
        // Two mappings of one memfd, as two processes have: a wake through one reaches a
        // waiter on the other.
        let memfd = crate::memfd::create_sealed(c"futex-test", 4096).expect("memfd");
        let b = crate::mapping::SharedMemory::new(memfd.as_fd(), 4096).expect("map");
        let memfd = &memfd;
        std::thread::scope(|s| {
            let waiter = s.spawn(move || {
                let a = crate::mapping::SharedMemory::new(memfd.as_fd(), 4096).expect("map");
                let w = a.atomic_u32(0).expect("word");
                wait(w, 0, Duration::from_secs(10))
            });
            let w = b.atomic_u32(0).expect("word");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !waiter.is_finished() && std::time::Instant::now() < deadline {
                wake(w, 1).expect("wake");
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(waiter.join().expect("joined"), Ok(Waited::Woken));
            assert_eq!(w.load(Ordering::SeqCst), 0);
        });
    }
}
