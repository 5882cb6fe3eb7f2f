//! Per-process event recording.
//!
//! # What this module owns
//!
//! [`Recorder`], the bounded in-memory buffer a process records into, and
//! [`SpanGuard`], the value that times one stage.
//!
//! # Lifetime and sequence
//!
//! Each process makes one `Recorder` at start-up: [`Recorder::new`] with the
//! pid the launcher knows it by when tracing is on, [`Recorder::disabled`]
//! otherwise. Threads share it by reference (it is `Sync`). On the hot path a
//! thread opens a span with [`Recorder::span`] and the guard records the span
//! when it drops (or on [`SpanGuard::finish`]). Off the hot path — once per
//! frame, or when the process idles — the process calls [`Recorder::drain`]
//! and ships the batch to the launcher over IPC; the sandboxed renderer cannot
//! open files, so the launcher is the only writer of trace files.
//!
//! # Cost
//!
//! A disabled recorder costs one branch per call: no clock read, no
//! allocation, no lock (the hot-path methods are `#[inline]` so the branch
//! lands in the caller; about 1 ns per span on the development machine). An
//! enabled one reads the vDSO clock twice per span, takes an uncontended mutex
//! and pushes onto a `Vec` (about 150 ns per span there); spans without
//! arguments allocate nothing beyond that `Vec`'s growth.
//!
//! # Bounded memory
//!
//! At most `capacity` events wait between two drains. Past that, new events
//! are dropped and counted; the next [`Recorder::drain`] appends a counter
//! sample named [`DROPPED_EVENTS_COUNTER`] holding the running total, so a
//! trace with holes says so.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::clock::{current_tid, now_ns};
use crate::event::{ArgValue, Args, Event, EventKind, InstantScope, Marker, Stage};

/// Events a recorder buffers between drains unless told otherwise: at 88
/// bytes per event (plus its argument map, if any), 5.8 MB, some 20 seconds
/// of 60 Hz frames at 50 events per frame.
pub const DEFAULT_CAPACITY: usize = 1 << 16;

/// Name of the counter that reports how many events a recorder dropped so far.
pub const DROPPED_EVENTS_COUNTER: &str = "trace.dropped_events";

/// One process's event buffer. Cheap to keep around disabled.
pub struct Recorder {
    inner: Option<Box<Inner>>,
}

struct Inner {
    pid: u32,
    capacity: usize,
    buffer: Mutex<Buffer>,
    /// Events refused because the buffer was full, since creation.
    dropped: AtomicU64,
}

struct Buffer {
    events: Vec<Event>,
    /// The dropped total last reported by `drain`.
    dropped_reported: u64,
}

impl Recorder {
    /// A recorder that records nothing and costs one branch per call.
    pub const fn disabled() -> Recorder {
        Recorder { inner: None }
    }

    /// A recording recorder for the process the launcher knows as `pid`, with
    /// room for [`DEFAULT_CAPACITY`] events between drains.
    pub fn new(pid: u32) -> Recorder {
        Recorder::with_capacity(pid, DEFAULT_CAPACITY)
    }

    /// A recording recorder that buffers at most `capacity` events between
    /// drains (at least one).
    pub fn with_capacity(pid: u32, capacity: usize) -> Recorder {
        let capacity = capacity.max(1);
        Recorder {
            inner: Some(Box::new(Inner {
                pid,
                capacity,
                buffer: Mutex::new(Buffer {
                    events: Vec::with_capacity(capacity.min(1024)),
                    dropped_reported: 0,
                }),
                dropped: AtomicU64::new(0),
            })),
        }
    }

    /// Whether events are recorded; callers test it before building costly
    /// arguments.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The pid events are stamped with; `None` when disabled.
    pub fn pid(&self) -> Option<u32> {
        self.inner.as_ref().map(|inner| inner.pid)
    }

