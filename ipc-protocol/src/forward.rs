//! Turning an ipc-channel receiver into a crossbeam channel.
//!
//! Every process waits on several sources at once (commands, frames, releases, fences, child
//! exits); crossbeam's `select!` can wait on all of them, an `IpcReceiver` cannot take part. So
//! each receiver gets one thread that moves its messages into a crossbeam channel. The thread ends
//! when the peer disconnects (or sends something that does not decode), which the other side sees
//! as the crossbeam channel disconnecting, or when the receiving side is dropped.

use crossbeam_channel::Receiver;
use ipc_channel::ipc::IpcReceiver;
use serde::{de::DeserializeOwned, Serialize};

/// The forwarding thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("spawning the {name} thread failed: {source}")]
pub struct ForwardError {
    /// The thread's name.
    pub name: String,
    /// Why.
    pub source: std::io::Error,
}

/// Starts a thread named `name` that forwards everything `rx` receives.
pub fn forward<T>(name: &str, rx: IpcReceiver<T>) -> Result<Receiver<T>, ForwardError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let (tx, out) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            while let Ok(m) = rx.recv() {
                if tx.send(m).is_err() {
                    break;
                }
            }
        })
        .map_err(|source| ForwardError {
            name: name.to_owned(),
            source,
        })?;
    Ok(out)
}
