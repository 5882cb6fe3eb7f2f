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
//! The calls are nix's. See <https://man7.org/linux/man-pages/man2/socketpair.2.html>,
//! <https://man7.org/linux/man-pages/man7/unix.7.html> and
//! <https://man7.org/linux/man-pages/man2/shutdown.2.html>.

#![forbid(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, Shutdown, SockFlag, SockType};

use crate::Errno;

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
