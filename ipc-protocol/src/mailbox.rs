//! A shared-memory mailbox beside a channel: a ring of fixed-size records in a sealed memfd,
//! one writer and one reader, and a wake-up (`FUTEX_WAKE` on the ring's write index, a word both
//! processes map) the writer makes only when the reader sleeps, once per sleep. A steady message costs the
//! writer a copy into the ring and the reader a copy out, no socket call on either side, and no
//! system call at all while the reader is busy.
//!
//! The channel's socket stays: for what the ring cannot carry (fds, a message larger than a
//! record) and for the end of the peer (its hang-up). The ring alone orders the stream: before
//! a message goes on the socket, the writer posts an *announcement* record, and the reader takes
//! a socket message only where the ring announces one. Until its first record, the writer has
//! not adopted the ring and the socket is read as a plain channel (what a child sends before it
//! is handed its mailbox).
//!
//! # Layout
//!
//! | offset | what | written by |
//! | --- | --- | --- |
//! | 0 | write index (`u32`, records posted so far, wrapping) | writer |
//! | 64 | read index (`u32`, records taken so far, wrapping) | reader |
//! | 128 | the reader sleeps (`u32`, 0 or 1) | reader; the writer lowers it as it wakes the reader |
//! | 4096 | [`RECORDS`] records of [`RECORD_BYTES`] | writer |
//!
//! A record is a 2-byte little-endian length, a 1-byte kind (1: a message of that many bytes,
//! postcard-encoded as on the socket; 2: the next message is on the socket), 5 bytes reserved,
//! then the payload. The indices sit on cache lines of their own, so the two sides do not share
//! one line's traffic.
//!
//! # When the peer may be hostile
//!
//! The memfd is created by the launcher and sealed against growing, shrinking and further
//! seals, so a mapping of it cannot fault. Both sides can write all of it: a hostile writer can
//! rewrite the reader's index and flag, records already read, or records as they are read. The
//! reader therefore keeps its own index and never reads back what it published; it copies each
//! record out once ([`triptych_sys::mapping::PeerBytes`]) and decides on the copy only (no
//! double fetch); and every record goes through the same decoder as a datagram
//! ([`crate::codec::decode`]). What the protocol does not allow is the writer's
//! [`Violation`]:
//!
//! - a write index more than [`RECORDS`] ahead of the reader's (records that were never there);
//! - a record whose length runs past its payload, of an unknown kind, or with bytes that do not
//!   decode, or decode with bytes left over;
//! - a message on the socket the ring did not announce (once adopted), or an announced one that
//!   does not come within [`ANNOUNCED_WITHIN`];
//! - a write index that goes back (a writer's index only grows);
//! - wake-ups without records (or changes of the write index the reader's wait saw that brought
//!   none): more than [`SPURIOUS_WAKES`] in a second, and more than twice the records posted in
//!   it (a correct writer wakes at most once per record, and moves the index only with one).
//!
//! The wake-up is a shared futex on the write index ([`triptych_sys::futex`]): the sleeping
//! reader waits while the index holds the value it last read, so a record posted between its
//! last look and its wait ends the wait at once, and a `FUTEX_WAKE` never waits on anything.
//! Not an eventfd: both processes would hold one open file of it, whose `O_NONBLOCK` either
//! could clear, and a full counter would then make the other side's write wait for ever. A
//! futex needs no file at all: a hostile writer can only wake the reader for nothing (counted,
//! above) or change the index (judged, above). Nor does the reader wait on the socket: a
//! message there comes announced by a record, so the socket is looked at only then, and between
//! waits of at most [`SOCKET_LOOK`] for its end (or, before the writer adopts the ring, for its
//! messages).
//!
//! A writer whose reader stops finds the ring full: a blocking sender (a child's) waits, as on a
//! full socket, and gives up after [`FULL_WAIT`] with [`SendError::Full`]; a
//! non-blocking one (the launcher's) reports it at once.
//!
//! # Why not a crate
//!
//! The rings on crates.io (`ringbuf`, `rtrb`, `crossbeam`'s queues) are for threads of one
//! process: their indices and slots are trusted and their memory is the process's own heap.
//! Here the memory is a memfd shared with a process that may be compromised, every index read
//! from it is a claim, and the wake-up is a socket a sandboxed process may write to. What is
//! kept is the textbook single-producer single-consumer ring with a sleeping flag (the pattern
//! of PipeWire's and Chromium's shared-memory transports), written for that.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use triptych_sys::mapping::SharedMemory;

use crate::codec::{RecvError, SendError, Violation, Wire};

/// Bytes in one record, its 8-byte head included: a frame's description of a few layers (a few
/// hundred bytes, [`crate::messages::FrameMsg`]) fits one; a larger one goes on the socket,
/// announced.
pub const RECORD_BYTES: usize = 1024;
/// The bytes of a message a record carries.
pub const PAYLOAD_MAX: usize = RECORD_BYTES - RECORD_HEAD;
/// Records in the ring.
pub const RECORDS: u32 = 256;
/// The memfd's size.
pub const MAILBOX_BYTES: usize = HEADER_BYTES + RECORD_BYTES * RECORDS as usize;
/// How long the reader waits for a socket message the ring announced.
pub const ANNOUNCED_WITHIN: Duration = Duration::from_secs(2);
/// Wake-ups without a record that a writer may cause in one second before it is judged.
pub const SPURIOUS_WAKES: u32 = 1000;
/// How long a sleeping reader waits on the ring before it looks at the socket, for the writer's
/// end; before the writer adopted the ring, every 5 ms.
pub const SOCKET_LOOK: Duration = Duration::from_millis(100);
/// How long a reader waits before it looks at the socket while the writer has yet to adopt
/// the ring (its messages come on the socket until then).
const SOCKET_LOOK_EARLY: Duration = Duration::from_millis(5);
/// How long a writer waits for room in a full ring.
pub const FULL_WAIT: Duration = Duration::from_secs(5);

const HEADER_BYTES: usize = 4096;
const RECORD_HEAD: usize = 8;
const WRITE_AT: usize = 0;
const READ_AT: usize = 64;
const SLEEPING_AT: usize = 128;
const KIND_MESSAGE: u8 = 1;
const KIND_ON_SOCKET: u8 = 2;

