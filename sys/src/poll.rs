//! Waiting on one fd with a deadline, with an explicit outcome.
//!
//! Fences and pidfds all signal by becoming readable: sync_files, eventfds and pidfds report
//! `POLLIN`; a pipe fence's read end reports `POLLHUP` once its write end is closed (end of
//! file, no data), which counts as ready too. The
//! wait retries `EINTR` with the time that is left, so a signal never shortens or lengthens the
//! deadline. See <https://man7.org/linux/man-pages/man2/poll.2.html>.
//!
//! The system call is rustix's `poll`, which on 64-bit Linux is `ppoll` with a nanosecond
//! timeout (the seccomp policies allow it for these waits), so a deadline is kept to the
//! nanosecond instead of being rounded to milliseconds. What this module adds is the deadline
//! across `EINTR`, the explicit [`WaitOutcome`], and treating a hang-up as the pipe fence's
//! signal.

#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum WaitOutcome {
    /// The fd became readable.
    Ready,
    /// The deadline passed first.
    TimedOut,
}

/// Errors from waiting.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// `poll` failed.
    #[error("poll on fd {fd} failed: {errno}")]
    Poll {
        /// The fd.
        fd: i32,
        /// The error.
        errno: Errno,
    },
    /// The fd reported an error or hang-up instead of becoming readable.
    #[error("fd {fd} reported poll events {revents:#x} (error or hang-up)")]
    Broken {
        /// The fd.
        fd: i32,
        /// The events reported.
        revents: i16,
    },
}

/// Waits until `fd` is readable or `timeout` has passed.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> Result<WaitOutcome, PollError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // A deadline past what a timespec holds (some 292 billion years) waits for ever.
        let ts = Timespec::try_from(left).ok();
        let mut pfd = [PollFd::new(&fd, PollFlags::IN)];
        let n = match poll(&mut pfd, ts.as_ref()) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(errno) => {
                return Err(PollError::Poll {
                    fd: fd.as_raw_fd(),
                    errno,
                })
            }
        };
        if n > 0 {
            let revents = pfd[0].revents();
            if revents.intersects(PollFlags::IN | PollFlags::HUP) {
                return Ok(WaitOutcome::Ready);
            }
            return Err(PollError::Broken {
                fd: fd.as_raw_fd(),
                revents: revents.bits() as i16,
            });
        }
        if Instant::now() >= deadline {
            return Ok(WaitOutcome::TimedOut);
        }
    }
}

/// Waits until every fd in `fds` is readable or `timeout` has passed; returns, per fd, whether
/// it became readable. The total wait never exceeds `timeout`.
pub fn wait_all_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Duration,
) -> Result<Vec<bool>, PollError> {
    let deadline = Instant::now() + timeout;
    let mut ready = Vec::with_capacity(fds.len());
    for fd in fds {
        let left = deadline.saturating_duration_since(Instant::now());
        ready.push(wait_readable(*fd, left)? == WaitOutcome::Ready);
    }
    Ok(ready)
}
