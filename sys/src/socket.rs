//! Unix socket pairs: the only sockets triptych makes.
//!
//! Every channel between two of triptych's processes is one end of a `socketpair(2)` of
//! `AF_UNIX`, `SOCK_SEQPACKET` sockets that the launcher creates and hands out; nothing ever
//! binds or connects to a name. `SOCK_SEQPACKET` keeps message boundaries (one `sendmsg` is one
//! `recvmsg`), is connection-oriented (the peer's close is seen as end of file), and carries fds
//! ([`crate::scm`]). Both ends are created close-on-exec (`SOCK_CLOEXEC`); a child inherits its
//! end only where the launcher puts it at a fixed number on purpose ([`crate::jail`]).
//!
//! [`shutdown_write`] closes one direction while the socket stays open (`shutdown(2)`,
//! `SHUT_WR`): the peer then reads end of file, as if this side had closed, while whoever holds
//! the fd can still read.
//!
//! A mailbox's wake-up ([`wake_pair`], [`wake`], [`drain_wakes`]) is a pair of its own: one
//! datagram says "look at the ring". Each end is non-blocking in its own open file, which the
//! peer cannot change (an eventfd shared by both processes has one file, whose `O_NONBLOCK` a
//! peer could clear and so make the other side's write or read wait for ever), and sends use
//! `MSG_DONTWAIT | MSG_NOSIGNAL`, so they neither wait nor raise `SIGPIPE` whatever the flags.
//!
//! The calls are nix's. See <https://man7.org/linux/man-pages/man2/socketpair.2.html>,
//! <https://man7.org/linux/man-pages/man7/unix.7.html> and
//! <https://man7.org/linux/man-pages/man2/shutdown.2.html>.

#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, Shutdown, SockFlag, SockType};

use crate::Errno;

/// A mailbox's wake-up pair: `SOCK_SEQPACKET`, both ends non-blocking and close-on-exec.
pub fn wake_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
}

/// How a wake-up went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Sent, or one was already waiting (the peer's queue is full of them).
    Sent,
    /// The peer closed its end.
    Closed,
}

/// Sends one wake-up datagram on `sock`: never waits, never raises `SIGPIPE`.
pub fn wake(sock: BorrowedFd<'_>) -> Result<Wake, Errno> {
    use nix::sys::socket::{sendmsg, MsgFlags, UnixAddr};
    let iov = [std::io::IoSlice::new(&[1u8])];
    match sendmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &iov,
        &[],
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        None,
    ) {
        Ok(_) | Err(Errno::EAGAIN) => Ok(Wake::Sent),
        Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => Ok(Wake::Closed),
        Err(e) => Err(e),
    }
}

/// Takes every wake-up waiting on `sock` without waiting, at most `max` of them; returns how
/// many, or `Closed` once the peer has closed its end and none is left.
pub fn drain_wakes(sock: BorrowedFd<'_>, max: u32) -> Result<(u32, Wake), Errno> {
    use nix::sys::socket::{recvmsg, MsgFlags, UnixAddr};
    let mut n = 0;
    while n < max {
        let mut b = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut b)];
        match recvmsg::<UnixAddr>(sock.as_raw_fd(), &mut iov, None, MsgFlags::MSG_DONTWAIT) {
            Ok(r) if r.bytes > 0 => n += 1,
            // Zero bytes: the end of the peer, or an empty datagram (a wake-up all the same).
            Ok(_) if crate::poll::hung_up_now(sock) => return Ok((n, Wake::Closed)),
            Ok(_) => n += 1,
            Err(Errno::EAGAIN) => break,
            Err(Errno::ECONNRESET) => return Ok((n, Wake::Closed)),
            Err(e) => return Err(e),
        }
    }
    Ok((n, Wake::Sent))
}

/// A connected pair of `AF_UNIX` `SOCK_SEQPACKET` sockets, both ends close-on-exec.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Shuts down sending on `sock` (`SHUT_WR`): the peer reads end of file once it has read what
/// was sent before.
pub fn shutdown_write(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    nix::sys::socket::shutdown(sock.as_raw_fd(), Shutdown::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_pair_keeps_boundaries_and_sees_a_shutdown() {
        let (a, b) = seqpacket_pair().expect("pair");
        assert!(
            crate::fd::is_cloexec(&a).expect("flags") && crate::fd::is_cloexec(&b).expect("flags")
        );
        crate::scm::send_with_fds(a.as_fd(), b"one", &[]).expect("send");
        crate::scm::send_with_fds(a.as_fd(), b"two", &[]).expect("send");
        let mut buf = [0u8; 16];
        let d = crate::scm::recv_datagram(b.as_fd(), &mut buf).expect("recv");
        assert_eq!(&buf[..d.len], b"one");
        shutdown_write(a.as_fd()).expect("shutdown");
        let d = crate::scm::recv_datagram(b.as_fd(), &mut buf).expect("recv");
        assert_eq!(&buf[..d.len], b"two");
        assert!(
            crate::scm::recv_datagram(b.as_fd(), &mut buf)
                .expect("recv")
                .eof
        );
    }
}
