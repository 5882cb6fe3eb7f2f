//! The two fd-passing sockets of a sandboxed run and their message formats, beside the
//! messages of the channels ([`crate::messages`]).
//!
//! 1. **Handover** (launcher -> child, `triptych_sandbox::fds::HANDOVER_FD` in the child): whenever
//!    a child is attached to a (new) peer, the launcher sends it, *before* the ipc message that
//!    announces the peer, one [`Handover`] with one fd: for the renderer, a pidfd of the GPU
//!    process ([`LinkKind::GpuPidfd`]) or its end of an `SCM_RIGHTS` socket to it
//!    ([`LinkKind::FdSocket`]); for the GPU process, its end of that socket. This is how a renderer
//!    whose sandbox forbids `pidfd_open` reaches a restarted GPU process: the launcher, which may
//!    open pidfds, opens one and hands it over; the renderer puts it at
//!    `triptych_sandbox::fds::GPU_LINK_FD`, the one number its `pidfd_getfd` rule accepts. The
//!    `tag` pairs the handover with the ipc message (the GPU epoch for the renderer, the renderer's
//!    pid for the GPU process), so a stale one is recognised and dropped.
//! 2. **Frame fds** (GPU process -> renderer, `--transport scm-rights` only): for each frame,
//!    before its description goes out on the ipc channel, the GPU process sends one
//!    [`FrameFds`] message carrying every fd the description names (planes, then fence, layer by
//!    layer) and, in the payload, the export-window numbers they have in the GPU process, so the
//!    renderer can match each received fd to the `RemoteFd` that names it and check its identity
//!    exactly as it does after `pidfd_getfd`.
//!
//! Both are `SOCK_SEQPACKET` unix sockets: message boundaries are kept and the ancillary data
//! arrives with its message. Every fd received is close-on-exec (`MSG_CMSG_CLOEXEC`).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use triptych_sys::poll::{wait_readable, WaitOutcome};
use triptych_sys::scm::{recv_with_fds, send_with_fds, send_with_fds_flags, ScmError};

/// "TPHO": the first bytes of a handover.
pub const HANDOVER_MAGIC: u32 = u32::from_le_bytes(*b"TPHO");
/// "TPFR": the first bytes of a frame's fds.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"TPFR");
/// The most fds one frame may carry: 16 layers of up to 4 planes and a fence. Far below
/// `SCM_MAX_FD` (253).
pub const MAX_FRAME_FDS: usize = 16 * 5;

/// What a handover carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A pidfd of the GPU process (renderer, pidfd transport).
    GpuPidfd,
    /// One end of the `SCM_RIGHTS` socket between the GPU process and the renderer.
    FdSocket,
}

impl LinkKind {
    fn code(self) -> u32 {
        match self {
            LinkKind::GpuPidfd => 1,
            LinkKind::FdSocket => 2,
        }
    }

    fn from_code(c: u32) -> Option<Self> {
        match c {
            1 => Some(LinkKind::GpuPidfd),
            2 => Some(LinkKind::FdSocket),
            _ => None,
        }
    }
}

/// Errors on the fd-passing sockets.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed.
    #[error(transparent)]
    Scm(#[from] ScmError),
    /// Nothing arrived in time.
    #[error("no {what} arrived within {timeout:?}")]
    Timeout {
        /// What was awaited.
        what: &'static str,
        /// How long.
        timeout: Duration,
    },
    /// The peer closed the socket.
    #[error("the {what} socket was closed by its peer")]
    Closed {
        /// Which socket.
        what: &'static str,
    },
    /// A malformed message.
    #[error("malformed {what}: {problem}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Polling failed.
    #[error("polling the {what} socket failed: {error}")]
    Poll {
        /// Which socket.
        what: &'static str,
        /// The error.
        error: String,
    },
}

/// One handover: a link fd and what it is.
#[derive(Debug)]
pub struct Handover {
    /// What the fd is.
    pub kind: LinkKind,
    /// Pairs it with an ipc message (epoch or renderer pid).
    pub tag: u64,
    /// The fd.
    pub fd: OwnedFd,
    /// For a renderer, the GPU process's fence progress page, read-only ([`crate::progress`]),
    /// when that process was given one.
    pub progress: Option<OwnedFd>,
}

