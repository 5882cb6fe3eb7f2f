//! The closed set of messages between `triptych-bench` and its peer, `triptych-bench peer`.
//!
//! The peer joins through the same bootstrap as the real children
//! ([`ipc_protocol::bootstrap`]: its control socket at the fixed fd); the control channel then carries one [`ToPeer::Setup`] and a
//! [`ToPeer::Run`] per measured block. The measured traffic never goes over the control channel:
//! handoff messages use the real socket that `Setup` hands over (typed `LauncherToRenderer` /
//! `RendererToLauncher` on [`ipc_protocol::channel`]: the last hop of a frame, from the launcher
//! to the renderer, and its release back), and baselines use the bare socket the peer has as its stdin. After each block the
//! peer reports what it did ([`Counts`]), and the bench checks that against what the block was
//! meant to do, so a figure can never come from a peer that skipped the work.

use ipc_protocol::channel::Wire;
use serde::{Deserialize, Serialize};

/// The role name of the peer: process name and bootstrap role.
pub const PEER_ROLE: &str = "bench-peer";

/// Bench to peer.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToPeer {
    /// Where to run and what to talk to. Sent once, first.
    Setup(PeerSetup),
    /// Handle `count` iterations of `phase`, then answer [`FromPeer::Done`].
    Run {
        /// What each iteration is.
        phase: Phase,
        /// How many iterations.
        count: u64,
    },
    /// Exit 0.
    Exit,
}

/// The peer's set-up. Attached, in this order: the peer socket (frames in, releases out), the
/// producer's progress page (read-only), the mailbox socket, the memfd of the ring the peer
/// reads frames from, and that of the ring it writes releases to
/// ([`ipc_protocol::mailbox`]: the channel the launcher and a renderer share by default).
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerSetup {
    /// The CPU to pin to, if any.
    pub core: Option<usize>,
    /// The producer's pid: the peer opens one pidfd of it, as the renderer does of the GPU process.
    pub producer_pid: u32,
    /// The producer's export window `[base, end)`.
    pub window: (i32, i32),
}

/// How the consumer gets a frame's fences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceMode {
    /// Points of the producer's progress page, which the peer maps read-only at `Setup`, as the
    /// pipeline's shm fences are: no file per frame, one atomic load per layer.
    Progress,
    /// Fetched (`pidfd_getfd` + identity check) for every message, then polled, as the pipeline
    /// does with its per-submission fences.
    FetchEach,
}

/// Which channel a handoff takes, as the launcher and the renderer talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Via {
    /// The channel with its two mailboxes: each message a record of a shared-memory ring, a
    /// futex wake only where the reader sleeps (the pipeline's default).
    Mailbox,
    /// The socket alone: each message a `sendmsg` and a `recvmsg` (`--mailbox off`).
    Socket,
}

/// What one iteration of a block is, on the peer's side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Receive a `LauncherToRenderer::Frame`, validate every layer, import what is not cached, get and
    /// poll the fences, answer one `RendererToLauncher::Release`.
    Handoff {
        /// How fences are obtained.
        fence: FenceMode,
        /// The channel the frame and the release take.
        via: Via,
    },
    /// Receive a `LauncherToRenderer::Frame` and answer one `RendererToLauncher::Release`, nothing else:
    /// what the channel alone costs, to split a handoff's time between transport and checks.
    Transport {
        /// The channel the frame and the release take.
        via: Via,
    },
    /// On the bare socket: read exactly `request` bytes, write `reply` bytes.
    Echo {
        /// Bytes in.
        request: usize,
        /// Bytes out.
        reply: usize,
    },
    /// On the bare socket: read one byte, take each of `fds` from the producer with
    /// `pidfd_getfd`, close them, write one byte.
    Getfd {
        /// fd numbers in the producer.
        fds: Vec<i32>,
    },
    /// On the bare socket: receive one byte carrying `fds` fds (`SCM_RIGHTS`), close them,
    /// write one byte.
    ScmRights {
        /// fds expected per message.
        fds: usize,
    },
}

/// Peer to bench.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromPeer {
    /// Set up: pinned (or not) and holding a pidfd of the producer.
    Ready {
        /// The peer's pid.
        pid: u32,
        /// The CPU it pinned itself to.
        core: Option<usize>,
    },
    /// A block is done.
    Done(Counts),
    /// The peer failed, with the error; it exits after sending this.
    Failed(String),
}

/// What the peer did during one block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Iterations handled.
    pub iterations: u64,
    /// Buffers fetched, checked, measured and mapped (import-cache misses).
    pub imports: u64,
    /// Layers served from the import cache.
    pub hits: u64,
    /// Fences fetched with `pidfd_getfd`.
    pub fences_fetched: u64,
    /// Fences polled and found signalled.
    pub fences_ready: u64,
    /// fds taken by `pidfd_getfd` or received by `SCM_RIGHTS` in fd blocks.
    pub fds: u64,
    /// Payload bytes read from the bare socket.
    pub bytes: u64,
    /// The peer's CPU time (its thread's, user and system) over the block, in nanoseconds;
    /// `None` where the kernel refused the thread's CPU clock.
    pub cpu_ns: Option<u64>,
}

impl Wire for ToPeer {
    fn kind(&self) -> &'static str {
        match self {
            ToPeer::Setup(_) => "Setup",
            ToPeer::Run { .. } => "Run",
            ToPeer::Exit => "Exit",
        }
    }
    fn fd_count(&self) -> usize {
        // The peer socket, the progress page (read-only), the mailbox socket and its two
        // rings.
        if matches!(self, ToPeer::Setup(_)) {
            5
        } else {
            0
        }
    }
}

impl Wire for FromPeer {
    fn kind(&self) -> &'static str {
        match self {
            FromPeer::Ready { .. } => "Ready",
            FromPeer::Done(_) => "Done",
            FromPeer::Failed(_) => "Failed",
        }
    }
}
