//! The points of the renderer's run where a program built on this library may act: the product
//! binary passes [`NoHooks`], which does nothing at any of them; the project's adversary
//! binaries (the `triptych-adversary` crate) attack from them, inside a process set up, confined
//! and sandboxed exactly as the product's, so what they show holds for the shipped binary.
//!
//! A handful of calls, each at a place the run passes anyway: no hook can change what the run
//! does except through the values it is handed, and the defaults hand everything back as it was.

use std::os::fd::{BorrowedFd, OwnedFd};

use ipc_protocol::channel::Sender;
use ipc_protocol::messages::{FrameMsg, RendererStart, RendererToLauncher};
use ipc_protocol::BufferId;

use crate::decide::Shown;
use crate::link::Link;

/// What the run hands a hook once the output is shared, just before the frame loop.
#[derive(Debug)]
pub struct Running<'a> {
    /// The channel to the launcher (which releases go through too).
    pub events: &'a Sender<RendererToLauncher>,
    /// The GPU process's epoch.
    pub epoch: u64,
    /// The output size's generation.
    pub generation: u32,
    /// The GPU process's export window, `[base, end)`.
    pub gpu_window: (i32, i32),
}

/// What the run hands a hook once a frame's fds are fetched and checked.
pub struct Fetched<'a> {
    /// The channel to the launcher.
    pub events: &'a Sender<RendererToLauncher>,
    /// The frame's description.
    pub msg: &'a FrameMsg,
    /// Each layer's index, what it will show, and its fence (none in a frame the launcher
    /// vouched for).
    pub layers: &'a [(u32, Shown, Option<crate::fetch::Waitable>)],
    /// The imported buffer of an id, if the import cache holds it.
    pub buffer: &'a dyn Fn(BufferId) -> Option<BorrowedFd<'a>>,
    /// The link to the GPU process the fds came through.
    pub link: &'a Link,
}

impl std::fmt::Debug for Fetched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("frame", &self.msg.frame)
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

/// What the run hands a hook once a frame was handed to the launcher.
#[derive(Debug)]
pub struct Presented<'a> {
    /// The channel to the launcher.
    pub events: &'a Sender<RendererToLauncher>,
    /// The GPU process's epoch.
    pub epoch: u64,
    /// The output size's generation.
    pub generation: u32,
    /// The output slot the frame is in.
    pub slot: u32,
    /// The frame.
    pub frame: u64,
}

/// The points of the run (see the module documentation). Every method has a default that does
/// nothing.
pub trait Hooks {
    /// The two fds of the launcher's `Mailbox` message, just before the run adopts them
    /// ([`ipc_protocol::mailbox::adopt_pair`]): the memfd of the mailbox this process writes,
    /// then that of the one it reads. Borrowed: the run keeps them; a hook may
    /// duplicate or map them, as code in control of the process could.
    fn mailboxes(&mut self, _fds: &[BorrowedFd<'_>]) {}

    /// The link is attached and the sandbox is about to go on.
    fn before_confine(&mut self, _link: &Link) -> anyhow::Result<()> {
        Ok(())
    }

    /// The seccomp listener, once a copy of it went to the launcher: dropped (closed) by
    /// default, as the launcher requires.
    fn handed_over_listener(&mut self, _listener: OwnedFd) {}

    /// The sandbox is on; `output` is the output memfd, not yet shared.
    fn confined(&mut self, _link: &mut Link, _start: &RendererStart, _output: BorrowedFd<'_>) {}

    /// The message that tells the launcher where the output is, before it is sent: what the
    /// hook returns is sent.
    fn sharing_output(&mut self, output: RendererToLauncher) -> RendererToLauncher {
        output
    }

    /// The output was shared; the frame loop runs next.
    fn running(&mut self, _run: Running<'_>) {}

    /// A resize from the launcher is about to be taken; `generation` is the one before it.
    fn resizing(&mut self, _events: &Sender<RendererToLauncher>, _epoch: u64, _generation: u32) {}

    /// A frame came from the launcher; a reason returned rejects it unfetched (as a renderer
    /// that found its fds broken would, in its own words).
    fn rejects(&mut self, _msg: &FrameMsg) -> Option<String> {
        None
    }

    /// A frame's fds were fetched and checked.
    fn fetched(&mut self, _fetched: Fetched<'_>) {}

    /// A frame was handed to the launcher.
    fn presented(&mut self, _presented: Presented<'_>) {}

    /// Whether `buffer` is handed back to the launcher (for the GPU process) now.
    fn releases(&mut self, _buffer: BufferId) -> bool {
        true
    }
}

/// The product's hooks: none.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl Hooks for NoHooks {}
