//! Passing fds in a unix-socket message: `SCM_RIGHTS` ancillary data.
//!
//! triptych moves buffers and fences with `pidfd_getfd` (see [`crate::pidfd`]): the GPU process
//! only names fd numbers and the renderer takes them. `SCM_RIGHTS` is the classic alternative: the
//! sender attaches fds to a message with `sendmsg(2)`, the kernel holds a reference to each file
//! while the message is queued, and `recvmsg(2)` installs new fds for them in the receiver. This
//! module is that path, kept so the two can be compared in the same processes (`triptych bench`)
//! and so a transport for kernels without `pidfd_getfd` has its OS layer ready.
//!
//! Lifetime rules: the sender's fds stay the sender's (the kernel takes its own references); every
//! fd received is returned as an `OwnedFd`, created close-on-exec (`MSG_CMSG_CLOEXEC`), so nothing
//! received can leak into a child. The control buffer of a receive is always sized for the most
//! fds one message can carry ([`SCM_MAX_FD`]), so a message is never truncated (`MSG_CTRUNC`),
//! which would make the kernel drop the fds that did not fit.
//!
//! See <https://man7.org/linux/man-pages/man7/unix.7.html> and
//! <https://man7.org/linux/man-pages/man3/cmsg.3.html>.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The most fds one `SCM_RIGHTS` message may carry: `SCM_MAX_FD` in `include/net/scm.h`
/// (kernel-internal, not uapi). `sendmsg` fails with `EINVAL` beyond it; pinned by a test
/// against the running kernel.
pub const SCM_MAX_FD: usize = 253;

/// Errors passing fds.
#[derive(Debug, thiserror::Error)]
pub enum ScmError {
    /// More fds than one message can carry.
    #[error("{count} fds in one SCM_RIGHTS message; at most {SCM_MAX_FD} fit")]
    TooMany {
        /// The fds asked for.
        count: usize,
    },
    /// `sendmsg` failed.
    #[error("sendmsg of {bytes} bytes with {fds} fds on socket {sock} failed: {errno}")]
    Send {
        /// The socket.
        sock: i32,
        /// Payload bytes.
        bytes: usize,
        /// Fds attached.
        fds: usize,
        /// The error.
        errno: nix::Error,
    },
    /// `recvmsg` failed.
    #[error("recvmsg on socket {sock} failed: {errno}")]
    Recv {
        /// The socket.
        sock: i32,
        /// The error.
        errno: nix::Error,
    },
    /// The control data did not fit; the kernel dropped fds.
    #[error("recvmsg on socket {sock}: control data truncated (MSG_CTRUNC), fds were lost")]
    Truncated {
        /// The socket.
        sock: i32,
    },
    /// The message carried more fds than the caller accepts (they have been closed).
    #[error("recvmsg on socket {sock}: {got} fds arrived, at most {max} expected")]
    Unexpected {
        /// The socket.
        sock: i32,
        /// Fds that arrived.
        got: usize,
        /// Fds accepted.
        max: usize,
    },
}

/// Sends `bytes` (at least one byte: a stream socket carries ancillary data only with data) with
/// `fds` attached. Returns the payload bytes sent.
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<usize, ScmError> {
    if fds.len() > SCM_MAX_FD {
        return Err(ScmError::TooMany { count: fds.len() });
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsgs };
    let iov = [IoSlice::new(bytes)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(nix::Error::EINTR) => continue,
            Err(errno) => {
                return Err(ScmError::Send {
                    sock: sock.as_raw_fd(),
                    bytes: bytes.len(),
                    fds: raw.len(),
                    errno,
                })
            }
        }
    }
}

/// Receives into `buf`, returning the payload bytes read (0 at end of stream) and the fds that
/// came with them, each close-on-exec. More than `max_fds` fds is an error (they are closed).
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
) -> Result<(usize, Vec<OwnedFd>), ScmError> {
    let mut space = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(nix::Error::EINTR) => continue,
            Err(errno) => {
                return Err(ScmError::Recv {
                    sock: sock.as_raw_fd(),
                    errno,
                })
            }
        }
    };
    let cmsgs = msg.cmsgs().map_err(|_| ScmError::Truncated {
        sock: sock.as_raw_fd(),
    })?;
    let mut fds = Vec::new();
    for c in cmsgs {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: recvmsg succeeded and the kernel installed `fd` in this process's table
                // for this message (scm_detach_fds); nothing else knows the number yet, so the
                // OwnedFd is its only owner and closes it exactly once.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if fds.len() > max_fds {
        return Err(ScmError::Unexpected {
            sock: sock.as_raw_fd(),
            got: fds.len(),
            max: max_fds,
        });
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn fds_arrive_as_the_same_files_and_close_on_exec() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let m1 = crate::memfd::create_sealed(c"scm-1", 4096).expect("memfd");
        let m2 = crate::memfd::create_sealed(c"scm-2", 4096).expect("memfd");
        let n = send_with_fds(a.as_fd(), b"x", &[m1.as_fd(), m2.as_fd()]).expect("send");
        assert_eq!(n, 1);
        let mut buf = [0u8; 4];
        let (got, fds) = recv_with_fds(b.as_fd(), &mut buf, 2).expect("recv");
        assert_eq!((got, buf[0], fds.len()), (1, b'x', 2));
        for (sent, recvd) in [&m1, &m2].into_iter().zip(&fds) {
            assert_eq!(
                crate::fd::identity(sent.as_fd()).expect("id"),
                crate::fd::identity(recvd.as_fd()).expect("id")
            );
            assert!(crate::fd::is_cloexec(recvd).expect("flags"));
        }
    }

    #[test]
    fn too_many_fds_are_refused_and_closed() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let m = crate::memfd::create_sealed(c"scm-3", 4096).expect("memfd");
        send_with_fds(a.as_fd(), b"y", &[m.as_fd(), m.as_fd(), m.as_fd()]).expect("send");
        let mut buf = [0u8; 1];
        assert!(matches!(
            recv_with_fds(b.as_fd(), &mut buf, 2),
            Err(ScmError::Unexpected { got: 3, max: 2, .. })
        ));
    }

    #[test]
    fn scm_max_fd_matches_the_kernel() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let fds: Vec<BorrowedFd<'_>> = (0..SCM_MAX_FD).map(|_| a.as_fd()).collect();
        send_with_fds(a.as_fd(), b"z", &fds).expect("SCM_MAX_FD fds fit in one message");
        let mut buf = [0u8; 1];
        let (_, got) = recv_with_fds(b.as_fd(), &mut buf, SCM_MAX_FD).expect("recv");
        assert_eq!(got.len(), SCM_MAX_FD);
        drop(got);
        // One more is refused by the kernel itself (EINVAL), not only by the check above.
        let raw: Vec<RawFd> = (0..=SCM_MAX_FD).map(|_| a.as_raw_fd()).collect();
        let err = sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"z")],
            &[ControlMessage::ScmRights(&raw)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        );
        assert_eq!(err, Err(nix::Error::EINVAL));
        assert!(matches!(
            send_with_fds(a.as_fd(), b"z", &vec![a.as_fd(); SCM_MAX_FD + 1]),
            Err(ScmError::TooMany { count }) if count == SCM_MAX_FD + 1
        ));
    }
}
