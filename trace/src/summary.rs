//! Numbers from a trace: per-stage and end-to-end latency percentiles.
//!
//! # What this module owns
//!
//! [`percentile`], the one percentile definition the project uses (other
//! crates' summaries call it too), and [`Summary`], what `triptych` prints
//! after a traced run.
//!
//! # Definitions
//!
//! * Stage statistics cover every span of the stage, with or without a frame
//!   id.
//! * The end-to-end latency of a frame runs from the start of its first
//!   `GpuRender` span to the end of its last `Present` span
//!   ([`FrameTiming`]); frames without both are counted as incomplete.
//! * Percentiles are nearest-rank (see [`percentile`]); every value shown is
//!   one that was measured, never an interpolation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::chrome::ParsedTrace;
use crate::event::{ArgValue, Args, Event, EventKind, Marker, Stage};
use crate::handoff::{spans_by_frame, FrameTiming};
use crate::recorder::DROPPED_EVENTS_COUNTER;

/// The nearest-rank `p`th percentile of `sorted` (ascending): the smallest
/// value such that at least `p` percent of the values are less than or equal
/// to it, i.e. the element at rank `max(1, ceil(p / 100 * n))` (1-based).
///
/// `p = 0` gives the minimum, `p = 100` the maximum, `p = 50` of an even count
/// the lower middle value. `p` outside 0..=100 is clamped and NaN counts as 0.
/// An empty slice gives 0; callers show the count next to the value.
///
/// `sorted` must be in ascending order (checked in debug builds).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "percentile() needs ascending input"
    );
    let n = sorted.len();
    if n == 0 {
        return 0;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    // p * n first: exact for integral p, so integral ranks do not round up.
    let rank = (p * n as f64 / 100.0).ceil();
    // 1 <= rank <= n, as p / 100 <= 1; the casts stay in range.
    let rank = (rank as usize).clamp(1, n);
    sorted[rank - 1]
}

/// Count, median, 99th percentile and maximum of a set of durations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// How many values.
    pub count: usize,
    /// Nearest-rank median, microseconds.
    pub p50_us: f64,
    /// Nearest-rank 99th percentile, microseconds.
    pub p99_us: f64,
    /// Largest value, microseconds.
    pub max_us: f64,
}

impl Stats {
    /// The statistics of `durations_ns` (any order); all zero when empty.
    pub fn from_ns(mut durations_ns: Vec<u64>) -> Stats {
        durations_ns.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        Stats {
            count: durations_ns.len(),
            p50_us: us(percentile(&durations_ns, 50.0)),
            p99_us: us(percentile(&durations_ns, 99.0)),
            max_us: us(durations_ns.last().copied().unwrap_or(0)),
        }
    }
}

/// What a trace says about the handoff.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Per-stage span statistics, in causal order, for stages with spans.
    pub stages: Vec<(Stage, Stats)>,
    /// End-to-end latency over the frames in [`Summary::frames`].
    pub end_to_end: Stats,
    /// End-to-end latency of each view's frames, by view, in a trace of several views (empty
    /// for one view).
    pub views: Vec<(u32, Stats)>,
    /// Every frame with a handoff window, ascending by id.
    pub frames: Vec<FrameTiming>,
    /// Frame ids seen on spans that lack a `GpuRender` or `Present` span.
    pub incomplete_frames: usize,
    /// How often each marker occurred, for markers that did.
    pub instants: Vec<(Marker, usize)>,
    /// Events the processes' recorders dropped: the last
    /// [`DROPPED_EVENTS_COUNTER`] sample of each process, summed.
    pub dropped_events: u64,
    /// Damage per stage whose spans carry it: the stage, the argument counted, pixels changed
    /// in all, and pixels of the whole (`gpu_render`: `redrawn_px` of `layer_px`; `composite`:
    /// `damaged_px` and `composited_px` of `output_px`; `present`: `damaged_px` of `output_px`).
    pub damage: Vec<(Stage, &'static str, u64, u64)>,
}

/// The span arguments that count damage: (stage, the changed pixels, the whole).
const DAMAGE_ARGS: [(Stage, &str, &str); 4] = [
    (Stage::GpuRender, "redrawn_px", "layer_px"),
    (Stage::Composite, "damaged_px", "output_px"),
    (Stage::Composite, "composited_px", "output_px"),
    (Stage::Present, "damaged_px", "output_px"),
];

