//! The CPU fence used with shm buffers: an `eventfd(2)` written once the GL work is done.
//!
//! The GPU process creates one eventfd per submitted frame of a layer, exports it next to the
//! buffer, and writes 1 to it only after the pixels are in the buffer. The renderer never reads
//! the counter: it polls for `POLLIN`, which is level-triggered, so a fence stays signalled for
//! every holder until it is closed. See <https://man7.org/linux/man-pages/man2/eventfd.2.html>.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::eventfd::{EfdFlags, EventFd};

/// Errors from eventfd fences.
#[derive(Debug, thiserror::Error)]
pub enum EventFenceError {
    /// `eventfd` failed.
    #[error("eventfd() failed: {0}")]
    Create(nix::Error),
    /// Writing the counter failed.
    #[error("signalling the eventfd fence failed: {0}")]
    Signal(nix::Error),
}

/// The signalling side of an eventfd fence, held by the GPU process.
#[derive(Debug)]
#[must_use = "a fence that is never signalled makes its waiter time out"]
pub struct EventFence {
    fd: EventFd,
}

impl EventFence {
    /// Creates an unsignalled fence, close-on-exec and non-blocking.
    pub fn new() -> Result<Self, EventFenceError> {
        let fd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(EventFenceError::Create)?;
        Ok(Self { fd })
    }

    /// Signals the fence: every poller sees `POLLIN` from now on.
    pub fn signal(&self) -> Result<(), EventFenceError> {
        self.fd
            .write(1)
            .map(|_| ())
            .map_err(EventFenceError::Signal)
    }

    /// The fd to export.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Gives up the signalling side, returning the fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::{wait_readable, WaitOutcome};
    use std::time::Duration;

    #[test]
    fn signal_makes_readable() {
        let f = EventFence::new().expect("eventfd");
        assert_eq!(
            wait_readable(f.as_fd(), Duration::ZERO).expect("poll"),
            WaitOutcome::TimedOut
        );
        f.signal().expect("signal");
        assert_eq!(
            wait_readable(f.as_fd(), Duration::from_millis(10)).expect("poll"),
            WaitOutcome::Ready
        );
        // Level-triggered: still ready for a second look.
        assert_eq!(
            wait_readable(f.as_fd(), Duration::ZERO).expect("poll"),
            WaitOutcome::Ready
        );
    }
}