const HANDOVER_LEN: usize = 16;

/// Sends a handover: the link `fd`, and the GPU process's progress page where it has one.
pub fn send_handover(
    sock: BorrowedFd<'_>,
    kind: LinkKind,
    tag: u64,
    fd: BorrowedFd<'_>,
    progress: Option<BorrowedFd<'_>>,
) -> Result<(), WireError> {
    let mut b = [0u8; HANDOVER_LEN];
    b[0..4].copy_from_slice(&HANDOVER_MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&kind.code().to_le_bytes());
    b[8..16].copy_from_slice(&tag.to_le_bytes());
    match progress {
        Some(p) => send_with_fds(sock, &b, &[fd, p])?,
        None => send_with_fds(sock, &b, &[fd])?,
    };
    Ok(())
}

fn wait(sock: BorrowedFd<'_>, what: &'static str, timeout: Duration) -> Result<(), WireError> {
    match wait_readable(sock, timeout) {
        Ok(WaitOutcome::Ready) => Ok(()),
        Ok(WaitOutcome::TimedOut) => Err(WireError::Timeout { what, timeout }),
        Err(e) => Err(WireError::Poll {
            what,
            error: e.to_string(),
        }),
    }
}

/// Receives the next handover, waiting up to `timeout`.
pub fn recv_handover(sock: BorrowedFd<'_>, timeout: Duration) -> Result<Handover, WireError> {
    const WHAT: &str = "handover";
    wait(sock, WHAT, timeout)?;
    let mut b = [0u8; HANDOVER_LEN + 1];
    let (n, fds) = recv_with_fds(sock, &mut b, 2)?;
    if n == 0 && fds.is_empty() {
        return Err(WireError::Closed { what: WHAT });
    }
    let bad = |problem: String| WireError::Malformed {
        what: WHAT,
        problem,
    };
    if n != HANDOVER_LEN {
        return Err(bad(format!("{n} bytes, expected {HANDOVER_LEN}")));
    }
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if word(0) != HANDOVER_MAGIC {
        return Err(bad(format!("magic {:#010x}", word(0))));
    }
    let kind = LinkKind::from_code(word(4)).ok_or_else(|| bad(format!("kind {}", word(4))))?;
    let mut t = [0u8; 8];
    t.copy_from_slice(&b[8..16]);
    let mut fds = fds.into_iter();
    let fd = fds.next().ok_or_else(|| bad("no fd attached".to_owned()))?;
    Ok(Handover {
        kind,
        tag: u64::from_le_bytes(t),
        fd,
        progress: fds.next(),
    })
}

/// The fds of one frame, as received.
#[derive(Debug)]
pub struct FrameFds {
    /// The GPU epoch.
    pub epoch: u64,
    /// The frame.
    pub frame: u64,
    /// `(number in the GPU process's export window, the fd)`, in the order sent.
    pub fds: Vec<(i32, OwnedFd)>,
}

const FRAME_HEADER: usize = 4 + 4 + 8 + 8;