/// [`Summary::from_events`] of a parsed trace.
pub fn summarize(trace: &ParsedTrace) -> Summary {
    Summary::from_events(&trace.events)
}

impl Summary {
    /// Summarizes `events` (see the [module docs](self) for the definitions).
    pub fn from_events(events: &[Event]) -> Summary {
        let mut by_stage: BTreeMap<Stage, Vec<u64>> = BTreeMap::new();
        let mut instants: BTreeMap<Marker, usize> = BTreeMap::new();
        // pid -> (ts, value) of the latest drop report.
        let mut dropped: BTreeMap<u32, (u64, f64)> = BTreeMap::new();
        for event in events {
            match &event.kind {
                EventKind::Span { stage, dur_ns } => {
                    by_stage.entry(*stage).or_default().push(*dur_ns);
                }
                EventKind::Instant { marker, .. } => *instants.entry(*marker).or_default() += 1,
                EventKind::Counter { name, value } if name == DROPPED_EVENTS_COUNTER => {
                    let latest = dropped.entry(event.pid).or_insert((event.ts_ns, *value));
                    if event.ts_ns >= latest.0 {
                        *latest = (event.ts_ns, *value);
                    }
                }
                EventKind::Counter { .. } => {}
            }
        }

        let count = |a: &Args, key: &str| match a.get(key) {
            Some(ArgValue::Int(v)) => u64::try_from(*v).ok(),
            _ => None,
        };
        let mut damage = Vec::new();
        for (stage, part, whole) in DAMAGE_ARGS {
            let (mut p, mut w, mut seen) = (0u64, 0u64, false);
            for e in events {
                if matches!(e.kind, EventKind::Span { stage: s, .. } if s == stage) {
                    if let (Some(a), Some(b)) = (count(&e.args, part), count(&e.args, whole)) {
                        p = p.saturating_add(a);
                        w = w.saturating_add(b);
                        seen = true;
                    }
                }
            }
            if seen {
                damage.push((stage, part, p, w));
            }
        }

        let mut frames = Vec::new();
        let mut incomplete_frames = 0;
        for (frame, spans) in spans_by_frame(events) {
            match FrameTiming::of(frame, &spans) {
                Some(timing) => frames.push(timing),
                None => incomplete_frames += 1,
            }
        }

        let mut by_view: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for f in &frames {
            by_view
                .entry(f.frame.view)
                .or_default()
                .push(f.end_to_end_ns());
        }
        let views = if by_view.len() > 1 {
            by_view
                .into_iter()
                .map(|(view, ns)| (view, Stats::from_ns(ns)))
                .collect()
        } else {
            Vec::new()
        };
        Summary {
            views,
            stages: by_stage
                .into_iter()
                .map(|(stage, durations)| (stage, Stats::from_ns(durations)))
                .collect(),
            end_to_end: Stats::from_ns(frames.iter().map(FrameTiming::end_to_end_ns).collect()),
            frames,
            incomplete_frames,
            instants: instants.into_iter().collect(),
            // Counter values are whole counts; `as` saturates anything odd.
            dropped_events: dropped
                .values()
                .fold(0u64, |sum, (_, v)| sum.saturating_add(*v as u64)),
            damage,
        }
    }

    /// The median of the frames' gap fractions (0 without frames).
    pub fn median_gap_fraction(&self) -> f64 {
        let mut gaps: Vec<f64> = self.frames.iter().map(FrameTiming::gap_fraction).collect();
        gaps.sort_unstable_by(f64::total_cmp);
        match gaps.len() {
            0 => 0.0,
            // Nearest-rank, like `percentile`.
            n => gaps[n.div_ceil(2) - 1],
        }
    }

