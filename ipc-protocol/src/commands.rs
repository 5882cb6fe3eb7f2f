//! The launcher's commands to a child, over ipc-channel: the one direction whose sender is
//! trusted.
//!
//! Everything a child sends travels on the project's hardened channel (`channel.rs`),
//! whose receive path believes nothing. What the launcher sends a child travels over
//! [ipc-channel](https://github.com/servo/ipc-channel), as Servo sends its content processes
//! their commands: a typed stream whose receiver trusts its sender, which is exactly the case
//! here (the child, the receiver, trusts the launcher that started it). The launcher holds no
//! ipc-channel receiver at all, so nothing a child writes is ever read through it.
//!
//! # What travels where
//!
//! - A command without files: a [`Command::Message`] on the stream, its bytes encoded as on a
//!   channel (`channel::encode`), so the child decodes every command one way.
//! - A command with files (a DMA-BUF, a sync_file, a sealed memfd, a mailbox): ipc-channel
//!   carries only its own channels and shared memory, so the command goes on the control
//!   socket with its files, and the stream says [`Command::OnSocket`] where it belongs.
//! - With a mailbox ([`crate::mailbox`]), steady commands are records in its ring, and the ring
//!   announces each other command, which then comes from the stream as above.
//!
//! # Meeting
//!
//! An ipc-channel receiver reaches a process only over ipc-channel, and the first one only by
//! connecting to a one-shot server, a socket named in the file system. The child makes the
//! server before its sandbox is on, at its very start: the launcher's first message on the
//! control socket (which only the two of them hold) is a random [`Token`]; the child names its
//! server back on the control socket; the launcher connects and hands over the stream's
//! receiving end with the token; the child takes the stream only if the token matches, so a
//! process that reaches the socket first cannot hand it a stream of its own. The server's
//! directory is a fresh one, which the launcher removes once it has connected. Only the user's
//! own processes can connect to it (the socket is writable by its owner alone), and a
//! sandboxed process makes no socket and connects nowhere (seccomp), so no child can reach
//! another's server.
//!
//! # Never waiting on a child
//!
//! An ipc-channel send waits while the receiver's socket is full. The launcher must never wait
//! on a child, so each child's stream has a thread of its own ([`CommandLink`]) that does the
//! sending from a bounded queue: a child that stops reading fills the queue, and the launcher's
//! next command finds it full (`SendError::Full`), as it would find a full socket. The thread
//! ends when the child's end closes or the link is dropped; the launcher watches for its end
//! ([`CommandLink::ended`]), and a stream that ends while its child lives on is that child's
//! violation.

use std::sync::Mutex;

use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use serde::{Deserialize, Serialize};

/// The random secret the launcher gives a child on its control socket, to recognise the stream
/// the launcher hands over.
pub type Token = [u8; 16];

/// One item of a command stream.
#[derive(Debug, Serialize, Deserialize)]
pub enum Command {
    /// A command without files, encoded as on a channel.
    Message(Vec<u8>),
    /// The next command is on the control socket, with its files.
    OnSocket,
}

/// The longest name of a one-shot server: a unix socket's path (`sun_path` holds 108 bytes
/// with the terminating NUL).
pub const MAX_NAME: usize = 107;