/// Sends the fds of frame `frame` of `epoch`: each `(number in the export window, fd)`.
pub fn send_frame_fds(
    sock: BorrowedFd<'_>,
    epoch: u64,
    frame: u64,
    fds: &[(i32, BorrowedFd<'_>)],
) -> Result<(), WireError> {
    if fds.len() > MAX_FRAME_FDS {
        return Err(WireError::Malformed {
            what: "frame fds",
            problem: format!("{} fds, at most {MAX_FRAME_FDS}", fds.len()),
        });
    }
    let mut b = Vec::with_capacity(FRAME_HEADER + 4 * fds.len());
    b.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    b.extend_from_slice(&(fds.len() as u32).to_le_bytes());
    b.extend_from_slice(&epoch.to_le_bytes());
    b.extend_from_slice(&frame.to_le_bytes());
    for (n, _) in fds {
        b.extend_from_slice(&n.to_le_bytes());
    }
    let attached: Vec<BorrowedFd<'_>> = fds.iter().map(|(_, f)| *f).collect();
    // Never waits: a renderer that stops reading its fds must not stall the GPU process (the
    // send fails with EAGAIN, the frame's fds are missing, and the renderer rejects the frame).
    send_with_fds_flags(sock, &b, &attached, true)?;
    Ok(())
}

/// Receives one frame's fds, waiting up to `timeout`.
pub fn recv_frame_fds(sock: BorrowedFd<'_>, timeout: Duration) -> Result<FrameFds, WireError> {
    const WHAT: &str = "frame fds";
    wait(sock, WHAT, timeout)?;
    let mut b = [0u8; FRAME_HEADER + 4 * MAX_FRAME_FDS + 1];
    let (n, fds) = recv_with_fds(sock, &mut b, MAX_FRAME_FDS)?;
    if n == 0 && fds.is_empty() {
        return Err(WireError::Closed { what: WHAT });
    }
    let bad = |problem: String| WireError::Malformed {
        what: WHAT,
        problem,
    };
    if n < FRAME_HEADER {
        return Err(bad(format!("{n} bytes, shorter than the header")));
    }
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let dword = |i: usize| {
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(t)
    };
    if word(0) != FRAME_MAGIC {
        return Err(bad(format!("magic {:#010x}", word(0))));
    }
    let count = word(4) as usize;
    if count != fds.len() || n != FRAME_HEADER + 4 * count {
        return Err(bad(format!(
            "header says {count} fds, {} arrived in {n} bytes",
            fds.len()
        )));
    }
    let numbers = (0..count).map(|i| word(FRAME_HEADER + 4 * i) as i32);
    Ok(FrameFds {
        epoch: dword(8),
        frame: dword(16),
        fds: numbers.zip(fds).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    fn pair() -> (OwnedFd, OwnedFd) {
        let (a, b) = UnixDatagram::pair().expect("pair");
        (a.into(), b.into())
    }

    #[test]
    fn handover_round_trips() {
        let (a, b) = pair();
        let m = triptych_sys::memfd::create_sealed(c"h", 64).expect("memfd");
        send_handover(a.as_fd(), LinkKind::GpuPidfd, 7, m.as_fd(), None).expect("send");
        let h = recv_handover(b.as_fd(), Duration::from_secs(1)).expect("recv");
        assert_eq!((h.kind, h.tag), (LinkKind::GpuPidfd, 7));
        assert!(h.progress.is_none());
        assert_eq!(
            triptych_sys::fd::identity(h.fd.as_fd()).expect("id"),
            triptych_sys::fd::identity(m.as_fd()).expect("id")
        );
        assert!(matches!(
            recv_handover(b.as_fd(), Duration::from_millis(10)),
            Err(WireError::Timeout { .. })
        ));
    }

    #[test]
    fn frame_fds_round_trip_and_are_checked() {
        let (a, b) = pair();
        let m1 = triptych_sys::memfd::create_sealed(c"f1", 64).expect("memfd");
        let m2 = triptych_sys::memfd::create_sealed(c"f2", 64).expect("memfd");
        send_frame_fds(a.as_fd(), 3, 41, &[(512, m1.as_fd()), (513, m2.as_fd())]).expect("send");
        let f = recv_frame_fds(b.as_fd(), Duration::from_secs(1)).expect("recv");
        assert_eq!((f.epoch, f.frame, f.fds.len()), (3, 41, 2));
        assert_eq!(f.fds[1].0, 513);
        assert_eq!(
            triptych_sys::fd::identity(f.fds[1].1.as_fd()).expect("id"),
            triptych_sys::fd::identity(m2.as_fd()).expect("id")
        );
        // A header that lies about the count is refused.
        let mut bogus = Vec::new();
        bogus.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
        bogus.extend_from_slice(&5u32.to_le_bytes());
        bogus.extend_from_slice(&[0u8; 16]);
        send_with_fds(a.as_fd(), &bogus, &[m1.as_fd()]).expect("send");
        assert!(matches!(
            recv_frame_fds(b.as_fd(), Duration::from_secs(1)),
            Err(WireError::Malformed { .. })
        ));
    }
}
