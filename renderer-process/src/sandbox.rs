//! The renderer's sandbox: when it goes on, and what it consists of.
//!
//! Sequence, in the order the renderer runs it:
//!
//! 1. **start-up** ([`startup`], first thing in `run`): claim the fixed fd numbers
//!    ([`triptych_sandbox::fds`]): adopt the report pipe and install the `SIGSYS` reporter on
//!    it, adopt the handover socket, hold [`GPU_LINK_FD`]. The launcher has already put the process in
//!    the shared user namespace, new network and IPC namespaces, and dropped every capability
//!    (`triptych_sys::jail`), before `exec`.
//! 2. **bootstrap**: join the launcher's channels, receive `Start` (from the trusted launcher).
//! 3. **confine** ([`confine`], inside `Pipeline::new`): attach the link to the GPU process
//!    (the handed-over pidfd at [`GPU_LINK_FD`]), create the output memfd, then set the
//!    resource limits, `PR_SET_NO_NEW_PRIVS` and the seccomp filters on every thread (TSYNC);
//!    then [`Hooks::confined`].
//! 4. only now start the threads that receive and parse the GPU process's frames.
//!
//! So nothing the GPU process sends is parsed before the filter is on, and every lazy
//! initialisation the renderer needs (the heap, the clock) happened during bootstrap. The
//! renderer never creates a socket: the launcher made every one it holds.

use std::os::fd::BorrowedFd;

use anyhow::Context;
use ipc_protocol::messages::{RendererStart, ViolationReports};
use triptych_sandbox::fds::{GPU_LINK_FD, HANDOVER_FD, REPORT_FD};
use triptych_sandbox::renderer::Params;
use triptych_sys::fixed::FixedFd;

use crate::hooks::Hooks;
use crate::link::Link;

/// What start-up claimed, waiting for `Start`.
#[derive(Debug)]
pub struct Claimed {
    handover: Option<FixedFd>,
    slot: FixedFd,
}

/// Step 1: claims the fixed fds, installs the `SIGSYS` reporter.
pub fn startup() -> anyhow::Result<Claimed> {
    let report = FixedFd::claim(REPORT_FD).context("claiming the report fd")?;
    triptych_sys::seccomp::install_trap_reporter(report.into_inherited())
        .context("installing the SIGSYS reporter")?;
    let handover = FixedFd::claim(HANDOVER_FD).context("claiming the handover fd")?;
    let handover = handover.inherited().then_some(handover);
    let slot = FixedFd::claim(GPU_LINK_FD).context("claiming the GPU link fd")?;
    Ok(Claimed { handover, slot })
}

/// Step 3: attaches the link, puts the sandbox on, tells the hooks; returns the link.
/// `output` is the renderer's output memfd (created before, since `memfd_create` is refused
/// after). With user-notification reports the allowlist is installed with a listener, which
/// goes to `hand_over` (to the launcher) before anything else runs under the filter.
pub fn confine(
    claimed: Claimed,
    start: &RendererStart,
    output: BorrowedFd<'_>,
    hooks: &mut dyn Hooks,
    hand_over: impl FnOnce(&std::os::fd::OwnedFd) -> anyhow::Result<()>,
) -> anyhow::Result<Link> {
    let mut link = Link::new(start.transport, claimed.handover, claimed.slot);
    link.attach(start.gpu.epoch, start.gpu.gpu_pid)
        .context("attaching to the GPU process")?;
    hooks.before_confine(&link)?;
    let params = Params {
        pid: std::process::id(),
        transport: start.transport,
        window: start.gpu.gpu_window,
    };
    triptych_sandbox::limits::apply(&triptych_sandbox::limits::renderer())
        .context("setting resource limits")?;
    let policy = triptych_sandbox::renderer::policy(&params);
    let mut installed = match start.reports {
        ViolationReports::Notify => policy.install_notifying(),
        ViolationReports::Signal => policy.install(),
    }
    .context("installing the renderer's seccomp policy")?;
    if let Some(listener) = installed.listener.take() {
        hand_over(&listener).context("handing the sandbox listener to the launcher")?;
        hooks.handed_over_listener(listener);
    }
    tracing::debug!(
        filters = installed.filters,
        rules = installed.rules,
        instructions = installed.instructions,
        transport = start.transport.as_str(),
        "sandbox on"
    );
    hooks.confined(&mut link, start, output);
    Ok(link)
}
