//! The GPU process's sandbox: when it goes on, and what it consists of.
//!
//! Sequence:
//!
//! 1. **start-up** ([`startup`], first thing in `run`): confine the files the process can reach
//!    with Landlock while it has one thread ([`triptych_sandbox::gpu::landlock`]), adopt the
//!    report pipe and install the `SIGSYS` reporter on it, adopt the handover socket. The
//!    launcher has already put the process in the shared user namespace and new network and
//!    IPC namespaces, with no capabilities (`triptych_sys::jail`).
//! 2. bootstrap, `Prepare`, then EGL and driver initialisation, which opens files (the driver,
//!    its configuration, the shader cache index) and starts the driver's threads.
//! 3. **confine** ([`confine`]), before `Ready` is reported and before `Start` is read: resource
//!    limits, `PR_SET_NO_NEW_PRIVS`, the GPU policy on every thread (the driver's included,
//!    TSYNC). A standby GPU process waits here, confined, until it is promoted.
//! 4. **attach** ([`attach`]), at `Start`: name the first view's renderer for Yama, keep the
//!    handover its `SCM_RIGHTS` socket (and every later renderer's) arrives on, if that
//!    transport runs; then [`Hooks::confined`].
//!
//! The policy ([`triptych_sandbox::gpu`]) is looser than the renderer's: the driver keeps its
//! ioctls and its executable (JIT) memory; files, programs, the network and other processes are
//! out of reach.

use anyhow::Context;
use ipc_protocol::messages::{GpuPrepare, GpuStart, ViolationReports};
use triptych_sandbox::fds::{HANDOVER_FD, REPORT_FD};
use triptych_sandbox::gpu::Params;
use triptych_sys::fixed::FixedFd;

use crate::hooks::Hooks;
use crate::transport::Handover;

/// What start-up claimed.
#[derive(Debug)]
pub struct Claimed {
    handover: Option<FixedFd>,
    /// What Landlock enforces, for `GpuInfo` and the seccomp policy.
    pub landlock: ipc_protocol::messages::LandlockReport,
}

/// Step 1: adopts the fixed fds, installs the `SIGSYS` reporter.
pub fn startup() -> anyhow::Result<Claimed> {
    let landlock = triptych_sandbox::gpu::landlock::confine();
    let report = FixedFd::claim(REPORT_FD).context("claiming the report fd")?;
    triptych_sys::seccomp::install_trap_reporter(report.into_inherited())
        .context("installing the SIGSYS reporter")?;
    let handover = FixedFd::claim(HANDOVER_FD).context("claiming the handover fd")?;
    let handover = handover.inherited().then_some(handover);
    Ok(Claimed { handover, landlock })
}

/// The sandbox on, before `Start`: what [`attach`] needs once `Start` names the renderer.
#[derive(Debug)]
pub struct Confined {
    handover: Option<FixedFd>,
    params: Params,
}

/// Step 3, at `Prepare`: puts the sandbox on. With user-notification reports the allowlist is
/// installed with a listener, which goes to `hand_over` (to the launcher) before anything else
/// runs under the filter.
pub fn confine(
    claimed: Claimed,
    prepare: GpuPrepare,
    hooks: &mut dyn Hooks,
    hand_over: impl FnOnce(&std::os::fd::OwnedFd) -> anyhow::Result<()>,
) -> anyhow::Result<Confined> {
    hooks.before_confine();
    triptych_sandbox::limits::apply(&triptych_sandbox::limits::gpu())
        .context("setting resource limits")?;
    let params = Params {
        pid: std::process::id(),
        landlocked: claimed.landlock.enforced != ipc_protocol::messages::LandlockEnforced::None,
    };
    let policy = triptych_sandbox::gpu::policy(&params);
    let mut installed = match prepare.reports {
        ViolationReports::Notify => policy.install_notifying(),
        ViolationReports::Signal => policy.install(),
    }
    .context("installing the GPU process's seccomp policy")?;
    if let Some(listener) = installed.listener.take() {
        hand_over(&listener).context("handing the sandbox listener to the launcher")?;
        hooks.handed_over_listener(listener);
    }
    tracing::debug!(
        filters = installed.filters,
        rules = installed.rules,
        "sandbox on"
    );
    Ok(Confined {
        handover: claimed.handover,
        params,
    })
}

/// Step 4, at `Start` (confined): names the first view's renderer for Yama, returns the
/// handover the renderers' `SCM_RIGHTS` sockets arrive on, then [`Hooks::confined`].
pub fn attach(
    confined: Confined,
    start: &GpuStart,
    hooks: &mut dyn Hooks,
) -> anyhow::Result<Handover> {
    name_ptracer(start.view.renderer.renderer_pid)?;
    let handover = Handover::new(start.transport, confined.handover);
    hooks.confined(start, &confined.params);
    Ok(handover)
}

/// Yama's `ptrace_scope`, read once, at the first start-up call, before the seccomp policy is
/// on: reading a file takes `openat` and `statx` (Rust's `fs::read` sizes its buffer with it),
/// and the policy names neither for this purpose, so a new renderer later is named from this.
static YAMA_SCOPE: std::sync::OnceLock<Option<u8>> = std::sync::OnceLock::new();

/// Reads Yama's scope now, while files can be opened (before [`confine`]).
pub(crate) fn read_yama_scope() {
    YAMA_SCOPE.get_or_init(triptych_sys::proc::yama_ptrace_scope);
}

/// Lets the renderer take fds from this process where Yama restricts ptrace to descendants.
pub(crate) fn name_ptracer(renderer_pid: u32) -> anyhow::Result<()> {
    let scope = *YAMA_SCOPE.get_or_init(triptych_sys::proc::yama_ptrace_scope);
    if scope.is_some_and(|s| s >= 1) {
        triptych_sys::prctl::set_ptracer(renderer_pid)
            .with_context(|| format!("naming the renderer {renderer_pid} as ptracer for Yama"))?;
    }
    Ok(())
}
