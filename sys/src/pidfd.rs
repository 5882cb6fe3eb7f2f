//! Process file descriptors: `pidfd_open(2)`, `pidfd_getfd(2)`, `pidfd_send_signal(2)`.
//!
//! A pidfd names one process for as long as the fd lives, even after the pid is reused, which is
//! what makes the RemoteFd path sound: the renderer opens one pidfd of the GPU process during
//! bootstrap (before its sandbox forbids `pidfd_open`) and takes every exported buffer and fence
//! through it with `pidfd_getfd`, which the kernel allows only with ptrace-level access
//! (`PTRACE_MODE_ATTACH_REALCREDS`) to the target. The launcher polls the pidfds of its children:
//! a pidfd becomes readable when its process exits.
//!
//! The calls themselves are [rustix](https://docs.rs/rustix)'s (`rustix::process`), which makes
//! them without libc wrappers (older glibc has none) and hands back `OwnedFd`s; this module adds
//! what callers need on top: errors classified by what to do about them. The syscall numbers are
//! kept here, pinned by a test against libc, because the seccomp policies name them. See
//! <https://man7.org/linux/man-pages/man2/pidfd_getfd.2.html>.

use std::os::fd::{BorrowedFd, OwnedFd};

use crate::signal::Signal;

/// `__NR_pidfd_send_signal`.
pub const SYS_PIDFD_SEND_SIGNAL: i64 = 424;
/// `__NR_pidfd_open`.
pub const SYS_PIDFD_OPEN: i64 = 434;
/// `__NR_pidfd_getfd`.
pub const SYS_PIDFD_GETFD: i64 = 438;

/// Errors from pidfd calls, classified so callers can say what to do.
#[derive(Debug, thiserror::Error)]
pub enum PidfdError {
    /// The kernel does not have the call (Linux before 5.3 for `pidfd_open`, 5.6 for `pidfd_getfd`).
    #[error("{call} is not available on this kernel (ENOSYS): Linux 5.6 or newer is needed")]
    Unsupported {
        /// The call.
        call: &'static str,
    },
    /// The process is gone (`pid` is -1 when it was named by a pidfd).
    #[error("{call}: the process ({}) has exited (ESRCH)", if *.pid < 0 { "behind the pidfd".to_owned() } else { format!("pid {pid}") })]
    NoProcess {
        /// The call.
        call: &'static str,
        /// Its pid, when known.
        pid: i32,
    },
    /// Permission was refused: no ptrace access, a sandbox rule, or Yama.
    #[error("{call} refused (EPERM) for target fd {target_fd}: no ptrace access to the process (Yama ptrace_scope, a missing PR_SET_PTRACER, or a sandbox rule)")]
    Denied {
        /// The call.
        call: &'static str,
        /// The fd asked for (-1 where it does not apply).
        target_fd: i32,
    },
    /// The target process has no such fd.
    #[error("pidfd_getfd: the target process has no fd {target_fd} (EBADF)")]
    NoSuchFd {
        /// The fd asked for.
        target_fd: i32,
    },
    /// Any other failure.
    #[error("{call} failed: {errno}")]
    Other {
        /// The call.
        call: &'static str,
        /// The error.
        errno: nix::Error,
    },
}

fn classify(call: &'static str, pid: i32, target_fd: i32, errno: nix::Error) -> PidfdError {
    match errno {
        nix::Error::ENOSYS => PidfdError::Unsupported { call },
        nix::Error::ESRCH => PidfdError::NoProcess { call, pid },
        nix::Error::EPERM | nix::Error::EACCES => PidfdError::Denied { call, target_fd },
        nix::Error::EBADF if target_fd >= 0 => PidfdError::NoSuchFd { target_fd },
        errno => PidfdError::Other { call, errno },
    }
}

fn errno(e: rustix::io::Errno) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error())
}

/// Opens a pidfd of process `pid`, close-on-exec.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, PidfdError> {
    // rustix's Pid is positive by construction; anything else is no process at all.
    let p = (pid > 0)
        .then(|| rustix::process::Pid::from_raw(pid))
        .flatten()
        .ok_or_else(|| classify("pidfd_open", pid, -1, nix::Error::EINVAL))?;
    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|e| classify("pidfd_open", pid, -1, errno(e)))
}

/// Takes a duplicate of fd `target_fd` of the process behind `pidfd`, close-on-exec (the kernel
/// sets `O_CLOEXEC` on every fd `pidfd_getfd` installs).
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> Result<OwnedFd, PidfdError> {
    rustix::process::pidfd_getfd(pidfd, target_fd, rustix::process::PidfdGetfdFlags::empty())
        .map_err(|e| classify("pidfd_getfd", -1, target_fd, errno(e)))
}

/// Sends `signal` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> Result<(), PidfdError> {
    let sig = rustix::process::Signal::from_named_raw(signal as i32)
        .ok_or_else(|| classify("pidfd_send_signal", -1, -1, nix::Error::EINVAL))?;
    rustix::process::pidfd_send_signal(pidfd, sig)
        .map_err(|e| classify("pidfd_send_signal", -1, -1, errno(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};

    #[test]
    fn syscall_numbers_match_libc() {
        assert_eq!(SYS_PIDFD_OPEN, libc::SYS_pidfd_open);
        assert_eq!(SYS_PIDFD_GETFD, libc::SYS_pidfd_getfd);
        assert_eq!(SYS_PIDFD_SEND_SIGNAL, libc::SYS_pidfd_send_signal);
    }

    #[test]
    fn getfd_from_self_and_errors() {
        let me = pidfd_open(std::process::id() as i32).expect("pidfd_open self");
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let copy = pidfd_getfd(me.as_fd(), a.as_raw_fd()).expect("getfd");
        assert_eq!(
            crate::fd::identity(copy.as_fd()).expect("id"),
            crate::fd::identity(a.as_fd()).expect("id")
        );
        assert!(crate::fd::is_cloexec(&copy).expect("flags"));
        assert!(matches!(
            pidfd_getfd(me.as_fd(), 65000),
            Err(PidfdError::NoSuchFd { target_fd: 65000 })
        ));
        assert!(matches!(
            pidfd_open(-5),
            Err(PidfdError::Other { .. }) | Err(PidfdError::NoProcess { .. })
        ));
    }
}
