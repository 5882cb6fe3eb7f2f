//! The attacks on a child's mailboxes with the launcher ([`ipc_protocol::mailbox`]), shared by
//! the hostile GPU process and the hostile renderer: each is done with what the child
//! legitimately holds, its mappings of the two rings and their futex words, as code that
//! took over the child could.
//!
//! - As the **writer** of its mailbox to the launcher ([`attack`]): forged records and indices,
//!   wake-up floods, announcements without socket messages and socket messages without
//!   announcements, records rewritten during and after the launcher's read, a misled writer,
//!   a ring kept full, and the launcher's sleeping flag kept lowered (it is never woken). The
//!   launcher reads the ring as an untrusted peer's memory; these check that it does, and kill
//!   the child for what breaks the rules.
//! - As the **reader** of the launcher's mailbox to it ([`Inbox`], [`inbox_attack`]): a published
//!   read index kept frozen, a read index that claims every record read while the child stops
//!   taking them, and a sleeping flag kept raised or kept lowered. The launcher writes without
//!   ever waiting and reads nothing back but the reader's index; these check that a lying or
//!   idle reader costs the child alone.
//!
//! An attack that forges a record or an index holds the writer while the launcher judges it:
//! otherwise the child's own next message, posted at the index the writer keeps for itself,
//! could take the forged record's place before the launcher saw it.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipc_protocol::channel::{SendError, Sender, Wire};
use ipc_protocol::mailbox::{
    MailboxWriter, ANNOUNCED_WITHIN, MAILBOX_BYTES, PAYLOAD_MAX, RECORDS, RECORD_BYTES,
};
use triptych_sys::mapping::SharedMemory;

// The layout of the mailbox's module doc, as an attacker knows it.
const WRITE_AT: usize = 0;
const READ_AT: usize = 64;
const SLEEPING_AT: usize = 128;
const HEADER_BYTES: usize = MAILBOX_BYTES - RECORD_BYTES * RECORDS as usize;
const HEAD_BYTES: usize = RECORD_BYTES - PAYLOAD_MAX;
const KIND_MESSAGE: u8 = 1;

/// The kind [`RingAttack::UnknownKind`] gives its record: neither a message (1) nor an
/// announcement (2).
const UNKNOWN_KIND: u8 = 7;

/// How far past the launcher's read index [`RingAttack::WildIndex`] puts the write index, in
/// whole rings.
const WILD_RINGS: u32 = 1000;

/// How long an attack holds the writer while the launcher judges what it forged: far longer
/// than the launcher needs, and short of its hang timeout.
const HOLD: Duration = Duration::from_secs(2);

/// How long a rewriting thread lets go of the writer between rewrites: the child's own
/// messages must still get through (a lock retaken at once could starve them, and the child
/// would be killed as hung, not for what the rewrites did).
const LET_GO: Duration = Duration::from_micros(20);

/// How long the child's own loop stops once, at a frame, under [`RingAttack::InboxLies`]: with
/// the launcher's pings every 10 ms (its shortest heartbeat), long enough for it to write well
/// over the 512 records the child's queue of taken messages and the ring together hold.
pub const STALL: Duration = Duration::from_secs(8);

/// How long [`RingAttack::InboxFrozen`]'s child spends on each frame: with pings every 10 ms
/// and, to the GPU process, nothing else, the launcher fills a ring in about 2.6 s, and the
/// run must last that long.
const FROZEN_PACE: Duration = Duration::from_millis(25);

/// How often an inbox attack's thread rewrites the field it lies about.
const REWRITE_EVERY: Duration = Duration::from_micros(50);

