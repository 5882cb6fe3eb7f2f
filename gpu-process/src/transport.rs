//! Sending each frame's fds to the renderer with `SCM_RIGHTS` (`--transport scm-rights`).
//!
//! With the pidfd transport the renderer takes the fds itself and this does nothing. With
//! `SCM_RIGHTS`, the GPU process holds one end of a unix socket to each view's current renderer,
//! handed over by the launcher on the handover socket ([`Handover`]) at `Start`, at `AddView` and
//! again at every `NewRenderer` ([`ipc_protocol::wire`]); for every frame, right before the description goes out on the
//! ipc channel, it sends one message with every fd the description names (each buffer's planes
//! and its fence) and their export-window numbers. The kernel holds a reference to each file
//! while the message is queued, so the renderer gets the same files the description names.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use ipc_protocol::messages::Transport;
use ipc_protocol::wire::{self, LinkKind, WireError};
use triptych_sys::fixed::FixedFd;

use crate::export::ExportedFence;
use crate::pool::Pool;

/// How long a handover may take to arrive after the message that announces it.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors sending fds.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No handover socket although the transport needs one.
    #[error("the SCM_RIGHTS transport needs the launcher's handover socket, and there is none")]
    NoHandover,
    /// The handover was not a socket for this renderer.
    #[error(
        "the launcher handed over {kind:?} tagged {tag}, expected a socket for renderer {renderer}"
    )]
    Unexpected {
        /// What came.
        kind: LinkKind,
        /// Its tag.
        tag: u64,
        /// The renderer expected.
        renderer: u32,
    },
    /// The socket failed.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// The launcher's handover socket, where each renderer's `SCM_RIGHTS` socket arrives: one for
/// the process, shared by its views.
#[derive(Debug)]
pub struct Handover {
    transport: Transport,
    handover: Option<FixedFd>,
}

impl Handover {
    /// The handover for `transport`.
    pub fn new(transport: Transport, handover: Option<FixedFd>) -> Self {
        Self {
            transport,
            handover,
        }
    }

    /// A sender to renderer `renderer_pid`: with `SCM_RIGHTS`, its socket, taken from the
    /// launcher (sockets for renderers that are gone already are skipped); otherwise one that
    /// sends nothing.
    pub fn sender_for(&self, renderer_pid: u32) -> Result<FdSender, SendError> {
        if self.transport != Transport::ScmRights {
            return Ok(FdSender::default());
        }
        let h = self.handover.as_ref().ok_or(SendError::NoHandover)?;
        loop {
            let got = wire::recv_handover(h.get(), HANDOVER_TIMEOUT)?;
            if got.kind != LinkKind::FdSocket {
                return Err(SendError::Unexpected {
                    kind: got.kind,
                    tag: got.tag,
                    renderer: renderer_pid,
                });
            }
            if got.tag == u64::from(renderer_pid) {
                return Ok(FdSender {
                    socket: Some(got.fd),
                    planes_only: false,
                });
            }
            // A socket for a renderer that is already gone.
        }
    }
}

/// Sends one view's frames' fds to its renderer, when the transport says so.
#[derive(Debug, Default)]
pub struct FdSender {
    socket: Option<OwnedFd>,
    /// Fences are kept private ([`ipc_protocol::messages::LauncherToGpu::PrivateFences`]):
    /// only the planes go.
    planes_only: bool,
}

impl FdSender {
    /// From now on sends no fence: the launcher vouches for every frame, and fences stay with
    /// this process.
    pub fn keep_fences_private(&mut self) {
        self.planes_only = true;
    }

    /// Sends the fds of frame `frame` of `epoch`: the planes and fences of the buffers in pool
    /// slots `used`, or the planes only once fences are kept private (`SCM_RIGHTS` only).
    pub fn send_frame(
        &self,
        epoch: u64,
        frame: u64,
        pool: &Pool,
        used: &[u32],
    ) -> Result<(), SendError> {
        let Some(sock) = &self.socket else {
            return Ok(());
        };
        let mut fds: Vec<(i32, BorrowedFd<'_>)> = Vec::new();
        for &slot in used {
            let Some(s) = pool.slot(slot) else { continue };
            if let Some(buf) = &s.buffer {
                fds.extend(buf.planes.iter().map(|p| (p.fd.as_raw_fd(), p.fd.as_fd())));
            }
            let fence = s.in_flight.as_ref().filter(|_| !self.planes_only);
            match fence.map(|sub| &sub.fence) {
                Some(ExportedFence::File(f)) => fds.push((f.as_raw_fd(), f.as_fd())),
                // Implicit fences: their holder, where it is no plane (sent above).
                Some(ExportedFence::InBuffer(_)) => {
                    if let Some(c) = s.buffer.as_ref().and_then(|b| b.fence_carrier()) {
                        fds.push((c.as_raw_fd(), c.as_fd()));
                    }
                }
                Some(ExportedFence::Point { .. }) | None => {}
            }
        }
        wire::send_frame_fds(sock.as_fd(), epoch, frame, &fds)?;
        Ok(())
    }
}
