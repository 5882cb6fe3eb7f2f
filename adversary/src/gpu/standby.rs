//! A compromised standby GPU process: once it reported `Ready` and waits for `Start`, confined,
//! it breaks the rules the launcher holds a standby to (nothing but its listener and one
//! `Ready` before `Start`; a `Started` equal to that `Ready`), with what it legitimately holds:
//! its control socket.
//!
//! Every GPU process of the run is this adversary (the attack is named in the file that
//! [`crate::every`] reads), the run's first, started cold, too; only a standby attacks. A process
//! tells which it is the way it can from inside: a cold start is sent `Start` right after
//! `Prepare`, so its `Start` is queued on its control socket long before it is ready, while a
//! standby finds the socket empty ([`waits_as_standby`]).
//!
//! Every process of such a run paces its frames ([`PACE`], [`HANG_PACE`]), so that the run
//! lasts long enough for the standby to be spawned, made ready and dealt with.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use ipc_protocol::channel::Sender;
use ipc_protocol::frame::{BufferKind, FenceKind};
use ipc_protocol::messages::{
    Fault, FaultAction, FaultPoint, GpuInfo, GpuToLauncher, LandlockReport, LauncherToGpu,
};
use triptych_sys::fd::ExportWindow;

/// What the hostile standby does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StandbyAttack {
    /// A second `Ready`.
    SecondReady,
    /// `Started`, before it was sent `Start`.
    Started,
    /// A trace batch.
    Trace,
    /// A fault notice, for a fault it was never handed.
    FaultFired,
    /// `Serving` of a renderer never announced.
    Serving,
    /// [`FLOOD`] messages, as fast as it can.
    Flood,
    /// A second seccomp listener: its control socket, attached.
    SecondListener,
    /// Never reports `Ready`: once its listener is handed over, it waits forever.
    Hang,
    /// Closes its control socket and lives on.
    CloseSocket,
    /// Aborts once ready, every standby of the run.
    Abort,
    /// Tries to kill the launcher, then every process it may signal.
    Kill,
    /// Once promoted, reports `Started` with a `GpuInfo` other than its `Ready`'s.
    OtherStarted,
    /// Once ready, stops: it reads nothing more, so it answers no ping.
    Deaf,
}

impl StandbyAttack {
    /// The attack named `name` (after the `standby-` prefix), if any.
    pub fn from_name(name: &str) -> Option<StandbyAttack> {
        Some(match name {
            "second-ready" => StandbyAttack::SecondReady,
            "started" => StandbyAttack::Started,
            "trace" => StandbyAttack::Trace,
            "fault-fired" => StandbyAttack::FaultFired,
            "serving" => StandbyAttack::Serving,
            "flood" => StandbyAttack::Flood,
            "second-listener" => StandbyAttack::SecondListener,
            "hang" => StandbyAttack::Hang,
            "close-socket" => StandbyAttack::CloseSocket,
            "abort" => StandbyAttack::Abort,
            "kill" => StandbyAttack::Kill,
            "other-started" => StandbyAttack::OtherStarted,
            "deaf" => StandbyAttack::Deaf,
            _ => return None,
        })
    }

    /// How long each frame of a run with this attack waits after it is sent.
    pub fn pace(self) -> Duration {
        match self {
            StandbyAttack::Hang => HANG_PACE,
            _ => PACE,
        }
    }
}

/// The wait after each frame of a run with a standby attack: 300 frames last three seconds.
pub const PACE: Duration = Duration::from_millis(10);
/// The wait after each frame of a run with [`StandbyAttack::Hang`]: 400 frames outlast the
/// launcher's 30 s deadline for a standby's `Ready`.
pub const HANG_PACE: Duration = Duration::from_millis(100);
/// Messages [`StandbyAttack::Flood`] sends.
pub const FLOOD: usize = 60_000;
/// How long a process waits for a command on its control socket before it takes itself for a
/// standby: a cold start's `Start` was queued long before.
const COLD_START_WITHIN: u16 = 200;