/// A mailbox attack: named `ring-<name>` in the attack variable of either child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingAttack {
    /// Publishes a write index far past the launcher's read index: records that were never
    /// there.
    WildIndex,
    /// A record whose length runs past the payload a record holds.
    LongRecord,
    /// A record of a kind that does not exist.
    UnknownKind,
    /// A message record of no bytes.
    EmptyRecord,
    /// A record whose bytes decode as no message.
    Undecodable,
    /// From a thread, rewrites the newest record with garbage over and over, while the launcher
    /// may be copying it: whether the launcher's copy is the message or the garbage is a
    /// matter of timing, and garbage must be judged, never acted on.
    Rewrite,
    /// From a thread, rewrites with garbage every record the launcher has taken (its published
    /// read index is past it) and the writer has not reused: the launcher keeps its own copy,
    /// so this changes nothing it acts on.
    RewriteRead,
    /// From a thread, rewrites the launcher's read index and sleeping flag: the launcher keeps
    /// its own index, so the writer only misleads itself.
    ReadIndex,
    /// Wakes the reader (`FUTEX_WAKE` on the write index) in a tight loop and posts no record.
    WakeFlood,
    /// Announces a socket message and never sends it.
    AnnounceOnly,
    /// Sends a valid message on the socket, bypassing the mailbox that must announce it.
    Unannounced,
    /// From a thread, sends messages without end: the mailbox is kept full, and the writer
    /// waits for room (its own cost).
    Starve,
    /// From a thread, lowers the launcher's sleeping flag over and over: the child's records
    /// find it lowered and wake nobody, so the launcher finds them only at its own looks.
    FlagLowered,
    /// As the reader of the launcher's mailbox: from a thread, keeps the published read index
    /// where it was when the attack began, so that to the launcher the child has stopped
    /// reading (it reads on, unseen).
    InboxFrozen,
    /// As the reader of the launcher's mailbox: from a thread, publishes the launcher's own
    /// write index as the read index (every record taken), while the child's loop stops for
    /// [`STALL`] once: the launcher, told there is room, writes over records the child has not
    /// read.
    InboxLies,
    /// As the reader of the launcher's mailbox: from a thread, keeps the sleeping flag raised,
    /// so that the launcher makes a wake-up with every message.
    InboxSleeping,
    /// As the reader of the launcher's mailbox: from a thread, lowers the sleeping flag over and
    /// over as soon as the reader raises it, so that the launcher never wakes the child (which
    /// still finds its records at its own looks).
    InboxFlagLowered,
}

impl RingAttack {
    /// The attack named `ring-<name>`, if any.
    pub fn from_name(name: &str) -> Option<RingAttack> {
        Some(match name.strip_prefix("ring-")? {
            "wild-index" => RingAttack::WildIndex,
            "long-record" => RingAttack::LongRecord,
            "unknown-kind" => RingAttack::UnknownKind,
            "empty-record" => RingAttack::EmptyRecord,
            "undecodable" => RingAttack::Undecodable,
            "rewrite" => RingAttack::Rewrite,
            "rewrite-read" => RingAttack::RewriteRead,
            "read-index" => RingAttack::ReadIndex,
            "wake-flood" => RingAttack::WakeFlood,
            "announce-only" => RingAttack::AnnounceOnly,
            "unannounced" => RingAttack::Unannounced,
            "starve" => RingAttack::Starve,
            "flag-lowered" => RingAttack::FlagLowered,
            "inbox-frozen" => RingAttack::InboxFrozen,
            "inbox-lies" => RingAttack::InboxLies,
            "inbox-sleeping" => RingAttack::InboxSleeping,
            "inbox-flag-lowered" => RingAttack::InboxFlagLowered,
            _ => return None,
        })
    }

    /// How long the child spends on each frame under this attack (zero: no longer than it
    /// takes).
    pub fn pace(self) -> Duration {
        if self == RingAttack::InboxFrozen {
            FROZEN_PACE
        } else {
            Duration::ZERO
        }
    }

    /// Whether the attack is on the launcher's mailbox to the child ([`inbox_attack`]) rather
    /// than on the child's to the launcher ([`attack`]).
    pub fn on_inbox(self) -> bool {
        matches!(
            self,
            RingAttack::InboxFrozen
                | RingAttack::InboxLies
                | RingAttack::InboxSleeping
                | RingAttack::InboxFlagLowered
        )
    }
}

