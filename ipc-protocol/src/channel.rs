//! Typed channels over `SOCK_SEQPACKET` unix sockets, with receive paths that never trust the
//! sender.
//!
//! Every socket between two of triptych's processes whose sender may be compromised is one of
//! these: the control socket of each child (launcher <-> child, both directions on one socket),
//! and the frame and release sockets between the GPU process and the renderer. The launcher
//! creates every pair and hands the ends out; nothing here ever connects to a name. Beside a
//! child's control socket, the launcher's commands come over an ipc-channel stream
//! ([`crate::commands`]; [`Sender::with_link`], [`Receiver::with_stream`]), the socket keeping
//! the commands with files.
//!
//! # Why not ipc-channel here
//!
//! ipc-channel is built for peers that trust each other: its unix receiver reserves memory for a
//! size the sender declares, panics on some malformed framing, and leaves fds that arrive on a
//! message but are not used open in the receiver. It serves the launcher's commands, whose
//! sender is trusted, and nothing else: every other direction has a sender that may be
//! compromised, so the receive path is this module's own, with these rules:
//!
//! - **One message is one datagram** of at most [`MAX_MESSAGE`] bytes, received into a buffer of
//!   fixed size allocated once per receiver. A longer datagram arrives truncated (`MSG_TRUNC`) and
//!   is a [`Violation`]; nothing is ever sized by what the peer declares.
//! - **Exact fd counts.** Each message kind says how many fds it carries ([`Wire::fd_count`]):
//!   zero for everything a child sends. The control buffer has room for
//!   [`triptych_sys::scm::DATAGRAM_MAX_FDS`] fds, so the kernel closes any beyond that before
//!   they reach this process; any that arrive on a message that should not have them are closed
//!   at once, and the message is a violation.
//! - **Decoding** is postcard from the fixed buffer: every length prefix is checked against the
//!   bytes actually present, so a lying prefix fails instead of allocating; trailing bytes are a
//!   violation; an empty datagram is a violation.
//! - **No panic** is reachable from received bytes: every failure is a value ([`RecvError`]).
//! - **Sends never wait on the peer** where the sender must not block ([`Sender::nonblocking`]):
//!   a full queue means the peer stopped reading and is reported as [`SendError::Full`].
//!
//! A receiver that reports a violation has done its part: the caller decides what it costs the
//! peer (for the launcher: the child is killed, recorded as compromised and restarted).

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use triptych_sys::scm::MsgFlags;

use crate::mailbox::Wake;
use triptych_sys::Errno;

pub use crate::codec::{decode, encode, RecvError, SendError, Violation, Wire, MAX_MESSAGE};

/// A seqpacket socket pair, both ends close-on-exec.
pub fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    triptych_sys::socket::seqpacket_pair().map_err(std::io::Error::from)
}

