//! The launcher's commands to a child, over ipc-channel: the one direction whose sender is
//! trusted.
//!
//! Everything a child sends travels on the project's hardened channel ([`crate::channel`]),
//! whose receive path believes nothing. What the launcher sends a child travels over
//! [ipc-channel](https://github.com/servo/ipc-channel), as Servo sends its content processes
//! their commands: a typed stream whose receiver trusts its sender, which is exactly the case
//! here (the child, the receiver, trusts the launcher that started it). The launcher holds no
//! ipc-channel receiver at all, so nothing a child writes is ever read through it.
//!
//! # What travels where
//!
//! - A command without files: a [`Command::Message`] on the stream, its bytes encoded as on a
//!   channel ([`crate::channel::encode`]), so the child decodes every command one way.
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
//! directory is a fresh one, removed once the stream is taken. Only the user's own processes can connect to it (the socket is writable by its owner
//! alone), and a sandboxed process makes no socket and connects nowhere (seccomp), so no child
//! can reach another's server.
//!
//! # Never waiting on a child
//!
//! An ipc-channel send waits while the receiver's socket is full. The launcher must never wait
//! on a child, so each child's stream has a thread of its own ([`CommandLink`]) that does the
//! sending from a bounded queue: a child that stops reading fills the queue, and the launcher's
//! next command finds it full ([`crate::channel::SendError::Full`]), as it would find a full
//! socket. The thread ends when the child's end closes or the link is dropped.

use std::sync::Mutex;

use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use serde::{Deserialize, Serialize};

use crate::channel::SendError;

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

