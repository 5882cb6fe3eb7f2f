//! Fetching a described fd from the GPU process and proving it is the file that was meant.
//!
//! The renderer holds one pidfd of the GPU process, opened during bootstrap (the sandbox forbids
//! `pidfd_open` later) and replaced only when the launcher announces a new GPU process. For each
//! [`RemoteFd`] it calls `pidfd_getfd` with the named number, which the description check has
//! already confined to the export window, then compares the fetched file's `(st_dev, st_ino)`
//! with the identity the description carries. A mismatch closes the fetched fd and rejects the
//! description: a compromised GPU process cannot make the renderer composite some other file.

use std::os::fd::{AsFd, OwnedFd};

use ipc_protocol::frame::{check_identity, DescError};
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::pidfd::{pidfd_getfd, PidfdError};

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

/// Takes `remote` from the process behind `pidfd` and checks its identity.
pub fn fetch(pidfd: &OwnedFd, field: &str, remote: &RemoteFd) -> Result<OwnedFd, FetchError> {
    let fd = pidfd_getfd(pidfd.as_fd(), remote.fd).map_err(|source| FetchError::Getfd {
        field: field.to_owned(),
        fd: remote.fd,
        pid: remote.pid,
        source,
    })?;
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
    Ok(fd)
}
