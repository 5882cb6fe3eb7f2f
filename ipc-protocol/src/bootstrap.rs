//! How a child process finds its channel to the launcher.
//!
//! The launcher creates a `SOCK_SEQPACKET` socket pair per child before spawning it and places
//! the child's end at [`CONTROL_FD`] between fork and exec; every other fd the child could have
//! inherited is closed by then (`triptych_sys::jail`). The child adopts that fd once, at start,
//! and speaks through it for the rest of its life: events out, and the commands with files in
//! ([`crate::channel::duplex`]). The other commands come over ipc-channel, on a stream the child
//! takes at its start, before its sandbox is on ([`take_stream`], [`crate::commands`]): the one
//! moment a child names something in the file system and is connected to. Once sandboxed, it
//! needs no socket calls beyond `sendmsg`, `recvmsg` and `poll` on what it holds.

use crate::channel::{duplex, Receiver, Sender, Wire};

/// The fd number at which a child finds its control socket.
pub const CONTROL_FD: i32 = 203;

/// Errors finding the control socket.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Nothing, or not a socket, was inherited at [`CONTROL_FD`].
    #[error("no control socket at fd {CONTROL_FD}: the {role} process is started by the launcher (triptych run), not by hand")]
    NoControlSocket {
        /// The role that was started.
        role: String,
    },
    /// Claiming the number failed.
    #[error("claiming fd {CONTROL_FD}: {0}")]
    Claim(#[from] triptych_sys::fixed::FixedError),
}

/// Joins the launcher: adopts the control socket at [`CONTROL_FD`] and returns this child's
/// ends: commands (`C`) come in, events (`E`) go out. Events wait while the launcher's queue is
/// full (the launcher is trusted to read).
pub fn join<C: Wire, E: Wire>(role: &str) -> Result<(Receiver<C>, Sender<E>), BootstrapError> {
    let fixed = triptych_sys::fixed::FixedFd::claim(CONTROL_FD)?;
    let Some(sock) = fixed.into_inherited() else {
        return Err(BootstrapError::NoControlSocket {
            role: role.to_owned(),
        });
    };
    let is_socket = matches!(
        triptych_sys::fd::is_socket(std::os::fd::AsFd::as_fd(&sock)),
        Ok(true)
    );
    if !is_socket {
        return Err(BootstrapError::NoControlSocket {
            role: role.to_owned(),
        });
    }
    let (events, commands) = duplex::<E, C>(sock, false);
    Ok((commands, events))
}

/// A command type with a stream beside it ([`crate::commands`]): its first message on the
/// control socket carries the stream's token.
pub trait Stream: Wire {
    /// The first message, with `token`.
    fn with_token(token: crate::commands::Token) -> Self;
    /// The token, if this is the first message.
    fn token(&self) -> Option<crate::commands::Token>;
}

/// Opens the command stream of the child `role` beside `commands`, the launcher's end of its
/// control socket: starts the link, sends the token first on the socket, and returns the sender
/// with the link beside it. The child's `CommandsAt` goes to
/// [`crate::commands::CommandLink::connect`].
pub fn open_stream<C: Stream>(
    commands: Sender<C>,
    role: &str,
) -> Result<Sender<C>, crate::commands::CommandsError> {
    let link = crate::commands::CommandLink::start(role)?;
    commands
        .send(&C::with_token(link.token()))
        .map_err(|e| crate::commands::CommandsError::Meeting(format!("sending the token: {e}")))?;
    Ok(commands.with_link(std::sync::Arc::new(link)))
}

