//! What a child may send the launcher, as checks the launcher's supervisor applies to every
//! message (`launcher/src/session/events.rs`).
//!
//! The launcher believes no claim it can check. Each check here is pure (state in, verdict out)
//! so it can be tested, and fuzzed, without processes; a failed check is a [`Breach`], which the
//! supervisor turns into `protocol violation: <kind>: <what>`: the child is killed, recorded as
//! compromised and restarted under the normal restart policy.
//!
//! - **Budgets** ([`Budget`]): per child, at most [`MAX_MESSAGES_PER_S`] messages a second, and
//!   trace batches only when tracing was asked for, at most [`MAX_TRACE_BYTES_PER_S`] a second
//!   and [`MAX_TRACE_EVENTS`] in all. Nothing a child sends can grow the launcher without bound.
//! - **Frames** ([`Frames`]): a `Presented` frame must have been produced (the GPU process sent
//!   it, and the launcher handed it on: [`crate::relay`]), come after the last one presented,
//!   and come from an epoch the launcher started.
//!   The end of the run is the last frame asked for, produced and presented in that order.
//! - **Pongs** answer a ping the launcher sent; **faults** fired must be faults the launcher
//!   planned for that role.

use std::time::{Duration, Instant};

/// A child's message the protocol does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// The message kind.
    pub kind: &'static str,
    /// What was wrong, with the value.
    pub what: String,
}

impl Breach {
    /// A breach of `kind`.
    pub fn new(kind: &'static str, what: impl Into<String>) -> Self {
        Self {
            kind,
            what: what.into(),
        }
    }
}

/// Messages a child may send in one second: a frame's `Presented` (or `Frame`) at several
/// thousand frames a second, plus pongs and trace batches, stays far below it.
pub const MAX_MESSAGES_PER_S: u32 = 50_000;
/// Trace bytes a child may send in one second while tracing (a 1080p run ships well under
/// 1 MiB/s).
pub const MAX_TRACE_BYTES_PER_S: usize = 16 << 20;
/// Trace events kept from one child over a whole run; past it, batches are dropped and counted.
pub const MAX_TRACE_EVENTS: usize = 4_000_000;

/// How many frames of each other view the GPU process may render, at most, while one view can
/// render and waits (`gpu-process/src/fair.rs`): it shares its time between views by their
/// frames' cost, so a view of costly frames gets fewer of them, but never fewer than one for
/// every `FAIR_TURNS` of each other view's. The launcher blames a view's stall on the process
/// only past that many (and one more round for the frames on their way).
pub const FAIR_TURNS: u64 = 8;

/// One child's budget.
#[derive(Debug)]
pub struct Budget {
    window_start: Instant,
    messages: u32,
    trace_bytes: usize,
    /// Trace events kept so far.
    pub trace_events: usize,
    /// Trace events dropped past [`MAX_TRACE_EVENTS`].
    pub trace_dropped: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Budget {
    /// A fresh budget, its window starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            messages: 0,
            trace_bytes: 0,
            trace_events: 0,
            trace_dropped: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.messages = 0;
            self.trace_bytes = 0;
        }
    }

    /// Counts one message of `kind` at `now`.
    pub fn message(&mut self, kind: &'static str, now: Instant) -> Result<(), Breach> {
        self.roll(now);
        self.messages += 1;
        if self.messages > MAX_MESSAGES_PER_S {
            return Err(Breach::new(
                kind,
                format!("more than {MAX_MESSAGES_PER_S} messages in one second"),
            ));
        }
        Ok(())
    }

    /// Checks a trace batch of `events`: refused unless `tracing`, bounded per second. `Ok(false)`
    /// means keep the message but drop the events (the run-long cap is reached).
    pub fn trace(
        &mut self,
        events: &[triptych_trace::Event],
        tracing: bool,
    ) -> Result<bool, Breach> {
        self.trace_at(events.len(), approx_bytes(events), tracing, Instant::now())
    }

    fn trace_at(
        &mut self,
        count: usize,
        bytes: usize,
        tracing: bool,
        now: Instant,
    ) -> Result<bool, Breach> {
        if !tracing {
            return Err(Breach::new(
                "Trace",
                format!("a batch of {count} trace events although tracing is off"),
            ));
        }
        self.roll(now);
        self.trace_bytes += bytes;
        if self.trace_bytes > MAX_TRACE_BYTES_PER_S {
            return Err(Breach::new(
                "Trace",
                format!("more than {MAX_TRACE_BYTES_PER_S} trace bytes in one second"),
            ));
        }
        if self.trace_events + count > MAX_TRACE_EVENTS {
            self.trace_dropped += count;
            return Ok(false);
        }
        self.trace_events += count;
        Ok(true)
    }
}

