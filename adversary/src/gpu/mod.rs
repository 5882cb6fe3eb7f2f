//! The GPU process's adversary: its hooks carry out the attack or the probe its environment
//! names.

pub mod hostile;
pub mod probe;
pub mod standby;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use gpu_process::hooks::{Hooks, Running, Sent};
use ipc_protocol::channel::Sender;
use ipc_protocol::messages::{FrameMsg, GpuStart, GpuToLauncher};
use triptych_sandbox::gpu::Params;
use triptych_sys::fd::ExportWindow;

use crate::ring::RingAttack;
use hostile::Attack;
use standby::StandbyAttack;

/// The hooks of the hostile GPU process and of the escape probes.
#[derive(Debug, Default)]
pub struct GpuAdversary {
    attack: Option<Attack>,
    probe: Option<String>,
    /// The launcher's pid, read before the filter (which refuses `getppid`).
    launcher: i32,
    /// Whether it found no `Start` waiting once ready: a standby ([`standby::waits_as_standby`]).
    standby: bool,
    /// Its channel to the launcher, kept from `Ready` on for an attack once promoted.
    events: Option<Sender<GpuToLauncher>>,
    /// Its own mapping of the launcher's mailbox to it, for an inbox attack.
    inbox: Option<crate::ring::Inbox>,
    /// Its own read-write mapping of its progress page, for a storm on it.
    page: Option<&'static triptych_sys::mapping::SharedMemory>,
}

impl GpuAdversary {
    /// What the environment (or the file for every process, [`crate::every`]) names.
    pub fn from_env() -> GpuAdversary {
        GpuAdversary {
            attack: Attack::from_env(),
            probe: probe::from_env(),
            launcher: 0,
            standby: false,
            events: None,
            inbox: None,
            page: None,
        }
    }
}

impl Hooks for GpuAdversary {
    fn mailboxes(&mut self, fds: &[BorrowedFd<'_>]) {
        // An inbox attack maps it to attack it; a standby attack, to see whether its `Start` is
        // there.
        if matches!(self.attack, Some(Attack::Ring(r)) if r.on_inbox())
            || matches!(self.attack, Some(Attack::Standby(_)))
        {
            self.inbox = crate::ring::Inbox::map(fds);
        }
    }

    fn handed_over_listener(&mut self, listener: OwnedFd) {
        match self.attack {
            Some(Attack::KeepListener) => hostile::keep_listener(listener),
            Some(Attack::Standby(StandbyAttack::Hang)) => {
                drop(listener);
                // SAFETY: CONTROL_FD is this process's control socket, claimed at start-up by
                // `bootstrap::join` and owned by the run's channels, which live on the stack of
                // `gpu_process::start::run` below this call for the whole process: the fd is
                // open for as long as the borrow, which ends with this call.
                let control = unsafe {
                    std::os::fd::BorrowedFd::borrow_raw(ipc_protocol::bootstrap::CONTROL_FD)
                };
                standby::hang_if_standby(control, self.inbox.as_ref());
            }
            _ => {}
        }
    }

    fn before_confine(&mut self) {
        self.launcher = nix::unistd::getppid().as_raw();
    }

    fn confined(&mut self, start: &GpuStart, params: &Params) {
        if hostile::crashes_on_start(self.attack, start.backend) {
            std::process::abort();
        }
        if let Some(name) = &self.probe {
            probe::run_probe(name, start, self.launcher, params);
        }
        if self.standby && self.attack == Some(Attack::Standby(StandbyAttack::OtherStarted)) {
            if let Some(events) = &self.events {
                standby::promoted(events);
            }
        }
    }

    fn prepared(&mut self, events: &Sender<GpuToLauncher>) {
        let Some(Attack::Standby(a)) = self.attack else {
            return;
        };
        self.standby = standby::waits_as_standby(events.as_fd(), self.inbox.as_ref());
        self.events = Some(events.clone());
        if self.standby {
            standby::prepared(a, events, self.launcher);
        }
    }

    fn running(&mut self, run: Running<'_>) {
        if let Some(Attack::Ring(r)) = self
            .attack
            .filter(|a| matches!(a, Attack::Ring(r) if r.on_inbox()))
        {
            crate::ring::inbox_attack(r, self.inbox.take());
            return;
        }
        hostile::FRAMES.store(run.frames, std::sync::atomic::Ordering::Relaxed);
        match self.attack {
            // On its ring to the launcher, once the launcher reads its frames (a paced run's
            // loop takes the ring over from a thread once the process has started).
            Some(Attack::Ring(_) | Attack::Flood) | None => {}
            // Or at once, while the launcher takes it over.
            Some(a) => hostile::attack(a, run.events, run.info),
        }
    }

    fn sending(&mut self, msg: &mut FrameMsg) {
        if let Some(a) = self.attack {
            let window = (ExportWindow::GPU.base, ExportWindow::GPU.end());
            hostile::before_send(a, msg, window);
        }
    }

    fn sent(&mut self, sent: Sent<'_>) {
        if let Some(Attack::Ring(r)) = self.attack {
            std::thread::sleep(r.pace());
        }
        static ATTACKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if let Some(a @ (Attack::Ring(_) | Attack::Flood)) = self.attack {
            if sent.msg.frame >= hostile::FRAMING_FROM
                && !ATTACKED.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                match a {
                    Attack::Ring(r) => {
                        tracing::warn!(attack = ?r, frame = sent.msg.frame, "hostile GPU process attacking its ring");
                        crate::ring::attack(r, sent.events, || GpuToLauncher::Pong(0));
                    }
                    _ => hostile::flood(sent.events),
                }
            }
        }
        if self.attack == Some(Attack::Ring(RingAttack::InboxLies))
            && hostile::stall_once(sent.msg.frame)
        {
            std::thread::sleep(crate::ring::STALL);
        }
        if let Some(Attack::Standby(a)) = self.attack {
            std::thread::sleep(a.pace());
        }
        if let Some(a) = self.attack {
            hostile::after_send(a, sent.msg, sent.view, sent.events);
        }
        if self.attack == Some(Attack::ProgressStorm) && sent.msg.frame >= hostile::FRAMING_FROM {
            if let Some(page) = self.page {
                hostile::progress_storm(page);
            }
            std::thread::sleep(hostile::STORM_DELAY);
        }
    }

    fn progress_page(&mut self, page: BorrowedFd<'_>) {
        if self.attack == Some(Attack::ProgressStorm) {
            // Kept for the life of the process, as the storm's thread is.
            self.page = triptych_sys::mapping::SharedMemory::new(page, 4096)
                .ok()
                .map(|m| &*Box::leak(Box::new(m)));
        }
    }

    fn serves(&mut self, view: ipc_protocol::messages::ViewId) -> bool {
        !(self.attack == Some(Attack::StarveView) && view.0 == 1)
    }

    fn keeps_fences_private(&mut self) -> bool {
        hostile::ASKED.store(true, std::sync::atomic::Ordering::Relaxed);
        !matches!(self.attack, Some(Attack::MuteAbandon | Attack::SlowAbandon))
    }

    /// The attacks that put a file of their choosing where a fence should be keep pipe fences
    /// (the launcher takes either kind, as the process announced it).
    fn progress_fences(&mut self) -> bool {
        !matches!(
            self.attack,
            Some(
                Attack::EventfdFence
                    | Attack::BufferFence
                    | Attack::ImplicitShm
                    | Attack::DrainFence
                    | Attack::MuteAbandon
                    | Attack::SlowAbandon
            )
        )
    }

    fn takes_releases(&mut self, frame: u64) -> bool {
        !hostile::ignores_releases(self.attack, frame)
    }
}
