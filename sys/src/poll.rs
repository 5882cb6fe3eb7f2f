//! Waiting on one fd with a deadline, with an explicit outcome.
//!
//! Fences and pidfds all signal by becoming readable: sync_files, eventfds and pidfds report
//! `POLLIN`; a pipe fence's read end reports `POLLHUP` once its write end is closed (end of
//! file, no data), which counts as ready too. The
//! wait retries `EINTR` with the time that is left, so a signal never shortens or lengthens the
//! deadline. See <https://man7.org/linux/man-pages/man2/poll.2.html>.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

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
        errno: nix::Error,
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
        // Round up so that a sub-millisecond remainder still waits rather than spinning.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd on our stack and nfds is 1; the fd is borrowed and so
        // open for the whole call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let errno = nix::Error::last();
            if errno == nix::Error::EINTR {
                continue;
            }
            return Err(PollError::Poll {
                fd: fd.as_raw_fd(),
                errno,
            });
        }
        if n > 0 {
            if pfd.revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                return Ok(WaitOutcome::Ready);
            }
            return Err(PollError::Broken {
                fd: fd.as_raw_fd(),
                revents: pfd.revents,
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
