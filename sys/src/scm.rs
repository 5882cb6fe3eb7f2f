//! Passing fds in a unix-socket message: `SCM_RIGHTS` ancillary data.
//!
//! triptych moves buffers and fences with `pidfd_getfd` (see [`crate::pidfd`]): the GPU process
//! only names fd numbers and the renderer takes them. `SCM_RIGHTS` is the classic alternative: the
//! sender attaches fds to a message with `sendmsg(2)`, the kernel holds a reference to each file
//! while the message is queued, and `recvmsg(2)` installs new fds for them in the receiver. This
//! module is that path, kept so the two can be compared in the same processes (`triptych-bench`)
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

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned};

/// Flags of `sendmsg(2)` and `recvmsg(2)` (`MSG_PEEK`, `MSG_DONTWAIT`, ...): nix's type,
/// re-exported for [`recv_datagram_flags`]'s callers.
pub use nix::sys::socket::MsgFlags;

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
    send_with_fds_flags(sock, bytes, fds, false)
}

/// [`send_with_fds`], failing with `EAGAIN` ([`ScmError::Send`]) instead of waiting when the
/// peer's receive queue is full and `nonblocking` is set (`MSG_DONTWAIT`): a sender that must
/// never wait on its peer sees a peer that stopped reading at once.
pub fn send_with_fds_flags(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    nonblocking: bool,
) -> Result<usize, ScmError> {
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    if fds.len() > SCM_MAX_FD {
        return Err(ScmError::TooMany { count: fds.len() });
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsgs };
    let iov = [IoSlice::new(bytes)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, flags, None) {
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

/// Fds one [`recv_datagram`] accepts at most; the control buffer is sized for exactly this many,
/// so the kernel itself closes any beyond it (`MSG_CTRUNC`) and none ever reach this process.
///
/// Sixteen: the most any message carries is a frame's buffers as the launcher hands them on
/// when it vouches for them, one per layer of at most sixteen.
pub const DATAGRAM_MAX_FDS: usize = 16;

/// One datagram of a `SOCK_SEQPACKET` socket, as received.
#[derive(Debug)]
pub struct Datagram {
    /// Payload bytes copied into the caller's buffer (0 with `eof` at the peer's close).
    pub len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`); the rest is gone.
    pub truncated: bool,
    /// More fds came than [`DATAGRAM_MAX_FDS`] (`MSG_CTRUNC`); the kernel closed the excess.
    pub fds_truncated: bool,
    /// The fds that arrived, each close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The peer closed its end and nothing is queued.
    pub eof: bool,
}

/// Receives one datagram into `buf` (blocking), with at most [`DATAGRAM_MAX_FDS`] fds.
///
/// Nothing here is sized by the peer: the payload lands in the caller's fixed buffer, the
/// control buffer has room for a fixed number of fds, and both kinds of truncation are reported
/// rather than hidden, so a caller can treat an oversized or fd-stuffed message as the
/// violation it is. Ancillary data other than `SCM_RIGHTS` is ignored.
pub fn recv_datagram(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Datagram, ScmError> {
    recv_datagram_flags(sock, buf, MsgFlags::empty())
}

/// As [`recv_datagram`], with `recvmsg` flags added: `MSG_PEEK` copies the datagram at the head
/// of the queue and leaves it there (its fds, if any, are duplicated into this process, and
/// closed when dropped); `MSG_DONTWAIT` makes an empty queue an `EAGAIN` error.
pub fn recv_datagram_flags(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: MsgFlags,
) -> Result<Datagram, ScmError> {
    // Room for one SCM_RIGHTS header with DATAGRAM_MAX_FDS ints, u64-aligned as cmsghdr needs.
    const SPACE_WORDS: usize = 12;
    let mut space = [0u64; SPACE_WORDS];
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let need =
        unsafe { libc::CMSG_SPACE((DATAGRAM_MAX_FDS * std::mem::size_of::<RawFd>()) as u32) };
    debug_assert!(need as usize <= std::mem::size_of_val(&space));
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid "no name, no iov, no control" value.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = space.as_mut_ptr().cast();
    hdr.msg_controllen = need as usize;
    let len = loop {
        // SAFETY: `hdr` points at one iovec covering `buf` (exclusively borrowed for the call)
        // and at `space`, `need` bytes long and no larger than the array; the kernel writes at
        // most those lengths. The fd is borrowed and so open.
        let n = unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut hdr,
                libc::MSG_CMSG_CLOEXEC | flags.bits(),
            )
        };
        if n >= 0 {
            break n as usize;
        }
        let errno = nix::Error::last();
        if errno != nix::Error::EINTR {
            return Err(ScmError::Recv {
                sock: sock.as_raw_fd(),
                errno,
            });
        }
    };
    let mut fds = Vec::new();
    // Walk the control data the kernel wrote, truncated or not: every fd it installed is
    // adopted here, so each is closed once, whether the caller wants it or not.
    // SAFETY: `hdr` was filled by a successful recvmsg; CMSG_FIRSTHDR/NXTHDR stay within
    // msg_controllen, which the kernel set to what it wrote into `space`.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&hdr) };
    while !c.is_null() {
        // SAFETY: `c` is non-null and points at a complete cmsghdr inside `space`.
        let (level, kind, clen) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN is pure arithmetic.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = clen.saturating_sub(header) / std::mem::size_of::<RawFd>();
            // SAFETY: CMSG_DATA points just past the header of `c`, inside `space`.
            let data = unsafe { libc::CMSG_DATA(c) }.cast::<RawFd>();
            for i in 0..count {
                // SAFETY: the kernel wrote `count` ints after the header (clen says so), and
                // the data may be unaligned, hence read_unaligned.
                let fd = unsafe { data.add(i).read_unaligned() };
                // SAFETY: recvmsg installed `fd` in this process's table for this message
                // (scm_detach_fds); nothing else knows the number yet, so the OwnedFd is its
                // only owner and closes it exactly once.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; `c` is a header within the buffer.
        c = unsafe { libc::CMSG_NXTHDR(&hdr, c) };
    }
    let flags = hdr.msg_flags;
    let truncated = flags & libc::MSG_TRUNC != 0;
    Ok(Datagram {
        len,
        truncated,
        fds_truncated: flags & libc::MSG_CTRUNC != 0,
        eof: len == 0 && fds.is_empty() && !truncated,
        fds,
    })
}

/// Bytes queued unread in `sock`'s receive queue (`SIOCINQ`, `FIONREAD`), so a third party
/// holding a duplicate of a socket can see whether its owner keeps up.
pub fn queued_bytes(sock: BorrowedFd<'_>) -> Result<usize, ScmError> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `n` on our stack;
    // the fd is borrowed and so open for the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 {
        return Err(ScmError::Recv {
            sock: sock.as_raw_fd(),
            errno: nix::Error::last(),
        });
    }
    Ok(n.max(0) as usize)
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

    fn seqpacket() -> (OwnedFd, OwnedFd) {
        crate::socket::seqpacket_pair().expect("socketpair")
    }

    #[test]
    fn datagrams_report_both_truncations_and_lose_no_fd() {
        let (a, b) = seqpacket();
        let m = crate::memfd::create_sealed(c"scm-4", 4096).expect("memfd");
        let many = vec![m.as_fd(); DATAGRAM_MAX_FDS + 3];
        send_with_fds(a.as_fd(), &[7u8; 100], &many).expect("send");
        let mut buf = [0u8; 10];
        let d = recv_datagram(b.as_fd(), &mut buf).expect("recv");
        assert!(d.truncated && d.fds_truncated, "{d:?}");
        assert!(d.fds.len() <= DATAGRAM_MAX_FDS);
        drop(d);
        // Only `m` itself still refers to the memfd: the kernel closed what did not fit.
        let open = std::fs::read_dir("/proc/self/fd")
            .expect("fds")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().contains("memfd:scm-4"))
            .count();
        assert_eq!(open, 1);
        assert_eq!(queued_bytes(b.as_fd()).expect("fionread"), 0);
        send_with_fds(a.as_fd(), b"abc", &[]).expect("send");
        assert_eq!(queued_bytes(b.as_fd()).expect("fionread"), 3);
        drop(a);
        let d = recv_datagram(b.as_fd(), &mut buf).expect("recv");
        assert_eq!((d.len, d.eof), (3, false));
        let d = recv_datagram(b.as_fd(), &mut buf).expect("recv");
        assert!(d.eof);
    }

    #[test]
    fn nonblocking_send_reports_a_full_peer() {
        let (a, _b) = seqpacket();
        let chunk = [0u8; 4096];
        let err = (0..100_000)
            .find_map(|_| send_with_fds_flags(a.as_fd(), &chunk, &[], true).err())
            .expect("the queue fills");
        assert!(
            matches!(
                err,
                ScmError::Send {
                    errno: nix::Error::EAGAIN,
                    ..
                }
            ),
            "{err}"
        );
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