/// Carries out a mailbox attack on the child's mailbox beside `events`, its channel to the
/// launcher; `message` makes a valid message of its kind (for the attacks that send one).
/// Without a mailbox (`--mailbox off`) there is nothing to attack, and it says so. The inbox
/// attacks are [`inbox_attack`]'s.
pub fn attack<T: Wire + Send + 'static>(
    attack: RingAttack,
    events: &Sender<T>,
    message: fn() -> T,
) {
    let done = match attack {
        RingAttack::WildIndex => events.with_mailbox_writer(wild_index),
        RingAttack::LongRecord => events.with_mailbox_writer(|w| {
            // One byte more than a record's payload holds; the bytes themselves are a valid
            // message's start, so only the length is wrong.
            let len = u16::try_from(PAYLOAD_MAX + 1).unwrap_or(u16::MAX);
            forge(w, len, KIND_MESSAGE, &[0; 8]);
        }),
        RingAttack::UnknownKind => {
            events.with_mailbox_writer(|w| forge(w, 4, UNKNOWN_KIND, &[0; 4]))
        }
        RingAttack::EmptyRecord => events.with_mailbox_writer(|w| forge(w, 0, KIND_MESSAGE, &[])),
        RingAttack::Undecodable => {
            // A discriminant whose varint never ends.
            events.with_mailbox_writer(|w| forge(w, 8, KIND_MESSAGE, &[0xff; 8]))
        }
        RingAttack::WakeFlood => events.with_mailbox_writer(wake_flood),
        RingAttack::AnnounceOnly => events.with_mailbox_writer(|w| {
            let announced = w.announce();
            tracing::warn!(
                ?announced,
                "hostile child: announced a socket message it will not send"
            );
            hold(ANNOUNCED_WITHIN + HOLD, || false);
        }),
        RingAttack::Unannounced => events.with_mailbox_writer(|_| {
            // Held: no announcement of the child's own can come before it.
            let m = ipc_protocol::channel::encode(&message());
            let sent = m.map(|m| triptych_sys::scm::send_with_fds(events.as_fd(), &m, &[]));
            tracing::warn!(
                ?sent,
                "hostile child: a message on the socket, not announced"
            );
            hold(HOLD, || false);
        }),
        RingAttack::Rewrite => spawn("ring-rewrite", events, move |e| rewrite_newest(e)),
        RingAttack::RewriteRead => spawn("ring-rewrite-read", events, move |e| rewrite_read(e)),
        RingAttack::ReadIndex => spawn("ring-read-index", events, move |e| mislead_writer(e)),
        RingAttack::Starve => spawn("ring-starve", events, move |e| starve(e, message)),
        RingAttack::FlagLowered => spawn("ring-flag-lowered", events, move |e| lower_flag(e)),
        RingAttack::InboxFrozen
        | RingAttack::InboxLies
        | RingAttack::InboxSleeping
        | RingAttack::InboxFlagLowered => Some(()),
    };
    if done.is_none() {
        tracing::warn!(?attack, "hostile child: no mailbox to attack");
    }
}

/// Runs `f` on a thread of its own with a clone of `events`; `None` without a mailbox.
fn spawn<T: Wire + Send + 'static>(
    name: &str,
    events: &Sender<T>,
    f: impl FnOnce(Sender<T>) + Send + 'static,
) -> Option<()> {
    events.mailbox_counts()?;
    let events = events.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || f(events));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "hostile child: could not start the attack's thread");
    }
    Some(())
}

/// The ring's 32-bit field at `at`; `None` only where the mapping is not a mailbox's.
fn field(m: &SharedMemory, at: usize) -> Option<&AtomicU32> {
    m.atomic_u32(at)
}

/// Where record `index` starts in the mailbox.
fn slot(index: u32) -> usize {
    HEADER_BYTES + (index % RECORDS) as usize * RECORD_BYTES
}

/// Whether the launcher's published read index `read` is past record `index` (it copied it).
fn passed(read: u32, index: u32) -> bool {
    (read.wrapping_sub(index) as i32) > 0
}

