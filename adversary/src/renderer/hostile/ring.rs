//! The attacks on the mailbox between the renderer and the launcher
//! ([`ipc_protocol::mailbox`]): each is done with what the renderer legitimately holds, its
//! writer's mapping of the ring and the wake-up eventfd, as code that took over the renderer
//! could. The launcher reads the ring as an untrusted peer's memory; these check that it does.
//!
//! An attack that forges a record or an index holds the writer while the launcher judges it:
//! otherwise the renderer's own next message, posted at the index the writer keeps for itself,
//! could take the forged record's place before the launcher saw it.

use std::os::fd::AsFd;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipc_protocol::channel::{SendError, Sender};
use ipc_protocol::mailbox::{
    MailboxWriter, ANNOUNCED_WITHIN, MAILBOX_BYTES, PAYLOAD_MAX, RECORDS, RECORD_BYTES,
};
use ipc_protocol::messages::RendererToLauncher;
use triptych_sys::mapping::Mapping;

use super::Attack;

// The layout of the mailbox's module doc, as an attacker knows it.
const WRITE_AT: usize = 0;
const READ_AT: usize = 64;
const SLEEPING_AT: usize = 128;
const HEADER_BYTES: usize = MAILBOX_BYTES - RECORD_BYTES * RECORDS as usize;
const HEAD_BYTES: usize = RECORD_BYTES - PAYLOAD_MAX;
const KIND_MESSAGE: u8 = 1;

/// The kind [`Attack::RingUnknownKind`] gives its record: neither a message (1) nor an
/// announcement (2).
const UNKNOWN_KIND: u8 = 7;

/// How far past the launcher's read index [`Attack::RingWildIndex`] puts the write index, in
/// whole rings.
const WILD_RINGS: u32 = 1000;

/// How long an attack holds the writer while the launcher judges what it forged: far longer
/// than the launcher needs, and short of its hang timeout.
const HOLD: Duration = Duration::from_secs(2);

/// How long a rewriting thread lets go of the writer between rewrites: the renderer's own
/// messages must still get through (a lock retaken at once could starve them, and the renderer
/// would be killed as hung, not for what the rewrites did).
const LET_GO: Duration = Duration::from_micros(20);

/// Carries out a mailbox attack (one of the `Ring*` [`Attack`]s) on the mailbox beside
/// `events`; without a mailbox (`--mailbox off`) there is nothing to attack, and it says so.
pub(super) fn attack(attack: Attack, events: &Sender<RendererToLauncher>) {
    let done = match attack {
        Attack::RingWildIndex => events.with_mailbox_writer(wild_index),
        Attack::RingLongRecord => events.with_mailbox_writer(|w| {
            // One byte more than a record's payload holds; the bytes themselves are a valid
            // message's start, so only the length is wrong.
            let len = u16::try_from(PAYLOAD_MAX + 1).unwrap_or(u16::MAX);
            forge(w, len, KIND_MESSAGE, &[0; 8]);
        }),
        Attack::RingUnknownKind => {
            events.with_mailbox_writer(|w| forge(w, 4, UNKNOWN_KIND, &[0; 4]))
        }
        Attack::RingEmptyRecord => events.with_mailbox_writer(|w| forge(w, 0, KIND_MESSAGE, &[])),
        Attack::RingUndecodable => {
            // A discriminant whose varint never ends.
            events.with_mailbox_writer(|w| forge(w, 8, KIND_MESSAGE, &[0xff; 8]))
        }
        Attack::RingWakeFlood => events.with_mailbox_writer(wake_flood),
        Attack::RingAnnounceOnly => events.with_mailbox_writer(|w| {
            let announced = w.announce();
            tracing::warn!(
                ?announced,
                "hostile renderer: announced a socket message it will not send"
            );
            hold(ANNOUNCED_WITHIN + HOLD, || false);
        }),
        Attack::RingUnannounced => events.with_mailbox_writer(|_| {
            // Held: no announcement of the renderer's own can come before it.
            let pong = ipc_protocol::channel::encode(&RendererToLauncher::Pong(0));
            let sent = pong.map(|m| triptych_sys::scm::send_with_fds(events.as_fd(), &m, &[]));
            tracing::warn!(
                ?sent,
                "hostile renderer: a message on the socket, not announced"
            );
            hold(HOLD, || false);
        }),
        Attack::RingRewrite => spawn("ring-rewrite", events, rewrite_newest),
        Attack::RingRewriteRead => spawn("ring-rewrite-read", events, rewrite_read),
        Attack::RingReadIndex => spawn("ring-read-index", events, mislead_writer),
        Attack::RingStarve => spawn("ring-starve", events, starve),
        _ => Some(()),
    };
    if done.is_none() {
        tracing::warn!(?attack, "hostile renderer: no mailbox to attack");
    }
}

/// Runs `f` on a thread of its own with a clone of `events`; `None` without a mailbox.
fn spawn(
    name: &str,
    events: &Sender<RendererToLauncher>,
    f: fn(Sender<RendererToLauncher>),
) -> Option<()> {
    events.mailbox_counts()?;
    let events = events.clone();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || f(events));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "hostile renderer: could not start the attack's thread");
    }
    Some(())
}

/// The ring's 32-bit field at `at`; `None` only where the mapping is not a mailbox's.
fn field(m: &Mapping, at: usize) -> Option<&AtomicU32> {
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
        let _ = triptych_sys::eventfd::wake(w.wake_fd());
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
    tracing::warn!(
        index,
        len,
        kind,
        "hostile renderer: forged a mailbox record"
    );
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
    tracing::warn!(wild, "hostile renderer: a wild write index");
    hold(HOLD, || false);
}

/// Writes the wake-up eventfd as fast as it can, holding the writer so that no record comes.
fn wake_flood(w: &mut MailboxWriter) {
    tracing::warn!("hostile renderer: flooding the mailbox's wake-ups");
    let start = Instant::now();
    let mut wakes = 0u64;
    while start.elapsed() < HOLD {
        if triptych_sys::eventfd::wake(w.wake_fd()).is_ok() {
            wakes += 1;
        }
    }
    tracing::warn!(wakes, "hostile renderer: the wake-up flood went unpunished");
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
fn rewrite_newest(events: Sender<RendererToLauncher>) {
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
            tracing::warn!(rewrites, "hostile renderer: rewriting the newest record");
        }
        std::thread::sleep(LET_GO);
    }
}

/// Rewrites with garbage every record the launcher has copied (its published read index is
/// past it) whose slot the writer has not used again, over and over.
fn rewrite_read(events: Sender<RendererToLauncher>) {
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
            tracing::warn!(rewrites, "hostile renderer: rewrote records already read");
            told = rewrites.saturating_mul(4);
        }
        std::thread::sleep(LET_GO);
    }
}

/// Rewrites the launcher's read index and sleeping flag, over and over: to claim everything
/// read, to claim a full ring, to claim a reader past the writer, with the flag up and down.
fn mislead_writer(events: Sender<RendererToLauncher>) {
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
            tracing::warn!(
                turn,
                "hostile renderer: rewrote the reader's index and flag"
            );
        }
        turn = turn.wrapping_add(1);
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Sends messages without end, so that the ring stays full and the writer waits for room.
fn starve(events: Sender<RendererToLauncher>) {
    let mut sent = 0u64;
    loop {
        match events.send(&RendererToLauncher::Pong(0)) {
            Ok(()) => sent += 1,
            Err(SendError::Full) => {}
            Err(_) => return,
        }
        if sent == 1 || sent.is_multiple_of(100_000) {
            tracing::warn!(sent, "hostile renderer: keeping the mailbox full");
        }
    }
}
