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
//! signal. [`hung_up_now`], a check that does not wait, is the one `poll(2)` proper.

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
    match poll_in(fd, timeout)? {
        None => Ok(WaitOutcome::TimedOut),
        Some(r) if r.intersects(PollFlags::IN | PollFlags::HUP) => Ok(WaitOutcome::Ready),
        Some(r) => Err(broken(fd, r)),
    }
}

/// Whether a send on `fd` would go through now (`POLLOUT`), without waiting. On one end of a
/// `SOCK_SEQPACKET` pair, false means the bytes it sent and its peer has not read yet are at its
/// send buffer's limit.
pub fn writable_now(fd: BorrowedFd<'_>) -> Result<bool, PollError> {
    let mut pfd = [PollFd::new(&fd, PollFlags::OUT)];
    loop {
        match poll(&mut pfd, Some(&Timespec::default())) {
            Ok(_) => return Ok(pfd[0].revents().contains(PollFlags::OUT)),
            Err(Errno::INTR) => continue,
            Err(errno) => {
                return Err(PollError::Poll {
                    fd: fd.as_raw_fd(),
                    errno,
                })
            }
        }
    }
}

/// Whether the peer of the socket `sock` has closed its end (`POLLHUP`, or `POLLERR`), without
/// waiting; a failed poll counts as hung up.
///
/// This one check is made with `poll(2)` itself (nix's, the C library's call), not with the
/// `ppoll` the waits above make: it is the call the seccomp policies' `poll` rule names for
/// channel hang-up checks.
pub fn hung_up_now(sock: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFd as NixPollFd, PollFlags as NixPollFlags, PollTimeout};
    let mut fds = [NixPollFd::new(sock, NixPollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(NixPollFlags::POLLHUP | NixPollFlags::POLLERR)),
        Err(_) => true,
    }
}

/// Waits until either of two fds is readable or hung up, or `timeout` has passed (`None`: no
/// deadline); returns, for each, whether it reported anything (`POLLIN`, `POLLHUP`, `POLLERR`).
/// Both false means the deadline passed.
pub fn wait_either(
    a: BorrowedFd<'_>,
    b: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> Result<(bool, bool), PollError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.and_then(|l| Timespec::try_from(l).ok());
        let mut pfd = [
            PollFd::new(&a, PollFlags::IN),
            PollFd::new(&b, PollFlags::IN),
        ];
        match poll(&mut pfd, ts.as_ref()) {
            Ok(n) if n > 0 => {
                return Ok((!pfd[0].revents().is_empty(), !pfd[1].revents().is_empty()))
            }
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(errno) => {
                return Err(PollError::Poll {
                    fd: a.as_raw_fd(),
                    errno,
                })
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((false, false));
        }
    }
}

/// Polls `fd` for `POLLIN` until something is reported or `timeout` has passed (`EINTR` retried
/// with the time left); returns the events, or `None` at the deadline.
fn poll_in(fd: BorrowedFd<'_>, timeout: Duration) -> Result<Option<PollFlags>, PollError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // A deadline past what a timespec holds (some 292 billion years) waits for ever.
        let ts = Timespec::try_from(left).ok();
        let mut pfd = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut pfd, ts.as_ref()) {
            Ok(n) if n > 0 => return Ok(Some(pfd[0].revents())),
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(errno) => {
                return Err(PollError::Poll {
                    fd: fd.as_raw_fd(),
                    errno,
                })
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
    }
}

fn broken(fd: BorrowedFd<'_>, revents: PollFlags) -> PollError {
    PollError::Broken {
        fd: fd.as_raw_fd(),
        revents: revents.bits() as i16,
    }
}

/// How a wait on a fence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum FenceWait {
    /// Signalled: readable with something to read (`POLLIN`).
    Signalled,
    /// The deadline passed first.
    TimedOut,
    /// Hung up with nothing to read: the writer of a pipe fence went away (its process died)
    /// without signalling. Never signalled, and never will be.
    Abandoned,
}

/// Waits until the fence `fd` is signalled, abandoned, or `timeout` has passed.
///
/// A pipe fence is signalled by a byte written before its write end is closed: a pipe whose
/// writer is gone reports `POLLHUP`, with `POLLIN` only while there is data (`pipe_poll` in
/// `fs/pipe.c`), so a producer that dies mid-render (which closes its write end too) is told
/// apart from one that finished, and nothing is consumed: the byte stays readable for every
/// holder of the read end.
pub fn wait_signalled(fd: BorrowedFd<'_>, timeout: Duration) -> Result<FenceWait, PollError> {
    match poll_in(fd, timeout)? {
        None => Ok(FenceWait::TimedOut),
        Some(r) if r.contains(PollFlags::IN) => Ok(FenceWait::Signalled),
        Some(r) if r.contains(PollFlags::HUP) => Ok(FenceWait::Abandoned),
        Some(r) => Err(broken(fd, r)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn a_closed_peer_is_seen_as_hung_up() {
        let (a, b) = crate::socket::seqpacket_pair().expect("pair");
        assert!(!hung_up_now(a.as_fd()));
        drop(b);
        assert!(hung_up_now(a.as_fd()));
    }

    #[test]
    fn a_pipe_fence_is_signalled_by_a_byte_and_abandoned_by_a_bare_close() {
        let (r, w) = crate::fd::pipe_cloexec().expect("pipe");
        assert_eq!(
            wait_signalled(r.as_fd(), Duration::from_millis(10)).expect("wait"),
            FenceWait::TimedOut
        );
        let mut w = std::fs::File::from(w);
        w.write_all(&[1]).expect("write");
        drop(w);
        for _ in 0..2 {
            // Nothing is consumed: every holder of the read end sees the same.
            assert_eq!(
                wait_signalled(r.as_fd(), Duration::ZERO).expect("wait"),
                FenceWait::Signalled
            );
        }
        let (r, w) = crate::fd::pipe_cloexec().expect("pipe");
        drop(w);
        assert_eq!(
            wait_signalled(r.as_fd(), Duration::ZERO).expect("wait"),
            FenceWait::Abandoned
        );
    }
}
