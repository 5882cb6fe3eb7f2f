//! The GPU process's adversary: its hooks carry out the attack or the probe its environment
//! names.

pub mod hostile;
pub mod probe;

use std::os::fd::OwnedFd;

use gpu_process::hooks::{Hooks, Running, Sent};
use ipc_protocol::messages::{FrameMsg, GpuStart};
use triptych_sandbox::gpu::Params;
use triptych_sys::fd::ExportWindow;

use hostile::Attack;

/// The hooks of the hostile GPU process and of the escape probes.
#[derive(Debug, Default)]
pub struct GpuAdversary {
    attack: Option<Attack>,
    probe: Option<String>,
    /// The launcher's pid, read before the filter (which refuses `getppid`).
    launcher: i32,
}

impl GpuAdversary {
    /// What the environment (or the file for every process, [`crate::every`]) names.
    pub fn from_env() -> GpuAdversary {
        GpuAdversary {
            attack: Attack::from_env(),
            probe: probe::from_env(),
            launcher: 0,
        }
    }
}

impl Hooks for GpuAdversary {
    fn handed_over_listener(&mut self, listener: OwnedFd) {
        if self.attack == Some(Attack::KeepListener) {
            hostile::keep_listener(listener);
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
    }

    fn running(&mut self, run: Running<'_>) {
        if let Some(a) = self.attack {
            hostile::attack(
                a,
                run.events,
                run.to_renderer,
                run.epoch,
                run.frames,
                run.info,
            );
        }
    }

    fn sending(&mut self, msg: &mut FrameMsg) {
        if let Some(a) = self.attack {
            let window = (ExportWindow::GPU.base, ExportWindow::GPU.end());
            hostile::before_send(a, msg, window);
        }
    }

    fn reports_produced(&mut self, frame: u64) -> bool {
        !hostile::omits_produced(self.attack, frame)
    }

    fn sent(&mut self, sent: Sent<'_>) {
        if let Some(a) = self.attack {
            hostile::after_send(
                a,
                sent.msg,
                sent.to_renderer,
                sent.events,
                sent.renderer_pid,
            );
        }
    }

    fn takes_releases(&mut self, frame: u64) -> bool {
        !hostile::ignores_releases(self.attack, frame)
    }
}