    /// A fixed-width table for a terminal, one row per stage and one for the
    /// end-to-end latency, then frame, marker and drop counts.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let row = |out: &mut String, label: &str, s: &Stats| {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "{label:<12} {:>7} {:>12.3} {:>12.3} {:>12.3}",
                s.count, s.p50_us, s.p99_us, s.max_us
            );
        };
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>12} {:>12} {:>12}",
            "stage", "count", "p50 us", "p99 us", "max us"
        );
        for (stage, stats) in &self.stages {
            row(&mut out, stage.name(), stats);
        }
        row(&mut out, "end_to_end", &self.end_to_end);
        for (view, stats) in &self.views {
            row(&mut out, &format!("  view {view}"), stats);
        }
        let _ = writeln!(
            out,
            "frames: {} complete, {} incomplete; median gap {:.1}%",
            self.frames.len(),
            self.incomplete_frames,
            self.median_gap_fraction() * 100.0
        );
        if !self.instants.is_empty() {
            out.push_str("markers:");
            for (marker, count) in &self.instants {
                let _ = write!(out, " {marker} {count}");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "dropped events: {}", self.dropped_events);
        for (stage, part, p, w) in &self.damage {
            let _ = writeln!(
                out,
                "damage: {} {part} {:.2}% of {} pixels",
                stage.name(),
                *p as f64 * 100.0 / (*w).max(1) as f64,
                w
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Args, InstantScope};

    #[test]
    fn percentile_edge_cases() {
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 0.0), 7);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[7], 100.0), 7);
        let four = [10, 20, 30, 40];
        assert_eq!(percentile(&four, 0.0), 10);
        assert_eq!(percentile(&four, 25.0), 10); // rank ceil(1.0) = 1
        assert_eq!(percentile(&four, 25.1), 20); // rank ceil(1.004) = 2
        assert_eq!(percentile(&four, 50.0), 20); // lower middle
        assert_eq!(percentile(&four, 75.0), 30);
        assert_eq!(percentile(&four, 100.0), 40);
        assert_eq!(percentile(&[1, 2, 3, 4, 5], 50.0), 3); // rank ceil(2.5) = 3
                                                           // Out of range and NaN.
        assert_eq!(percentile(&four, -5.0), 10);
        assert_eq!(percentile(&four, 250.0), 40);
        assert_eq!(percentile(&four, f64::NAN), 10);
        // 1..=100: p99 is exactly the 99th value, not rounded up to the 100th.
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 99.0), 99);
        assert_eq!(percentile(&hundred, 1.0), 1);
        let thousand: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 99.9), 999);
        assert_eq!(percentile(&thousand, 99.0), 990);
        let hundred_one: Vec<u64> = (1..=101).collect();
        assert_eq!(percentile(&hundred_one, 99.0), 100); // rank ceil(99.99) = 100
                                                         // Duplicates.
        assert_eq!(percentile(&[5, 5, 5, 9], 75.0), 5);
    }

    fn span(stage: Stage, frame: Option<u64>, pid: u32, start: u64, dur: u64) -> Event {
        Event {
            kind: EventKind::Span { stage, dur_ns: dur },
            ts_ns: start,
            pid,
            tid: pid,
            frame,
            args: Args::new(),
        }
    }

    /// Three frames with hand-picked numbers; every figure below is worked out
    /// by hand in the comments.
    fn fixed_events() -> Vec<Event> {
        let mut events = Vec::new();
        // (frame, t0, gpu_render dur, present start offset, present dur)
        for (frame, t0, render, present_at, present) in [
            (1u64, 1_000_000u64, 2_000u64, 10_000u64, 1_000u64),
            (2, 2_000_000, 4_000, 20_000, 3_000),
            (3, 3_000_000, 6_000, 30_000, 5_000),
        ] {
            events.push(span(Stage::GpuRender, Some(frame), 1, t0, render));
            for (i, stage) in Stage::HANDOFF[1..8].iter().enumerate() {
                // Seven middle stages of 500 ns each, 1 us apart after render.
                let start = t0 + render + 1_000 * i as u64;
                events.push(span(*stage, Some(frame), 2, start, 500));
            }
            events.push(span(
                Stage::Present,
                Some(frame),
                3,
                t0 + present_at,
                present,
            ));
        }
        // A GpuRender without a frame counts for the stage only.
        events.push(span(Stage::GpuRender, None, 1, 5_000_000, 8_000));
        // Frame 4 never presents: incomplete.
        events.push(span(Stage::GpuRender, Some(4), 1, 6_000_000, 1_000));
        events.push(Event {
            kind: EventKind::Instant {
                marker: Marker::FenceTimeout,
                scope: InstantScope::Process,
            },
            ts_ns: 6_100_000,
            pid: 2,
            tid: 2,
            frame: Some(4),
            args: Args::new(),
        });
        for (pid, ts, value) in [
            (1, 7_000_000, 3.0),
            (1, 8_000_000, 5.0),
            (2, 7_500_000, 2.0),
        ] {
            events.push(Event {
                kind: EventKind::Counter {
                    name: DROPPED_EVENTS_COUNTER.to_owned(),
                    value,
                },
                ts_ns: ts,
                pid,
                tid: pid,
                frame: None,
                args: Args::new(),
            });
        }
        events
    }

    #[test]
    fn summary_matches_hand_computation() {
        let summary = Summary::from_events(&fixed_events());

        // gpu_render durations: 2000, 4000, 6000, 8000, 1000 ns
        // sorted 1000 2000 4000 6000 8000; p50 rank ceil(2.5)=3 -> 4000;
        // p99 rank ceil(4.95)=5 -> 8000; max 8000.
        let (stage, render) = summary.stages[0];
        assert_eq!(stage, Stage::GpuRender);
        assert_eq!(
            render,
            Stats {
                count: 5,
                p50_us: 4.0,
                p99_us: 8.0,
                max_us: 8.0
            }
        );
        // Seven middle stages, three 500 ns spans each.
        for (i, (stage, stats)) in summary.stages[1..8].iter().enumerate() {
            assert_eq!(*stage, Stage::HANDOFF[i + 1]);
            assert_eq!(
                *stats,
                Stats {
                    count: 3,
                    p50_us: 0.5,
                    p99_us: 0.5,
                    max_us: 0.5
                }
            );
        }
        // present: 1000 3000 5000 -> p50 rank 2 = 3000, p99 rank 3 = 5000.
        assert_eq!(
            summary.stages[8],
            (
                Stage::Present,
                Stats {
                    count: 3,
                    p50_us: 3.0,
                    p99_us: 5.0,
                    max_us: 5.0
                }
            )
        );
        assert_eq!(summary.stages.len(), 9);

        // End to end: present_at + present = 11000, 23000, 35000 ns.
        assert_eq!(
            summary.end_to_end,
            Stats {
                count: 3,
                p50_us: 23.0,
                p99_us: 35.0,
                max_us: 35.0
            }
        );
        // Covered in frame 1: render 2000 + seven x 500 + present 1000 = 6500 of
        // 11000 -> gap 4500/11000. Frame 2: 4000+3500+3000 = 10500 of 23000.
        // Frame 3: 6000+3500+5000 = 14500 of 35000 -> gap 20500/35000.
        let covered: Vec<(u64, u64, u64)> = summary
            .frames
            .iter()
            .map(|t| (t.frame.frame, t.end_to_end_ns(), t.covered_ns))
            .collect();
        assert_eq!(
            covered,
            [(1, 11_000, 6_500), (2, 23_000, 10_500), (3, 35_000, 14_500)]
        );
        // Gaps 0.4090.., 0.5434.., 0.5857..: median (rank 2) = 12500/23000.
        assert_eq!(summary.median_gap_fraction(), 12_500.0 / 23_000.0);
        assert_eq!(summary.incomplete_frames, 1);
        assert_eq!(summary.instants, [(Marker::FenceTimeout, 1)]);
        // Latest per pid: pid 1 -> 5, pid 2 -> 2.
        assert_eq!(summary.dropped_events, 7);

        let table = summary.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "stage          count       p50 us       p99 us       max us"
        );
        assert_eq!(
            lines[1],
            "gpu_render         5        4.000        8.000        8.000"
        );
        assert_eq!(
            lines[10],
            "end_to_end         3       23.000       35.000       35.000"
        );
        assert_eq!(
            lines[11],
            "frames: 3 complete, 1 incomplete; median gap 54.3%"
        );
        assert_eq!(lines[12], "markers: fence_timeout 1");
        assert_eq!(lines[13], "dropped events: 7");
        assert_eq!(lines.len(), 14);
    }

    #[test]
    fn empty_trace_summarizes_to_zeros() {
        let summary = Summary::from_events(&[]);
        assert!(summary.stages.is_empty());
        assert_eq!(summary.end_to_end.count, 0);
        assert_eq!(summary.median_gap_fraction(), 0.0);
        assert!(summary.table().contains("end_to_end         0"));
    }
}
