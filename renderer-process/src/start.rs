//! The renderer's start: from claiming its fds to the frame loop ([`crate::pipeline`]).
//!
//! Sequence: claim the fixed fds the sandbox names ([`crate::sandbox`]), join the launcher's
//! channels (bootstrap) and take its command stream (`ipc_protocol::commands`), receive `Start`, take the one pidfd of the GPU process it will use from
//! the launcher ([`crate::link`]), create the output, put the sandbox on, then loop: receive a
//! frame description, validate it, import each layer's buffer (cached per buffer id), fetch and
//! wait on each fence with a deadline, composite into a free output slot, tell the launcher, and
//! release the buffers it no longer shows. The renderer needs no GL context and opens no file
//! after bootstrap. Where a program built on the library acts is [`crate::hooks`].

use std::os::fd::AsFd;

use anyhow::Context;
use ipc_protocol::bootstrap;
use ipc_protocol::messages::{LauncherToRenderer, RendererToLauncher};

/// The role name: process name, policy name, span prefix, crash records.
pub const ROLE: &str = ipc_protocol::Role::Renderer.as_str();

/// Runs the renderer: start-up, then the frame loop until the launcher says `Shutdown`. The
/// product passes [`crate::hooks::NoHooks`].
pub fn run(mut hooks: Box<dyn crate::hooks::Hooks>) -> anyhow::Result<()> {
    // Before anything else: the fixed fds, the SIGSYS reporter.
    let claimed = crate::sandbox::startup().context("sandbox start-up")?;
    triptych_sys::prctl::set_name(ROLE).context("naming the process")?;
    let (commands, events) = bootstrap::join::<LauncherToRenderer, RendererToLauncher>(ROLE)
        .context("joining the launcher")?;
    // The launcher's commands come over ipc-channel, taken before the sandbox goes on.
    let mut commands = bootstrap::take_stream(commands, &events, RendererToLauncher::CommandsAt)
        .context("taking the launcher's command stream")?;
    // The mailbox first, where the launcher keeps one; then Start.
    let mut events = events;
    let start = loop {
        let (msg, mut fds) = commands
            .recv()
            .context("waiting for Start from the launcher")?;
        match msg {
            LauncherToRenderer::Mailbox => {
                let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
                hooks.mailboxes(&borrowed);
                (events, commands) = ipc_protocol::channel::attach_mailboxes(
                    std::mem::take(&mut fds),
                    events,
                    commands,
                )
                .context("taking the mailboxes the launcher handed over")?;
            }
            LauncherToRenderer::Start(s) => break s,
            LauncherToRenderer::Shutdown => return Ok(()),
            other => anyhow::bail!("expected Start from the launcher, got {other:?}"),
        }
    };
    let mut pipeline = crate::pipeline::Pipeline::new(start, events, claimed, hooks)
        .context("starting the pipeline")?;
    let commands = ipc_protocol::channel::forward("launcher-rx", commands)?;
    pipeline.run(commands)
}
