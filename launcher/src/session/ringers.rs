//! The threads that ring the main loop's bell ([`Bell`]): what the loop must hear of at once
//! while it sleeps on the GPU process's ring (`session/gpu_intake.rs`) comes through them, each
//! message ringing the bell as it is handed on.

use std::sync::Arc;

use anyhow::Context;
use crossbeam_channel::Receiver;
use ipc_protocol::channel::Bell;

/// The bell of a loop that sleeps on the GPU process's ring, and the end of the threads that
/// ring it ([`belled`]): they stop when the run's `Supervisor` (which holds the
/// [`Ringers::stop`] sender) is dropped, whatever their sources do.
#[derive(Clone)]
pub(super) struct Ringers {
    pub(super) bell: Arc<Bell>,
    /// Never sent on: disconnected when its sender is dropped.
    pub(super) stop: Receiver<()>,
}

/// A channel that gives what `rx` gives and rings `ringers`' bell as each message is put in
/// it: for what the loop must hear of at once while it sleeps on the GPU process's ring. A
/// thread named `name` moves the messages; the channel holds one, so a sender that outruns the
/// loop waits as it would on `rx`. It disconnects when `rx` does, and the thread ends then, or
/// when the run ends ([`Ringers::stop`]).
pub(super) fn belled<T: Send + 'static>(
    name: &str,
    rx: Receiver<T>,
    ringers: &Ringers,
) -> anyhow::Result<Receiver<T>> {
    let (tx, out) = crossbeam_channel::bounded(1);
    let Ringers { bell, stop } = ringers.clone();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || loop {
            crossbeam_channel::select! {
                recv(rx) -> m => {
                    let Ok(m) = m else {
                        drop(tx);
                        // The end is something to hear of too.
                        bell.ring();
                        return;
                    };
                    crossbeam_channel::select! {
                        send(tx, m) -> sent => {
                            if sent.is_err() {
                                return;
                            }
                        }
                        recv(stop) -> _ => return,
                    }
                    bell.ring();
                }
                recv(stop) -> _ => return,
            }
        })
        .with_context(|| format!("spawning the {name} thread"))?;
    Ok(out)
}
