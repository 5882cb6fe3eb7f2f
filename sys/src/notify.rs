//! Seccomp user notification: violation reports that come from the kernel, not from the process
//! that made the call.
//!
//! A filter whose rules end in `SECCOMP_RET_USER_NOTIF` instead of `SECCOMP_RET_TRAP` does not
//! signal the calling thread: the kernel suspends it inside the system call and queues a
//! notification on a *listener* fd, created with the filter (`SECCOMP_FILTER_FLAG_NEW_LISTENER`).
//! Whoever holds the listener reads the notification (`SECCOMP_IOCTL_NOTIF_RECV`): the calling
//! thread's id, the system call number, its architecture and its six arguments, as the kernel
//! saw them. The sandboxed process installs the filter, hands the listener to the launcher at
//! once and closes its own copy; from then on nothing the process does can forge, garble or
//! suppress a report, and a trapped thread stays suspended until the launcher kills the process.
//!
//! Installing with a listener on every thread needs `SECCOMP_FILTER_FLAG_TSYNC_ESRCH` (Linux
//! 5.7): without it, `TSYNC` and `NEW_LISTENER` together are refused, since a failed sync would
//! return a thread id where the listener fd is expected.
//!
//! Lifetime: the listener is an `OwnedFd`; the filter (and so the notifications) lives as long
//! as the process. When the process dies the listener reports `POLLHUP`.
//!
//! See `Documentation/userspace-api/seccomp_filter.rst` ("Userspace Notification") and
//! `include/uapi/linux/seccomp.h`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use crate::seccomp::TrapRecord;

/// `SECCOMP_SET_MODE_FILTER`.
pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
/// `SECCOMP_GET_ACTION_AVAIL`.
pub const SECCOMP_GET_ACTION_AVAIL: u32 = 2;
/// `SECCOMP_FILTER_FLAG_TSYNC`: install on every thread.
pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1 << 0;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a listener fd.
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`: report a failed sync as `ESRCH`.
pub const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_RET_TRAP`.
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    /// System call number.
    pub nr: i32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    /// Instruction pointer at the call.
    pub instruction_pointer: u64,
    /// The six arguments.
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompNotif {
    /// Cookie for the answer.
    pub id: u64,
    /// The calling thread, in the listener's pid namespace.
    pub pid: u32,
    /// Unused (0).
    pub flags: u32,
    /// The call.
    pub data: SeccompData,
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: `SECCOMP_IOWR(0, struct seccomp_notif)` with `SECCOMP_IOC_MAGIC`
/// `'!'`.
pub const SECCOMP_IOCTL_NOTIF_RECV: u32 = crate::ioctl::iowr::<SeccompNotif>(b'!', 0);

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompNotifResp {
    /// The cookie of the notification answered.
    pub id: u64,
    /// The call's return value, when it is not run.
    pub val: i64,
    /// A negated errno, when it is not run.
    pub error: i32,
    /// `SECCOMP_USER_NOTIF_FLAG_*`.
    pub flags: u32,
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: `SECCOMP_IOWR(1, struct seccomp_notif_resp)`.
pub const SECCOMP_IOCTL_NOTIF_SEND: u32 = crate::ioctl::iowr::<SeccompNotifResp>(b'!', 1);

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: `SECCOMP_IOW(2, __u64)`.
pub const SECCOMP_IOCTL_NOTIF_ID_VALID: u32 = crate::ioctl::iow::<u64>(b'!', 2);

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS`: `SECCOMP_IOW(4, __u64)` (Linux 6.6).
pub const SECCOMP_IOCTL_NOTIF_SET_FLAGS: u32 = crate::ioctl::iow::<u64>(b'!', 4);

/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE` (Linux 5.5): let the kernel run the call as if the
/// filter had allowed it.
pub const SECCOMP_USER_NOTIF_FLAG_CONTINUE: u32 = 1;

/// One call the filter refused, as the kernel queued it.
#[derive(Clone, Copy, Debug)]
pub struct Notification {
    /// The kernel's cookie, for [`let_run`].
    pub id: u64,
    /// The call (`pid` left 0, `tid` the calling thread).
    pub record: TrapRecord,
}

/// Errors of user notification.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Installing the filter with a listener failed.
    #[error("installing the seccomp filter with a listener failed: {0}")]
    Install(nix::Error),
    /// `PR_SET_NO_NEW_PRIVS` failed.
    #[error("setting no_new_privs failed: {0}")]
    NoNewPrivs(nix::Error),
    /// Receiving a notification failed.
    #[error("receiving a seccomp notification failed: {0}")]
    Recv(nix::Error),
    /// Answering a notification failed.
    #[error("answering a seccomp notification failed: {0}")]
    Answer(nix::Error),
    /// The filtered process is gone.
    #[error("the filtered process is gone")]
    Gone,
}

/// Whether this kernel offers `SECCOMP_RET_USER_NOTIF` and `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`
/// (the second is known by the kernel release: 5.7 or later).
pub fn available() -> Result<(), String> {
    let action = SECCOMP_RET_USER_NOTIF;
    // SAFETY: seccomp(GET_ACTION_AVAIL) reads one u32 through the pointer, which points at
    // `action` on this stack, and changes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    if r != 0 {
        return Err(format!(
            "the kernel does not offer SECCOMP_RET_USER_NOTIF ({})",
            nix::Error::last()
        ));
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) < (5, 7) {
        return Err(format!(
            "kernel {release} predates SECCOMP_FILTER_FLAG_TSYNC_ESRCH (5.7)"
        ));
    }
    Ok(())
}