    /// Starts timing `stage` of `frame` now. The span is recorded when the
    /// guard drops or [`SpanGuard::finish`] is called.
    #[inline]
    pub fn span(&self, stage: Stage, frame: Option<u64>) -> SpanGuard<'_> {
        match &self.inner {
            None => SpanGuard {
                inner: None,
                stage,
                frame,
                start_ns: 0,
                args: None,
            },
            Some(inner) => SpanGuard {
                inner: Some(inner),
                stage,
                frame,
                start_ns: now_ns(),
                args: None,
            },
        }
    }

    /// Records a span measured by hand, from `start_ns` to `end_ns` (both from
    /// [`now_ns`]); an end before the start gives a zero-length
    /// span.
    #[inline]
    pub fn record_span(
        &self,
        stage: Stage,
        frame: Option<u64>,
        start_ns: u64,
        end_ns: u64,
        args: Args,
    ) {
        if let Some(inner) = &self.inner {
            inner.push(Event {
                kind: EventKind::Span {
                    stage,
                    dur_ns: end_ns.saturating_sub(start_ns),
                },
                ts_ns: start_ns,
                pid: inner.pid,
                tid: current_tid(),
                frame,
                args,
            });
        }
    }

    /// Records `marker` now, drawn at `scope`, optionally tied to `frame`.
    #[inline]
    pub fn instant(&self, marker: Marker, scope: InstantScope, frame: Option<u64>, args: Args) {
        if let Some(inner) = &self.inner {
            inner.push(Event {
                kind: EventKind::Instant { marker, scope },
                ts_ns: now_ns(),
                pid: inner.pid,
                tid: current_tid(),
                frame,
                args,
            });
        }
    }

    /// Records a sample of the quantity `name` now.
    #[inline]
    pub fn counter(&self, name: &str, value: f64) {
        if let Some(inner) = &self.inner {
            inner.push(Event {
                kind: EventKind::Counter {
                    name: name.to_owned(),
                    value,
                },
                ts_ns: now_ns(),
                pid: inner.pid,
                tid: current_tid(),
                frame: None,
                args: Args::new(),
            });
        }
    }

    /// Takes every buffered event, oldest first, leaving the buffer empty. When
    /// events were dropped since the last drain, the batch ends with a
    /// [`DROPPED_EVENTS_COUNTER`] sample holding the total dropped so far.
    ///
    /// The buffer is refilled with a `Vec` as large as the batch taken, so the
    /// hot path does not grow it again; call this off the hot path.
    pub fn drain(&self) -> Vec<Event> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let mut buffer = inner.lock();
        let reserve = buffer.events.len().max(16).min(inner.capacity);
        let mut batch = std::mem::replace(&mut buffer.events, Vec::with_capacity(reserve));
        let dropped = inner.dropped.load(Ordering::Relaxed);
        if dropped != buffer.dropped_reported {
            buffer.dropped_reported = dropped;
            batch.push(Event {
                kind: EventKind::Counter {
                    name: DROPPED_EVENTS_COUNTER.to_owned(),
                    // Exact below 2^53 events.
                    value: dropped as f64,
                },
                ts_ns: now_ns(),
                pid: inner.pid,
                tid: current_tid(),
                frame: None,
                args: Args::new(),
            });
        }
        batch
    }

    /// Events waiting for the next drain.
    pub fn len(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.lock().events.len())
    }

    /// Whether no event waits for the next drain.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events refused because the buffer was full, since creation.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.dropped.load(Ordering::Relaxed))
    }
}

impl Default for Recorder {
    /// The disabled recorder.
    fn default() -> Self {
        Recorder::disabled()
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Recorder(disabled)"),
            Some(inner) => f
                .debug_struct("Recorder")
                .field("pid", &inner.pid)
                .field("capacity", &inner.capacity)
                .field("buffered", &inner.lock().events.len())
                .field("dropped", &inner.dropped.load(Ordering::Relaxed))
                .finish(),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A panic while the lock was held cannot leave the Vec half-pushed, so
        // a poisoned buffer is still a valid one.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, event: Event) {
        let mut buffer = self.lock();
        if buffer.events.len() < self.capacity {
            buffer.events.push(event);
        } else {
            drop(buffer);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Times one stage; records the span when dropped.
#[must_use = "the span ends when the guard drops; `let _ = ...` ends it at once"]
pub struct SpanGuard<'a> {
    /// `None` when the recorder is disabled or the span was already recorded.
    inner: Option<&'a Inner>,
    stage: Stage,
    frame: Option<u64>,
    start_ns: u64,
    /// `None` until the first argument, so a guard without arguments never
    /// builds (or drops) a map.
    args: Option<Args>,
}

impl SpanGuard<'_> {
    /// Attaches an argument to the span. Does nothing (and allocates nothing)
    /// when the recorder is disabled.
    #[inline]
    pub fn arg(&mut self, key: &str, value: impl Into<ArgValue>) -> &mut Self {
        if self.inner.is_some() {
            self.args
                .get_or_insert_with(Args::new)
                .insert(key.to_owned(), value.into());
        }
        self
    }

    /// When the span started; `None` when the recorder is disabled.
    pub fn start_ns(&self) -> Option<u64> {
        self.inner.map(|_| self.start_ns)
    }

    /// Ends the span now, records it, and returns its length in nanoseconds;
    /// `None` when the recorder is disabled (no clock is read then).
    #[inline]
    pub fn finish(mut self) -> Option<u64> {
        self.record()
    }

    /// Records the span unless that already happened or the recorder is
    /// disabled; the test stays in the caller, the work does not.
    #[inline]
    fn record(&mut self) -> Option<u64> {
        let inner = self.inner.take()?;
        Some(self.record_into(inner))
    }

    #[inline(never)]
    fn record_into(&mut self, inner: &Inner) -> u64 {
        let dur_ns = now_ns().saturating_sub(self.start_ns);
        inner.push(Event {
            kind: EventKind::Span {
                stage: self.stage,
                dur_ns,
            },
            ts_ns: self.start_ns,
            pid: inner.pid,
            tid: current_tid(),
            frame: self.frame,
            args: self.args.take().unwrap_or_default(),
        });
        dur_ns
    }
}

impl Drop for SpanGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.record();
    }
}