/// The sending side of a channel of `T`. Cheap to clone; all clones share the socket.
#[derive(Debug)]
pub struct Sender<T> {
    sock: Arc<OwnedFd>,
    nonblocking: bool,
    /// The mailbox beside the socket, once the receiver handed one over: every message goes
    /// through it (a record, or an announcement before the socket carries it), under its lock so
    /// that clones sending from several threads keep one order.
    mailbox: Option<Arc<std::sync::Mutex<crate::mailbox::MailboxWriter>>>,
    /// The command stream beside the socket, for the launcher's commands to a child
    /// ([`crate::commands`]): every message goes through it, the socket keeping those with fds.
    link: Option<Arc<crate::commands::CommandLink>>,
    _t: PhantomData<fn(T)>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            sock: self.sock.clone(),
            nonblocking: self.nonblocking,
            mailbox: self.mailbox.clone(),
            link: self.link.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Wire> Sender<T> {
    /// A sender on `sock` that waits while the peer's queue is full.
    pub fn new(sock: OwnedFd) -> Self {
        Self::shared(Arc::new(sock), false)
    }

    /// A sender on `sock` that never waits: a full queue is [`SendError::Full`].
    pub fn nonblocking(sock: OwnedFd) -> Self {
        Self::shared(Arc::new(sock), true)
    }

    fn shared(sock: Arc<OwnedFd>, nonblocking: bool) -> Self {
        Self {
            sock,
            nonblocking,
            mailbox: None,
            link: None,
            _t: PhantomData,
        }
    }

    /// This sender with `link`'s command stream beside its socket: from now on a message without
    /// fds goes on the stream (or into the mailbox's ring), and one with fds on the socket, its
    /// place marked in the stream. Clones made after this share the link.
    pub fn with_link(mut self, link: Arc<crate::commands::CommandLink>) -> Self {
        self.link = Some(link);
        self
    }

    /// The command stream beside the socket, if any.
    pub fn link(&self) -> Option<&Arc<crate::commands::CommandLink>> {
        self.link.as_ref()
    }

    /// This sender with `mailbox` beside its socket: from now on a message without fds that
    /// fits a record goes into the ring, and any other is announced there before the socket
    /// carries it. Clones made after this share the mailbox.
    /// A non-blocking sender reports a full ring at once, as it reports a full socket.
    pub fn with_mailbox(mut self, mut mailbox: crate::mailbox::MailboxWriter) -> Self {
        mailbox.wait_when_full(!self.nonblocking);
        self.mailbox = Some(Arc::new(std::sync::Mutex::new(mailbox)));
        self
    }

    /// The mailbox's records posted and, of them, announcements; `None` without a mailbox.
    pub fn mailbox_counts(&self) -> Option<(u64, u64)> {
        let m = self.mailbox.as_ref()?;
        m.lock().ok().map(|w| w.counts())
    }

    /// Runs `f` on the mailbox's writer (a program that tests a reader against a writer that
    /// breaks the rules); `None` without a mailbox.
    pub fn with_mailbox_writer<R>(
        &self,
        f: impl FnOnce(&mut crate::mailbox::MailboxWriter) -> R,
    ) -> Option<R> {
        let m = self.mailbox.as_ref()?;
        let mut w = m.lock().ok()?;
        Some(f(&mut w))
    }

    /// Sends `msg` with no fds.
    pub fn send(&self, msg: &T) -> Result<(), SendError> {
        self.send_with(msg, &[])
    }

    /// Sends `msg` with no fds; if it goes into the mailbox's ring, the reader's wake-up is put
    /// off until [`Sender::wake_owed`] ([`crate::mailbox::MailboxWriter::post_deferred`]). For
    /// a sender that sends in bursts and wakes its peer once a burst is over.
    pub fn send_deferred(&self, msg: &T) -> Result<(), SendError> {
        self.send_as(msg, &[], Wake::Deferred)
    }

    /// Sends `msg` with no fds; if it goes into the mailbox's ring, the reader is woken for it
    /// only with a later message ([`crate::mailbox::MailboxWriter::post_lazy`]), or by
    /// [`Sender::wake_lazy_before`]. For what the peer needs only with the next message it
    /// is woken for.
    pub fn send_lazy(&self, msg: &T) -> Result<(), SendError> {
        self.send_as(msg, &[], Wake::Lazy)
    }

    /// Makes the mailbox wake-up [`Sender::send_deferred`] put off, if any.
    pub fn wake_owed(&self) {
        if let Some(Ok(mut w)) = self.mailbox.as_ref().map(|m| m.lock()) {
            w.wake_owed();
        }
    }

    /// Makes the mailbox wake-up of messages sent with [`Sender::send_lazy`], if the first of
    /// them still waiting for it was sent before `t`.
    pub fn wake_lazy_before(&self, t: std::time::Instant) {
        if let Some(Ok(mut w)) = self.mailbox.as_ref().map(|m| m.lock()) {
            w.wake_lazy_before(t);
        }
    }

    /// Sends `msg` with exactly the fds its kind carries.
    pub fn send_with(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> Result<(), SendError> {
        self.send_as(msg, fds, Wake::Now)
    }

    fn send_as(&self, msg: &T, fds: &[BorrowedFd<'_>], wake: Wake) -> Result<(), SendError> {
        if fds.len() != msg.fd_count() {
            return Err(SendError::FdCount {
                kind: msg.kind(),
                got: fds.len(),
                want: msg.fd_count(),
            });
        }
        let mut mailbox = match &self.mailbox {
            Some(m) => Some(m.lock().map_err(|_| SendError::Disconnected)?),
            None => None,
        };
        // A message that fits a record is encoded on the stack, with no allocation: the steady
        // path's messages all do.
        if let Some(w) = mailbox.as_mut().filter(|_| fds.is_empty()) {
            let mut record = [0u8; crate::mailbox::PAYLOAD_MAX];
            if let Ok(bytes) = postcard::to_slice(msg, &mut record) {
                if w.post_as(bytes, wake)? {
                    return Ok(());
                }
            }
        }
        let bytes =
            postcard::to_stdvec(msg).map_err(|_| SendError::TooLong { kind: msg.kind() })?;
        if bytes.len() > MAX_MESSAGE {
            return Err(SendError::TooLong { kind: msg.kind() });
        }
        if let Some(w) = mailbox.as_mut() {
            let posted = fds.is_empty() && w.post_as(&bytes, wake)?;
            if posted {
                return Ok(());
            }
            w.announce()?;
        }
        let Some(link) = &self.link else {
            return self.on_socket(&bytes, fds);
        };
        let queued = |r: Result<(), crate::commands::NotQueued>| {
            r.map_err(|e| match e {
                crate::commands::NotQueued::Full => SendError::Full,
                crate::commands::NotQueued::Gone => SendError::Disconnected,
            })
        };
        link.in_order(|| {
            if fds.is_empty() {
                if !crate::commands::fits(bytes.len()) {
                    return Err(SendError::TooLong { kind: msg.kind() });
                }
                return queued(link.push(crate::commands::Command::Message(bytes)));
            }
            self.on_socket(&bytes, fds)?;
            queued(link.push(crate::commands::Command::OnSocket))
        })
    }

    /// Sends the datagram `bytes` with `fds` on the socket.
    fn on_socket(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), SendError> {
        match triptych_sys::scm::send_with_fds_flags(
            self.sock.as_fd(),
            bytes,
            fds,
            self.nonblocking,
        ) {
            Ok(_) => Ok(()),
            Err(triptych_sys::scm::ScmError::Send { errno, .. })
                if errno == Errno::EPIPE
                    || errno == Errno::ECONNRESET
                    || errno == Errno::ENOTCONN =>
            {
                Err(SendError::Disconnected)
            }
            Err(triptych_sys::scm::ScmError::Send {
                errno: Errno::EAGAIN,
                ..
            }) => Err(SendError::Full),
            Err(e) => Err(SendError::Io(e)),
        }
    }

    /// The raw socket number, for logs.
    pub fn raw(&self) -> i32 {
        self.sock.as_raw_fd()
    }
}

impl<T> AsFd for Receiver<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl<T> AsFd for Sender<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The receiving side of a channel of `T`.
#[derive(Debug)]
pub struct Receiver<T> {
    sock: Arc<OwnedFd>,
    buf: Box<[u8]>,
    /// The mailbox beside the socket, once one was handed over: it orders the stream.
    mailbox: Option<Box<crate::mailbox::Inbox>>,
    /// The launcher's command stream, in a child ([`crate::commands`]): where messages come
    /// from, the socket carrying those with fds where the stream says.
    stream: Option<ipc_channel::ipc::IpcReceiver<crate::commands::Command>>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Wire> Receiver<T> {
    /// A receiver on `sock`.
    pub fn new(sock: OwnedFd) -> Self {
        Self::shared(Arc::new(sock))
    }

    fn shared(sock: Arc<OwnedFd>) -> Self {
        Self {
            sock,
            // One byte more than the largest message, so that a message of exactly the limit is
            // told apart from a longer one even where MSG_TRUNC is not reported.
            buf: vec![0u8; MAX_MESSAGE + 1].into_boxed_slice(),
            mailbox: None,
            stream: None,
            _t: PhantomData,
        }
    }

    /// This receiver with the launcher's command stream `stream` beside its socket.
    pub fn with_stream(
        mut self,
        stream: ipc_channel::ipc::IpcReceiver<crate::commands::Command>,
    ) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Whether messages come from a command stream.
    fn has_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// The next item of the command stream within `wait` (`None`: wait as long as it takes):
    /// `Ok(None)` when nothing came in time.
    fn stream_item(
        &mut self,
        wait: Option<std::time::Duration>,
    ) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
        let Some(stream) = self.stream.as_ref() else {
            return Ok(None);
        };
        let item = match wait {
            None => stream.recv().map_err(ipc_channel::TryRecvError::IpcError),
            Some(d) => stream.try_recv_timeout(d),
        };
        match item {
            Ok(crate::commands::Command::Message(bytes)) => {
                Ok(Some(decode::<T>(&bytes, Vec::new())?))
            }
            // Its files were sent before the stream said so: they are queued already.
            Ok(crate::commands::Command::OnSocket) => self.recv_socket().map(Some),
            Err(ipc_channel::TryRecvError::Empty) => Ok(None),
            Err(ipc_channel::TryRecvError::IpcError(ipc_channel::IpcError::Disconnected)) => {
                Err(RecvError::Disconnected)
            }
            Err(ipc_channel::TryRecvError::IpcError(e)) => {
                tracing::warn!(error = ?e, "the command stream failed");
                Err(RecvError::Disconnected)
            }
        }
    }

    /// This receiver with `reader`'s mailbox beside its socket ([`crate::mailbox`]): from now
    /// on the ring orders the stream, and what is taken is counted in `stats`.
    pub fn with_mailbox(
        mut self,
        reader: crate::mailbox::MailboxReader,
        stats: Arc<crate::mailbox::MailboxStats>,
    ) -> Self {
        self.mailbox = Some(Box::new(crate::mailbox::Inbox {
            reader,
            stats,
            announced: None,
        }));
        self
    }

    /// Waits for the next message and the fds that came with it (exactly
    /// [`Wire::fd_count`] of them): from the mailbox, where there is one, or the socket.
    pub fn recv(&mut self) -> Result<(T, Vec<OwnedFd>), RecvError> {
        match self.mailbox.take() {
            Some(mut inbox) => {
                let r = crate::mailbox::next(&mut inbox, self);
                self.mailbox = Some(inbox);
                r
            }
            None if self.stream.is_some() => loop {
                if let Some(m) = self.stream_item(None)? {
                    break Ok(m);
                }
            },
            None => self.recv_socket(),
        }
    }

    /// The next message on the socket itself.
    fn recv_socket(&mut self) -> Result<(T, Vec<OwnedFd>), RecvError> {
        let d = self.datagram(MsgFlags::empty())?;
        Ok(judge::<T>(&self.buf, d)?)
    }

    /// Waits for the next datagram, received with `flags` added (`MSG_PEEK` leaves it queued),
    /// and tells the end of the peer from an empty datagram.
    fn datagram(&mut self, flags: MsgFlags) -> Result<triptych_sys::scm::Datagram, RecvError> {
        let d = loop {
            match triptych_sys::scm::recv_datagram_flags(self.sock.as_fd(), &mut self.buf, flags) {
                Ok(d) => break d,
                // A peer that closed its end with messages of ours unread makes the kernel
                // report ECONNRESET once (`unix_release_sock`), ahead of what the peer sent
                // before closing. The error is consumed by reporting it: read on, so nothing the
                // peer sent last (a fault notice, a trace batch) is lost; then comes the end.
                Err(triptych_sys::scm::ScmError::Recv {
                    errno: Errno::ECONNRESET,
                    ..
                }) => continue,
                Err(e) => return Err(RecvError::Io(e)),
            }
        };
        if d.eof {
            if hung_up(self.sock.as_fd()) {
                return Err(RecvError::Disconnected);
            }
            return Err(Violation::Empty.into());
        }
        Ok(d)
    }
}

impl<T: Wire> Receiver<T> {
    /// The next message if one waits, with its fds, without waiting: `None` if nothing does
    /// yet. With a mailbox, `look` adds the look at the socket a sleeping reader makes between
    /// its waits (for the peer's end, or a message it sent before it adopted the ring), which
    /// the caller makes every [`Receiver::look_every`]; without one, the socket itself is read.
    /// A message the ring announced that is not on the socket yet is looked for at the next
    /// call, and is the peer's violation once [`crate::mailbox::ANNOUNCED_WITHIN`] has passed.
    pub fn try_recv_now(&mut self, look: bool) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
        match self.mailbox.take() {
            Some(mut inbox) => {
                let r = crate::mailbox::next_now(&mut inbox, self, look);
                self.mailbox = Some(inbox);
                r
            }
            None if self.stream.is_some() => self.stream_item(Some(std::time::Duration::ZERO)),
            None => match self.datagram(MsgFlags::MSG_DONTWAIT) {
                Ok(d) => Ok(Some(judge::<T>(&self.buf, d)?)),
                Err(RecvError::Io(triptych_sys::scm::ScmError::Recv {
                    errno: Errno::EAGAIN,
                    ..
                })) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Like [`Receiver::recv`], but `None` once `stop` is raised, at the first moment the reader
    /// would sleep on its mailbox: nothing is half taken then, and the receiver can be read by
    /// another. Without a mailbox, `stop` is never looked at.
    pub fn recv_unless(
        &mut self,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
        match self.mailbox.take() {
            Some(mut inbox) => {
                let r = crate::mailbox::next_unless(&mut inbox, self, Some(stop));
                self.mailbox = Some(inbox);
                r
            }
            None => self.recv().map(Some),
        }
    }

    /// Sleeps on the mailbox, for a receiver its owner's loop reads ([`Polled::sleep`]):
    /// `false` without a mailbox, or where the kernel cannot wait on two words at once.
    fn sleep_polled(
        &mut self,
        bell: &Bell,
        rung: u32,
        timeout: std::time::Duration,
    ) -> Result<bool, RecvError> {
        match self.mailbox.as_deref_mut() {
            Some(inbox) => crate::mailbox::sleep(inbox, &bell.word, rung, timeout),
            None => Ok(false),
        }
    }

    /// How often a caller of [`Receiver::try_recv_now`] should look beside the mailbox: every
    /// [`crate::mailbox::SOCKET_LOOK`], more often before the peer adopted it; `None` without
    /// a mailbox (every call reads the socket).
    pub fn look_every(&self) -> Option<std::time::Duration> {
        self.mailbox.as_deref().map(crate::mailbox::look_every)
    }
}

impl<T: Wire> Receiver<T> {
    /// Like [`Receiver::recv`], but a message is taken off the socket only once it has decoded
    /// and `check` has accepted it: a message that breaks the protocol is returned as the
    /// violation and left at the head of the queue, where anyone holding a duplicate of this
    /// socket can read it for themselves ([`peek_waiting`]) instead of taking this side's word.
    /// With a mailbox, the message is taken first and then checked (a record cannot be left
    /// in place as evidence).
    pub fn recv_checked(
        &mut self,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Result<(T, Vec<OwnedFd>), RecvError> {
        if self.mailbox.is_some() {
            let (msg, fds) = self.recv()?;
            check(&msg).map_err(Violation::Refused)?;
            return Ok((msg, fds));
        }
        let d = self.datagram(MsgFlags::MSG_PEEK)?;
        let (msg, _) = judge::<T>(&self.buf, d)?;
        check(&msg).map_err(Violation::Refused)?;
        // The same datagram, now taken: this receiver is the socket's only reader.
        self.recv_socket()
    }
}

/// What the datagram `d`, received into `buf`, is: a message of this channel with its fds, or
/// the violation it is.
fn judge<T: Wire>(
    buf: &[u8],
    d: triptych_sys::scm::Datagram,
) -> Result<(T, Vec<OwnedFd>), Violation> {
    if d.truncated || d.len > MAX_MESSAGE {
        return Err(Violation::TooLong);
    }
    if d.fds_truncated {
        return Err(Violation::TooManyFds);
    }
    decode::<T>(&buf[..d.len], d.fds)
}

/// The message waiting at the head of `sock`'s receive queue, left there, without waiting:
/// `None` when nothing is queued, else the message or the violation it is (its rule applied by
/// the caller). For a party that holds a duplicate of both ends of another's socket and checks a
/// claim about what waits there (with both ends held, the socket never reads as closed).
pub fn peek_waiting<T: Wire>(
    sock: BorrowedFd<'_>,
) -> Result<Option<Result<T, Violation>>, triptych_sys::scm::ScmError> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    match triptych_sys::scm::recv_datagram_flags(
        sock,
        &mut buf,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        // Nothing queued is EAGAIN. A read of nothing is an empty datagram, or the end of a
        // peer that shut its side down: whoever holds a duplicate of the other end keeps the
        // socket from closing, so either is the peer's doing.
        Ok(d) if d.eof => Ok(Some(Err(Violation::Empty))),
        Ok(d) => Ok(Some(judge::<T>(&buf, d).map(|(m, _)| m))),
        Err(triptych_sys::scm::ScmError::Recv {
            errno: Errno::EAGAIN,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the peer of `sock` has closed its end (`POLLHUP`), without waiting.
fn hung_up(sock: BorrowedFd<'_>) -> bool {
    triptych_sys::poll::hung_up_now(sock)
}

impl<T: Wire> crate::mailbox::Beside<T> for Receiver<T> {
    fn has_stream(&self) -> bool {
        Receiver::has_stream(self)
    }

    fn stream_item(
        &mut self,
        wait: Option<std::time::Duration>,
    ) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
        Receiver::stream_item(self, wait)
    }

    fn recv_socket(&mut self) -> Result<(T, Vec<OwnedFd>), RecvError> {
        Receiver::recv_socket(self)
    }
}

/// A child's channels with the launcher with its two mailboxes attached, from the two fds of
/// the launcher's `Mailbox` message ([`crate::mailbox::adopt_pair`]): from now on `events`
/// writes through the one and `commands` reads through the other.
pub fn attach_mailboxes<S: Wire, R: Wire>(
    fds: Vec<OwnedFd>,
    events: Sender<S>,
    commands: Receiver<R>,
) -> Result<(Sender<S>, Receiver<R>), crate::mailbox::MailboxError> {
    let (writer, reader) = crate::mailbox::adopt_pair(fds)?;
    Ok((
        events.with_mailbox(writer),
        commands.with_mailbox(reader, Default::default()),
    ))
}

/// Both directions on one socket: what this side sends (`S`) and receives (`R`).
pub fn duplex<S: Wire, R: Wire>(sock: OwnedFd, nonblocking: bool) -> (Sender<S>, Receiver<R>) {
    let sock = Arc::new(sock);
    (
        Sender::shared(sock.clone(), nonblocking),
        Receiver::shared(sock),
    )
}

/// What a forwarding thread delivers: a message with its fds, or the violation that ended it.
pub type Delivery<T> = Result<(T, Vec<OwnedFd>), Violation>;

/// How many received messages a forwarding thread queues before it stops reading (and the
/// peer's sends start to wait or fail): the bound on what a peer can make its receiver hold.
pub const FORWARD_QUEUE: usize = 256;

/// The forwarding thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("spawning the {name} thread failed: {source}")]
pub struct ForwardError {
    /// The thread's name.
    pub name: String,
    /// Why.
    pub source: std::io::Error,
}

/// Starts a thread named `name` that moves what `rx` receives into a bounded crossbeam channel,
/// so the receiving process can `select!` on it with everything else it waits for.
///
/// The thread delivers each message, or one `Err` with the violation and then stops reading; it
/// ends (disconnecting the crossbeam channel) when the peer closes its end, the socket fails, or
/// the crossbeam receiver is dropped.
pub fn forward<T>(
    name: &str,
    rx: Receiver<T>,
) -> Result<crossbeam_channel::Receiver<Delivery<T>>, ForwardError>
where
    T: Wire + Send + 'static,
{
    spawn_forward(name, rx, false)
}

/// Like [`forward`], but a violation does not end the thread: it is delivered and reading goes
/// on, so one bad message costs only itself. For a receiver that must keep draining its socket
/// (the renderer's frames: a queue left full would be taken as the renderer's fault).
pub fn forward_skipping<T>(
    name: &str,
    rx: Receiver<T>,
) -> Result<crossbeam_channel::Receiver<Delivery<T>>, ForwardError>
where
    T: Wire + Send + 'static,
{
    spawn_forward(name, rx, true)
}

/// Like [`forward`], but each message is checked by `check` before it is taken off the socket
/// ([`Receiver::recv_checked`]): the first one that breaks the protocol is delivered as the
/// violation and left on the socket as evidence, and the thread stops reading.
pub fn forward_checked<T>(
    name: &str,
    rx: Receiver<T>,
    check: impl Fn(&T) -> Result<(), String> + Send + 'static,
) -> Result<crossbeam_channel::Receiver<Delivery<T>>, ForwardError>
where
    T: Wire + Send + 'static,
{
    spawn_forward_with(name, rx, false, move |rx| rx.recv_checked(&check))
}

fn spawn_forward<T>(
    name: &str,
    rx: Receiver<T>,
    skip: bool,
) -> Result<crossbeam_channel::Receiver<Delivery<T>>, ForwardError>
where
    T: Wire + Send + 'static,
{
    spawn_forward_with(name, rx, skip, Receiver::recv)
}

fn spawn_forward_with<T>(
    name: &str,
    rx: Receiver<T>,
    skip: bool,
    recv: impl FnMut(&mut Receiver<T>) -> Result<(T, Vec<OwnedFd>), RecvError> + Send + 'static,
) -> Result<crossbeam_channel::Receiver<Delivery<T>>, ForwardError>
where
    T: Wire + Send + 'static,
{
    let (tx, out) = crossbeam_channel::bounded(FORWARD_QUEUE);
    spawn_forward_into(name, rx, skip, recv, tx)?;
    Ok(out)
}

/// A forwarding thread that hands its receiver back when asked ([`forward_handing_back`]), for
/// a loop that reads the channel itself once it no longer needs to block on it.
#[derive(Debug)]
pub struct Handback<T> {
    name: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    back: crossbeam_channel::Receiver<HandedBack<T>>,
}

impl<T: Wire + Send + 'static> Handback<T> {
    /// Asks the thread to stop at the next moment its reader would sleep; `waker` (its
    /// mailbox's) cuts a sleep already begun short.
    pub fn ask(&self, waker: Option<&crate::mailbox::MailboxWaker>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The channel, to be read by the caller's loop from now on, once the thread has stopped:
    /// filling the crossbeam channel the thread filled, after what it put there. `None` while
    /// it has not stopped yet, and for good if it ended otherwise (the peer's end, a
    /// violation: the channel says so).
    pub fn take(&self) -> Option<Polled<T>> {
        self.take_within(std::time::Duration::ZERO)
    }

    /// Like [`Handback::take`], waiting up to `wait` for the thread to stop (it was asked, and
    /// stops at once unless a message is on its way): for a caller about to wait on the
    /// channel, or to drain a dead peer's last words.
    pub fn take_within(&self, wait: std::time::Duration) -> Option<Polled<T>> {
        let (rx, tx) = self.back.recv_timeout(wait).ok()?;
        Some(Polled {
            name: self.name.clone(),
            open: Some((rx, tx)),
            look_at: None,
            behind: false,
        })
    }
}

/// Like [`forward`], with a [`Handback`]: the thread reads until asked to stop, then hands its
/// receiver back. Asked, it stops only with its mailbox empty and no announced message awaited;
/// without a mailbox it never stops.
pub fn forward_handing_back<T>(
    name: &str,
    rx: Receiver<T>,
) -> Result<(crossbeam_channel::Receiver<Delivery<T>>, Handback<T>), ForwardError>
where
    T: Wire + Send + 'static,
{
    let (tx, out) = crossbeam_channel::bounded(FORWARD_QUEUE);
    let (back_tx, back) = crossbeam_channel::bounded(1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asked = stop.clone();
    spawn_forward_until(
        name,
        rx,
        false,
        move |rx| rx.recv_unless(&asked),
        tx,
        Some(back_tx),
    )?;
    Ok((
        out,
        Handback {
            name: name.to_owned(),
            stop,
            back,
        },
    ))
}

/// Whether this kernel lets a loop sleep on a peer's ring and a [`Bell`] at once
/// ([`Polled::sleep`]: `futex_waitv`, Linux 5.16 and later).
pub fn sleep_supported() -> bool {
    let word = std::sync::atomic::AtomicU32::new(0);
    let probe = triptych_sys::futex::WaitOn {
        word: &word,
        expected: 1,
        private: true,
    };
    // The word does not hold what is expected: a kernel that knows the call says so at once.
    matches!(
        triptych_sys::futex::wait_any(&[probe], std::time::Duration::ZERO),
        Ok(triptych_sys::futex::WaitedAny::Changed)
    )
}

/// A word of the process's own that its threads ring to end a [`Polled::sleep`] of its loop:
/// what else the loop waits for (a child's exit, an application's edit) rings it as it is sent,
/// so the loop can sleep on a peer's ring and still hear of those at once.
#[derive(Debug, Default)]
pub struct Bell {
    word: std::sync::atomic::AtomicU32,
}

impl Bell {
    /// How often it has been rung: what a [`Polled::sleep`] is given, read before the loop
    /// last looked at what it waits for.
    pub fn rung(&self) -> u32 {
        self.word.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Rings it: a sleep given an older [`Bell::rung`] ends, or does not begin.
    pub fn ring(&self) {
        self.word.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = triptych_sys::futex::wake_private(&self.word, 1);
    }
}

/// Starts the forwarding thread that moves what `rx` receives into `tx`.
fn spawn_forward_into<T>(
    name: &str,
    rx: Receiver<T>,
    skip: bool,
    mut recv: impl FnMut(&mut Receiver<T>) -> Result<(T, Vec<OwnedFd>), RecvError> + Send + 'static,
    tx: crossbeam_channel::Sender<Delivery<T>>,
) -> Result<(), ForwardError>
where
    T: Wire + Send + 'static,
{
    spawn_forward_until(name, rx, skip, move |rx| recv(rx).map(Some), tx, None)
}

/// What a thread that stopped forwarding hands back: its receiver and where it forwarded to.
type HandedBack<T> = (Receiver<T>, crossbeam_channel::Sender<Delivery<T>>);

/// Starts the forwarding thread that moves what `rx` receives into `tx`, until `recv` says to
/// stop (`None`): then it hands both to `back`.
fn spawn_forward_until<T>(
    name: &str,
    mut rx: Receiver<T>,
    skip: bool,
    mut recv: impl FnMut(&mut Receiver<T>) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError>
        + Send
        + 'static,
    tx: crossbeam_channel::Sender<Delivery<T>>,
    back: Option<crossbeam_channel::Sender<HandedBack<T>>>,
) -> Result<(), ForwardError>
where
    T: Wire + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            loop {
                match recv(&mut rx) {
                    Ok(Some(m)) => {
                        if tx.send(Ok(m)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        if let Some(back) = back {
                            let _ = back.send((rx, tx));
                            return;
                        }
                        break;
                    }
                    Err(RecvError::Violation(v)) => {
                        if tx.send(Err(v)).is_err() || !skip {
                            break;
                        }
                    }
                    Err(RecvError::Disconnected) => break,
                    Err(RecvError::Io(e)) => {
                        tracing::debug!(error = %e, "channel receive failed");
                        break;
                    }
                }
            }
            // The socket closes before the channel disconnects: whoever sees the disconnect
            // knows the fd is gone (an fd count taken then is exact).
            drop(rx);
            drop(tx);
        })
        .map_err(|source| ForwardError {
            name: name.to_owned(),
            source,
        })?;
    Ok(())
}

/// A channel that its owner's loop reads itself, between its other work, instead of a
/// forwarding thread ([`polled`]). The loop calls [`Polled::poll`] when it is awake anyway (a
/// paced loop: at least once a period), so the peer's messages cost no wake-up of the receiving
/// process at all: the mailbox's reader never says it sleeps, and the writer never wakes it.
/// What arrives goes into the same bounded crossbeam channel a forwarding thread fills, with the
/// same rules, so the rest of the receiver is the same either way; [`Polled::forward`] hands
/// the rest of the channel to such a thread, for a caller about to block on it.
#[derive(Debug)]
pub struct Polled<T> {
    name: String,
    /// The receiver and the channel's sending side; both dropped (the receiver first, as a
    /// forwarding thread does) at the peer's end, a failed socket, or the first violation.
    open: Option<(Receiver<T>, crossbeam_channel::Sender<Delivery<T>>)>,
    /// When the next look beside the mailbox is due.
    look_at: Option<std::time::Instant>,
    /// Whether the last [`Polled::poll`] left messages waiting.
    behind: bool,
}

/// Makes `rx` a [`Polled`] channel named `name`, and the crossbeam receiver it fills.
pub fn polled<T: Wire>(
    name: &str,
    rx: Receiver<T>,
) -> (Polled<T>, crossbeam_channel::Receiver<Delivery<T>>) {
    let (tx, out) = crossbeam_channel::bounded(FORWARD_QUEUE);
    let p = Polled {
        name: name.to_owned(),
        open: Some((rx, tx)),
        look_at: None,
        behind: false,
    };
    (p, out)
}

impl<T: Wire + Send + 'static> Polled<T> {
    /// Moves what waits into the channel, at most `most` messages and as many as the channel
    /// has room for, without waiting: each message, or one `Err` with the violation and nothing
    /// after it. The peer's end, a failed socket or a violation disconnects the channel (once
    /// what it holds is taken). `now` is the caller's clock, for the looks beside the mailbox.
    /// Returns whether more may wait (it stopped at `most`, or at a full channel).
    pub fn poll(&mut self, now: std::time::Instant, most: usize) -> bool {
        self.behind = self.poll_some(now, most);
        self.behind
    }

    /// Whether the last [`Polled::poll`] left messages waiting.
    pub fn behind(&self) -> bool {
        self.behind
    }

    /// Sleeps until the peer posts to the mailbox, `bell` is rung after it was read as `rung`,
    /// or `timeout` passes, taking nothing: for the loop that polls this channel, with nothing
    /// else to do. The mailbox's rules hold as for a forwarding thread's sleep (a wake-up with
    /// no record counts against the peer, and past the limit is its violation, delivered as
    /// [`Polled::poll`] delivers one). While an announced message is awaited on the socket,
    /// which no wake-up brings, it naps on the bell alone, a millisecond at first and longer as
    /// the wait goes on (the records behind the announcement wait for it). Returns `false` where this cannot sleep
    /// so (no mailbox, a closed channel, a kernel without `futex_waitv`): the caller waits
    /// otherwise.
    pub fn sleep(&mut self, bell: &Bell, rung: u32, timeout: std::time::Duration) -> bool {
        let Some((rx, tx)) = self.open.as_mut() else {
            return false;
        };
        match rx.sleep_polled(bell, rung, timeout) {
            Ok(slept) => slept,
            Err(e) => {
                if let RecvError::Violation(v) = e {
                    let _ = tx.send(Err(v));
                }
                if let Some((rx, tx)) = self.open.take() {
                    drop(rx);
                    drop(tx);
                }
                true
            }
        }
    }

    fn poll_some(&mut self, now: std::time::Instant, most: usize) -> bool {
        let Some((rx, tx)) = self.open.as_mut() else {
            return false;
        };
        let mut look = self.look_at.is_none_or(|at| now >= at);
        if look {
            self.look_at = rx.look_every().map(|every| now + every);
        }
        let mut moved = 0;
        let end = loop {
            if tx.is_full() || moved == most {
                return true;
            }
            moved += 1;
            match rx.try_recv_now(std::mem::take(&mut look)) {
                Ok(Some(m)) => {
                    if tx.send(Ok(m)).is_err() {
                        break true;
                    }
                }
                Ok(None) => break false,
                Err(RecvError::Violation(v)) => {
                    let _ = tx.send(Err(v));
                    break true;
                }
                Err(RecvError::Disconnected) => break true,
                Err(RecvError::Io(e)) => {
                    tracing::debug!(error = %e, channel = %self.name, "channel receive failed");
                    break true;
                }
            }
        };
        if end {
            if let Some((rx, tx)) = self.open.take() {
                drop(rx);
                drop(tx);
            }
        }
        false
    }

    /// Takes what a peer that is gone left behind (its ring, then its socket, looked at at
    /// once), as much as the channel has room for, and ends the channel: for a caller about to
    /// read a dead peer's last words, with no wait for a look that is not due yet.
    pub fn drain_gone(mut self) {
        let Some((rx, tx)) = self.open.as_mut() else {
            return;
        };
        while !tx.is_full() {
            match rx.try_recv_now(true) {
                Ok(Some(m)) => {
                    if tx.send(Ok(m)).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(RecvError::Violation(v)) => {
                    let _ = tx.send(Err(v));
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some((rx, tx)) = self.open.take() {
            drop(rx);
            drop(tx);
        }
    }

    /// Hands the rest of the channel to a forwarding thread ([`forward`]), for a caller about
    /// to wait on it.
    pub fn forward(mut self) -> Result<(), ForwardError> {
        match self.open.take() {
            Some((rx, tx)) => spawn_forward_into(&self.name, rx, false, Receiver::recv, tx),
            None => Ok(()),
        }
    }
}

/// Splits `items` into consecutive batches whose messages (made by `wrap`) each encode within
/// [`MAX_MESSAGE`]; an item too large on its own is dropped and counted in the returned number.
pub fn split_to_fit<I: Clone, T: Wire>(
    items: Vec<I>,
    wrap: impl Fn(Vec<I>) -> T,
) -> (Vec<T>, usize) {
    fn fits<T: Wire>(m: &T) -> bool {
        postcard::experimental::serialized_size(m).is_ok_and(|n| n <= MAX_MESSAGE)
    }
    let mut out = Vec::new();
    let mut dropped = 0;
    let mut stack = vec![items];
    while let Some(batch) = stack.pop() {
        if batch.is_empty() {
            continue;
        }
        let msg = wrap(batch.clone());
        if fits(&msg) {
            out.push(msg);
        } else if batch.len() == 1 {
            dropped += 1;
        } else {
            let mut first = batch;
            let second = first.split_off(first.len() / 2);
            // Popped in order: first half first.
            stack.push(second);
            stack.push(first);
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Ping(u64),
        Blob(Vec<u8>),
        WithFd(u32),
    }

    impl Wire for Msg {
        fn kind(&self) -> &'static str {
            match self {
                Msg::Ping(_) => "Ping",
                Msg::Blob(_) => "Blob",
                Msg::WithFd(_) => "WithFd",
            }
        }
        fn fd_count(&self) -> usize {
            usize::from(matches!(self, Msg::WithFd(_)))
        }
    }

    fn pair() -> (Sender<Msg>, Receiver<Msg>, OwnedFd) {
        let (a, b) = socket_pair().expect("pair");
        let raw = triptych_sys::fd::dup_cloexec(a.as_fd()).expect("dup");
        (Sender::nonblocking(a), Receiver::new(b), raw)
    }

    #[test]
    fn messages_and_fds_round_trip() {
        let (tx, mut rx, _raw) = pair();
        tx.send(&Msg::Ping(7)).expect("send");
        let (a, _b) = socket_pair().expect("pair");
        tx.send_with(&Msg::WithFd(1), &[a.as_fd()]).expect("send");
        assert_eq!(rx.recv().expect("recv").0, Msg::Ping(7));
        let (m, fds) = rx.recv().expect("recv");
        assert_eq!((m, fds.len()), (Msg::WithFd(1), 1));
        assert!(matches!(
            tx.send_with(&Msg::Ping(1), &[a.as_fd()]),
            Err(SendError::FdCount { .. })
        ));
    }

    #[test]
    fn oversized_garbage_and_stray_fds_are_violations() {
        let (_tx, mut rx, raw) = pair();
        let big = vec![1u8; MAX_MESSAGE + 100];
        triptych_sys::scm::send_with_fds(raw.as_fd(), &big, &[]).expect("send");
        assert!(matches!(
            rx.recv(),
            Err(RecvError::Violation(Violation::TooLong))
        ));
        // A declared length far beyond what is present: no allocation, a clear error.
        triptych_sys::scm::send_with_fds(raw.as_fd(), &[1, 0xff, 0xff, 0xff, 0xff, 0x0f], &[])
            .expect("send");
        assert!(matches!(
            rx.recv(),
            Err(RecvError::Violation(Violation::Undecodable { .. }))
        ));
        let mut ping = postcard::to_stdvec(&Msg::Ping(3)).expect("enc");
        ping.push(0);
        triptych_sys::scm::send_with_fds(raw.as_fd(), &ping, &[]).expect("send");
        assert!(matches!(
            rx.recv(),
            Err(RecvError::Violation(Violation::Trailing { extra: 1, .. }))
        ));
        let ping = postcard::to_stdvec(&Msg::Ping(3)).expect("enc");
        triptych_sys::scm::send_with_fds(raw.as_fd(), &ping, &[raw.as_fd()]).expect("send");
        assert!(matches!(
            rx.recv(),
            Err(RecvError::Violation(Violation::FdCount {
                got: 1,
                want: 0,
                ..
            }))
        ));
        triptych_sys::scm::send_with_fds(
            raw.as_fd(),
            &ping,
            &[raw.as_fd(); triptych_sys::scm::DATAGRAM_MAX_FDS + 5],
        )
        .expect("send");
        assert!(matches!(
            rx.recv(),
            Err(RecvError::Violation(Violation::TooManyFds))
        ));
        triptych_sys::scm::send_with_fds(raw.as_fd(), &[], &[]).expect("send");
        assert!(matches!(
            rx.recv(),
            Err(RecvError::Violation(Violation::Empty))
        ));
        drop(raw);
        drop(_tx);
        assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
    }

    #[test]
    fn the_last_words_of_a_peer_that_left_messages_unread_arrive() {
        let (a, b) = socket_pair().expect("pair");
        let (to_b, mut from_b) = duplex::<Msg, Msg>(a, false);
        let (to_a, unread) = duplex::<Msg, Msg>(b, false);
        // a sends b something b never reads; b sends its last words and goes away.
        to_b.send(&Msg::Ping(1)).expect("send");
        to_a.send(&Msg::Ping(2)).expect("send");
        drop(to_a);
        drop(unread);
        assert_eq!(from_b.recv().expect("the last words").0, Msg::Ping(2));
        assert!(matches!(from_b.recv(), Err(RecvError::Disconnected)));
    }

    #[test]
    fn a_peer_that_stops_reading_fills_a_nonblocking_sender() {
        let (tx, _rx, _raw) = pair();
        let r = (0..100_000).find_map(|i| tx.send(&Msg::Blob(vec![0; 2000 + i % 3])).err());
        assert!(matches!(r, Some(SendError::Full)), "{r:?}");
    }

    #[test]
    fn batches_are_split_to_fit() {
        let items: Vec<Vec<u8>> = (0..100).map(|_| vec![9u8; 2000]).collect();
        let (msgs, dropped) = split_to_fit(items, |b| Msg::Blob(b.concat()));
        assert_eq!(dropped, 0);
        assert!(msgs.len() >= 4);
        let total: usize = msgs
            .iter()
            .map(|m| match m {
                Msg::Blob(b) => b.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(total, 200_000);
        let (_, dropped) =
            split_to_fit(vec![vec![0u8; MAX_MESSAGE * 2]], |b| Msg::Blob(b.concat()));
        assert_eq!(dropped, 1);
    }
}
