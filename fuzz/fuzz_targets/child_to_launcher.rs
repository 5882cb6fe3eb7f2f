//! Child -> launcher: every message a GPU process or a renderer can send on its control socket,
//! decoded as the launcher decodes it and run through the launcher's rules
//! (`ipc_protocol::rules`). The first byte picks the sender and is not part of the message.
#![no_main]

use ipc_protocol::channel::decode;
use ipc_protocol::messages::{GpuToLauncher, RendererToLauncher};
use ipc_protocol::rules::{self, Budget, Frames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let mut frames = Frames::default();
    frames.new_epoch(1, 0);
    let mut budget = Budget::default();
    if which & 1 == 0 {
        if let Ok((m, _)) = decode::<GpuToLauncher>(bytes, Vec::new()) {
            let _ = budget.message(
                ipc_protocol::channel::Wire::kind(&m),
                std::time::Instant::now(),
            );
            match m {
                GpuToLauncher::Frame { msg: f, .. } => {
                    let _ = ipc_protocol::layers::layers(&f, 8, 1234, (512, 768));
                    let _ = frames.produced(f.frame, 1000);
                    let _ = frames.presented(f.frame, 1);
                }
                GpuToLauncher::Pong(n) => {
                    let _ = rules::pong(n, 10);
                }
                GpuToLauncher::FaultFired { fault, .. } => {
                    let _ = rules::fault(&fault, &[]);
                }
                GpuToLauncher::Trace(t) => {
                    let _ = budget.trace(&t, true);
                }
                _ => {}
            }
        }
    } else if let Ok((m, _)) = decode::<RendererToLauncher>(bytes, Vec::new()) {
        match m {
            RendererToLauncher::Presented(p) => {
                let _ = frames.produced(0, 1000);
                let _ = frames.presented(p.frame, p.epoch);
            }
            RendererToLauncher::Output { fd, .. } => {
                let _ = fd.fd.checked_add(1);
            }
            RendererToLauncher::Trace(t) => {
                let _ = budget.trace(&t, which & 2 == 0);
            }
            RendererToLauncher::Pong(n) => {
                let _ = rules::pong(n, 10);
            }
            _ => {}
        }
    }
});
