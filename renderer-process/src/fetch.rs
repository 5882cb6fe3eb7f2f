//! Fetching a described fd from the GPU process and proving it is the file that was meant.
//!
//! The fd comes from the frame's [`FrameSource`], which the binary's link to the GPU process
//! hands out once per frame (the benchmark's consumer makes its own from a pidfd it opened):
//! with the pidfd transport,
//! `pidfd_getfd` on the one pidfd of the GPU process at `GPU_LINK_FD` with the named number,
//! which the description check has already confined to the export window (and the seccomp
//! filter confines again); with `SCM_RIGHTS`, the fd that arrived with the frame's message under
//! that number. Either way the fetched file's `(st_dev, st_ino)` is then compared with the
//! identity the description carries. A mismatch closes the fetched fd and rejects the
//! description: a compromised GPU process cannot make the renderer composite some other file.
//!
//! A layer's fence, once taken, is a [`Waitable`]: that file, or a point of the GPU process's
//! progress page, which is no file and is never fetched.
//!
//! A [`FrameSource`] lives for one frame and counts what was taken from it ([`Counters`]), which
//! the frame loop adds to the run's statistics. Every fetched fd is the caller's to own.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use ipc_protocol::frame::{check_identity, DescError};
use ipc_protocol::progress::ProgressReader;
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::pidfd::{pidfd_getfd, PidfdError};
use triptych_sys::poll::{wait_signalled, FenceWait};

/// Fds fetched per path, for the run's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Buffers taken with `pidfd_getfd`.
    pub buffers_via_pidfd: u64,
    /// Fences taken with `pidfd_getfd`.
    pub fences_via_pidfd: u64,
    /// Buffers and fences that arrived with `SCM_RIGHTS` and were used.
    pub via_other: u64,
}

/// Where one frame's fds come from.
#[derive(Debug)]
pub enum FrameSource<'a> {
    /// `pidfd_getfd` through this pidfd of the GPU process.
    Pidfd(BorrowedFd<'a>, Counters),
    /// The fds that came with the frame's message, by export-window number.
    Received(BTreeMap<i32, OwnedFd>, Counters),
}

impl FrameSource<'_> {
    /// What was fetched from this source so far.
    pub fn counters(&self) -> Counters {
        match self {
            FrameSource::Pidfd(_, c) | FrameSource::Received(_, c) => *c,
        }
    }

    fn count(&mut self, field: &str) {
        let fence = field == "fence";
        match self {
            FrameSource::Pidfd(_, c) if fence => c.fences_via_pidfd += 1,
            FrameSource::Pidfd(_, c) => c.buffers_via_pidfd += 1,
            FrameSource::Received(_, c) => c.via_other += 1,
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The kernel refused or failed the fetch.
    #[error("fetching {field} (fd {fd} of pid {pid}) failed: {source}")]
    Getfd {
        /// Which field of the description.
        field: String,
        /// The remote fd number.
        fd: i32,
        /// The remote pid.
        pid: u32,
        /// The error.
        source: PidfdError,
    },
    /// The frame's `SCM_RIGHTS` message did not carry this number.
    #[error("{field}: fd {fd} of pid {pid} did not arrive with the frame's SCM_RIGHTS message")]
    NotSent {
        /// Which field.
        field: String,
        /// The remote fd number.
        fd: i32,
        /// The remote pid.
        pid: u32,
    },
    /// The fetched file's identity could not be read.
    #[error("fstat of fetched {field} failed: {source}")]
    Identity {
        /// Which field.
        field: String,
        /// The error.
        source: triptych_sys::fd::FdError,
    },
    /// The fetched file is not the described one.
    #[error(transparent)]
    Mismatch(#[from] DescError),
}

/// Takes `remote` from `src` and checks its identity.
pub fn fetch(
    src: &mut FrameSource<'_>,
    field: &str,
    remote: &RemoteFd,
) -> Result<OwnedFd, FetchError> {
    let fd = match src {
        FrameSource::Pidfd(pidfd, _) => {
            pidfd_getfd(pidfd.as_fd(), remote.fd).map_err(|source| FetchError::Getfd {
                field: field.to_owned(),
                fd: remote.fd,
                pid: remote.pid,
                source,
            })?
        }
        FrameSource::Received(fds, _) => {
            fds.remove(&remote.fd).ok_or_else(|| FetchError::NotSent {
                field: field.to_owned(),
                fd: remote.fd,
                pid: remote.pid,
            })?
        }
    };
    let id = triptych_sys::fd::identity(fd.as_fd()).map_err(|source| FetchError::Identity {
        field: field.to_owned(),
        source,
    })?;
    check_identity(
        field,
        remote.identity,
        FileId {
            dev: id.dev,
            ino: id.ino,
        },
    )?;
    src.count(field);
    Ok(fd)
}

/// One layer's fence, as the renderer waits on it: a file taken from the GPU process, or a
/// point of its progress page ([`ipc_protocol::progress`]).
#[derive(Debug)]
pub enum Waitable {
    /// A sync_file, pipe or eventfd fence.
    Fd(OwnedFd),
    /// Signalled once the page reaches the point.
    Point(Arc<ProgressReader>, u64),
}

impl Waitable {
    /// The fence's file, if it is one.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match self {
            Waitable::Fd(fd) => Some(fd.as_fd()),
            Waitable::Point(..) => None,
        }
    }

    /// Waits up to `slice` for the fence (not at all for `Duration::ZERO`).
    pub(crate) fn wait(&self, slice: Duration) -> Result<FenceWait, String> {
        match self {
            Waitable::Fd(fd) => wait_signalled(fd.as_fd(), slice).map_err(|e| e.to_string()),
            Waitable::Point(page, point) if slice.is_zero() => Ok(if page.signalled(*point) {
                FenceWait::Signalled
            } else {
                FenceWait::TimedOut
            }),
            Waitable::Point(page, point) => match page.wait(*point, slice, Some(slice), || false) {
                Ok(true) => Ok(FenceWait::Signalled),
                Ok(false) => Ok(FenceWait::TimedOut),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}