/// Waits until `done` says so, for at most `most`.
fn hold(most: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < most {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Publishes `write` as the write index and wakes the launcher if it sleeps, as the writer's
/// own post does.
fn publish(w: &MailboxWriter, write: u32) {
    let m = w.memory();
    if let Some(at) = field(m, WRITE_AT) {
        at.store(write, Ordering::SeqCst);
    }
    fence(Ordering::SeqCst);
    if field(m, SLEEPING_AT).is_some_and(|s| s.load(Ordering::SeqCst) != 0) {
        if let Some(at) = field(m, WRITE_AT) {
            let _ = triptych_sys::futex::wake(at, 1);
        }
    }
}

/// Posts a record with head `len` and `kind` and the bytes `payload` at the ring's next index,
/// then holds the writer until the launcher has copied it.
fn forge(w: &mut MailboxWriter, len: u16, kind: u8, payload: &[u8]) {
    let m = w.memory();
    let (Some(write), Some(read)) = (field(m, WRITE_AT), field(m, READ_AT)) else {
        return;
    };
    let index = write.load(Ordering::SeqCst);
    // Room first: the slot must not hold a record the launcher has yet to take.
    hold(HOLD, || {
        index.wrapping_sub(read.load(Ordering::Acquire)) < RECORDS
    });
    let mut rec = vec![0u8; HEAD_BYTES + payload.len()];
    rec[..2].copy_from_slice(&len.to_le_bytes());
    rec[2] = kind;
    rec[HEAD_BYTES..].copy_from_slice(payload);
    m.write_shared(slot(index), &rec);
    publish(w, index.wrapping_add(1));
    tracing::warn!(index, len, kind, "hostile child: forged a mailbox record");
    hold(HOLD, || passed(read.load(Ordering::Acquire), index));
}

/// Publishes a write index [`WILD_RINGS`] rings past the launcher's read index, and holds it
/// there.
fn wild_index(w: &mut MailboxWriter) {
    let Some(read) = field(w.memory(), READ_AT) else {
        return;
    };
    let wild = read
        .load(Ordering::Acquire)
        .wrapping_add(WILD_RINGS * RECORDS);
    publish(w, wild);
    tracing::warn!(wild, "hostile child: a wild write index");
    hold(HOLD, || false);
}

/// Wakes the launcher's reader (`FUTEX_WAKE` on the write index) as fast as it can, holding the
/// writer so that no record comes.
fn wake_flood(w: &mut MailboxWriter) {
    tracing::warn!("hostile child: flooding the mailbox's wake-ups");
    let start = Instant::now();
    let mut wakes = 0u64;
    let Some(index) = field(w.memory(), WRITE_AT) else {
        return;
    };
    while start.elapsed() < HOLD {
        if triptych_sys::futex::wake(index, 1).is_ok_and(|n| n > 0) {
            wakes += 1;
        }
    }
    tracing::warn!(wakes, "hostile child: the wake-up flood went unpunished");
}

/// A generator of garbage bytes (xorshift), seeded per thread.
struct Garbage(u64);

impl Garbage {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// Rewrites the newest record (perhaps being copied by the launcher right now) with garbage,
/// over and over: every other time the whole record, in between its payload only (its head
/// stays the message's own).
fn rewrite_newest<T: Wire>(events: Sender<T>) {
    let mut garbage = Garbage(0x9e37_79b9_7f4a_7c15);
    let mut rec = [0u8; RECORD_BYTES];
    let mut rewrites = 0u64;
    loop {
        let alive = events.with_mailbox_writer(|w| {
            let m = w.memory();
            let Some(write) = field(m, WRITE_AT) else {
                return;
            };
            let newest = write.load(Ordering::SeqCst).wrapping_sub(1);
            garbage.fill(&mut rec);
            let from = if rewrites.is_multiple_of(2) {
                0
            } else {
                HEAD_BYTES
            };
            m.write_shared(slot(newest) + from, &rec[from..]);
            rewrites += 1;
        });
        if alive.is_none() {
            return;
        }
        if rewrites == 1 || rewrites.is_multiple_of(100_000) {
            tracing::warn!(rewrites, "hostile child: rewriting the newest record");
        }
        std::thread::sleep(LET_GO);
    }
}

/// Rewrites with garbage every record the launcher has copied (its published read index is
/// past it) whose slot the writer has not used again, over and over.
fn rewrite_read<T: Wire>(events: Sender<T>) {
    let mut garbage = Garbage(0x2545_f491_4f6c_dd1d);
    let mut rec = [0u8; RECORD_BYTES];
    let mut rewrites = 0u64;
    // Logged at the first rewrite, then each time the count has grown fourfold.
    let mut told = 1u64;
    loop {
        let alive = events.with_mailbox_writer(|w| {
            let m = w.memory();
            let (Some(write), Some(read)) = (field(m, WRITE_AT), field(m, READ_AT)) else {
                return;
            };
            // Held: the writer posts nothing meanwhile, so the write index stays.
            let (write, read) = (write.load(Ordering::SeqCst), read.load(Ordering::Acquire));
            let unread = write.wrapping_sub(read);
            if unread > RECORDS {
                return;
            }
            // Records read..write are the launcher's to take; write - RECORDS..read are taken,
            // their slots not yet used again.
            garbage.fill(&mut rec);
            for back in 1..=RECORDS - unread {
                m.write_shared(slot(read.wrapping_sub(back)), &rec);
                rewrites += 1;
            }
        });
        if alive.is_none() {
            return;
        }
        if rewrites >= told {
            tracing::warn!(rewrites, "hostile child: rewrote records already read");
            told = rewrites.saturating_mul(4);
        }
        std::thread::sleep(LET_GO);
    }
}

/// Rewrites the launcher's read index and sleeping flag, over and over: to claim everything
/// read, to claim a full ring, to claim a reader past the writer, with the flag up and down.
fn mislead_writer<T: Wire>(events: Sender<T>) {
    let mut turn = 0u32;
    loop {
        let alive = events.with_mailbox_writer(|w| {
            let m = w.memory();
            let (Some(write), Some(read), Some(sleeping)) =
                (field(m, WRITE_AT), field(m, READ_AT), field(m, SLEEPING_AT))
            else {
                return;
            };
            let write = write.load(Ordering::SeqCst);
            let claim = match turn % 4 {
                0 => write,
                1 => write.wrapping_sub(RECORDS),
                2 => write.wrapping_add(1000),
                _ => 0,
            };
            read.store(claim, Ordering::SeqCst);
            sleeping.store(turn % 2, Ordering::SeqCst);
        });
        if alive.is_none() {
            return;
        }
        if turn == 0 || turn.is_multiple_of(10_000) {
            tracing::warn!(turn, "hostile child: rewrote the reader's index and flag");
        }
        turn = turn.wrapping_add(1);
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Lowers the launcher's sleeping flag over and over, so that the child's own records find it
/// lowered and wake nobody: the launcher's reader, which raised it before it slept, sleeps on
/// until its next look.
fn lower_flag<T: Wire>(events: Sender<T>) {
    let mut lowered = 0u64;
    // Logged at the first lowering, then each time the count has grown fourfold.
    let mut told = 1u64;
    tracing::warn!("hostile child: keeps the launcher's sleeping flag lowered");
    loop {
        let alive = events.with_mailbox_writer(|w| {
            if field(w.memory(), SLEEPING_AT).is_some_and(|s| s.swap(0, Ordering::SeqCst) != 0) {
                lowered += 1;
            }
        });
        if alive.is_none() {
            return;
        }
        if lowered >= told {
            tracing::warn!(
                lowered,
                "hostile child: lowered the launcher's sleeping flag"
            );
            told = lowered.saturating_mul(4);
        }
        std::thread::sleep(REWRITE_EVERY);
    }
}

/// Sends messages without end, so that the ring stays full and the writer waits for room.
fn starve<T: Wire>(events: Sender<T>, message: fn() -> T) {
    let mut sent = 0u64;
    let m = message();
    loop {
        match events.send(&m) {
            Ok(()) => sent += 1,
            Err(SendError::Full) => {}
            Err(_) => return,
        }
        if sent == 1 || sent.is_multiple_of(100_000) {
            tracing::warn!(sent, "hostile child: keeping the mailbox full");
        }
    }
}

/// The child's own mapping of the launcher's mailbox to it, made from the fd the run hands its
/// hook before it adopts the mailbox ([`Inbox::map`]): a second view of the memory the child's
/// reader uses, which code in control of the child could make just as well.
#[derive(Debug)]
pub struct Inbox {
    map: SharedMemory,
}

impl Inbox {
    /// Whether a message `is` accepts waits unread in the inbox: a record between the published
    /// read index and the launcher's write index that decodes as a `T` it accepts.
    pub fn holds<T: ipc_protocol::channel::Wire>(&self, is: impl Fn(&T) -> bool) -> bool {
        let (Some(write), Some(read)) = (field(&self.map, WRITE_AT), field(&self.map, READ_AT))
        else {
            return false;
        };
        let (write, mut at) = (write.load(Ordering::Acquire), read.load(Ordering::Acquire));
        let bytes = self.map.peer_bytes();
        while at != write && write.wrapping_sub(at) <= RECORDS {
            let mut rec = [0u8; RECORD_BYTES];
            let copied = bytes
                .sub(slot(at), RECORD_BYTES)
                .is_some_and(|b| b.copy_to(&mut rec));
            if let (true, Ok(ipc_protocol::mailbox::Record::Message(m))) =
                (copied, ipc_protocol::mailbox::parse_record(&rec))
            {
                if ipc_protocol::channel::decode::<T>(&m, Vec::new()).is_ok_and(|(t, _)| is(&t)) {
                    return true;
                }
            }
            at = at.wrapping_add(1);
        }
        false
    }

    /// Maps the mailbox the child reads, from the two fds of the launcher's `Mailbox` message
    /// (the second is its memfd); `None` (and a warning) where that fails.
    pub fn map(fds: &[BorrowedFd<'_>]) -> Option<Inbox> {
        let memfd = fds.get(1)?;
        match SharedMemory::new(*memfd, MAILBOX_BYTES) {
            Ok(map) => Some(Inbox { map }),
            Err(e) => {
                tracing::warn!(error = %e, "hostile child: could not map its inbox");
                None
            }
        }
    }
}

/// Carries out an inbox attack (see [`RingAttack::on_inbox`]) on `inbox`, from a thread of its
/// own that lives as long as the process; without a mapping there is nothing to attack, and it
/// says so. [`RingAttack::InboxLies`]'s stop of the child's loop is the caller's ([`STALL`]).
pub fn inbox_attack(attack: RingAttack, inbox: Option<Inbox>) {
    let Some(inbox) = inbox else {
        tracing::warn!(?attack, "hostile child: no inbox to attack");
        return;
    };
    let f: fn(&SharedMemory) = match attack {
        RingAttack::InboxFrozen => freeze_read_index,
        RingAttack::InboxLies => claim_all_read,
        RingAttack::InboxSleeping => keep_sleeping,
        RingAttack::InboxFlagLowered => keep_awake,
        _ => return,
    };
    let spawned = std::thread::Builder::new()
        .name("ring-inbox".to_owned())
        .spawn(move || f(&inbox.map));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "hostile child: could not start the attack's thread");
    }
}

/// Publishes, over and over, the read index the child's reader had published when the attack
/// began: the reader reads on and publishes its own, which this overwrites at once, so that
/// the launcher finds a reader that took nothing more and a ring that fills.
fn freeze_read_index(m: &SharedMemory) {
    let Some(read) = field(m, READ_AT) else {
        return;
    };
    let frozen = read.load(Ordering::Acquire);
    tracing::warn!(
        frozen,
        "hostile child: froze the inbox's published read index"
    );
    loop {
        read.store(frozen, Ordering::SeqCst);
        std::thread::sleep(REWRITE_EVERY);
    }
}

/// Publishes, over and over, the launcher's write index as the read index: every record taken,
/// whatever the child's reader took. Says so once when the launcher has written more than a
/// ring past the last index the reader itself published (records it has not read written
/// over).
fn claim_all_read(m: &SharedMemory) {
    let (Some(write), Some(read)) = (field(m, WRITE_AT), field(m, READ_AT)) else {
        return;
    };
    tracing::warn!("hostile child: claims every record of its inbox read");
    let mut claimed = read.load(Ordering::Acquire);
    let mut real = claimed;
    let mut told = false;
    loop {
        let published = read.load(Ordering::Acquire);
        if published != claimed {
            // Not this thread's claim: the reader's own index.
            real = published;
        }
        let written = write.load(Ordering::SeqCst);
        if !told && written.wrapping_sub(real) > RECORDS {
            told = true;
            tracing::warn!(
                written,
                real,
                "hostile child: the launcher wrote over inbox records this process had not read"
            );
        }
        claimed = written;
        read.store(claimed, Ordering::SeqCst);
        std::thread::sleep(REWRITE_EVERY);
    }
}

/// Raises the sleeping flag over and over: the reader lowers it whenever it wakes, and the
/// launcher, which believes it, makes a wake-up with every message.
fn keep_sleeping(m: &SharedMemory) {
    hold_flag(m, 1);
}

/// Lowers the sleeping flag over and over, as soon as the reader raises it: the launcher, which
/// believes it, finds a reader awake and never wakes it, and the reader finds the launcher's
/// records only when its wait runs out.
fn keep_awake(m: &SharedMemory) {
    hold_flag(m, 0);
}

/// Holds the inbox's sleeping flag at `value` (1: raised, 0: lowered) against the reader, saying
/// so at the first change back, then each time the count has grown fourfold.
fn hold_flag(m: &SharedMemory, value: u32) {
    let Some(sleeping) = field(m, SLEEPING_AT) else {
        return;
    };
    let done = if value == 0 { "lowered" } else { "raised" };
    tracing::warn!("hostile child: keeps its inbox's sleeping flag {done}");
    let (mut times, mut told) = (0u64, 1u64);
    loop {
        if sleeping.swap(value, Ordering::SeqCst) != value {
            times += 1;
            if times >= told {
                tracing::warn!(times, "hostile child: {done} the sleeping flag again");
                told = times.saturating_mul(4);
            }
        }
        std::thread::sleep(REWRITE_EVERY);
    }
}