/// Installs `program` on every thread of this process with a listener and returns the
/// listener. Sets `no_new_privs` first (required without `CAP_SYS_ADMIN`). Irreversible.
pub fn install_with_listener(program: &[libc::sock_filter]) -> Result<OwnedFd, NotifyError> {
    crate::prctl::set_no_new_privs()
        .map_err(|e| NotifyError::NoNewPrivs(nix::Error::from_raw(e.errno.raw_os_error())))?;
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, borrowed for the call and `len` instructions long; the
    // kernel copies the program and does not keep the pointer. On success the return value is a
    // new fd (the listener) that nothing else owns.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_TSYNC
                | SECCOMP_FILTER_FLAG_NEW_LISTENER
                | SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
            &prog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(NotifyError::Install(nix::Error::last()));
    }
    // SAFETY: the kernel just returned `fd` as the new listener; this is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits for the next notification on `listener` and returns the call as a [`TrapRecord`]
/// (`pid` is left 0 for the caller, which knows the process; `tid` is the calling thread).
/// [`NotifyError::Gone`] once the process has died.
pub fn recv(listener: BorrowedFd<'_>) -> Result<TrapRecord, NotifyError> {
    recv_notification(listener).map(|n| n.record)
}

/// Like [`recv`], with the kernel's cookie, so that the call can be answered ([`let_run`]).
/// Until it is answered (or the process dies) the calling thread stays suspended.
pub fn recv_notification(listener: BorrowedFd<'_>) -> Result<Notification, NotifyError> {
    loop {
        // No deadline: this is the listener thread's wait for the child's next trapped call,
        // and it ends when the child dies (POLLHUP).
        let mut pfd = [PollFd::new(&listener, PollFlags::IN)];
        match poll(&mut pfd, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(NotifyError::Recv(nix::Error::from_raw(e.raw_os_error()))),
        }
        if !pfd[0].revents().contains(PollFlags::IN) {
            // POLLHUP (or an error) without a notification: no filtered task is left.
            return Err(NotifyError::Gone);
        }
        let mut n = SeccompNotif::default();
        // SAFETY: NOTIF_RECV writes one `struct seccomp_notif` (the size is in the request
        // number, pinned by a test) into `n`, zeroed first as the kernel requires; the fd is
        // borrowed and so open.
        let r = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                SECCOMP_IOCTL_NOTIF_RECV as _,
                &mut n as *mut SeccompNotif,
            )
        };
        if r == 0 {
            return Ok(Notification {
                id: n.id,
                record: TrapRecord {
                    arch: n.data.arch,
                    nr: n.data.nr,
                    pid: 0,
                    tid: n.pid,
                    args: n.data.args,
                },
            });
        }
        match nix::Error::last() {
            // Interrupted, or the notifying task died before we read it (ENOENT): poll again,
            // which reports the hang-up once no filtered task is left.
            nix::Error::EINTR | nix::Error::ENOENT => continue,
            e => return Err(NotifyError::Recv(e)),
        }
    }
}

/// Answers notification `id`: the kernel runs the suspended call as if the filter had allowed
/// it (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Only the sandbox's learning mode does this: it
/// records what a process calls beyond its policy without stopping it. [`NotifyError::Gone`]
/// when the calling thread died in the meantime (`ENOENT`).
pub fn let_run(listener: BorrowedFd<'_>, id: u64) -> Result<(), NotifyError> {
    answer(
        listener,
        SeccompNotifResp {
            id,
            val: 0,
            error: 0,
            flags: SECCOMP_USER_NOTIF_FLAG_CONTINUE,
        },
    )
}

/// Answers notification `id`: the suspended call is not run and fails with `errno`.
pub fn refuse(listener: BorrowedFd<'_>, id: u64, errno: i32) -> Result<(), NotifyError> {
    answer(
        listener,
        SeccompNotifResp {
            id,
            val: 0,
            error: -errno,
            flags: 0,
        },
    )
}

fn answer(listener: BorrowedFd<'_>, mut resp: SeccompNotifResp) -> Result<(), NotifyError> {
    loop {
        // SAFETY: NOTIF_SEND reads one `struct seccomp_notif_resp` (the size is in the request
        // number, pinned by a test) from `resp`, on this stack; the fd is borrowed and so open.
        let r = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                SECCOMP_IOCTL_NOTIF_SEND as _,
                &mut resp as *mut SeccompNotifResp,
            )
        };
        if r == 0 {
            return Ok(());
        }
        match nix::Error::last() {
            nix::Error::EINTR => continue,
            nix::Error::ENOENT => return Err(NotifyError::Gone),
            e => return Err(NotifyError::Answer(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_numbers_match_the_uapi_header() {
        assert_eq!(std::mem::size_of::<SeccompData>(), 64);
        assert_eq!(std::mem::size_of::<SeccompNotif>(), 80);
        assert_eq!(SECCOMP_IOCTL_NOTIF_RECV, 0xc050_2100);
        assert_eq!(std::mem::size_of::<SeccompNotifResp>(), 24);
        assert_eq!(SECCOMP_IOCTL_NOTIF_SEND, 0xc018_2101);
        assert_eq!(
            SECCOMP_USER_NOTIF_FLAG_CONTINUE,
            libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
        );
        assert_eq!(SECCOMP_RET_USER_NOTIF, 0x7fc0_0000);
        assert_eq!(SECCOMP_FILTER_FLAG_NEW_LISTENER, 8);
        assert_eq!(SECCOMP_FILTER_FLAG_TSYNC_ESRCH, 16);
    }

    #[test]
    fn this_kernel_offers_it() {
        // The kernels this project runs on (6.1 and later) all do; say why if not.
        available().expect("seccomp user notification");
    }
}