/// A batch's size, for the budget: what its events hold, counted the way they arrived.
fn approx_bytes(events: &[triptych_trace::Event]) -> usize {
    events
        .iter()
        .map(|e| {
            let name = match &e.kind {
                triptych_trace::EventKind::Counter { name, .. } => name.len(),
                _ => 0,
            };
            48 + name
                + e.args
                    .iter()
                    .map(|(k, v)| k.len() + arg_len(v))
                    .sum::<usize>()
        })
        .sum()
}

fn arg_len(v: &triptych_trace::ArgValue) -> usize {
    match v {
        triptych_trace::ArgValue::Str(s) => s.len(),
        _ => 8,
    }
}

/// What the launcher has seen produced and presented.
#[derive(Debug, Default)]
pub struct Frames {
    /// The current GPU epoch and the frame it started from.
    epoch: u64,
    floor: u64,
    /// The newest frame produced, over all epochs.
    pub produced: Option<u64>,
    /// The newest frame presented, and its epoch.
    pub presented: Option<u64>,
    presented_epoch: u64,
}

impl Frames {
    /// A GPU process of `epoch` starts, rendering from `first`.
    pub fn new_epoch(&mut self, epoch: u64, first: u64) {
        self.epoch = epoch;
        self.floor = first;
    }

    /// Whether `frame` of `epoch` is superseded: of an earlier GPU process than the current one,
    /// at or past the frame the current one resumes from, which it draws again.
    pub fn superseded(&self, frame: u64, epoch: u64) -> bool {
        epoch < self.epoch && frame >= self.floor
    }

    /// The launcher handed `frame` of the GPU process on to the renderer. Frames come one after
    /// another: a GPU process may go back (it re-renders for a new renderer) but never skip
    /// ahead of what it has produced, start below where its epoch started, or pass the last
    /// frame.
    pub fn produced(&mut self, frame: u64, total: u64) -> Result<(), Breach> {
        let next = self
            .produced
            .map_or(self.floor, |p| (p + 1).max(self.floor));
        if frame < self.floor || frame > next || frame >= total {
            return Err(Breach::new(
                "Frame",
                format!(
                    "frame {frame}, but this epoch produces frames {}..={} of {total}",
                    self.floor,
                    next.min(total.saturating_sub(1))
                ),
            ));
        }
        self.produced = Some(self.produced.map_or(frame, |p| p.max(frame)));
        Ok(())
    }

    /// The renderer says it composited `frame` of `epoch`.
    pub fn presented(&mut self, frame: u64, epoch: u64) -> Result<(), Breach> {
        if epoch == 0 || epoch > self.epoch {
            return Err(Breach::new(
                "Presented",
                format!("epoch {epoch}, but the current epoch is {}", self.epoch),
            ));
        }
        if self.produced.is_none_or(|p| frame > p) {
            return Err(Breach::new(
                "Presented",
                format!(
                    "frame {frame}, which was never produced (newest produced: {:?})",
                    self.produced
                ),
            ));
        }
        // Frames of one epoch come in order. A new GPU process renders again from where the
        // screen was when its predecessor died, so its first frames may repeat frames the old
        // epoch had presented meanwhile, but never go below where the new epoch started.
        // Epochs never go back.
        let ordered = match epoch.cmp(&self.presented_epoch) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.presented.is_none_or(|p| frame > p),
            std::cmp::Ordering::Greater => epoch != self.epoch || frame >= self.floor,
        };
        if !ordered {
            return Err(Breach::new(
                "Presented",
                format!(
                    "frame {frame} of epoch {epoch} after frame {:?} of epoch {}",
                    self.presented, self.presented_epoch
                ),
            ));
        }
        self.presented = Some(frame);
        self.presented_epoch = epoch;
        Ok(())
    }
}

