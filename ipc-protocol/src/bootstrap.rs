//! How a child process joins the launcher's channels.
//!
//! The launcher creates an `IpcOneShotServer`, passes its name on the child's command line
//! (`--ipc NAME`), and waits. The child connects, creates two channels, keeps the receiving end
//! of the command channel and the sending end of the event channel, and sends the other two ends
//! in a [`Hello`]. From then on the launcher speaks through `commands` and listens on `events`.
//! The child must connect before it restricts itself (a sandboxed child cannot open sockets).

use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The command-line flag that carries the one-shot server's name.
pub const IPC_FLAG: &str = "--ipc";

/// The first and only message on the bootstrap channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "C: Serialize + DeserializeOwned, E: Serialize + DeserializeOwned"))]
pub struct Hello<C, E> {
    /// The child's pid as it sees itself.
    pub pid: u32,
    /// The role it believes it has (`"gpu"` or `"renderer"`).
    pub role: String,
    /// Where the launcher sends commands.
    pub commands: IpcSender<C>,
    /// Where the launcher reads events.
    pub events: IpcReceiver<E>,
}

/// Errors joining the launcher.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The command line has no `--ipc NAME`.
    #[error("missing {IPC_FLAG} NAME on the command line: the {role} process is started by the launcher (triptych run)")]
    NoServerName {
        /// The role that was started.
        role: String,
    },
    /// Creating a channel failed.
    #[error("creating an ipc channel failed: {0}")]
    Channel(#[from] std::io::Error),
    /// Connecting to the launcher's server failed.
    #[error("connecting to the launcher's bootstrap server {name:?} failed: {source}")]
    Connect {
        /// The server name.
        name: String,
        /// The error.
        source: std::io::Error,
    },
    /// Sending the hello failed.
    #[error("sending hello to the launcher failed: {0}")]
    Send(#[from] ipc_channel::IpcError),
}

/// Joins the launcher: connects to `server_name` and returns the child's ends of the channels.
pub fn join<C, E>(
    server_name: &str,
    role: &str,
) -> Result<(IpcReceiver<C>, IpcSender<E>), BootstrapError>
where
    C: Serialize + DeserializeOwned,
    E: Serialize + DeserializeOwned,
{
    let (cmd_tx, cmd_rx) = ipc::channel::<C>()?;
    let (ev_tx, ev_rx) = ipc::channel::<E>()?;
    let server: IpcSender<Hello<C, E>> =
        IpcSender::connect(server_name.to_owned()).map_err(|source| BootstrapError::Connect {
            name: server_name.to_owned(),
            source,
        })?;
    server
        .send(Hello {
            pid: std::process::id(),
            role: role.to_owned(),
            commands: cmd_tx,
            events: ev_rx,
        })
        .map_err(BootstrapError::Send)?;
    Ok((cmd_rx, ev_tx))
}

/// Joins the launcher whose server is named by `--ipc NAME` in this process's arguments.
pub fn join_from_args<C, E>(role: &str) -> Result<(IpcReceiver<C>, IpcSender<E>), BootstrapError>
where
    C: Serialize + DeserializeOwned,
    E: Serialize + DeserializeOwned,
{
    let args: Vec<String> = std::env::args().collect();
    let name = args
        .iter()
        .position(|a| a == IPC_FLAG)
        .and_then(|i| args.get(i + 1))
        .ok_or_else(|| BootstrapError::NoServerName {
            role: role.to_owned(),
        })?;
    join(name, role)
}
