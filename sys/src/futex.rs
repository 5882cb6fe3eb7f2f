//! Waiting on, and waking, a 32-bit word of memory that two processes map: the shared futex
//! (`FUTEX_WAIT` and `FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`, so the kernel keys the word by
//! the file and offset it is mapped from, not by this process's address space).
//!
//! The calls are rustix's safe ones; this module gives them the project's error type and says
//! what each outcome means, so that a mailbox's reader can tell a wake-up from a word that
//! changed and from a deadline.
//!
//! [`wait_any`] waits on several words at once (`futex_waitv`, Linux 5.16 and later): a loop
//! that reads a peer's ring itself sleeps on the ring's word and on a word of its own process
//! that its other threads ring ([`wake_private`]), with no thread in between.

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

/// One word of a [`wait_any`]: the wait goes on while it holds `expected`.
#[derive(Clone, Copy, Debug)]
pub struct WaitOn<'a> {
    /// The word.
    pub word: &'a AtomicU32,
    /// The value it is expected to hold.
    pub expected: u32,
    /// Whether only this process maps it (a private futex, woken with [`wake_private`]); a word
    /// of shared memory is keyed by its file and offset, and woken with [`wake`].
    pub private: bool,
}

/// How a [`wait_any`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitedAny {
    /// A wake-up came on the word at this index.
    Woken(usize),
    /// A word no longer held the value expected when the wait began.
    Changed,
    /// The deadline passed.
    TimedOut,
    /// A signal interrupted the wait.
    Interrupted,
}

/// Waits while every word of `on` holds the value expected, for at most `timeout`
/// (`futex_waitv`). A kernel older than 5.16 answers `ENOSYS`.
pub fn wait_any(on: &[WaitOn<'_>], timeout: Duration) -> Result<WaitedAny, Errno> {
    let waits: Vec<futex::Wait> = on
        .iter()
        .map(|w| {
            let mut wait = futex::Wait::new();
            wait.val = u64::from(w.expected);
            wait.uaddr = futex::WaitPtr::new(w.word.as_ptr().cast());
            wait.flags = if w.private {
                futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE
            } else {
                futex::WaitFlags::SIZE_U32
            };
            wait
        })
        .collect();
    // The deadline is absolute, on the monotonic clock.
    let deadline = crate::clock::monotonic_ns()
        .saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
    let ts = Timespec {
        tv_sec: i64::try_from(deadline / 1_000_000_000).unwrap_or(i64::MAX),
        tv_nsec: (deadline % 1_000_000_000) as i64,
    };
    match futex::waitv(
        &waits,
        futex::WaitvFlags::empty(),
        Some(&ts),
        futex::ClockId::Monotonic,
    ) {
        Ok(i) => Ok(WaitedAny::Woken(i)),
        Err(e) if e == rustix::io::Errno::AGAIN => Ok(WaitedAny::Changed),
        Err(e) if e == rustix::io::Errno::TIMEDOUT => Ok(WaitedAny::TimedOut),
        Err(e) if e == rustix::io::Errno::INTR => Ok(WaitedAny::Interrupted),
        Err(e) => Err(Errno::from_raw(e.raw_os_error())),
    }
}

/// Wakes at most `n` waiters on `word`, a word only this process maps ([`WaitOn::private`]);
/// returns how many were woken.
pub fn wake_private(word: &AtomicU32, n: u32) -> Result<usize, Errno> {
    futex::wake(word, Flags::PRIVATE, n).map_err(|e| Errno::from_raw(e.raw_os_error()))
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

    #[test]
    fn a_wait_on_two_words_ends_by_a_wake_on_either_a_changed_word_or_its_deadline() {
        let memfd = crate::memfd::create_sealed(c"futex-test", 4096).expect("memfd");
        let shared = crate::mapping::SharedMemory::new(memfd.as_fd(), 4096).expect("map");
        let ring = shared.atomic_u32(0).expect("word");
        let bell = AtomicU32::new(7);
        let on = |ring_expected, bell_expected| {
            [
                WaitOn {
                    word: ring,
                    expected: ring_expected,
                    private: false,
                },
                WaitOn {
                    word: &bell,
                    expected: bell_expected,
                    private: true,
                },
            ]
        };
        match wait_any(&on(0, 7), Duration::from_millis(10)) {
            Err(Errno::ENOSYS) => {
                eprintln!("futex_waitv is missing from this kernel");
                return;
            }
            r => assert_eq!(r, Ok(WaitedAny::TimedOut)),
        }
        assert_eq!(
            wait_any(&on(0, 6), Duration::from_secs(5)),
            Ok(WaitedAny::Changed)
        );
        assert_eq!(
            wait_any(&on(1, 7), Duration::from_secs(5)),
            Ok(WaitedAny::Changed)
        );
        // A wake on either word ends the wait, and says which.
        for (index, shared_word) in [(0usize, true), (1, false)] {
            std::thread::scope(|s| {
                let waiter = s.spawn(|| wait_any(&on(0, 7), Duration::from_secs(10)));
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !waiter.is_finished() && std::time::Instant::now() < deadline {
                    if shared_word {
                        wake(ring, 1).expect("wake");
                    } else {
                        wake_private(&bell, 1).expect("wake");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert_eq!(waiter.join().expect("joined"), Ok(WaitedAny::Woken(index)));
            });
        }
    }
}