/// Whether `name`, which a child sent, can be a one-shot server's: an absolute path that fits a
/// unix socket's address and holds no NUL. The launcher connects to nothing else.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME {
        return Err(format!(
            "a {}-byte server name, longer than the {MAX_NAME} a socket's path holds",
            name.len()
        ));
    }
    if !name.starts_with('/') || name.contains('\0') {
        return Err(format!(
            "server name {:?} is not an absolute path without NUL",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// What the child's one-shot server receives: the stream's receiving end and the token.
type Handover = (IpcReceiver<Command>, Token);

/// How many commands wait for the sending thread before the launcher's next one finds the queue
/// full: as many as a forwarding thread queues the other way (`channel::FORWARD_QUEUE`).
pub const QUEUE: usize = 256;

/// Why a command was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotQueued {
    /// The queue is full: the child stopped reading.
    Full,
    /// The link is gone.
    Gone,
}

/// Setting up or using a command stream failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandsError {
    /// No random bytes for the token.
    #[error("no random bytes for the command stream's token: {0}")]
    Random(String),
    /// The sending thread could not be started.
    #[error("starting the thread that sends the {0} its commands: {1}")]
    Thread(String, std::io::Error),
    /// The one-shot server could not be made, or the launcher never handed the stream over.
    #[error("taking the command stream from the launcher: {0}")]
    Meeting(String),
    /// What came through the server was not the launcher's: the token differs.
    #[error("a command stream whose token is not the launcher's")]
    Impostor,
    /// The server was named a second time.
    #[error("the command stream's server was named already")]
    NamedTwice,
    /// The launcher's first message was not the token.
    #[error("the launcher's first message was {0}, not the command stream's token")]
    NoToken(String),
}

/// The launcher's end of one child's command stream: a bounded queue and the thread that sends
/// what it holds once the child has named its server.
#[derive(Debug)]
pub struct CommandLink {
    token: Token,
    /// Taken when the link is dropped, which ends the thread.
    queue: Option<crossbeam_channel::Sender<Command>>,
    server: Mutex<Option<crossbeam_channel::Sender<String>>>,
    /// Disconnects when the thread has ended and closed the stream.
    ended: crossbeam_channel::Receiver<()>,
    /// Held while a command goes out, so that a command's place on the control socket and its
    /// place in the stream are taken together.
    order: Mutex<()>,
}

impl CommandLink {
    /// A link to the child `role`, with a fresh token and its sending thread started; the
    /// thread waits for the child's server ([`CommandLink::connect`]).
    pub fn start(role: &str) -> Result<CommandLink, CommandsError> {
        let mut token = [0u8; 16];
        getrandom::fill(&mut token).map_err(|e| CommandsError::Random(e.to_string()))?;
        let (queue, commands) = crossbeam_channel::bounded::<Command>(QUEUE);
        let (server, named) = crossbeam_channel::bounded::<String>(1);
        let (ending, ended) = crossbeam_channel::bounded::<()>(0);
        let who = role.to_owned();
        std::thread::Builder::new()
            .name(format!("{role}-commands"))
            .spawn(move || {
                let _ending = ending;
                // The link dropped before the child named its server: nothing to do.
                let Ok(name) = named.recv() else {
                    return;
                };
                let stream = hand_over(&name, token);
                // Connected or not, the server is done with: its socket and directory go, so a
                // child killed before it could remove them leaves nothing behind.
                remove_server(&name);
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(role = %who, error = %e, "could not hand the command stream over");
                        return;
                    }
                };
                // Ends when the child's end closes (its death) or the link is dropped.
                while let Ok(c) = commands.recv() {
                    if let Err(e) = stream.send(c) {
                        tracing::debug!(role = %who, error = %e, "the command stream closed");
                        break;
                    }
                }
            })
            .map_err(|e| CommandsError::Thread(role.to_owned(), e))?;
        Ok(CommandLink {
            token,
            queue: Some(queue),
            server: Mutex::new(Some(server)),
            ended,
            order: Mutex::new(()),
        })
    }

    /// The token the child is given first, on its control socket.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The child named its one-shot server `name`: the thread connects and hands the stream
    /// over. Only once; a second name is refused.
    pub fn connect(&self, name: String) -> Result<(), CommandsError> {
        let mut server = self.server.lock().map_err(|_| CommandsError::NamedTwice)?;
        let tx = server.take().ok_or(CommandsError::NamedTwice)?;
        // The thread waits for exactly this one name; it cannot be full.
        let _ = tx.try_send(name);
        Ok(())
    }

    /// Disconnects once the sending thread has ended: the child's end closed (it died, or closed
    /// its stream), the meeting failed, or the link was dropped.
    pub fn ended(&self) -> crossbeam_channel::Receiver<()> {
        self.ended.clone()
    }

    /// Whether the child named its server already.
    pub fn connected(&self) -> bool {
        self.server.lock().map_or(true, |s| s.is_none())
    }

    /// Queues `command` for the child, never waiting.
    pub(crate) fn push(&self, command: Command) -> Result<(), NotQueued> {
        let queue = self.queue.as_ref().ok_or(NotQueued::Gone)?;
        queue.try_send(command).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => NotQueued::Full,
            crossbeam_channel::TrySendError::Disconnected(_) => NotQueued::Gone,
        })
    }

    /// Runs `f` with the order lock held.
    pub(crate) fn in_order<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.order.lock();
        f()
    }
}

impl Drop for CommandLink {
    /// Ends the thread and waits a moment for it to close the stream, so that the launcher's
    /// fds are exact once a child is gone; the child is dead by then, so its sends fail at once.
    fn drop(&mut self) {
        self.queue = None;
        if let Ok(mut s) = self.server.lock() {
            s.take();
        }
        let _ = self.ended.recv_timeout(std::time::Duration::from_secs(1));
    }
}

/// Removes the one-shot server `name` and its directory, when it is what ipc-channel makes (a
/// `socket` in a fresh `.tmp*` directory); anything else named is left alone.
fn remove_server(name: &str) {
    let path = std::path::Path::new(name);
    let ours = path.file_name().is_some_and(|f| f == "socket")
        && path
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|d| d.to_string_lossy().starts_with(".tmp"));
    if !ours {
        return;
    }
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Whether a command of `len` encoded bytes goes out in one piece: ipc-channel sends anything
/// larger than a socket's send buffer allows in fragments over a channel of their own, which a
/// child reads with calls its sandbox does not allow, and which would keep the sending thread
/// waiting for a child that died in the middle.
pub fn fits(len: usize) -> bool {
    // The encoded `Command::Message`: a tag and a length before the bytes.
    len.saturating_add(16) <= ipc_channel::platform::OsIpcSender::get_max_fragment_size()
}

/// The launcher's side of the meeting: connects to the child's server `name` and hands over
/// the receiving end of a new stream with `token`; returns the sending end.
fn hand_over(name: &str, token: Token) -> Result<IpcSender<Command>, std::io::Error> {
    let boot = IpcSender::<Handover>::connect(name.to_owned())?;
    let (tx, rx) = ipc::channel::<Command>()?;
    boot.send((rx, token))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(tx)
}

/// The child's side of the meeting, before its sandbox is on: makes a one-shot server, names
/// it with `announce` (on the control socket), and waits for the launcher to hand over the
/// stream; the stream is taken only with `token`, the launcher's.
pub(crate) fn take(
    token: Token,
    announce: impl FnOnce(String) -> Result<(), String>,
) -> Result<IpcReceiver<Command>, CommandsError> {
    let (server, name) = IpcOneShotServer::<Handover>::new()
        .map_err(|e| CommandsError::Meeting(format!("making the one-shot server: {e}")))?;
    announce(name)
        .map_err(|e| CommandsError::Meeting(format!("naming the server to the launcher: {e}")))?;
    let (_, (stream, got)) = server
        .accept()
        .map_err(|e| CommandsError::Meeting(format!("waiting for the launcher: {e:?}")))?;
    if got != token {
        return Err(CommandsError::Impostor);
    }
    Ok(stream)
}