/// A command type with a stream beside it: its first message on the control socket carries
/// the stream's token.
pub trait Stream: crate::channel::Wire {
    /// The first message, with `token`.
    fn with_token(token: Token) -> Self;
    /// The token, if this is the first message.
    fn token(&self) -> Option<Token>;
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
            "server name {:?} is not an absolute path",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// What the child's one-shot server receives: the stream's receiving end and the token.
type Handover = (IpcReceiver<Command>, Token);

/// How many commands wait for the sending thread before the launcher's next one finds the queue
/// full: as many as [`crate::channel::FORWARD_QUEUE`], the bound on the other direction.
pub const QUEUE: usize = crate::channel::FORWARD_QUEUE;

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
                let stream = match hand_over(&name, token) {
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

    /// Whether the child named its server already.
    pub fn connected(&self) -> bool {
        self.server.lock().map_or(true, |s| s.is_none())
    }

    /// Queues `command` for the child, never waiting.
    pub(crate) fn push(&self, command: Command) -> Result<(), SendError> {
        let queue = self.queue.as_ref().ok_or(SendError::Disconnected)?;
        queue.try_send(command).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => SendError::Full,
            crossbeam_channel::TrySendError::Disconnected(_) => SendError::Disconnected,
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

/// Opens the command stream of the child `role` beside `commands`, the launcher's end of its
/// control socket: starts the link, sends the token first on the socket, and returns the sender
/// with the link beside it. The child's `CommandsAt` goes to [`CommandLink::connect`].
pub fn open<C: Stream>(
    commands: crate::channel::Sender<C>,
    role: &str,
) -> Result<crate::channel::Sender<C>, CommandsError> {
    let link = CommandLink::start(role)?;
    commands
        .send(&C::with_token(link.token()))
        .map_err(|e| CommandsError::Meeting(format!("sending the token: {e}")))?;
    Ok(commands.with_link(std::sync::Arc::new(link)))
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
    announce: impl FnOnce(String) -> Result<(), SendError>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{duplex, socket_pair, Receiver, Sender, Wire};
    use std::os::fd::AsFd;
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Cmd {
        Token(Token),
        Text(String),
        File,
    }

    impl Wire for Cmd {
        fn kind(&self) -> &'static str {
            match self {
                Cmd::Token(_) => "Token",
                Cmd::Text(_) => "Text",
                Cmd::File => "File",
            }
        }
        fn fd_count(&self) -> usize {
            usize::from(*self == Cmd::File)
        }
    }

    impl Stream for Cmd {
        fn with_token(token: Token) -> Self {
            Cmd::Token(token)
        }
        fn token(&self) -> Option<Token> {
            match self {
                Cmd::Token(t) => Some(*t),
                _ => None,
            }
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Ev {
        At(String),
    }

    impl Wire for Ev {
        fn kind(&self) -> &'static str {
            "At"
        }
    }

    /// A launcher's end and a child's end of a control socket.
    fn pair() -> ((Sender<Cmd>, Receiver<Ev>), (Sender<Ev>, Receiver<Cmd>)) {
        let (a, b) = socket_pair().expect("socket pair");
        (duplex::<Cmd, Ev>(a, true), duplex::<Ev, Cmd>(b, false))
    }

    #[test]
    fn commands_come_over_the_stream_in_order_with_their_files_on_the_socket() {
        let ((commands, mut events), (child_events, child_commands)) = pair();
        let child = std::thread::spawn(move || {
            let mut rx = crate::bootstrap::take_stream(child_commands, &child_events, Ev::At)
                .expect("the stream");
            let mut got = Vec::new();
            for _ in 0..4 {
                let (m, fds) = rx.recv().expect("a command");
                got.push((m, fds.len()));
            }
            got
        });
        let commands = open(commands, "test").expect("open");
        // Queued before the child named its server: they wait for the stream.
        commands.send(&Cmd::Text("one".into())).expect("send");
        let Ev::At(name) = events.recv().expect("the server's name").0;
        assert!(check_name(&name).is_ok(), "{name}");
        commands
            .link()
            .expect("a link")
            .connect(name)
            .expect("connect");
        let file = commands.as_fd().try_clone_to_owned().expect("dup");
        commands
            .send_with(&Cmd::File, &[file.as_fd()])
            .expect("send a file");
        commands.send(&Cmd::Text("two".into())).expect("send");
        commands
            .send_with(&Cmd::File, &[file.as_fd()])
            .expect("send a file");
        assert_eq!(
            child.join().expect("the child"),
            vec![
                (Cmd::Text("one".into()), 0),
                (Cmd::File, 1),
                (Cmd::Text("two".into()), 0),
                (Cmd::File, 1)
            ]
        );
        assert!(matches!(
            commands.link().expect("a link").connect("/again".into()),
            Err(CommandsError::NamedTwice)
        ));
    }

    #[test]
    fn a_stream_handed_over_without_the_token_is_refused() {
        let ((commands, mut events), (child_events, child_commands)) = pair();
        let child = std::thread::spawn(move || {
            crate::bootstrap::take_stream(child_commands, &child_events, Ev::At).map(|_| ())
        });
        commands.send(&Cmd::Token([7; 16])).expect("the token");
        let Ev::At(name) = events.recv().expect("the server's name").0;
        // Somebody else reaches the server first, with a token of its own.
        let boot = IpcSender::<Handover>::connect(name).expect("connect");
        let (_tx, rx) = ipc::channel::<Command>().expect("a channel");
        boot.send((rx, [8; 16])).expect("hand over");
        assert!(matches!(
            child.join().expect("the child"),
            Err(CommandsError::Impostor)
        ));
    }

    #[test]
    fn a_first_message_that_is_not_the_token_is_refused() {
        let ((commands, _events), (child_events, child_commands)) = pair();
        commands.send(&Cmd::Text("hello".into())).expect("send");
        let r = crate::bootstrap::take_stream(child_commands, &child_events, Ev::At);
        assert!(matches!(r, Err(CommandsError::NoToken(k)) if k == "Text"));
    }

    #[test]
    fn a_dropped_link_ends_its_thread_and_closes_the_stream() {
        let ((commands, mut events), (child_events, child_commands)) = pair();
        let child = std::thread::spawn(move || {
            let mut rx = crate::bootstrap::take_stream(child_commands, &child_events, Ev::At)
                .expect("the stream");
            let first = rx.recv().map(|(m, _)| m).ok();
            let after = rx.recv().map(|(m, _)| m).err().map(|e| e.to_string());
            (first, after)
        });
        let commands = open(commands, "test").expect("open");
        let Ev::At(name) = events.recv().expect("the server's name").0;
        commands
            .link()
            .expect("a link")
            .connect(name)
            .expect("connect");
        commands.send(&Cmd::Text("last".into())).expect("send");
        // The launcher's end of the control socket stays open (its receiver holds it): only
        // the stream's end tells the child that the link is gone.
        let started = std::time::Instant::now();
        drop(commands);
        assert!(started.elapsed() < Duration::from_secs(1));
        let (first, after) = child.join().expect("the child");
        assert_eq!(first, Some(Cmd::Text("last".into())));
        assert_eq!(after.as_deref(), Some("the peer closed the channel"));
    }
}
