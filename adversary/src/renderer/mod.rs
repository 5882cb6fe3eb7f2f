//! The renderer's adversary: its hooks carry out the attack or the probe its environment names.

pub mod hostile;
pub mod probe;

use std::os::fd::{BorrowedFd, OwnedFd};

use ipc_protocol::channel::Sender;
use ipc_protocol::messages::{RendererStart, RendererToLauncher};
use ipc_protocol::BufferId;
use renderer_process::hooks::{Fetched, Hooks, Presented, Running};
use renderer_process::link::Link;

use crate::ring::RingAttack;
use hostile::Attack;
use probe::{Prepared, Probe};

/// The hooks of the hostile renderer and of the escape probes.
#[derive(Debug, Default)]
pub struct RendererAdversary {
    attack: Option<Attack>,
    probe: Option<Probe>,
    prepared: Option<Prepared>,
    /// Its own mapping of the launcher's mailbox to it, for an inbox attack.
    inbox: Option<crate::ring::Inbox>,
    /// The one view whose renderers carry the attack out, if it names one (read at start-up,
    /// before the sandbox refuses the file it may come from).
    only_view: Option<u32>,
}

impl RendererAdversary {
    /// What the environment (or the file for every process, [`crate::every`]) names.
    pub fn from_env() -> RendererAdversary {
        RendererAdversary {
            attack: Attack::from_env(),
            probe: probe::from_env(),
            prepared: None,
            inbox: None,
            only_view: hostile::view_filter(),
        }
    }
}

impl Hooks for RendererAdversary {
    fn mailboxes(&mut self, fds: &[BorrowedFd<'_>]) {
        if matches!(self.attack, Some(Attack::Ring(r)) if r.on_inbox()) {
            self.inbox = crate::ring::Inbox::map(fds);
        }
    }

    fn before_confine(&mut self, link: &Link) -> anyhow::Result<()> {
        if self.attack == Some(Attack::DrainVouched) {
            hostile::start_drainer();
        }
        if let Some(p) = self.probe.take() {
            self.prepared = Some(p.prepare(link)?);
        }
        Ok(())
    }

    fn handed_over_listener(&mut self, listener: OwnedFd) {
        if self.attack == Some(Attack::KeepListener) {
            // Never closed: the listener stays in this process's fd table.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(listener);
        }
    }

    fn confined(&mut self, link: &mut Link, start: &RendererStart, output: BorrowedFd<'_>) {
        // An attack named for one view: the renderers of the others run clean.
        if let Some(view) = self.only_view {
            if hostile::own_view(start.gpu.gpu_window) != Some(view) {
                self.attack = None;
            }
        }
        if let Some(p) = self.prepared.take() {
            p.run(link, start, output);
        }
    }

    fn sharing_output(&mut self, output: RendererToLauncher) -> RendererToLauncher {
        hostile::forge_output(self.attack, output)
    }

    fn running(&mut self, run: Running<'_>) {
        if self.attack == Some(Attack::DrainVouched) {
            if let Ok(mut g) = hostile::DRAIN_EVENTS.lock() {
                *g = Some((run.events.clone(), run.epoch));
            }
        }
        if let Some(Attack::Ring(r)) = self
            .attack
            .filter(|a| matches!(a, Attack::Ring(r) if r.on_inbox()))
        {
            crate::ring::inbox_attack(r, self.inbox.take());
            return;
        }
        if let Some(a) = self.attack {
            hostile::attack(a, run.events, run.epoch, run.generation, run.gpu_window);
        }
    }

    fn resizing(&mut self, events: &Sender<RendererToLauncher>, epoch: u64, generation: u32) {
        hostile::at_resize(self.attack, events, epoch, generation);
    }

    fn rejects(&mut self, msg: &ipc_protocol::messages::FrameMsg) -> Option<String> {
        hostile::rejects(self.attack, msg)
    }

    fn fetched(&mut self, fetched: Fetched<'_>) {
        let points = fetched
            .layers
            .iter()
            .any(|(_, _, f)| matches!(f, Some(renderer_process::fetch::Waitable::Point(..))));
        if self.attack == Some(Attack::ProgressWrite) && points {
            hostile::progress_write(fetched.link);
        }
        hostile::on_fetched(self.attack, fetched.events, fetched.msg, fetched.layers);
        probe::on_fetched(&fetched);
    }

    fn presented(&mut self, p: Presented<'_>) {
        if self.attack == Some(Attack::DrainVouched)
            && p.frame == hostile::DRAIN_AT.load(std::sync::atomic::Ordering::Acquire)
        {
            hostile::DRAIN_NOW.store(true, std::sync::atomic::Ordering::Release);
            tracing::warn!(frame = p.frame, "hostile renderer: drainer armed");
        }
        if let Some(Attack::Ring(r)) = self.attack {
            std::thread::sleep(r.pace());
        }
        if self.attack == Some(Attack::Ring(RingAttack::InboxLies)) && hostile::stall_once(p.frame)
        {
            std::thread::sleep(crate::ring::STALL);
        }
        hostile::after_present(
            self.attack,
            p.events,
            p.epoch,
            p.generation,
            p.slot,
            p.frame,
        );
    }

    fn releases(&mut self, buffer: BufferId) -> bool {
        !hostile::withholds(self.attack, buffer)
    }
}
