//! The renderer's link to the current GPU process, and where each frame's fds come from.
//!
//! The link is one fd at the fixed number [`GPU_LINK_FD`]: a pidfd of the GPU process (pidfd
//! transport) or the renderer's end of an `SCM_RIGHTS` socket to it. It is set when the renderer
//! attaches to a GPU process, at `Start` and again at every `NewGpu`, from the fd the launcher
//! hands over on the handover socket just before it sends the ipc message
//! ([`ipc_protocol::wire`]). So the renderer never calls `pidfd_open`, which its sandbox
//! refuses, and `pidfd_getfd` always names the same fd number, the only one its rule accepts. A
//! renderer started without a handover socket (by a test harness playing the launcher) opens
//! the pidfd itself, which works only before its sandbox is on: at `Start`, not after a restart.
//!
//! For each frame, [`Link::frame`] gives the [`FrameSource`] its fds are taken from:
//!
//! - pidfd: `pidfd_getfd(GPU_LINK_FD, n, 0)` for each number `n` the description names (already
//!   confined to the export window by the description check, and again by the filter);
//! - `SCM_RIGHTS`: the one message the GPU process sent for this frame, whose fds are matched to
//!   the description by their export-window numbers. Messages for older frames (rejected or
//!   dropped ones) are discarded; one for a later frame is kept for it.
//!
//! Either way [`crate::fetch::fetch`] then checks the identity of each fd against the
//! description, so the two transports are held to the same standard. [`FrameSource`] lives in
//! the library, next to the fetch, so that the benchmark's consumer fetches through the same call.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::fetch::{Counters, FrameSource};
use ipc_protocol::messages::Transport;
use ipc_protocol::progress::ProgressReader;
use ipc_protocol::wire::{self, FrameFds, LinkKind, WireError};
use triptych_sandbox::fds::GPU_LINK_FD;
use triptych_sys::fixed::{FixedError, FixedFd};

/// How long a handover may take to arrive after the ipc message that announces it (the
/// launcher sends it first, so it is normally already there).
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The handover socket failed.
    #[error(
        "receiving the link to GPU process {gpu_pid} (epoch {epoch}) from the launcher: {source}"
    )]
    Handover {
        /// The GPU process.
        gpu_pid: u32,
        /// Its epoch.
        epoch: u64,
        /// The error.
        source: WireError,
    },
    /// The handover was not the one expected.
    #[error("the launcher handed over {got:?} tagged {tag}, expected {want:?} for epoch {epoch}")]
    Unexpected {
        /// What came.
        got: LinkKind,
        /// Its tag.
        tag: u64,
        /// What was expected.
        want: LinkKind,
        /// The epoch expected.
        epoch: u64,
    },
    /// No handover socket, and the pidfd cannot be opened here.
    #[error("no handover socket from the launcher: {0}")]
    NoHandover(String),
    /// Placing the link at its number failed.
    #[error("placing the link at fd {GPU_LINK_FD}: {0}")]
    Place(#[from] FixedError),
    /// The GPU process's progress page, handed over with the link, could not be mapped.
    #[error("the progress page of GPU process {gpu_pid} (epoch {epoch}): {source}")]
    Progress {
        /// The GPU process.
        gpu_pid: u32,
        /// Its epoch.
        epoch: u64,
        /// The error.
        source: ipc_protocol::progress::ProgressError,
    },
    /// The frame's fds did not arrive.
    #[error("the fds of frame {frame} (epoch {epoch}): {source}")]
    FrameFds {
        /// The epoch.
        epoch: u64,
        /// The frame.
        frame: u64,
        /// The error.
        source: WireError,
    },
}

/// The link to the current GPU process.
#[derive(Debug)]
pub struct Link {
    transport: Transport,
    handover: Option<FixedFd>,
    slot: FixedFd,
    /// A frame's fds that arrived ahead of their frame.
    ahead: Option<FrameFds>,
    attached: bool,
    /// The attached GPU process's fence progress page, read-only, if it was given one.
    progress: Option<Arc<ProgressReader>>,
}

impl Link {
    /// A link not yet attached. `handover` is the launcher's socket, when there is one; `slot`
    /// holds [`GPU_LINK_FD`].
    pub fn new(transport: Transport, handover: Option<FixedFd>, slot: FixedFd) -> Link {
        Link {
            transport,
            handover,
            slot,
            ahead: None,
            attached: false,
            progress: None,
        }
    }

    /// The attached GPU process's fence progress page, if the launcher handed one over.
    pub fn progress(&self) -> Option<&Arc<ProgressReader>> {
        self.progress.as_ref()
    }