/// Why a mailbox could not be made or taken.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// Creating the memfd failed.
    #[error("creating the mailbox memfd: {0}")]
    Memfd(#[from] triptych_sys::memfd::MemfdError),
    /// Duplicating the memfd failed.
    #[error("duplicating the mailbox memfd: {0}")]
    Dup(triptych_sys::Errno),
    /// The memfd handed over is not the size of a mailbox.
    #[error("a mailbox memfd of {found} bytes, where a mailbox is {MAILBOX_BYTES}")]
    Size {
        /// Its size.
        found: u64,
    },
    /// Measuring the memfd failed.
    #[error("measuring the mailbox memfd: {0}")]
    Measure(#[from] triptych_sys::fd::FdError),
    /// Mapping it failed.
    #[error("mapping the mailbox: {0}")]
    Map(#[from] triptych_sys::mapping::MapError),
    /// Not the two fds two mailboxes are handed over with.
    #[error("{0} fds where two mailboxes come with 2")]
    Fds(usize),
}

/// Creates a mailbox: its sealed memfd, for the writer and the reader to adopt
/// ([`MailboxWriter::adopt`], [`MailboxReader::adopt`]).
fn create_memfd(name: &std::ffi::CStr) -> Result<OwnedFd, MailboxError> {
    Ok(triptych_sys::memfd::create_sealed(
        name,
        MAILBOX_BYTES as u64,
    )?)
}

/// Creates a mailbox whose reader is this process: the reader's side, and the memfd to hand to
/// the writer.
pub fn create(name: &std::ffi::CStr) -> Result<(MailboxReader, OwnedFd), MailboxError> {
    let memfd = create_memfd(name)?;
    let reader = MailboxReader::adopt(dup(&memfd)?)?;
    Ok((reader, memfd))
}

/// Creates a mailbox whose writer is this process: the writer's side, and the memfd to hand to
/// the reader.
pub fn create_outgoing(name: &std::ffi::CStr) -> Result<(MailboxWriter, OwnedFd), MailboxError> {
    let memfd = create_memfd(name)?;
    let writer = MailboxWriter::adopt(dup(&memfd)?)?;
    Ok((writer, memfd))
}

/// A handle on a mailbox's reader for whoever knows its writer is gone: its wake-up ends the
/// reader's wait at once, and the reader, finding no record, looks at the socket and sees the
/// end, instead of at its next look ([`SOCKET_LOOK`]). It holds the memfd and maps it only to
/// wake (a futex word is keyed by the file and offset, so any mapping of it wakes the reader's).
#[derive(Debug)]
pub struct MailboxWaker {
    memfd: OwnedFd,
}

impl MailboxWaker {
    /// A waker of the mailbox of `memfd` (a duplicate of it is kept).
    pub fn new(memfd: &OwnedFd) -> Result<Self, MailboxError> {
        Ok(Self { memfd: dup(memfd)? })
    }

    /// Wakes the reader, if it sleeps.
    pub fn wake(&self) {
        match map_handed(&self.memfd) {
            Ok(map) => {
                let _ = triptych_sys::futex::wake(atomic(&map, WRITE_AT), 1);
            }
            Err(e) => tracing::debug!(error = %e, "mapping a mailbox to wake its reader"),
        }
    }
}

/// A child's two mailboxes, from the two fds of the launcher's `Mailbox` message (in its
/// order: the memfd of the mailbox the child writes, then of the one it reads).
pub fn adopt_pair(mut fds: Vec<OwnedFd>) -> Result<(MailboxWriter, MailboxReader), MailboxError> {
    if fds.len() != 2 {
        return Err(MailboxError::Fds(fds.len()));
    }
    let in_memfd = fds.remove(1);
    let out_memfd = fds.remove(0);
    Ok((
        MailboxWriter::adopt(out_memfd)?,
        MailboxReader::adopt(in_memfd)?,
    ))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, MailboxError> {
    fd.try_clone().map_err(|e| {
        MailboxError::Dup(triptych_sys::Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    })
}

/// Maps a mailbox handed over: `memfd` must be a mailbox's size and sealed against shrinking
/// (so that its mapping cannot fault).
fn map_handed(memfd: &OwnedFd) -> Result<SharedMemory, MailboxError> {
    triptych_sys::memfd::check_no_shrink(memfd.as_fd())?;
    let found = triptych_sys::fd::seek_size(memfd.as_fd())?;
    if found != MAILBOX_BYTES as u64 {
        return Err(MailboxError::Size { found });
    }
    Ok(SharedMemory::new(memfd.as_fd(), MAILBOX_BYTES)?)
}

fn atomic(map: &SharedMemory, at: usize) -> &AtomicU32 {
    // Every offset used is 4-aligned and inside a mapping of MAILBOX_BYTES (checked when the
    // mapping was made), so this cannot fail; a static fallback keeps it panic-free regardless.
    static SPARE: AtomicU32 = AtomicU32::new(0);
    map.atomic_u32(at).unwrap_or(&SPARE)
}

fn record_at(index: u32) -> usize {
    HEADER_BYTES + (index % RECORDS) as usize * RECORD_BYTES
}

/// The writer's side, in the process that sends.
#[derive(Debug)]
pub struct MailboxWriter {
    map: SharedMemory,
    /// The next record's index: the writer's own, never read back from the memory.
    next: u32,
    /// Records posted, and of them announcements.
    posted: u64,
    announced: u64,
    /// Whether a full ring is waited on (up to [`FULL_WAIT`]) or reported at once: a sender
    /// that must never wait on its peer (the launcher's) reports it at once.
    wait_when_full: bool,
    /// Where what it sends is counted as well, for whoever reports it: messages posted as
    /// records, and messages announced on the socket.
    shared: Option<std::sync::Arc<MailboxStats>>,
    /// The reader said it slept, and this writer lowered its flag without waking it yet: a
    /// record's wake-up was put off ([`MailboxWriter::post_deferred`],
    /// [`MailboxWriter::post_lazy`]).
    asleep: bool,
    /// A wake-up put off is owed at the end of the writer's burst
    /// ([`MailboxWriter::wake_owed`]).
    owed: bool,
    /// Since when a record posted lazily has waited for its wake-up
    /// ([`MailboxWriter::wake_lazy_before`]).
    lazy_since: Option<Instant>,
    /// Wake-ups made.
    wakes: u64,
}

impl MailboxWriter {
    /// Takes the mailbox the launcher handed over: `memfd` must be a mailbox's size and sealed
    /// against shrinking (so its mapping cannot fault).
    pub fn adopt(memfd: OwnedFd) -> Result<Self, MailboxError> {
        let map = map_handed(&memfd)?;
        Ok(Self {
            map,
            // A fresh mailbox: its first record is record 0.
            next: 0,
            posted: 0,
            announced: 0,
            wait_when_full: true,
            shared: None,
            asleep: false,
            owed: false,
            lazy_since: None,
            wakes: 0,
        })
    }

    /// Counts what it sends into `stats` too: `records` for the messages posted as records,
    /// `on_socket` for those announced on the socket.
    pub fn count_into(&mut self, stats: std::sync::Arc<MailboxStats>) {
        self.shared = Some(stats);
    }

    /// Posts `bytes` (an encoded message) as one record; false if they do not fit in one.
    pub fn post(&mut self, bytes: &[u8]) -> Result<bool, SendError> {
        self.post_as(bytes, Wake::Now)
    }

    /// [`MailboxWriter::post`], putting off the reader's wake-up until
    /// [`MailboxWriter::wake_owed`] (or the next post that is not put off): a writer that posts
    /// several records in a burst (the launcher, handling what its children sent, several
    /// releases and frame requests for one process) wakes the reader once for all of them. The
    /// caller owes the wake-up: until it is made, the reader finds the record only at its next
    /// look ([`SOCKET_LOOK`]).
    pub fn post_deferred(&mut self, bytes: &[u8]) -> Result<bool, SendError> {
        self.post_as(bytes, Wake::Deferred)
    }

    /// [`MailboxWriter::post`] for a record the reader needs only with a later one: its
    /// wake-up waits for the next that is made (by a post, [`MailboxWriter::wake_owed`] after
    /// a deferred post, or a full ring), or for [`MailboxWriter::wake_lazy_before`]. For what a
    /// paced peer needs only to act on the next frame it is asked for (a slot or a buffer
    /// handed back), which comes, woken, after it.
    pub fn post_lazy(&mut self, bytes: &[u8]) -> Result<bool, SendError> {
        self.post_as(bytes, Wake::Lazy)
    }

    pub(crate) fn post_as(&mut self, bytes: &[u8], wake: Wake) -> Result<bool, SendError> {
        if bytes.len() > PAYLOAD_MAX {
            return Ok(false);
        }
        self.put(KIND_MESSAGE, bytes, wake)?;
        if let Some(s) = &self.shared {
            s.records.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Makes the wake-up put off by [`MailboxWriter::post_deferred`], if the reader slept.
    pub fn wake_owed(&mut self) {
        if std::mem::take(&mut self.owed) {
            self.wake_asleep();
        }
    }

    /// Makes the wake-up of records posted lazily ([`MailboxWriter::post_lazy`]) if the first
    /// of them waiting for it was posted before `t`.
    pub fn wake_lazy_before(&mut self, t: Instant) {
        if self.lazy_since.is_some_and(|since| since < t) {
            self.wake_asleep();
        }
    }

    /// Wakes the reader if it slept and was not woken since.
    fn wake_asleep(&mut self) {
        self.owed = false;
        self.lazy_since = None;
        if std::mem::take(&mut self.asleep) {
            self.wake();
        }
    }

    /// Wake-ups of the reader made so far.
    pub fn wakes(&self) -> u64 {
        self.wakes
    }

    /// Announces that the next message is on the socket; the caller sends it right after.
    pub fn announce(&mut self) -> Result<(), SendError> {
        self.put(KIND_ON_SOCKET, &[], Wake::Now)?;
        self.announced += 1;
        if let Some(s) = &self.shared {
            s.on_socket.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether a full ring is waited on (the default) or reported at once as
    /// [`SendError::Full`].
    pub fn wait_when_full(&mut self, wait: bool) {
        self.wait_when_full = wait;
    }

    /// Records posted so far, announcements included, and of them announcements.
    pub fn counts(&self) -> (u64, u64) {
        (self.posted, self.announced)
    }

    /// The mailbox's memory, for a program that tests how a reader takes a writer that breaks
    /// the rules (see `triptych-adversary`).
    pub fn memory(&self) -> &SharedMemory {
        &self.map
    }

    fn put(&mut self, kind: u8, payload: &[u8], wake: Wake) -> Result<(), SendError> {
        self.wait_for_room()?;
        let mut rec = [0u8; RECORD_HEAD];
        // The caller checked the length against PAYLOAD_MAX, which fits in u16.
        rec[..2].copy_from_slice(&(payload.len() as u16).to_le_bytes());
        rec[2] = kind;
        let at = record_at(self.next);
        self.map.write_shared(at, &rec);
        self.map.write_shared(at + RECORD_HEAD, payload);
        self.next = self.next.wrapping_add(1);
        self.posted += 1;
        // Publish the record, then look whether the reader sleeps: SeqCst on both sides (the
        // reader raises its flag, then looks at this index) means one of the two sees the
        // other's store, so a sleeping reader is always woken. The writer lowers the flag as it
        // looks: the reader takes every record there is once woken, so the records posted
        // before it runs again need no wake-up of their own (on a busy machine a woken reader
        // may wait its turn for a while, and a wake-up each would be wasted).
        atomic(&self.map, WRITE_AT).store(self.next, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.asleep |= atomic(&self.map, SLEEPING_AT).swap(0, Ordering::SeqCst) != 0;
        match wake {
            Wake::Now => self.wake_asleep(),
            Wake::Deferred => self.owed |= self.asleep,
            Wake::Lazy if self.asleep => {
                self.lazy_since.get_or_insert_with(Instant::now);
            }
            Wake::Lazy => {}
        }
        Ok(())
    }

    fn wake(&mut self) {
        self.wakes += 1;
        if let Some(s) = &self.shared {
            s.wakes.fetch_add(1, Ordering::Relaxed);
        }
        // The record is posted whatever the wake-up does: a reader that misses it (a peer can
        // make `FUTEX_WAKE` fail on the word) finds it at its next look.
        if let Err(e) = triptych_sys::futex::wake(atomic(&self.map, WRITE_AT), 1) {
            tracing::debug!(error = %e, "waking the mailbox's reader failed");
        }
    }

    /// Waits while the ring is full (the reader's published index is `RECORDS` behind), with
    /// sleeps that grow to a millisecond, for at most [`FULL_WAIT`].
    /// A wake-up put off is made first: the reader may be asleep over a full ring.
    fn wait_for_room(&mut self) -> Result<(), SendError> {
        let room = |w: &Self| {
            let read = atomic(&w.map, READ_AT).load(Ordering::Acquire);
            w.next.wrapping_sub(read) < RECORDS
        };
        // The steady case, without reading the clock.
        if room(self) {
            return Ok(());
        }
        let start = Instant::now();
        let mut nap = Duration::from_micros(50);
        loop {
            if room(self) {
                return Ok(());
            }
            self.wake_asleep();
            if !self.wait_when_full || start.elapsed() > FULL_WAIT {
                return Err(SendError::Full);
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }
}

/// When a record's wake-up of a sleeping reader is made.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wake {
    /// At once.
    Now,
    /// At the end of the writer's burst ([`MailboxWriter::wake_owed`]).
    Deferred,
    /// With the next wake-up made ([`MailboxWriter::post_lazy`]).
    Lazy,
}

/// Wake-ups in the current one-second window.
#[derive(Debug, Default)]
struct WakeCount {
    since: Option<Instant>,
    spurious: u32,
    records: u32,
}

/// One record, copied out of the ring.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// A message's bytes.
    Message(Vec<u8>),
    /// The next message is on the socket.
    OnSocket,
}

/// The record decoder: what one record, already copied out of the ring, says. It allows a
/// message record (kind 1) of 1 to [`PAYLOAD_MAX`] bytes, whose payload it returns as it is
/// (decoding it is [`crate::codec::decode`]'s), and an announcement record (kind 2) of
/// length 0; the reserved bytes and whatever follows the payload are ignored. Anything else is
/// the writer's [`Violation`].
pub fn parse_record(rec: &[u8; RECORD_BYTES]) -> Result<Record, Violation> {
    let mut head = [0u8; RECORD_HEAD];
    head.copy_from_slice(&rec[..RECORD_HEAD]);
    match parse_head(&head)? {
        Head::Message(len) => Ok(Record::Message(
            rec[RECORD_HEAD..RECORD_HEAD + len].to_vec(),
        )),
        Head::OnSocket => Ok(Record::OnSocket),
    }
}

/// What a record's head allows ([`parse_record`]'s rules).
enum Head {
    /// A message of this many bytes, at most [`PAYLOAD_MAX`].
    Message(usize),
    /// An announcement.
    OnSocket,
}

/// Judges a record's head, copied out of the ring: [`parse_record`]'s rules.
fn parse_head(head: &[u8; RECORD_HEAD]) -> Result<Head, Violation> {
    let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
    match head[2] {
        KIND_MESSAGE if len == 0 => Err(Violation::Mailbox("an empty message record".into())),
        KIND_MESSAGE if len <= PAYLOAD_MAX => Ok(Head::Message(len)),
        KIND_MESSAGE => Err(Violation::Mailbox(format!(
            "a record of {len} bytes, where one holds at most {PAYLOAD_MAX}"
        ))),
        KIND_ON_SOCKET if len == 0 => Ok(Head::OnSocket),
        KIND_ON_SOCKET => Err(Violation::Mailbox(format!(
            "an announcement record with {len} bytes"
        ))),
        k => Err(Violation::Mailbox(format!("a record of unknown kind {k}"))),
    }
}

/// The reader's side, in the process that receives.
#[derive(Debug)]
pub struct MailboxReader {
    map: SharedMemory,
    /// The next record to take: the reader's own, published for the writer, never read back.
    next: u32,
    /// The highest write index seen: a writer's index only grows.
    high: u32,
    /// Whether the writer has posted its first record.
    adopted: bool,
    wakes: WakeCount,
}

impl MailboxReader {
    /// Takes the reading side of a fresh mailbox: `memfd` must be a mailbox's size and sealed
    /// against shrinking. Reading starts at the first record, whatever the writer posted
    /// before this side took it.
    pub fn adopt(memfd: OwnedFd) -> Result<Self, MailboxError> {
        let map = map_handed(&memfd)?;
        Ok(MailboxReader {
            map,
            next: 0,
            high: 0,
            adopted: false,
            wakes: WakeCount::default(),
        })
    }

    /// Whether the writer has posted anything yet.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Records waiting, judged against the reader's own index: more than the ring holds, or a
    /// write index lower than one seen before, is the writer's violation.
    pub fn waiting(&mut self) -> Result<u32, Violation> {
        let written = atomic(&self.map, WRITE_AT).load(Ordering::SeqCst);
        let ahead = written.wrapping_sub(self.next);
        if ahead > RECORDS {
            return Err(Violation::Mailbox(format!(
                "the write index {written} is {ahead} records past the reader's {}, and the ring holds {RECORDS}",
                self.next
            )));
        }
        if ahead < self.high.wrapping_sub(self.next) {
            return Err(Violation::Mailbox(format!(
                "the write index went back from {} to {written}",
                self.high
            )));
        }
        self.high = written;
        Ok(ahead)
    }

    /// Takes the next record, if there is one: copied out once, judged on the copy. The head
    /// is copied first, and the payload it allows after it (as many bytes as the copied head
    /// says, never read again), so a short message costs a short copy.
    pub fn take(&mut self) -> Result<Option<Record>, Violation> {
        if self.waiting()? == 0 {
            return Ok(None);
        }
        let at = record_at(self.next);
        let outside = || Violation::Mailbox("a record outside the ring".into());
        let bytes = self.map.peer_bytes();
        let mut head = [0u8; RECORD_HEAD];
        if !bytes
            .sub(at, RECORD_HEAD)
            .is_some_and(|b| b.copy_to(&mut head))
        {
            return Err(outside());
        }
        let record = match parse_head(&head) {
            Ok(Head::Message(len)) => {
                let mut payload = vec![0u8; len];
                if !bytes
                    .sub(at + RECORD_HEAD, len)
                    .is_some_and(|b| b.copy_to(&mut payload))
                {
                    return Err(outside());
                }
                Ok(Record::Message(payload))
            }
            Ok(Head::OnSocket) => Ok(Record::OnSocket),
            Err(v) => Err(v),
        };
        self.next = self.next.wrapping_add(1);
        self.adopted = true;
        self.wakes.records = self.wakes.records.saturating_add(1);
        // The record is copied: the writer may have its slot back.
        atomic(&self.map, READ_AT).store(self.next, Ordering::Release);
        record.map(Some)
    }

    /// Raises or lowers the sleeping flag (SeqCst: see [`MailboxWriter`]'s `put`).
    fn sleeping(&self, on: bool) {
        atomic(&self.map, SLEEPING_AT).store(u32::from(on), Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Counts a wake-up that brought no record; a violation past the limit.
    fn spurious(&mut self) -> Result<(), Violation> {
        let now = Instant::now();
        let w = &mut self.wakes;
        if w.since
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            *w = WakeCount {
                since: Some(now),
                spurious: 0,
                records: 0,
            };
        }
        w.spurious += 1;
        if w.spurious > SPURIOUS_WAKES && w.spurious > 2 * w.records {
            return Err(Violation::Mailbox(format!(
                "{} wake-ups without a record within a second ({} records in it)",
                w.spurious, w.records
            )));
        }
        Ok(())
    }
}

/// What one reader (or all a process keeps) took: messages from records, and messages the
/// ring announced on the socket (or that came there before the writer adopted it). A writer
/// counts what it sent the same way ([`MailboxWriter::count_into`]).
#[derive(Debug, Default)]
pub struct MailboxStats {
    /// Messages taken from records.
    pub records: std::sync::atomic::AtomicU64,
    /// Messages taken from the socket.
    pub on_socket: std::sync::atomic::AtomicU64,
    /// A writer's wake-ups of its reader; a reader's sleeps on the ring that ended with a
    /// record (the wake-ups it got).
    pub wakes: std::sync::atomic::AtomicU64,
}

/// A channel receiver's mailbox (`channel::Receiver::with_mailbox`): the reader, and where
/// what it takes is counted.
#[derive(Debug)]
pub struct Inbox {
    /// The reader.
    pub reader: MailboxReader,
    /// The counts, shared with whoever reports them.
    pub stats: std::sync::Arc<MailboxStats>,
    /// Since when a message the ring announced has been awaited on the socket.
    pub(crate) announced: Option<Instant>,
}

/// The socket side of a channel whose stream a mailbox orders ([`next`]): the messages the ring
/// announces come from here, and so does the writer's end. A channel's receiver is one.
pub(crate) trait Beside<T>: AsFd {
    /// Whether the writer's messages without fds come on a command stream
    /// ([`crate::commands`]) rather than on the socket.
    fn has_stream(&self) -> bool;
    /// The command stream's next message (one it says is on the socket is taken from there),
    /// waiting up to `wait`; `None` if none came.
    fn stream_item(
        &mut self,
        wait: Option<Duration>,
    ) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError>;
    /// The socket's next message, waiting for it.
    fn recv_socket(&mut self) -> Result<(T, Vec<OwnedFd>), RecvError>;
}

/// Reads the next message of the stream that `inbox` orders and `rx`'s socket carries the rest
/// of: a channel receiver's `recv` when it has a mailbox.
pub(crate) fn next<T: Wire, B: Beside<T>>(
    inbox: &mut Inbox,
    rx: &mut B,
) -> Result<(T, Vec<OwnedFd>), RecvError> {
    loop {
        if let Some(m) = next_unless(inbox, rx, None)? {
            return Ok(m);
        }
    }
}

/// Like [`next`], but `None` once `stop` is raised, at the first moment the reader would sleep
/// (the ring empty and no announced message awaited): a point where the stream can be handed to
/// another reader with nothing half taken. A [`MailboxWaker`]'s wake-up cuts a sleep short.
pub(crate) fn next_unless<T: Wire, B: Beside<T>>(
    inbox: &mut Inbox,
    rx: &mut B,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
    loop {
        if inbox.announced.is_some() {
            // Waiting, this gives the message or the writer's violation.
            if let Some(m) = announced(inbox, rx, true)? {
                return Ok(Some(m));
            }
            continue;
        }
        if let Some(m) = take_record(inbox)? {
            return Ok(Some(m));
        }
        if inbox.announced.is_some() {
            continue;
        }
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok(None);
        }
        // Nothing in the ring: sleep, unless a record came while the flag went up. The wait
        // is on the write index as last read: a record posted since ends it at once.
        let mailbox = &mut inbox.reader;
        mailbox.sleeping(true);
        if mailbox.waiting()? > 0 {
            mailbox.sleeping(false);
            continue;
        }
        let look = if mailbox.adopted() {
            SOCKET_LOOK
        } else {
            SOCKET_LOOK_EARLY
        };
        let waited = triptych_sys::futex::wait(atomic(&mailbox.map, WRITE_AT), mailbox.high, look);
        mailbox.sleeping(false);
        match waited {
            // A correct writer wakes the reader, or changes the index, only with a record: one
            // without is counted, so a writer that flips the index to and fro to keep the reader
            // from sleeping is judged as one that floods wake-ups.
            Ok(w @ (triptych_sys::futex::Waited::Woken | triptych_sys::futex::Waited::Changed)) => {
                if mailbox.waiting()? > 0 {
                    // Slept, and woken for a record (not one that came before the sleep).
                    if w == triptych_sys::futex::Waited::Woken {
                        inbox.stats.wakes.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                mailbox.spurious()?;
                // No record: maybe whoever knows the writer is gone woke it
                // ([`MailboxWaker`]); the socket says.
            }
            Ok(triptych_sys::futex::Waited::Interrupted) => continue,
            Ok(triptych_sys::futex::Waited::TimedOut) => {}
            Err(e) => {
                tracing::debug!(error = %e, "waiting on the mailbox failed");
                return Err(RecvError::Disconnected);
            }
        }
        if let Some(m) = look_beside(inbox, rx)? {
            return Ok(Some(m));
        }
    }
}

/// How long [`sleep`] naps at first while a message the ring announced is awaited on the
/// socket, which no futex wakes for: the caller's next poll looks for it. A correct writer's
/// message is there at once; for one that is late, the naps grow with the wait, to a quarter of
/// it, so a message that never comes costs the reader a hundred-odd wake-ups before it is the
/// writer's violation ([`ANNOUNCED_WITHIN`]).
const ANNOUNCED_NAP: Duration = Duration::from_millis(1);

/// Sleeps on `inbox`'s ring for a reader its owner's loop polls ([`next_now`]), until a record
/// comes, `bell` (a word of the owner's own process, [`crate::channel::Bell`]) no longer holds
/// `rung` or is woken, or `timeout` passes; nothing is taken. The sleeping flag is up for the
/// wait, so the writer wakes it as a thread's reader is woken, and a wake-up with no record is
/// counted against the writer the same way. While a message the ring announced is awaited on
/// the socket, it naps instead ([`ANNOUNCED_NAP`]). Returns `false`, with nothing done, where the
/// kernel cannot wait on two words at once (`futex_waitv`, Linux 5.16): the caller waits
/// otherwise.
pub(crate) fn sleep(
    inbox: &mut Inbox,
    bell: &std::sync::atomic::AtomicU32,
    rung: u32,
    timeout: Duration,
) -> Result<bool, RecvError> {
    if let Some(since) = inbox.announced {
        // The records behind the announcement wait for its message: only the bell, or the
        // nap's end, ends this sleep.
        let nap = (since.elapsed() / 4).clamp(ANNOUNCED_NAP, timeout.max(ANNOUNCED_NAP));
        let bell = triptych_sys::futex::WaitOn {
            word: bell,
            expected: rung,
            private: true,
        };
        return match triptych_sys::futex::wait_any(&[bell], nap.min(timeout)) {
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::debug!(error = %e, "waiting on a bell failed");
                Ok(false)
            }
        };
    }
    let mailbox = &mut inbox.reader;
    let deadline = Instant::now() + timeout;
    // A wake-up with no record is counted and slept over here, as a thread's reader does, not
    // handed to the caller: a writer that floods them costs the reader a system call each, not
    // a turn of its owner's loop, and is judged as fast as a thread would judge it.
    loop {
        mailbox.sleeping(true);
        if mailbox.waiting()? > 0 {
            mailbox.sleeping(false);
            return Ok(true);
        }
        let on = [
            triptych_sys::futex::WaitOn {
                word: atomic(&mailbox.map, WRITE_AT),
                expected: mailbox.high,
                private: false,
            },
            triptych_sys::futex::WaitOn {
                word: bell,
                expected: rung,
                private: true,
            },
        ];
        let waited =
            triptych_sys::futex::wait_any(&on, deadline.saturating_duration_since(Instant::now()));
        mailbox.sleeping(false);
        use triptych_sys::futex::WaitedAny;
        match waited {
            Ok(w @ (WaitedAny::Woken(0) | WaitedAny::Changed)) => {
                if mailbox.waiting()? > 0 {
                    if w == WaitedAny::Woken(0) {
                        inbox.stats.wakes.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(true);
                }
                if w == WaitedAny::Changed && bell.load(Ordering::SeqCst) != rung {
                    return Ok(true);
                }
                // Woken, or the index changed, with no record: as in `next`.
                mailbox.spurious()?;
                if Instant::now() >= deadline {
                    return Ok(true);
                }
            }
            Ok(WaitedAny::Woken(_) | WaitedAny::TimedOut | WaitedAny::Interrupted) => {
                return Ok(true)
            }
            Err(e) => {
                tracing::debug!(error = %e, "waiting on a mailbox and a bell failed");
                return Ok(false);
            }
        }
    }
}

/// Takes what already waits of the stream that `inbox` orders, without waiting: the next
/// message, or `None`. `look` adds the look a sleeping reader makes between its waits (for the
/// writer's end, or a message it sent before it adopted the ring), a system call the caller
/// makes every [`SOCKET_LOOK`] ([`look_every`]). An announced message that is not on the socket
/// yet is looked for again at the next call, until [`ANNOUNCED_WITHIN`] has passed. For a
/// reader its owner's own loop polls instead of a thread that sleeps on the ring: it never
/// raises the sleeping flag, so the writer never wakes it.
pub(crate) fn next_now<T: Wire, B: Beside<T>>(
    inbox: &mut Inbox,
    rx: &mut B,
    look: bool,
) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
    if inbox.announced.is_some() {
        return announced(inbox, rx, false);
    }
    if let Some(m) = take_record(inbox)? {
        return Ok(Some(m));
    }
    if inbox.announced.is_some() {
        return announced(inbox, rx, false);
    }
    if look {
        return look_beside(inbox, rx);
    }
    Ok(None)
}

/// How long a polled reader ([`next_now`]) goes between its looks beside the ring.
pub(crate) fn look_every(inbox: &Inbox) -> Duration {
    if inbox.reader.adopted() {
        SOCKET_LOOK
    } else {
        SOCKET_LOOK_EARLY
    }
}

/// Takes the next record of `inbox`: its message, decoded, or `None` for an empty ring or an
/// announcement (which starts `inbox.announced`).
fn take_record<T: Wire>(inbox: &mut Inbox) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
    match inbox.reader.take()? {
        Some(Record::Message(bytes)) => {
            // A kind that carries fds fails here: a record has none (`decode` checks the
            // count).
            let (m, _) = crate::codec::decode::<T>(&bytes, Vec::new())?;
            inbox.stats.records.fetch_add(1, Ordering::Relaxed);
            Ok(Some((m, Vec::new())))
        }
        Some(Record::OnSocket) => {
            inbox.announced = Some(Instant::now());
            Ok(None)
        }
        None => Ok(None),
    }
}

/// The message the ring announced: from the command stream (which may send it on to the
/// socket, with its fds) where there is one, else from the socket. `wait`: waits for it until
/// [`ANNOUNCED_WITHIN`] after the announcement, and it is the writer's violation if it does not
/// come; else only looks, and it is a violation only once that time has passed.
fn announced<T: Wire, B: Beside<T>>(
    inbox: &mut Inbox,
    rx: &mut B,
    wait: bool,
) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
    // Taken out while the message is looked for: whatever fails below ends the wait for it.
    let since = inbox.announced.take().unwrap_or_else(Instant::now);
    let left = ANNOUNCED_WITHIN.saturating_sub(since.elapsed());
    let within = if wait { left } else { Duration::ZERO };
    let got = if rx.has_stream() {
        rx.stream_item(Some(within))?
    } else {
        let ready = triptych_sys::poll::wait_readable(rx.as_fd(), within)
            .map_err(|e| Violation::Mailbox(format!("waiting for the socket: {e}")))?;
        match ready {
            triptych_sys::poll::WaitOutcome::TimedOut => None,
            _ => Some(rx.recv_socket()?),
        }
    };
    match got {
        Some(m) => {
            inbox.stats.on_socket.fetch_add(1, Ordering::Relaxed);
            Ok(Some(m))
        }
        None if wait || left.is_zero() => {
            let on = if rx.has_stream() {
                "command stream"
            } else {
                "socket"
            };
            Err(Violation::Mailbox(format!(
                "a message announced on the {on} did not come within {} s",
                ANNOUNCED_WITHIN.as_secs()
            ))
            .into())
        }
        None => {
            inbox.announced = Some(since);
            Ok(None)
        }
    }
}

/// The look beside an empty ring: a message the writer sent before it adopted the ring, its
/// end, or (once adopted) a message it did not announce, which is its violation. `None`:
/// nothing there, or records came meanwhile (the ring goes first).
fn look_beside<T: Wire, B: Beside<T>>(
    inbox: &mut Inbox,
    rx: &mut B,
) -> Result<Option<(T, Vec<OwnedFd>)>, RecvError> {
    let mailbox = &mut inbox.reader;
    let on_socket = |m: (T, Vec<OwnedFd>)| {
        inbox.stats.on_socket.fetch_add(1, Ordering::Relaxed);
        m
    };
    if mailbox.waiting()? > 0 {
        return Ok(None);
    }
    // With a command stream, the writer's messages come from the stream (before it adopted the
    // ring) and the socket holds only messages with fds the stream says are there: a look at
    // the stream, and at the socket only for the writer's end.
    if rx.has_stream() {
        if let Some(m) = rx.stream_item(Some(Duration::ZERO))? {
            if mailbox.adopted() {
                return Err(Violation::Mailbox(format!(
                    "a {} message on the command stream that the ring did not announce",
                    m.0.kind()
                ))
                .into());
            }
            return Ok(Some(on_socket(m)));
        }
        if triptych_sys::poll::hung_up_now(rx.as_fd()) {
            return Err(RecvError::Disconnected);
        }
        return Ok(None);
    }
    let socket = !matches!(
        triptych_sys::poll::wait_readable(rx.as_fd(), Duration::ZERO),
        Ok(triptych_sys::poll::WaitOutcome::TimedOut)
    );
    if !socket || mailbox.waiting()? > 0 {
        return Ok(None);
    }
    // The ring goes first: a record posted before the socket became readable is seen by now.
    // With none, this is a message the writer sent before adopting the ring, the peer's end,
    // or (once adopted) a message nobody announced.
    let m = rx.recv_socket()?;
    if !mailbox.adopted() {
        return Ok(Some(on_socket(m)));
    }
    inbox.stats.on_socket.fetch_add(1, Ordering::Relaxed);
    Err(Violation::Mailbox(format!(
        "a {} message on the socket that the ring did not announce",
        m.0.kind()
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{socket_pair, Receiver, Sender};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Msg {
        Small(u64),
        Big(Vec<u8>),
        Tagged { from: u8, seq: u64, bytes: Vec<u8> },
    }

    impl Wire for Msg {
        fn kind(&self) -> &'static str {
            match self {
                Msg::Small(_) => "Small",
                Msg::Big(_) => "Big",
                Msg::Tagged { .. } => "Tagged",
            }
        }
    }

    /// The bytes writer `from` sends as its message `seq`: a length that sweeps both sides of
    /// the record's payload limit, and contents that differ from message to message.
    fn tagged_bytes(from: u8, seq: u64) -> Vec<u8> {
        let len = (seq.wrapping_mul(7919) + u64::from(from) * 13) % (PAYLOAD_MAX as u64 + 64);
        (0..len)
            .map(|i| (seq.wrapping_add(i) as u8) ^ from.wrapping_mul(31))
            .collect()
    }

    fn pair() -> (
        Sender<Msg>,
        crossbeam_channel::Receiver<crate::channel::Delivery<Msg>>,
        Sender<Msg>,
    ) {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let (a, b) = socket_pair().expect("socket pair");
        let writer = MailboxWriter::adopt(memfd).expect("adopt");
        let plain = Sender::<Msg>::new(a.try_clone().expect("dup"));
        let tx = Sender::<Msg>::new(a).with_mailbox(writer);
        (tx, forward(Receiver::new(b), reader), plain)
    }

    fn forward(
        rx: Receiver<Msg>,
        reader: MailboxReader,
    ) -> crossbeam_channel::Receiver<crate::channel::Delivery<Msg>> {
        crate::channel::forward(
            "test-mailbox-rx",
            rx.with_mailbox(reader, Default::default()),
        )
        .expect("forward")
    }

    fn got(
        out: &crossbeam_channel::Receiver<crate::channel::Delivery<Msg>>,
    ) -> Result<Msg, Violation> {
        out.recv_timeout(Duration::from_secs(10))
            .expect("a delivery")
            .map(|(m, _)| m)
    }

    #[test]
    fn records_and_socket_messages_arrive_in_the_writers_order() {
        let (tx, out, plain) = pair();
        // Before the ring is adopted, the socket is a plain channel.
        plain.send(&Msg::Small(0)).expect("send");
        assert_eq!(got(&out), Ok(Msg::Small(0)));
        let sending = std::thread::spawn(move || {
            for i in 1..2000u64 {
                if i % 7 == 0 {
                    tx.send(&Msg::Big(vec![i as u8; 3000])).expect("send big");
                } else {
                    tx.send(&Msg::Small(i)).expect("send");
                }
            }
            tx
        });
        for i in 1..2000u64 {
            let want = if i % 7 == 0 {
                Msg::Big(vec![i as u8; 3000])
            } else {
                Msg::Small(i)
            };
            assert_eq!(got(&out), Ok(want), "message {i}");
        }
        let tx = sending.join().expect("the sender");
        assert_eq!(tx.mailbox_counts(), Some((1999, 285)));
        drop((tx, plain));
        assert!(
            out.recv_timeout(Duration::from_secs(10)).is_err(),
            "the end"
        );
    }

    #[test]
    fn a_writer_counts_what_it_sends_where_it_is_told_to() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let (a, b) = socket_pair().expect("socket pair");
        let mut writer = MailboxWriter::adopt(memfd).expect("adopt");
        let shared = std::sync::Arc::new(MailboxStats::default());
        writer.count_into(shared.clone());
        let tx = Sender::<Msg>::new(a).with_mailbox(writer);
        let out = forward(Receiver::new(b), reader);
        for i in 0..10u64 {
            let m = if i % 5 == 0 {
                Msg::Big(vec![1; 3000])
            } else {
                Msg::Small(i)
            };
            tx.send(&m).expect("send");
            assert_eq!(got(&out), Ok(m));
        }
        // Eight records of messages, two announcements of messages on the socket.
        assert_eq!(shared.records.load(Ordering::Relaxed), 8);
        assert_eq!(shared.on_socket.load(Ordering::Relaxed), 2);
        assert_eq!(tx.mailbox_counts(), Some((10, 2)));
    }

    #[test]
    fn two_writers_and_a_reader_that_falls_behind_lose_and_garble_nothing() {
        // Two threads share the writer (as a child's frame loop and its trace shipping do),
        // their messages on both sides of the record's payload limit (records, and socket
        // messages the ring announces), the ring wrapping hundreds of times, and the reader now
        // and then asleep long enough for the ring to fill and the writers to wait: every
        // message arrives once, in its writer's order, byte for byte.
        const EACH: u64 = 20_000;
        let (tx, out, plain) = pair();
        drop(plain);
        let writers: Vec<_> = (0..2u8)
            .map(|from| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for seq in 0..EACH {
                        let bytes = tagged_bytes(from, seq);
                        tx.send(&Msg::Tagged { from, seq, bytes }).expect("send");
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 2];
        for n in 0..2 * EACH {
            if n % 4000 == 3999 {
                std::thread::sleep(Duration::from_millis(30));
            }
            match got(&out) {
                Ok(Msg::Tagged { from, seq, bytes }) => {
                    let at = next.get_mut(usize::from(from)).expect("a writer's tag");
                    assert_eq!(seq, *at, "writer {from}'s next message");
                    assert!(
                        bytes == tagged_bytes(from, seq),
                        "writer {from}, message {seq}"
                    );
                    *at += 1;
                }
                other => panic!("message {n}: {other:?}"),
            }
        }
        for w in writers {
            w.join().expect("a writer");
        }
        assert_eq!(next, [EACH, EACH]);
        assert!(
            out.recv_timeout(Duration::from_secs(10)).is_err(),
            "the end"
        );
    }

    #[test]
    fn records_posted_before_the_writer_closed_are_all_delivered() {
        let (tx, out, plain) = pair();
        for i in 0..100 {
            tx.send(&Msg::Small(i)).expect("send");
        }
        drop((tx, plain));
        for i in 0..100 {
            assert_eq!(got(&out), Ok(Msg::Small(i)));
        }
        assert!(
            out.recv_timeout(Duration::from_secs(10)).is_err(),
            "the end"
        );
    }

    #[test]
    fn a_message_on_the_socket_without_its_announcement_is_a_violation() {
        let (tx, out, plain) = pair();
        tx.send(&Msg::Small(1)).expect("send");
        assert_eq!(got(&out), Ok(Msg::Small(1)));
        plain.send(&Msg::Small(2)).expect("send");
        let v = got(&out).expect_err("a violation");
        assert!(v.to_string().contains("did not announce"), "{v}");
    }

    #[test]
    fn a_wild_write_index_is_a_violation() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let writer = MailboxWriter::adopt(memfd).expect("adopt");
        let (_a, b) = socket_pair().expect("pair");
        writer
            .memory()
            .atomic_u32(WRITE_AT)
            .expect("index")
            .store(RECORDS + 5, Ordering::SeqCst);
        let out = forward(Receiver::<Msg>::new(b), reader);
        let v = got(&out).expect_err("a violation");
        assert!(v.to_string().contains("261 records past"), "{v}");
    }

    #[test]
    fn a_record_longer_than_its_payload_or_of_an_unknown_kind_is_a_violation() {
        for (len, kind, says) in [
            (PAYLOAD_MAX as u16 + 1, KIND_MESSAGE, "at most"),
            (4, 9, "unknown kind 9"),
            (3, KIND_ON_SOCKET, "announcement record with 3 bytes"),
            (0, KIND_MESSAGE, "empty message"),
            (2, KIND_MESSAGE, "undecodable"),
        ] {
            let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
            let writer = MailboxWriter::adopt(memfd).expect("adopt");
            let (_a, b) = socket_pair().expect("pair");
            let mut rec = [0u8; RECORD_HEAD + 2];
            rec[..2].copy_from_slice(&len.to_le_bytes());
            rec[2] = kind;
            rec[RECORD_HEAD..].copy_from_slice(&[0xff, 0xff]);
            writer.memory().write_shared(HEADER_BYTES, &rec);
            writer
                .memory()
                .atomic_u32(WRITE_AT)
                .expect("index")
                .store(1, Ordering::SeqCst);
            let out = forward(Receiver::<Msg>::new(b), reader);
            let v = got(&out).expect_err("a violation");
            assert!(v.to_string().contains(says), "{len} {kind}: {v}");
        }
    }

    #[test]
    fn an_announced_message_that_never_comes_is_a_violation() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let mut writer = MailboxWriter::adopt(memfd).expect("adopt");
        let (_a, b) = socket_pair().expect("pair");
        writer.announce().expect("announce");
        let out = forward(Receiver::<Msg>::new(b), reader);
        let v = got(&out).expect_err("a violation");
        assert!(v.to_string().contains("did not come"), "{v}");
    }

    #[test]
    fn a_write_index_that_goes_back_is_a_violation() {
        let (mut reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let mut writer = MailboxWriter::adopt(memfd).expect("adopt");
        for _ in 0..3 {
            assert!(writer.post(&[1, 2]).expect("post"));
        }
        assert!(matches!(reader.take(), Ok(Some(Record::Message(_)))));
        writer
            .memory()
            .atomic_u32(WRITE_AT)
            .expect("index")
            .store(2, Ordering::SeqCst);
        let v = reader.waiting().expect_err("a violation");
        assert!(v.to_string().contains("went back from 3 to 2"), "{v}");
    }

    #[test]
    fn a_writer_that_hangs_up_is_seen_within_a_look_at_the_socket() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let (a, b) = socket_pair().expect("pair");
        let out = forward(Receiver::<Msg>::new(b), reader);
        let tx = Sender::<Msg>::new(a).with_mailbox(MailboxWriter::adopt(memfd).expect("adopt"));
        tx.send(&Msg::Small(1)).expect("send");
        assert_eq!(got(&out), Ok(Msg::Small(1)));
        // The reader sleeps on the ring; the writer's end is seen at its next look.
        drop(tx);
        assert!(
            out.recv_timeout(SOCKET_LOOK * 20).is_err(),
            "the end was not seen"
        );
    }

    #[test]
    fn a_writer_that_dies_leaves_its_records_and_then_the_end() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let (a, b) = socket_pair().expect("pair");
        let tx = Sender::<Msg>::new(a).with_mailbox(MailboxWriter::adopt(memfd).expect("adopt"));
        let out = forward(Receiver::<Msg>::new(b), reader);
        for i in 1..50 {
            tx.send(&Msg::Small(i)).expect("send");
        }
        tx.send(&Msg::Big(vec![7; 3000])).expect("send big");
        drop(tx);
        for i in 1..50 {
            assert_eq!(got(&out), Ok(Msg::Small(i)));
        }
        assert_eq!(got(&out), Ok(Msg::Big(vec![7; 3000])));
        assert!(
            out.recv_timeout(Duration::from_secs(10)).is_err(),
            "the end"
        );
    }

    #[test]
    fn a_burst_of_records_wakes_a_sleeping_reader_once() {
        let (mut writer, memfd) = create_outgoing(c"test-mailbox").expect("mailbox");
        let map = SharedMemory::new(memfd.as_fd(), MAILBOX_BYTES).expect("map");
        let sleeping = map.atomic_u32(SLEEPING_AT).expect("flag");
        // Nobody asleep: no wake-up.
        writer.post(&[1]).expect("post");
        assert_eq!(writer.wakes(), 0);
        // The reader went to sleep: the first record wakes it and lowers the flag, the rest of
        // the burst finds it lowered.
        sleeping.store(1, Ordering::SeqCst);
        for _ in 0..10 {
            writer.post(&[1]).expect("post");
        }
        assert_eq!(writer.wakes(), 1);
        assert_eq!(sleeping.load(Ordering::SeqCst), 0);
        // Put off: no wake-up until it is made, and then one for the burst.
        sleeping.store(1, Ordering::SeqCst);
        for _ in 0..10 {
            writer.post_deferred(&[1]).expect("post");
        }
        assert_eq!(writer.wakes(), 1);
        writer.wake_owed();
        writer.wake_owed();
        assert_eq!(writer.wakes(), 2);
        // A post not put off makes the wake-up owed by an earlier one.
        sleeping.store(1, Ordering::SeqCst);
        writer.post_deferred(&[1]).expect("post");
        writer.post(&[1]).expect("post");
        assert_eq!(writer.wakes(), 3);
        writer.wake_owed();
        assert_eq!(writer.wakes(), 3);
    }

    #[test]
    fn records_whose_wake_up_was_put_off_reach_a_sleeping_reader_once_it_is_made() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let watch = SharedMemory::new(memfd.as_fd(), MAILBOX_BYTES).expect("map");
        let (a, b) = socket_pair().expect("pair");
        let tx = Sender::<Msg>::new(a).with_mailbox(MailboxWriter::adopt(memfd).expect("adopt"));
        let out = forward(Receiver::<Msg>::new(b), reader);
        tx.send(&Msg::Small(0)).expect("send");
        assert_eq!(got(&out), Ok(Msg::Small(0)));
        let sleeping = watch.atomic_u32(SLEEPING_AT).expect("flag");
        let start = Instant::now();
        while sleeping.load(Ordering::SeqCst) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the reader never slept"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 1..=20 {
            tx.send_deferred(&Msg::Small(i)).expect("send");
        }
        tx.wake_owed();
        for i in 1..=20 {
            assert_eq!(got(&out), Ok(Msg::Small(i)));
        }
        // One wake-up for the twenty (none if the reader's look at the socket came between).
        assert!(tx
            .with_mailbox_writer(|w| w.wakes())
            .is_some_and(|n| n <= 1));
    }

    #[test]
    fn a_reader_that_keeps_its_flag_up_and_never_waits_cannot_make_the_writer_wait() {
        let (mut writer, memfd) = create_outgoing(c"test-mailbox").expect("mailbox");
        writer.wait_when_full(false);
        let map = SharedMemory::new(memfd.as_fd(), MAILBOX_BYTES).expect("map");
        let (done_tx, done) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let sleeping = map.atomic_u32(SLEEPING_AT).expect("flag");
            let (write, read) = (
                map.atomic_u32(WRITE_AT).expect("write index"),
                map.atomic_u32(READ_AT).expect("read index"),
            );
            let mut sent = 0u32;
            for _ in 0..20_000 {
                // Asleep, so every record is followed by a wake-up, which nobody waits for;
                // every record claimed read at once, so the ring never fills.
                sleeping.store(1, Ordering::SeqCst);
                read.store(write.load(Ordering::SeqCst), Ordering::SeqCst);
                if writer.post(&[1]).is_ok() {
                    sent += 1;
                }
            }
            let _ = done_tx.send(sent);
        });
        let sent = done
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer waited on the reader");
        assert_eq!(sent, 20_000);
    }

    #[test]
    fn a_wake_flood_without_records_is_a_violation() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let writer = MailboxWriter::adopt(memfd).expect("adopt");
        let (_a, b) = socket_pair().expect("pair");
        let out = forward(Receiver::<Msg>::new(b), reader);
        let start = Instant::now();
        let v = loop {
            let index = writer.memory().atomic_u32(WRITE_AT).expect("index");
            triptych_sys::futex::wake(index, 1).expect("wake");
            if let Ok(d) = out.try_recv() {
                break d.expect_err("a violation");
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no verdict");
            std::thread::yield_now();
        };
        assert!(v.to_string().contains("wake-ups without a record"), "{v}");
    }

    #[test]
    fn a_write_index_flipped_to_and_fro_cannot_keep_the_reader_awake() {
        // The index moves without a record and back, faster than the reader looks: its wait
        // keeps ending at once. Either it sees the index moved (a record that was never there)
        // or it counts the waits cut short: a verdict comes either way.
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let writer = MailboxWriter::adopt(memfd).expect("adopt");
        let (_a, b) = socket_pair().expect("pair");
        let out = forward(Receiver::<Msg>::new(b), reader);
        let index = writer.memory().atomic_u32(WRITE_AT).expect("index");
        let start = Instant::now();
        let v = loop {
            index.store(1, Ordering::SeqCst);
            index.store(0, Ordering::SeqCst);
            if let Ok(d) = out.try_recv() {
                break d.expect_err("a violation");
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no verdict");
        };
        eprintln!("the flipping writer was judged: {v}");
    }

    #[test]
    fn a_writer_whose_reader_stops_waits_then_reports_the_ring_full() {
        let (_reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let (a, _b) = socket_pair().expect("pair");
        let tx = Sender::<Msg>::new(a).with_mailbox(MailboxWriter::adopt(memfd).expect("adopt"));
        for i in 0..u64::from(RECORDS) {
            tx.send(&Msg::Small(i)).expect("room");
        }
        assert!(matches!(
            tx.send(&Msg::Small(0)),
            Err(crate::channel::SendError::Full)
        ));
    }

    #[test]
    fn records_posted_lazily_wake_a_sleeping_reader_only_with_the_next_wake_up() {
        let (mut writer, memfd) = create_outgoing(c"test-mailbox").expect("mailbox");
        let map = SharedMemory::new(memfd.as_fd(), MAILBOX_BYTES).expect("map");
        let sleeping = map.atomic_u32(SLEEPING_AT).expect("flag");
        let before = Instant::now();
        // Lazy posts to a sleeping reader: no wake-up, not even at the end of a burst.
        sleeping.store(1, Ordering::SeqCst);
        writer.post_lazy(&[1]).expect("post");
        writer.post_lazy(&[1]).expect("post");
        writer.wake_owed();
        assert_eq!(writer.wakes(), 0);
        assert_eq!(sleeping.load(Ordering::SeqCst), 0, "the flag is lowered");
        // Not past the time given: still none.
        writer.wake_lazy_before(before);
        assert_eq!(writer.wakes(), 0);
        // A deferred post after them owes the wake-up, which takes them along.
        writer.post_deferred(&[1]).expect("post");
        assert_eq!(writer.wakes(), 0);
        writer.wake_owed();
        assert_eq!(writer.wakes(), 1);
        writer.wake_lazy_before(Instant::now() + Duration::from_secs(1));
        assert_eq!(writer.wakes(), 1, "nothing is owed after the wake-up");
        // Past the time given, they are woken for on their own.
        sleeping.store(1, Ordering::SeqCst);
        writer.post_lazy(&[1]).expect("post");
        writer.wake_lazy_before(Instant::now() + Duration::from_millis(1));
        assert_eq!(writer.wakes(), 2);
        // A post not put off wakes for them at once.
        sleeping.store(1, Ordering::SeqCst);
        writer.post_lazy(&[1]).expect("post");
        writer.post(&[1]).expect("post");
        assert_eq!(writer.wakes(), 3);
        // A reader that is awake needs no wake-up, whatever the time.
        writer.post_lazy(&[1]).expect("post");
        writer.wake_lazy_before(Instant::now() + Duration::from_secs(1));
        assert_eq!(writer.wakes(), 3);
    }

    /// A writer and a polled reader of one mailbox beside one socket, the channel it fills, a
    /// plain sender on the same socket, and the mailbox's memory.
    type PolledPair = (
        Sender<Msg>,
        crate::channel::Polled<Msg>,
        crossbeam_channel::Receiver<crate::channel::Delivery<Msg>>,
        Sender<Msg>,
        SharedMemory,
    );

    fn polled_pair() -> PolledPair {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let watch = SharedMemory::new(memfd.as_fd(), MAILBOX_BYTES).expect("map");
        let (a, b) = socket_pair().expect("socket pair");
        let plain = Sender::<Msg>::new(a.try_clone().expect("dup"));
        let tx = Sender::<Msg>::new(a).with_mailbox(MailboxWriter::adopt(memfd).expect("adopt"));
        let rx = Receiver::<Msg>::new(b).with_mailbox(reader, Default::default());
        let (polled, out) = crate::channel::polled("test-polled", rx);
        (tx, polled, out, plain, watch)
    }

    #[test]
    fn a_polled_reader_sleeps_until_a_record_its_bell_or_its_deadline() {
        if !crate::channel::sleep_supported() {
            eprintln!("futex_waitv is missing from this kernel");
            return;
        }
        let (tx, mut polled, out, _plain, watch) = polled_pair();
        let bell = std::sync::Arc::new(crate::channel::Bell::default());
        // Nothing comes: the deadline ends it, and the flag is down again.
        let start = Instant::now();
        assert!(polled.sleep(&bell, bell.rung(), Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(25));
        let sleeping = watch.atomic_u32(SLEEPING_AT).expect("flag");
        assert_eq!(sleeping.load(Ordering::SeqCst), 0);
        // A bell rung since it was read: no sleep at all.
        let rung = bell.rung();
        bell.ring();
        let start = Instant::now();
        assert!(polled.sleep(&bell, rung, Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        // Rung from another thread while it sleeps, and a record from the writer while it
        // sleeps: each ends the sleep, which takes nothing.
        std::thread::scope(|s| {
            let rung = bell.rung();
            let ringer = s.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                bell.ring();
            });
            let start = Instant::now();
            assert!(polled.sleep(&bell, rung, Duration::from_secs(10)));
            assert!(start.elapsed() < Duration::from_secs(5));
            ringer.join().expect("ringer");
        });
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(&Msg::Small(9)).expect("send");
            tx
        });
        let start = Instant::now();
        assert!(polled.sleep(&bell, bell.rung(), Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        let tx = writer.join().expect("writer");
        assert!(out.try_recv().is_err(), "a sleep takes nothing");
        assert!(!polled.poll(Instant::now(), 64));
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(9)
        );
        // The writer saw the reader asleep and woke it once.
        assert_eq!(tx.with_mailbox_writer(|w| w.wakes()), Some(1));
    }

    #[test]
    fn a_polled_reader_asleep_judges_a_wake_flood_as_a_thread_does() {
        if !crate::channel::sleep_supported() {
            eprintln!("futex_waitv is missing from this kernel");
            return;
        }
        let (tx, mut polled, out, _plain, watch) = polled_pair();
        let bell = crate::channel::Bell::default();
        tx.send(&Msg::Small(1)).expect("send");
        polled.poll(Instant::now(), 64);
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(1)
        );
        let index = watch.atomic_u32(WRITE_AT).expect("index");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let _ = triptych_sys::futex::wake(index, 1);
                    std::thread::yield_now();
                }
            });
            let start = Instant::now();
            let v = loop {
                polled.sleep(&bell, bell.rung(), Duration::from_millis(100));
                if let Ok(d) = out.try_recv() {
                    break d.expect_err("a violation");
                }
                assert!(start.elapsed() < Duration::from_secs(20), "no verdict");
            };
            stop.store(true, Ordering::SeqCst);
            assert!(v.to_string().contains("wake-ups without a record"), "{v}");
        });
        // Judged, the channel is closed: no more sleeps on it.
        assert!(!polled.sleep(&bell, bell.rung(), Duration::from_secs(1)));
        drop(tx);
    }

    #[test]
    fn a_forwarding_thread_hands_its_receiver_back_with_nothing_lost() {
        let (reader, memfd) = create(c"test-mailbox").expect("mailbox");
        let (a, b) = socket_pair().expect("socket pair");
        let waker = MailboxWaker::new(&memfd).expect("waker");
        let tx = Sender::<Msg>::new(a).with_mailbox(MailboxWriter::adopt(memfd).expect("adopt"));
        let rx = Receiver::<Msg>::new(b).with_mailbox(reader, Default::default());
        let (out, back) =
            crate::channel::forward_handing_back("test-handback", rx).expect("thread");
        for i in 0..100u64 {
            tx.send(&Msg::Small(i)).expect("send");
        }
        tx.send(&Msg::Big(vec![3; PAYLOAD_MAX + 1])).expect("send");
        // Not asked: it keeps the channel.
        std::thread::sleep(Duration::from_millis(50));
        assert!(back.take().is_none());
        // Asked while asleep on an empty ring: the waker ends its sleep, and it hands back.
        back.ask(Some(&waker));
        let mut polled = back
            .take_within(Duration::from_secs(10))
            .expect("handed back");
        for i in 100..110u64 {
            tx.send(&Msg::Small(i)).expect("send");
        }
        assert!(!polled.poll(Instant::now(), 64));
        // Everything, in order: what the thread moved, then what the loop took.
        let mut want: Vec<Msg> = (0..100u64).map(Msg::Small).collect();
        want.push(Msg::Big(vec![3; PAYLOAD_MAX + 1]));
        want.extend((100..110u64).map(Msg::Small));
        let got: Vec<Msg> = out.try_iter().map(|d| d.expect("a message").0).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_polled_reader_takes_what_waits_in_order_and_is_never_woken() {
        let (tx, mut polled, out, _plain, watch) = polled_pair();
        polled.poll(Instant::now(), 64);
        assert!(out.try_recv().is_err(), "nothing sent, nothing taken");
        for i in 0..5 {
            tx.send(&Msg::Small(i)).expect("send");
        }
        // Too large for a record: announced, on the socket.
        tx.send(&Msg::Big(vec![7; PAYLOAD_MAX + 10])).expect("send");
        tx.send(&Msg::Small(5)).expect("send");
        // At most as many as asked for a call, and it says more may wait.
        assert!(polled.poll(Instant::now(), 2));
        assert_eq!(out.len(), 2);
        assert!(!polled.poll(Instant::now(), 64));
        for i in 0..5 {
            assert_eq!(
                out.try_recv().expect("taken").expect("a message").0,
                Msg::Small(i)
            );
        }
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Big(vec![7; PAYLOAD_MAX + 10])
        );
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(5)
        );
        let sleeping = watch.atomic_u32(SLEEPING_AT).expect("flag");
        assert_eq!(sleeping.load(Ordering::SeqCst), 0, "it never said it slept");
        assert_eq!(tx.with_mailbox_writer(|w| w.wakes()), Some(0));
    }

    #[test]
    fn a_polled_reader_waits_for_an_announced_message_without_blocking() {
        let (tx, mut polled, out, plain, _watch) = polled_pair();
        tx.send(&Msg::Small(1)).expect("send");
        tx.with_mailbox_writer(|w| w.announce())
            .expect("writer")
            .expect("announce");
        let start = Instant::now();
        polled.poll(Instant::now(), 64);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the poll did not wait"
        );
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(1)
        );
        assert!(
            out.try_recv().is_err(),
            "the announced message is not there yet"
        );
        plain.send(&Msg::Small(2)).expect("send");
        tx.send(&Msg::Small(3)).expect("send");
        polled.poll(Instant::now(), 64);
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(2)
        );
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(3)
        );
    }

    #[test]
    fn an_announced_message_that_never_comes_is_the_writers_violation_when_polled() {
        let (tx, mut polled, out, _plain, _watch) = polled_pair();
        tx.with_mailbox_writer(|w| w.announce())
            .expect("writer")
            .expect("announce");
        let start = Instant::now();
        let v = loop {
            polled.poll(Instant::now(), 64);
            match out.try_recv() {
                Ok(d) => break d.expect_err("a violation"),
                Err(crossbeam_channel::TryRecvError::Empty) => {}
                Err(e) => panic!("the channel ended without a verdict: {e}"),
            }
            assert!(start.elapsed() < ANNOUNCED_WITHIN * 3, "no verdict");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(start.elapsed() >= ANNOUNCED_WITHIN - Duration::from_millis(50));
        assert!(v.to_string().contains("did not come within"), "{v}");
        // Nothing after the violation: the channel ends.
        polled.poll(Instant::now(), 64);
        assert!(matches!(
            out.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn a_polled_reader_sees_the_writers_end_and_hands_over_to_a_thread() {
        // The end: once the writer's socket closes, the next look disconnects the channel,
        // after what was sent.
        let (tx, mut polled, out, plain, _watch) = polled_pair();
        tx.send(&Msg::Small(1)).expect("send");
        drop(tx);
        drop(plain);
        polled.poll(Instant::now(), 64);
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(1)
        );
        polled.poll(Instant::now() + SOCKET_LOOK, 64);
        assert!(matches!(
            out.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        ));
        // A dead writer's last words, taken at once: no look waits for its time.
        let (tx, polled, out, plain, _watch) = polled_pair();
        tx.send(&Msg::Small(1)).expect("send");
        tx.send(&Msg::Big(vec![1; PAYLOAD_MAX + 1])).expect("send");
        drop(tx);
        drop(plain);
        polled.drain_gone();
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Small(1)
        );
        assert_eq!(
            out.try_recv().expect("taken").expect("a message").0,
            Msg::Big(vec![1; PAYLOAD_MAX + 1])
        );
        assert!(matches!(
            out.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        ));
        // The hand-over: a thread reads on, into the same channel, and is woken as usual.
        let (tx, mut polled, out, _plain, _watch) = polled_pair();
        tx.send(&Msg::Small(1)).expect("send");
        polled.poll(Instant::now(), 64);
        polled.forward().expect("forward");
        tx.send(&Msg::Small(2)).expect("send");
        assert_eq!(got(&out), Ok(Msg::Small(1)));
        assert_eq!(got(&out), Ok(Msg::Small(2)));
    }
}
