//! Fetching a described fd from the GPU process and proving it is the file that was meant.
//!
//! The fd comes from the frame's [`FrameSource`] (see [`crate::link`]): with the pidfd transport,
//! `pidfd_getfd` on the one pidfd of the GPU process at `GPU_LINK_FD` with the named number,
//! which the description check has already confined to the export window (and the seccomp
//! filter confines again); with `SCM_RIGHTS`, the fd that arrived with the frame's message under
//! that number. Either way the fetched file's `(st_dev, st_ino)` is then compared with the
//! identity the description carries. A mismatch closes the fetched fd and rejects the
//! description: a compromised GPU process cannot make the renderer composite some other file.

use std::os::fd::{AsFd, OwnedFd};

use ipc_protocol::frame::{check_identity, DescError};
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::pidfd::{pidfd_getfd, PidfdError};

use crate::link::FrameSource;

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
    #[cfg(debug_assertions)]
    {
        let link = match &*src {
            FrameSource::Pidfd(p, _) => Some(*p),
            FrameSource::Received(..) => None,
        };
        crate::probe::on_fetched(field, fd.as_fd(), link);
    }
    Ok(fd)
}