    /// How the GPU process's fds come: the link is a pidfd, or a socket.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The link fd (at [`GPU_LINK_FD`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.slot.get()
    }

    /// The handover socket, if the launcher gave one.
    pub fn handover(&self) -> Option<BorrowedFd<'_>> {
        self.handover.as_ref().map(|h| h.get())
    }

    /// The fixed slot of the link fd: the sandbox's escape probes put another fd there, as a
    /// compromised renderer could.
    pub fn slot_mut(&mut self) -> &mut FixedFd {
        &mut self.slot
    }

    /// Attaches to GPU process `gpu_pid` of `epoch`: takes the link the launcher hands over and
    /// puts it at [`GPU_LINK_FD`], and maps the process's fence progress page (read-only) if the
    /// launcher handed one over with the link.
    pub fn attach(&mut self, epoch: u64, gpu_pid: u32) -> Result<(), LinkError> {
        let want = match self.transport {
            Transport::Pidfd => LinkKind::GpuPidfd,
            Transport::ScmRights => LinkKind::FdSocket,
        };
        let fd = match &self.handover {
            Some(h) => loop {
                let got = wire::recv_handover(h.get(), HANDOVER_TIMEOUT)
                    .map_err(|source| LinkError::Handover { gpu_pid, epoch, source })?;
                if got.kind != want {
                    return Err(LinkError::Unexpected { got: got.kind, tag: got.tag, want, epoch });
                }
                match got.tag.cmp(&epoch) {
                    // A handover for a GPU process this renderer never attached to.
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => break (got.fd, got.progress),
                    std::cmp::Ordering::Greater => {
                        return Err(LinkError::Unexpected { got: got.kind, tag: got.tag, want, epoch })
                    }
                }
            },
            None if self.attached => {
                return Err(LinkError::NoHandover(format!(
                    "GPU process {gpu_pid} (epoch {epoch}) replaced one this renderer was attached to, and the sandbox forbids pidfd_open"
                )))
            }
            None => match self.transport {
                Transport::Pidfd => (triptych_sys::pidfd::pidfd_open(gpu_pid as i32)
                    .map_err(|e| LinkError::NoHandover(format!("pidfd_open({gpu_pid}): {e}")))?, None),
                Transport::ScmRights => {
                    return Err(LinkError::NoHandover("the SCM_RIGHTS transport needs the launcher's socket".into()))
                }
            },
        };
        let (fd, progress) = fd;
        let progress = progress
            .map(|p| ProgressReader::attach(p.as_fd()))
            .transpose()
            .map_err(|source| LinkError::Progress {
                gpu_pid,
                epoch,
                source,
            })?;
        self.slot.replace(fd)?;
        self.ahead = None;
        self.attached = true;
        self.progress = progress.map(Arc::new);
        Ok(())
    }

    /// Drops, without waiting, the fd messages that have come for frames up to `frame` of
    /// `epoch` (`SCM_RIGHTS` only): a frame the launcher vouched for brings its buffers itself,
    /// and one whose message is late or missing costs nothing. Reads at most a few messages a
    /// call, so a flood cannot hold the frame loop.
    pub fn discard(&mut self, epoch: u64, frame: u64) {
        const MOST: usize = 16;
        if self.transport != Transport::ScmRights {
            return;
        }
        if let Some(m) = &self.ahead {
            if m.epoch == epoch && m.frame > frame {
                return;
            }
            self.ahead = None;
        }
        for _ in 0..MOST {
            match wire::recv_frame_fds(self.slot.get().as_fd(), Duration::ZERO) {
                Ok(m) if m.epoch == epoch && m.frame > frame => {
                    self.ahead = Some(m);
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// The source of frame `frame`'s fds; with `SCM_RIGHTS`, waits up to `timeout` for them.
    pub fn frame(
        &mut self,
        epoch: u64,
        frame: u64,
        timeout: Duration,
    ) -> Result<FrameSource<'_>, LinkError> {
        if self.transport == Transport::Pidfd {
            return Ok(FrameSource::Pidfd(self.slot.get(), Counters::default()));
        }
        loop {
            let msg =
                match self.ahead.take() {
                    Some(m) => m,
                    None => wire::recv_frame_fds(self.slot.get().as_fd(), timeout).map_err(
                        |source| LinkError::FrameFds {
                            epoch,
                            frame,
                            source,
                        },
                    )?,
                };
            if msg.epoch != epoch || msg.frame < frame {
                // A frame that was dropped or rejected before its fds were read.
                continue;
            }
            if msg.frame > frame {
                self.ahead = Some(msg);
                return Err(LinkError::FrameFds {
                    epoch,
                    frame,
                    source: WireError::Malformed {
                        what: "frame fds",
                        problem: "the GPU process sent none for this frame".into(),
                    },
                });
            }
            return Ok(FrameSource::Received(
                msg.fds.into_iter().collect(),
                Counters::default(),
            ));
        }
    }
}
