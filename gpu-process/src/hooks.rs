//! The points of the GPU process's run where a program built on this library may act: the
//! product binary passes [`NoHooks`], which does nothing at any of them; the project's adversary
//! binaries (the `triptych-adversary` crate) attack from them, inside a process set up, confined
//! and sandboxed exactly as the product's, so what they show holds for the shipped binary.
//!
//! A handful of calls, each at a place the run passes anyway: no hook can change what the run
//! does except through the values it is handed, and the defaults hand everything back as it was.

use std::os::fd::{BorrowedFd, OwnedFd};

use ipc_protocol::channel::Sender;
use ipc_protocol::messages::{FrameMsg, GpuInfo, GpuStart, GpuToLauncher, ViewId};
use triptych_sandbox::gpu::Params;

/// What the run hands a hook once `Started` is reported, just before the frame loop.
#[derive(Debug)]
pub struct Running<'a> {
    /// The channel to the launcher (which frames go through too).
    pub events: &'a Sender<GpuToLauncher>,
    /// This process's epoch.
    pub epoch: u64,
    /// The frames of the run.
    pub frames: u64,
    /// What was reported in `Started`.
    pub info: &'a GpuInfo,
}

/// What the run hands a hook after a frame went to the launcher.
#[derive(Debug)]
pub struct Sent<'a> {
    /// The frame's description, as sent.
    pub msg: &'a FrameMsg,
    /// The channel to the launcher, which it went through.
    pub events: &'a Sender<GpuToLauncher>,
    /// The pid of the renderer served.
    pub renderer_pid: u32,
    /// The view it is a frame of.
    pub view: ViewId,
}

/// The points of the run (see the module documentation). Every method has a default that does
/// nothing.
pub trait Hooks {
    /// The two fds of the launcher's `Mailbox` message, just before the run adopts them
    /// ([`ipc_protocol::mailbox::adopt_pair`]): the memfd of the mailbox this process writes,
    /// then that of the one it reads. Borrowed: the run keeps them; a hook may
    /// duplicate or map them, as code in control of the process could.
    fn mailboxes(&mut self, _fds: &[BorrowedFd<'_>]) {}

    /// The seccomp listener, once a copy of it went to the launcher: dropped (closed) by
    /// default, as the launcher requires.
    fn handed_over_listener(&mut self, _listener: OwnedFd) {}

    /// The driver is up and the sandbox is about to go on.
    fn before_confine(&mut self) {}

    /// The sandbox is on (resource limits, the seccomp policy `params` names on every thread);
    /// `Started` is not reported yet.
    fn confined(&mut self, _start: &GpuStart, _params: &Params) {}

    /// `Ready` was reported (the GL context, the exporter and the sandbox are made) and `Start`
    /// is not received yet: a standby waits here for its promotion, while a cold start finds its
    /// `Start` already queued. `events` is the channel to the launcher, on which the launcher
    /// accepts nothing more until `Start`.
    fn prepared(&mut self, _events: &Sender<GpuToLauncher>) {}

    /// `Started` was reported; the frame loop runs next.
    fn running(&mut self, _run: Running<'_>) {}

    /// Frame `msg` is described and about to be sent.
    fn sending(&mut self, _msg: &mut FrameMsg) {}

    /// Frame `sent.msg` went to the launcher.
    fn sent(&mut self, _sent: Sent<'_>) {}

    /// Whether it answers `PrivateFences` (and keeps its fences private).
    fn keeps_fences_private(&mut self) -> bool {
        true
    }

    /// The progress page the launcher handed over, read-write, before this process maps it.
    fn progress_page(&mut self, _page: BorrowedFd<'_>) {}

    /// Whether its fences become points of the progress page the launcher handed over (where
    /// the backend's fences are CPU fences); otherwise they stay pipes.
    fn progress_fences(&mut self) -> bool {
        true
    }

    /// Whether the releases the launcher relays are still taken after frame `frame` was sent.
    fn takes_releases(&mut self, _frame: u64) -> bool {
        true
    }

    /// Whether `view` gets its turn to render (asked each time the frame loop picks the next
    /// view).
    fn serves(&mut self, _view: ViewId) -> bool {
        true
    }
}

/// The product's hooks: none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
