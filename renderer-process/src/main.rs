//! triptych's renderer process.
//!
//! Sequence: claim the fixed fds the sandbox names ([`sandbox`]), join the launcher's channels
//! (bootstrap), receive `Start`, take the one pidfd of the GPU process it will use from the
//! launcher ([`link`]), create the output, put the sandbox on, then loop: receive a frame description, validate
//! it, import each layer's buffer (cached per buffer id), fetch and wait on each fence with a
//! deadline, composite into a free output slot, tell the launcher, and release the buffers it no
//! longer shows. The renderer needs no GL context and opens no file after bootstrap.
//!
//! The checks, the fetch, the import cache and the compositor live in the crate's library
//! (`renderer_process`), which the benchmarks (`triptych-bench`) call too; this binary holds
//! what only a running renderer needs.
#![forbid(unsafe_code)]

mod decide;
#[cfg(debug_assertions)]
mod hostile;
mod link;
mod output;
mod pipeline;
#[cfg(debug_assertions)]
mod probe;
mod sandbox;

use anyhow::Context;
use ipc_protocol::bootstrap;
use ipc_protocol::messages::{LauncherToRenderer, RendererToLauncher};

/// The role name: process name, policy name, span prefix, crash records.
pub const ROLE: &str = ipc_protocol::Role::Renderer.as_str();

fn main() {
    ipc_protocol::logging::init("warn");
    if let Err(e) = run() {
        tracing::error!(role = ROLE, error = format!("{e:#}"), "renderer failed");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    // Before anything else: the fixed fds, the SIGSYS reporter, the test hook.
    let claimed = sandbox::startup().context("sandbox start-up")?;
    #[cfg(debug_assertions)]
    renderer_process::fetch::set_hook(probe::on_fetched);
    triptych_sys::prctl::set_name(ROLE).context("naming the process")?;
    let (mut commands, events) = bootstrap::join::<LauncherToRenderer, RendererToLauncher>(ROLE)
        .context("joining the launcher")?;
    let (start, mut fds) = commands
        .recv()
        .context("waiting for Start from the launcher")?;
    let start = match start {
        LauncherToRenderer::Start(s) => s,
        LauncherToRenderer::Shutdown => return Ok(()),
        other => anyhow::bail!("expected Start from the launcher, got {other:?}"),
    };
    let mut pipeline = pipeline::Pipeline::new(start, fds.pop(), events, claimed)
        .context("starting the pipeline")?;
    let commands = ipc_protocol::channel::forward("launcher-rx", commands)?;
    pipeline.run(commands)
}
