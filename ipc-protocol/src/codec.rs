//! What every message between triptych's processes is on the wire, whichever way it travels: a
//! postcard encoding of at most [`MAX_MESSAGE`] bytes with a fixed number of fds per kind
//! ([`Wire`]), the one decoder that takes such bytes from a peer that may be compromised
//! ([`decode`]), and what can go wrong ([`Violation`], [`RecvError`], [`SendError`]).
//!
//! A message travels as a datagram on a socket (`channel`) or as a record in the shared-memory
//! ring beside it ([`crate::mailbox`]); both take their bytes apart here, so the two paths
//! judge a peer by the same rules, and neither module depends on the other's insides for them.

use std::os::fd::OwnedFd;

use serde::{de::DeserializeOwned, Serialize};
use triptych_sys::Errno;

/// The largest message, in bytes, on any channel. Trace batches are split to fit
/// (`channel::split_to_fit`); everything else is far smaller.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A message that may travel on a channel.
pub trait Wire: Serialize + DeserializeOwned {
    /// The message's kind, for reports (`"Presented"`, `"Release"`).
    fn kind(&self) -> &'static str;
    /// How many fds travel with a message of this kind, in order. Zero unless said.
    fn fd_count(&self) -> usize {
        0
    }
}

/// What a peer sent that the protocol does not allow. The text names what was wrong, with the
/// value: it goes into crash records as `protocol violation: <this>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The datagram was longer than [`MAX_MESSAGE`].
    #[error("a message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    /// An empty datagram.
    #[error("an empty message")]
    Empty,
    /// More fds than any message may carry (the kernel closed those beyond the limit).
    #[error("a message with more than {} fds", triptych_sys::scm::DATAGRAM_MAX_FDS)]
    TooManyFds,
    /// The bytes do not decode as a message of this channel.
    #[error("an undecodable {len}-byte message: {error}")]
    Undecodable {
        /// The message's length.
        len: usize,
        /// The decoder's complaint.
        error: String,
    },
    /// Bytes left over after a complete message.
    #[error("{extra} stray bytes after a {kind} message")]
    Trailing {
        /// The message kind.
        kind: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// The wrong number of fds for the message kind (all of them were closed).
    #[error("{got} fds on a {kind} message, which carries {want}")]
    FdCount {
        /// The message kind.
        kind: &'static str,
        /// Fds that came.
        got: usize,
        /// Fds the kind carries.
        want: usize,
    },
    /// A well-formed message the channel's own rule refuses (a channel receiver's `recv_checked`).
    #[error("{0}")]
    Refused(String),
    /// The mailbox beside the channel broke its rules ([`crate::mailbox`]).
    #[error("mailbox: {0}")]
    Mailbox(String),
}

/// Receiving failed.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The peer closed its end.
    #[error("the peer closed the channel")]
    Disconnected,
    /// The peer sent something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Violation(#[from] Violation),
    /// The socket itself failed.
    #[error("receiving failed: {0}")]
    Io(triptych_sys::scm::ScmError),
}

/// Sending failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The peer closed its end.
    #[error("the peer closed the channel")]
    Disconnected,
    /// The peer's queue is full: it stopped reading (only for non-blocking senders).
    #[error("the peer's queue is full: it is not reading")]
    Full,
    /// The message does not fit in [`MAX_MESSAGE`] bytes.
    #[error("a {kind} message does not fit in {MAX_MESSAGE} bytes")]
    TooLong {
        /// The message kind.
        kind: &'static str,
    },
    /// The caller gave the wrong number of fds for the kind.
    #[error("{got} fds given for a {kind} message, which carries {want}")]
    FdCount {
        /// The message kind.
        kind: &'static str,
        /// Fds given.
        got: usize,
        /// Fds the kind carries.
        want: usize,
    },
    /// The socket itself failed.
    #[error("sending failed: {0}")]
    Io(triptych_sys::scm::ScmError),
    /// Waking the reader of the mailbox failed.
    #[error("waking the mailbox's reader failed: {0}")]
    Wake(Errno),
}

/// The bytes of `msg` as one datagram carries them (for fuzz seeds and tests).
pub fn encode<T: Wire>(msg: &T) -> Option<Vec<u8>> {
    postcard::to_stdvec(msg)
        .ok()
        .filter(|b| b.len() <= MAX_MESSAGE)
}

/// Decodes one message from `bytes`, checking that `fds` are exactly what its kind carries.
/// On any failure every fd in `fds` is closed. This is the whole untrusted decoder: the fuzz
/// targets call it directly.
pub fn decode<T: Wire>(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(T, Vec<OwnedFd>), Violation> {
    if bytes.is_empty() {
        return Err(Violation::Empty);
    }
    if bytes.len() > MAX_MESSAGE {
        return Err(Violation::TooLong);
    }
    let (msg, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| Violation::Undecodable {
            len: bytes.len(),
            error: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(Violation::Trailing {
            kind: msg.kind(),
            extra: rest.len(),
        });
    }
    if fds.len() != msg.fd_count() {
        return Err(Violation::FdCount {
            kind: msg.kind(),
            got: fds.len(),
            want: msg.fd_count(),
        });
    }
    Ok((msg, fds))
}