/// Takes the launcher's command stream ([`crate::commands`]), at a child's start: the first
/// message on `commands` is the token, the server's name goes back as the event `named` makes.
/// Returns `commands` with the stream beside its socket.
pub fn take_stream<C: Stream, E: Wire>(
    mut commands: Receiver<C>,
    events: &Sender<E>,
    named: impl FnOnce(String) -> E,
) -> Result<Receiver<C>, crate::commands::CommandsError> {
    use crate::commands::CommandsError;
    let (first, _) = commands
        .recv()
        .map_err(|e| CommandsError::Meeting(format!("waiting for the token: {e}")))?;
    let token = first
        .token()
        .ok_or_else(|| CommandsError::NoToken(first.kind().to_owned()))?;
    let stream = crate::commands::take(token, |name| {
        events.send(&named(name)).map_err(|e| e.to_string())
    })?;
    Ok(commands.with_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{duplex, socket_pair};
    use crate::commands::{check_name, Command, CommandsError, Token};
    use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
    use serde::{Deserialize, Serialize};
    use std::os::fd::AsFd;
    use std::sync::Arc;
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
    /// The launcher's ends of a control socket, or a child's.
    type Ends<S, R> = (Sender<S>, Receiver<R>);

    fn pair() -> (Ends<Cmd, Ev>, Ends<Ev, Cmd>) {
        let (a, b) = socket_pair().expect("socket pair");
        (duplex::<Cmd, Ev>(a, true), duplex::<Ev, Cmd>(b, false))
    }

    #[test]
    fn commands_come_over_the_stream_in_order_with_their_files_on_the_socket() {
        let ((commands, mut events), (child_events, child_commands)) = pair();
        let child = std::thread::spawn(move || {
            let mut rx = take_stream(child_commands, &child_events, Ev::At).expect("the stream");
            let mut got = Vec::new();
            for _ in 0..4 {
                let (m, fds) = rx.recv().expect("a command");
                got.push((m, fds.len()));
            }
            got
        });
        let commands = open_stream(commands, "test").expect("open");
        // Queued before the child named its server: they wait for the stream.
        commands.send(&Cmd::Text("one".into())).expect("send");
        let Ev::At(name) = events.recv().expect("the server's name").0;
        assert!(check_name(&name).is_ok(), "{name}");
        let server = std::path::PathBuf::from(&name);
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
        let got = child.join().expect("the child");
        // Once met (the commands came), the server's socket and directory are gone.
        assert!(!server.exists() && server.parent().is_some_and(|d| !d.exists()));
        assert_eq!(
            got,
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
            take_stream(child_commands, &child_events, Ev::At).map(|_| ())
        });
        commands.send(&Cmd::Token([7; 16])).expect("the token");
        let Ev::At(name) = events.recv().expect("the server's name").0;
        // Somebody else reaches the server first, with a token of its own.
        let boot = IpcSender::<(IpcReceiver<Command>, Token)>::connect(name).expect("connect");
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
        let r = take_stream(child_commands, &child_events, Ev::At);
        assert!(matches!(r, Err(CommandsError::NoToken(k)) if k == "Text"));
    }

    #[test]
    fn a_dropped_link_ends_its_thread_and_closes_the_stream() {
        let ((commands, mut events), (child_events, child_commands)) = pair();
        let child = std::thread::spawn(move || {
            let mut rx = take_stream(child_commands, &child_events, Ev::At).expect("the stream");
            let first = rx.recv().map(|(m, _)| m).ok();
            let after = rx.recv().map(|(m, _)| m).err().map(|e| e.to_string());
            (first, after)
        });
        let commands = open_stream(commands, "test").expect("open");
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

    #[test]
    fn a_stream_its_child_closed_ends_at_the_next_command() {
        let ((commands, mut events), (child_events, child_commands)) = pair();
        let (taken, closed) = crossbeam_channel::bounded::<()>(0);
        let child = std::thread::spawn(move || {
            let rx = take_stream(child_commands, &child_events, Ev::At).expect("the stream");
            // The child drops the stream and keeps its control socket (`child_events`).
            drop(rx);
            let _ = taken.send(());
            child_events
        });
        let commands = open_stream(commands, "test").expect("open");
        let Ev::At(name) = events.recv().expect("the server's name").0;
        let link = Arc::clone(commands.link().expect("a link"));
        link.connect(name).expect("connect");
        closed.recv().expect("the child dropped its stream");
        let ended = link.ended();
        assert!(ended
            .recv_timeout(Duration::from_millis(100))
            .is_err_and(|e| e.is_timeout()));
        // The next command finds the child's end closed: the thread ends, and says so.
        let _ = commands.send(&Cmd::Text("anyone?".into()));
        assert!(ended
            .recv_timeout(Duration::from_secs(5))
            .is_err_and(|e| e.is_disconnected()));
        drop(child.join().expect("the child"));
    }
}