/// Whether this process is a standby: within `COLD_START_WITHIN` ms, no `Start` came in its
/// inbox from the launcher (`inbox`, where it is mapped) and nothing came on its control socket
/// `control` (where a message too large for a record goes, announced).
pub fn waits_as_standby(control: BorrowedFd<'_>, inbox: Option<&crate::ring::Inbox>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let started =
        || inbox.is_some_and(|i| i.holds(|m: &LauncherToGpu| matches!(m, LauncherToGpu::Start(_))));
    let until = std::time::Instant::now() + Duration::from_millis(u64::from(COLD_START_WITHIN));
    loop {
        if started() {
            return false;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        let mut fds = [PollFd::new(control, PollFlags::POLLIN)];
        let slice = left.min(Duration::from_millis(5)).as_millis() as u16;
        if !matches!(poll(&mut fds, PollTimeout::from(slice)), Ok(0)) {
            return false;
        }
    }
}

/// A `GpuInfo` that passes every check but equality with this process's `Ready`.
fn forged_info() -> GpuInfo {
    GpuInfo {
        pid: std::process::id(),
        backend: BufferKind::Shm,
        backend_reason: None,
        fence: FenceKind::Pipe,
        gl: "a GPU this process never reported".to_owned(),
        window: (ExportWindow::GPU.base, ExportWindow::GPU.end()),
        views: 1,
        landlock: LandlockReport::default(),
    }
}

/// Waits for ever (the launcher kills it, or the run's end does).
fn wait_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Carries out `attack` from a standby that reported `Ready` (`events`: its channel to the
/// launcher; `launcher`: the launcher's pid).
pub fn prepared(attack: StandbyAttack, events: &Sender<GpuToLauncher>, launcher: i32) {
    tracing::warn!(?attack, "hostile standby GPU process attacking");
    match attack {
        StandbyAttack::SecondReady => {
            let _ = events.send(&GpuToLauncher::Ready(forged_info()));
        }
        StandbyAttack::Started => {
            let _ = events.send(&GpuToLauncher::Started(forged_info()));
        }
        StandbyAttack::Trace => {
            let _ = events.send(&GpuToLauncher::Trace(Vec::new()));
        }
        StandbyAttack::FaultFired => {
            let _ = events.send(&GpuToLauncher::FaultFired {
                at_ns: 0,
                fault: Fault {
                    frame: 0,
                    point: FaultPoint::GpuRender,
                    action: FaultAction::Kill,
                },
            });
        }
        StandbyAttack::Serving => {
            let _ = events.send(&GpuToLauncher::Serving {
                view: ipc_protocol::messages::ViewId(0),
                renderer: 1,
            });
        }
        StandbyAttack::Flood => {
            let mut sent = 0;
            while sent < FLOOD && events.send(&GpuToLauncher::Pong(0)).is_ok() {
                sent += 1;
            }
            tracing::warn!(sent, "standby flood over");
        }
        StandbyAttack::SecondListener => {
            let _ = events.send_with(&GpuToLauncher::SandboxListener, &[events.as_fd()]);
        }
        StandbyAttack::CloseSocket => {
            // The channel's own fd, closed under it: nothing of this process reads or writes
            // the number again, since it waits here for ever.
            let closed = nix::unistd::close(ipc_protocol::bootstrap::CONTROL_FD);
            tracing::warn!(?closed, "closed the control socket; living on");
            wait_forever();
        }
        StandbyAttack::Abort => std::process::abort(),
        StandbyAttack::Deaf => {
            tracing::warn!("hostile standby GPU process ready, and deaf from now on");
            wait_forever();
        }
        StandbyAttack::Kill => {
            use nix::sys::signal::{kill, Signal};
            use nix::unistd::Pid;
            let launcher = kill(Pid::from_raw(launcher), Signal::SIGKILL);
            let every = kill(Pid::from_raw(-1), Signal::SIGKILL);
            tracing::warn!(?launcher, ?every, "kill attempts returned");
        }
        // Acted on elsewhere: before `Ready`, and once promoted.
        StandbyAttack::Hang | StandbyAttack::OtherStarted => {}
    }
}

/// [`StandbyAttack::Hang`], once the listener is handed over: a standby waits for ever instead
/// of reporting `Ready`.
pub fn hang_if_standby(control: BorrowedFd<'_>, inbox: Option<&crate::ring::Inbox>) {
    if waits_as_standby(control, inbox) {
        tracing::warn!("hostile standby GPU process hanging before Ready");
        wait_forever();
    }
}

/// [`StandbyAttack::OtherStarted`], once promoted: `Started` with another `GpuInfo`, before the
/// run reports its own.
pub fn promoted(events: &Sender<GpuToLauncher>) {
    tracing::warn!("promoted hostile standby reporting another GpuInfo");
    let _ = events.send(&GpuToLauncher::Started(forged_info()));
}
