//! Ctrl-C and termination requests, delivered as channel messages.
//!
//! `SIGINT`, `SIGTERM` and `SIGHUP` are blocked in the main thread before any other thread
//! exists, so every thread inherits the mask and only the dedicated thread, which waits for them
//! with `sigwait(3)`, ever sees them. Children get an empty mask back: the standard library resets
//! it between fork and exec.

use anyhow::Context;
use crossbeam_channel::Receiver;
use triptych_sys::signal::Blocked;
/// A termination request, as [`install`]'s channel delivers it.
pub use triptych_sys::signal::Signal;

/// Blocks the termination signals and starts the thread that turns them into messages.
/// Must run before any other thread is spawned.
pub fn install() -> anyhow::Result<Receiver<Signal>> {
    let set = Blocked::block(&[Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP])
        .context("blocking SIGINT/SIGTERM/SIGHUP")?;
    let (tx, rx) = crossbeam_channel::bounded(4);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })
        .context("spawning the signal thread")?;
    Ok(rx)
}