impl fmt::Debug for SpanGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanGuard")
            .field("enabled", &self.inner.is_some())
            .field("stage", &self.stage)
            .field("frame", &self.frame)
            .field("start_ns", &self.start_ns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn disabled_recorder_records_nothing() {
        let rec = Recorder::disabled();
        assert!(!rec.is_enabled());
        assert_eq!(rec.pid(), None);
        let mut guard = rec.span(Stage::GpuRender, Some(1));
        guard.arg("layers", 3);
        assert_eq!(guard.start_ns(), None);
        assert_eq!(guard.finish(), None);
        {
            let _open = rec.span(Stage::Export, Some(1));
        }
        rec.record_span(Stage::Send, Some(1), 10, 20, Args::new());
        rec.instant(Marker::Crash, InstantScope::Global, None, Args::new());
        rec.counter("buffers", 2.0);
        assert_eq!(rec.len(), 0);
        assert!(rec.is_empty());
        assert_eq!(rec.dropped(), 0);
        assert!(rec.drain().is_empty());
    }

    #[test]
    fn span_guard_measures_real_time_once() {
        let rec = Recorder::new(4242);
        let mut guard = rec.span(Stage::Composite, Some(9));
        guard.arg("layers", 2).arg("cpu", true);
        let start = guard.start_ns().expect("enabled recorder has a start");
        std::thread::sleep(Duration::from_millis(3));
        let dur = guard.finish().expect("enabled recorder measures");
        assert!(dur >= 3_000_000, "slept 3 ms but measured {dur} ns");
        let batch = rec.drain();
        assert_eq!(batch.len(), 1, "finish must not record twice: {batch:?}");
        let event = &batch[0];
        assert_eq!(
            event.kind,
            EventKind::Span {
                stage: Stage::Composite,
                dur_ns: dur
            }
        );
        assert_eq!(event.ts_ns, start);
        assert_eq!(event.pid, 4242);
        assert_eq!(event.tid, current_tid());
        assert_eq!(event.frame, Some(9));
        assert_eq!(event.args.get("layers"), Some(&ArgValue::Int(2)));
        assert_eq!(event.args.get("cpu"), Some(&ArgValue::Bool(true)));
        assert!(rec.is_empty());
    }

    #[test]
    fn full_buffer_drops_and_reports_the_total() {
        let rec = Recorder::with_capacity(7, 3);
        for i in 0..5 {
            rec.counter("n", f64::from(i));
        }
        assert_eq!(rec.len(), 3);
        assert_eq!(rec.dropped(), 2);
        let batch = rec.drain();
        let values: Vec<(&str, f64)> = batch
            .iter()
            .map(|e| match &e.kind {
                EventKind::Counter { name, value } => (name.as_str(), *value),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            values,
            [
                ("n", 0.0),
                ("n", 1.0),
                ("n", 2.0),
                (DROPPED_EVENTS_COUNTER, 2.0)
            ]
        );
        // Nothing new dropped: no second report.
        rec.counter("n", 5.0);
        assert_eq!(rec.drain().len(), 1);
        // More drops: the running total is reported.
        for _ in 0..4 {
            rec.counter("n", 6.0);
        }
        let last = rec.drain().pop().expect("batch has the drop report");
        assert_eq!(
            last.kind,
            EventKind::Counter {
                name: DROPPED_EVENTS_COUNTER.to_owned(),
                value: 3.0
            }
        );
    }

    #[test]
    fn threads_share_one_recorder_with_their_own_tids() {
        let rec = Recorder::new(1);
        let tids: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let rec = &rec;
                    scope.spawn(move || {
                        rec.record_span(Stage::Receive, Some(i), 100, 200, Args::new());
                        current_tid()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread panicked"))
                .collect()
        });
        let batch = rec.drain();
        assert_eq!(batch.len(), 3);
        for event in &batch {
            let frame = event.frame.expect("frame was given");
            let index = usize::try_from(frame).expect("small frame id");
            assert_eq!(event.tid, tids[index]);
            assert_eq!(event.end_ns(), 200);
        }
    }
}
