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

/// Takes the launcher's command stream ([`crate::commands`]), at a child's start: the first
/// message on `commands` is the token, the server's name goes back as the event `named` makes. Returns `commands` with the stream beside its socket.
pub fn take_stream<C: crate::commands::Stream, E: Wire>(
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
    let stream = crate::commands::take(token, |name| events.send(&named(name)))?;
    Ok(commands.with_stream(stream))
}
