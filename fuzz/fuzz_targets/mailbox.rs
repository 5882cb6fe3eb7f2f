//! Renderer -> launcher through the shared-memory mailbox (`ipc_protocol::mailbox`): a ring a
//! hostile writer filled, read as the launcher reads it.
//!
//! The input is a 4-byte little-endian count (how far the write index is set ahead of the
//! reader's), then the records, [`RECORD_BYTES`] each, at most [`RECORDS`] of them (a short
//! last one is padded with zeros, and slots before the write index that the input does not
//! reach are zeros). Each input is taken twice:
//!
//! - by the record decoder alone: [`parse_record`] on every record, and each message record
//!   decoded as a [`RendererToLauncher`] and run through the launcher's rules, as
//!   `child_to_launcher` does for the socket;
//! - through real shared memory: the records are written into a mailbox's ring from the
//!   writer's side, the write index is stored, and the reader's `take` runs until the ring is
//!   empty or it finds a violation (where the launcher stops too), at most 300 times. What it
//!   yields must be what the decoder alone said of the same record, in order, and no more
//!   records than the write index claims.
//!
//! One mailbox serves every input: making a sealed memfd, a socket pair and two mappings per
//! input costs about as much as all the rest (it halved the executions per second). Its reader
//! keeps its own index from input to input, so the records are written from the slot the reader
//! takes next (its published read index, which nothing here writes) and the write index is set
//! relative to it: an input reads the same whatever ran before it.
//!
//! Seeds (`fuzz/corpus/mailbox/`): message records holding an encoded `Presented` and `Pong`,
//! an announcement, a wrapped run, and broken records and indices, written with the other
//! targets' seeds by `cargo run --bin write-seeds` from `fuzz/`.
#![no_main]

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use ipc_protocol::channel::{decode, Violation, Wire};
use ipc_protocol::mailbox::{
    self, parse_record, MailboxReader, MailboxWriter, Record, MAILBOX_BYTES, PAYLOAD_MAX, RECORDS,
    RECORD_BYTES,
};
use ipc_protocol::messages::RendererToLauncher;
use ipc_protocol::rules::{self, Budget, Frames};
use libfuzzer_sys::fuzz_target;

/// Where the layout (the module doc of `ipc_protocol::mailbox`) puts the write index, the
/// reader's published index and the first record.
const WRITE_AT: usize = 0;
const READ_AT: usize = 64;
const RING_AT: usize = MAILBOX_BYTES - RECORDS as usize * RECORD_BYTES;

thread_local! {
    static MAILBOX: RefCell<(MailboxReader, MailboxWriter)> = RefCell::new(fresh());
}

/// A new mailbox: its reader and its writer.
fn fresh() -> (MailboxReader, MailboxWriter) {
    let (reader, memfd) = mailbox::create(c"fuzz-mailbox").expect("a mailbox");
    let writer = MailboxWriter::adopt(memfd).expect("adopting the mailbox");
    (reader, writer)
}

/// The launcher's side of what the renderer sends, as `child_to_launcher` runs it.
struct Launcher {
    frames: Frames,
    budget: Budget,
}

impl Launcher {
    fn new() -> Self {
        let mut frames = Frames::default();
        frames.new_epoch(1, 0);
        Self {
            frames,
            budget: Budget::default(),
        }
    }

    /// A message record's payload, as the reader takes it: decoded, refused if its kind
    /// carries fds (a record cannot), then judged by the rules.
    fn message(&mut self, bytes: &[u8]) {
        assert!(
            (1..=PAYLOAD_MAX).contains(&bytes.len()),
            "a record payload of {} bytes",
            bytes.len()
        );
        let Ok((m, fds)) = decode::<RendererToLauncher>(bytes, Vec::new()) else {
            return;
        };
        assert!(fds.is_empty());
        if m.fd_count() != 0 {
            return;
        }
        let _ = self.budget.message(m.kind(), std::time::Instant::now());
        match m {
            RendererToLauncher::Presented(p) => {
                let _ = self.frames.produced(0, 1000);
                let _ = self.frames.presented(p.frame, p.epoch);
            }
            RendererToLauncher::Output { fd, .. } => {
                let _ = fd.fd.checked_add(1);
            }
            RendererToLauncher::Trace(t) => {
                let _ = self.budget.trace(&t, true);
            }
            RendererToLauncher::Pong(n) => {
                let _ = rules::pong(n, 10);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((ahead, ring)) = data.split_first_chunk::<4>() else {
        return;
    };
    let ahead = u32::from_le_bytes(*ahead);
    let records: Vec<[u8; RECORD_BYTES]> = ring
        .chunks(RECORD_BYTES)
        .take(RECORDS as usize)
        .map(|c| {
            let mut r = [0u8; RECORD_BYTES];
            r[..c.len()].copy_from_slice(c);
            r
        })
        .collect();
    let zero = [0u8; RECORD_BYTES];
    let record = |i: usize| records.get(i).unwrap_or(&zero);

    // The decoder alone.
    let parsed: Vec<_> = records.iter().map(parse_record).collect();
    let mut launcher = Launcher::new();
    for p in &parsed {
        if let Ok(Record::Message(bytes)) = p {
            launcher.message(bytes);
        }
    }
    // What the reader took as record `i` must be what the decoder alone said of it.
    let check = |i: u32, took: Result<&Record, &Violation>| match parsed.get(i as usize) {
        Some(p) => assert_eq!(took, p.as_ref(), "record {i}"),
        None => assert_eq!(took, parse_record(&zero).as_ref(), "record {i}"),
    };

    // The reader, over the shared memory.
    // A reader that found a violation is done with (its writer's child is killed): the next
    // input gets a fresh mailbox, as a replaced child does.
    let judged = MAILBOX.with_borrow_mut(|(reader, writer)| {
        let memory = writer.memory();
        let read_index = memory.atomic_u32(READ_AT).expect("the read index");
        let start = read_index.load(Ordering::Acquire);
        // The reader takes no slot past the write index: only those before it are written.
        for i in 0..ahead.min(RECORDS) {
            let slot = (start.wrapping_add(i) % RECORDS) as usize;
            assert!(memory.write_shared(RING_AT + slot * RECORD_BYTES, record(i as usize)));
        }
        memory
            .atomic_u32(WRITE_AT)
            .expect("the write index")
            .store(start.wrapping_add(ahead), Ordering::SeqCst);

        let mut launcher = Launcher::new();
        let mut taken = 0u32;
        for _ in 0..300 {
            let got = reader.take();
            let now = read_index.load(Ordering::Acquire);
            if ahead > RECORDS {
                // Records that were never there: refused before any is copied.
                assert!(
                    got.is_err(),
                    "a write index {ahead} ahead was taken: {got:?}"
                );
                assert_eq!(now, start, "the reader moved on a wild write index");
                return true;
            }
            match got {
                Ok(None) => {
                    assert_eq!(taken, ahead, "the ring emptied early");
                    assert_eq!(now, start.wrapping_add(taken));
                    break;
                }
                Ok(Some(r)) => {
                    assert!(taken < ahead, "a record past the write index");
                    check(taken, Ok(&r));
                    taken += 1;
                    assert_eq!(now, start.wrapping_add(taken), "the published read index");
                    if let Record::Message(bytes) = &r {
                        launcher.message(bytes);
                    }
                }
                Err(v) => {
                    assert!(taken < ahead, "a violation past the write index: {v}");
                    check(taken, Err(&v));
                    assert_eq!(now, start.wrapping_add(taken + 1));
                    return true;
                }
            }
        }
        false
    });
    if judged {
        MAILBOX.with_borrow_mut(|m| *m = fresh());
    }
});