/// A pong must answer a ping that was sent.
pub fn pong(n: u64, last_ping: u64) -> Result<(), Breach> {
    if n > last_ping {
        return Err(Breach::new(
            "Pong",
            format!("an answer to ping {n}; the last ping sent was {last_ping}"),
        ));
    }
    Ok(())
}

/// A fired fault must be one planned for the role.
pub fn fault(
    fired: &crate::messages::Fault,
    planned: &[crate::messages::Fault],
) -> Result<(), Breach> {
    if !planned.contains(fired) {
        return Err(Breach::new(
            "FaultFired",
            format!("{fired:?}, which was never planned"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_must_be_produced_then_presented_in_order() {
        let mut f = Frames::default();
        f.new_epoch(1, 0);
        assert!(f.presented(0, 1).is_err(), "nothing produced yet");
        f.produced(0, 10).expect("first");
        assert!(f.produced(2, 10).is_err(), "skipped a frame");
        f.produced(1, 10).expect("second");
        f.produced(0, 10).expect("re-rendered for a new renderer");
        f.presented(1, 1).expect("present the newest");
        assert!(f.presented(1, 1).is_err(), "twice");
        assert!(f.presented(0, 1).is_err(), "backwards");
        assert!(f.presented(5, 1).is_err(), "never produced");
        assert!(f.presented(2, 2).is_err(), "future epoch");
        // A new GPU process resumes where the screen was when the old one died; the old epoch's
        // frames presented meanwhile may be shown again, but nothing below the new start.
        f.produced(2, 10).expect("old epoch");
        f.produced(3, 10).expect("old epoch");
        f.presented(3, 1).expect("old epoch, presented late");
        f.new_epoch(2, 2);
        // The old epoch's frames still on their way from frame 2 on are superseded: the new one
        // draws them again. Those below were on screen before it started.
        assert!(f.superseded(2, 1) && f.superseded(3, 1));
        assert!(!f.superseded(1, 1), "below where the new epoch resumes");
        assert!(!f.superseded(2, 2), "the current epoch's own");
        assert!(f.presented(1, 2).is_err(), "below the new epoch's start");
        assert!(f.produced(1, 10).is_err());
        f.produced(2, 10).expect("resumed");
        f.presented(2, 2).expect("new epoch repeats frame 2");
        assert!(f.presented(3, 1).is_err(), "epochs never go back");
        assert!(f.produced(10, 10).is_err(), "past the end");
    }

    #[test]
    fn budgets_refuse_floods_and_trace_when_off() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0);
        for _ in 0..MAX_MESSAGES_PER_S {
            b.message("Pong", t0).expect("within budget");
        }
        assert!(b.message("Pong", t0).is_err());
        // The next second starts afresh.
        b.message("Pong", t0 + Duration::from_secs(1))
            .expect("new window");
        assert!(b.trace_at(1, 10, false, t0).is_err(), "tracing off");
        assert_eq!(b.trace_at(10, 100, true, t0), Ok(true));
        assert!(b.trace_at(1, MAX_TRACE_BYTES_PER_S, true, t0).is_err());
        let mut b = Budget::new(t0);
        assert_eq!(b.trace_at(MAX_TRACE_EVENTS, 1, true, t0), Ok(true));
        assert_eq!(
            b.trace_at(1, 1, true, t0 + Duration::from_secs(2)),
            Ok(false)
        );
        assert_eq!(b.trace_dropped, 1);
    }

    #[test]
    fn pongs_and_faults_are_checked() {
        assert!(pong(3, 3).is_ok());
        assert!(pong(4, 3).is_err());
        use crate::messages::{Fault, FaultAction, FaultPoint};
        let f = Fault {
            frame: 3,
            point: FaultPoint::GpuRender,
            action: FaultAction::Kill,
        };
        assert!(fault(&f, &[f]).is_ok());
        assert!(fault(&f, &[]).is_err());
    }
}
