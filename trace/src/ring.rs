//! Bounded keeping of the events other processes send: [`Ring`].
//!
//! The launcher keeps every child's trace events until the run ends and it writes the trace
//! file. A child chooses how many events it sends and how large they are (counter names and
//! argument strings), so what the launcher keeps of one source is bounded in bytes, not in
//! events or by the run's length: once a source's events take more than its budget, the oldest
//! go, and are counted. A trace of a long run shows its latest stretch whole, as a flight
//! recorder does, and says how much came before it.
//!
//! Sizes are estimated from what each event owns ([`footprint`]): its slot, its map's nodes and
//! its strings, each heap block with the allocator's rounding and overhead, so the heap the kept
//! events use stays near the budget (the ring's own buffer may hold up to twice the slots it
//! uses, as a growing `VecDeque` does).

use std::collections::VecDeque;

use crate::event::{ArgValue, Event, EventKind};

/// Bytes of events kept per source unless told otherwise: some 40,000 events of the usual kind
/// (a few small arguments each; about six a frame from each child), a minute and more of 60 Hz
/// frames. Events with long strings take more of it.
pub const DEFAULT_BUDGET: usize = 8 << 20;

/// Bytes one event holds in memory, its strings and argument map included, counted high: its
/// slot in the ring, and for every heap block (a string's bytes, a node of the argument map) the
/// size rounded up to 16 plus 16 of allocator overhead. An argument map of any size holds at
/// least one node with room for 11 entries, so a small argument costs far more than its bytes.
pub fn footprint(e: &Event) -> usize {
    fn block(bytes: usize) -> usize {
        if bytes == 0 {
            0
        } else {
            bytes.div_ceil(16) * 16 + 16
        }
    }
    // A B-tree node: its header, 11 keys and values, and (internal nodes) 12 edges.
    const NODE: usize = 16
        + 11 * (std::mem::size_of::<String>() + std::mem::size_of::<ArgValue>())
        + 12 * std::mem::size_of::<usize>();
    let counter = match &e.kind {
        EventKind::Counter { name, .. } => block(name.len()),
        EventKind::Span { .. } | EventKind::Instant { .. } => 0,
    };
    let n = e.args.len();
    let leaves = n.div_ceil(11);
    let nodes = leaves + leaves.div_ceil(6).saturating_sub(usize::from(leaves <= 1));
    let strings: usize = e
        .args
        .iter()
        .map(|(k, v)| {
            block(k.len())
                + match v {
                    ArgValue::Str(s) => block(s.len()),
                    ArgValue::Int(_) | ArgValue::Float(_) | ArgValue::Bool(_) => 0,
                }
        })
        .sum();
    std::mem::size_of::<(Event, usize)>() + counter + nodes * block(NODE) + strings
}

/// The latest events of one source, at most `budget` bytes of them ([`footprint`]).
#[derive(Debug)]
pub struct Ring {
    budget: usize,
    bytes: usize,
    events: VecDeque<(Event, usize)>,
    dropped: u64,
}

impl Ring {
    /// An empty ring keeping at most `budget` bytes of events.
    pub fn new(budget: usize) -> Ring {
        Ring {
            budget,
            bytes: 0,
            events: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Adds `events`, dropping the oldest kept ones (or an event larger than the whole budget)
    /// until the rest fit.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            let size = footprint(&e);
            if size > self.budget {
                self.dropped += 1;
                continue;
            }
            self.bytes += size;
            self.events.push_back((e, size));
            while self.bytes > self.budget {
                let Some((_, s)) = self.events.pop_front() else {
                    break;
                };
                self.bytes -= s;
                self.dropped += 1;
            }
        }
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Bytes kept ([`footprint`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes the kept events out, oldest first; the count of dropped ones stays.
    pub fn take(&mut self) -> Vec<Event> {
        self.bytes = 0;
        std::mem::take(&mut self.events)
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Args, Stage};

    fn span(ts_ns: u64, note: &str) -> Event {
        let mut args = Args::new();
        if !note.is_empty() {
            args.insert("note".into(), ArgValue::Str(note.into()));
        }
        Event {
            kind: EventKind::Span {
                stage: Stage::Composite,
                dur_ns: 1,
            },
            ts_ns,
            pid: 1,
            tid: 1,
            frame: Some(ts_ns),
            args,
        }
    }

    #[test]
    fn the_latest_events_are_kept_within_the_budget() {
        let one = footprint(&span(0, ""));
        let mut r = Ring::new(10 * one);
        r.extend((0..25).map(|i| span(i, "")));
        assert_eq!(r.len(), 10);
        assert_eq!(r.dropped(), 15);
        assert!(r.bytes() <= 10 * one);
        let kept: Vec<u64> = r.take().iter().map(|e| e.ts_ns).collect();
        assert_eq!(kept, (15..25).collect::<Vec<_>>());
    }

    #[test]
    fn large_arguments_count_for_their_size() {
        let small = footprint(&span(0, ""));
        let big = span(1, &"x".repeat(100_000));
        assert!(footprint(&big) > 100_000);
        let mut r = Ring::new(50 * small);
        r.extend((0..20).map(|i| span(i, "")));
        // Larger than the whole budget: refused, and nothing else goes for it.
        r.extend([big]);
        assert_eq!((r.len(), r.dropped()), (20, 1));
        // A mid-sized event pushes out as many small ones as it needs.
        r.extend([span(2, &"y".repeat(40 * small))]);
        assert!(r.bytes() <= 50 * small);
        assert!(r.dropped() > 1 + 10, "{}", r.dropped());
    }
}
