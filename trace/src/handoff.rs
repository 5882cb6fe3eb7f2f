//! One frame's trip across the processes, reassembled from a trace.
//!
//! # What this module owns
//!
//! The per-frame view of a trace: grouping spans by frame in causal order
//! ([`spans_by_frame`], which also orders the writer's flow arrows), the
//! frame's end-to-end timing ([`FrameTiming`]), and the checks a healthy
//! handoff passes ([`check_flows`]). A frame is a view and a frame id
//! ([`FlowKey`]): each view of a run numbers its frames from 0.
//!
//! # The checks
//!
//! For every frame id that appears on a span, [`check_flows`] reports:
//!
//! * [`FlowProblem::Incomplete`]: a stage from `GpuRender` to `Present` has no
//!   span (the frame was lost or a step is not instrumented). `Release` is not
//!   required; see the causal order in [`event`](crate::event).
//! * [`FlowProblem::StartsBeforePredecessor`]: a span starts before the
//!   earliest span of the nearest earlier stage present in the frame. All
//!   processes read the same `CLOCK_MONOTONIC`, so this is a real bug: a
//!   wrong frame id, a span opened too early, or a step out of order.
//! * [`FlowProblem::Gap`]: more than a set fraction of the frame's end-to-end
//!   time is inside no handoff span: time spent queued, in transit on the
//!   channel, or in a step nobody measures.

use std::collections::BTreeMap;
use std::fmt;

use crate::chrome::ParsedTrace;
use crate::event::{Event, EventKind, Stage};

/// The gap fraction above which [`check_flows`] reports a frame: a quarter of
/// its end-to-end time unaccounted for.
pub const MAX_GAP_FRACTION: f64 = 0.25;

/// One frame of one view: what a frame's spans share across the processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    /// The view ([`Event::view`]; 0 in a run of one view).
    pub view: u32,
    /// The frame id, counted per view.
    pub frame: u64,
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.view {
            0 => write!(f, "frame {}", self.frame),
            v => write!(f, "view {v} frame {}", self.frame),
        }
    }
}

/// The spans that carry a frame id, grouped by frame (view and id), each group
/// sorted by stage (causal order), then start, pid and tid. Frames in ascending
/// order, view by view.
pub fn spans_by_frame(events: &[Event]) -> BTreeMap<FlowKey, Vec<&Event>> {
    let mut frames: BTreeMap<FlowKey, Vec<&Event>> = BTreeMap::new();
    for event in events {
        if let (EventKind::Span { .. }, Some(frame)) = (&event.kind, event.frame) {
            let key = FlowKey {
                view: event.view(),
                frame,
            };
            frames.entry(key).or_default().push(event);
        }
    }
    for chain in frames.values_mut() {
        chain.sort_by_key(|e| (e.stage(), e.ts_ns, e.pid, e.tid));
    }
    frames
}

/// A frame's handoff window and how much of it the stages account for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTiming {
    /// The frame.
    pub frame: FlowKey,
    /// Start of its earliest `GpuRender` span.
    pub start_ns: u64,
    /// End of its latest `Present` span.
    pub end_ns: u64,
    /// Nanoseconds of the window inside at least one `GpuRender`..`Present`
    /// span (overlapping spans count once).
    pub covered_ns: u64,
}

impl FrameTiming {
    /// The handoff window of one frame's spans (as [`spans_by_frame`] gives
    /// them); `None` unless it has both a `GpuRender` and a `Present` span and
    /// the last present ends no earlier than the first render starts.
    pub fn of(frame: FlowKey, spans: &[&Event]) -> Option<FrameTiming> {
        let start_ns = spans
            .iter()
            .filter(|e| e.stage() == Some(Stage::GpuRender))
            .map(|e| e.ts_ns)
            .min()?;
        let end_ns = spans
            .iter()
            .filter(|e| e.stage() == Some(Stage::Present))
            .map(|e| e.end_ns())
            .max()?;
        if end_ns < start_ns {
            return None;
        }
        let mut intervals: Vec<(u64, u64)> = spans
            .iter()
            .filter(|e| e.stage().is_some_and(|s| s <= Stage::Present))
            .map(|e| (e.ts_ns.max(start_ns), e.end_ns().min(end_ns)))
            .filter(|(lo, hi)| lo < hi)
            .collect();
        intervals.sort_unstable();
        let mut covered_ns = 0;
        let mut reach = start_ns;
        for (lo, hi) in intervals {
            let lo = lo.max(reach);
            if hi > lo {
                covered_ns += hi - lo;
                reach = hi;
            }
        }
        Some(FrameTiming {
            frame,
            start_ns,
            end_ns,
            covered_ns,
        })
    }

    /// From the start of `GpuRender` to the end of `Present`.
    pub fn end_to_end_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }

    /// The share of the end-to-end time inside no stage span, from 0 to 1
    /// (0 for a zero-length window).
    pub fn gap_fraction(&self) -> f64 {
        let total = self.end_to_end_ns();
        if total == 0 {
            0.0
        } else {
            (total - self.covered_ns) as f64 / total as f64
        }
    }
}

/// Something wrong with one frame's handoff.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowProblem {
    /// Stages between `GpuRender` and `Present` without a span.
    Incomplete {
        /// The frame.
        frame: FlowKey,
        /// The missing stages, in causal order.
        missing: Vec<Stage>,
    },
    /// A span starts before its causal predecessor started.
    StartsBeforePredecessor {
        /// The frame.
        frame: FlowKey,
        /// The early span's stage.
        stage: Stage,
        /// The early span's process.
        pid: u32,
        /// The early span's start.
        start_ns: u64,
        /// The nearest earlier stage present in the frame.
        predecessor: Stage,
        /// The earliest start among that stage's spans.
        predecessor_start_ns: u64,
    },
    /// Too much of the frame's time is inside no stage span.
    Gap {
        /// The frame.
        frame: FlowKey,
        /// `GpuRender` start to `Present` end.
        end_to_end_ns: u64,
        /// The part of it inside some stage span.
        covered_ns: u64,
        /// `1 - covered / end_to_end`.
        gap_fraction: f64,
    },
}

impl fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowProblem::Incomplete { frame, missing } => {
                write!(f, "{frame}: no span for")?;
                for stage in missing {
                    write!(f, " {stage}")?;
                }
                Ok(())
            }
            FlowProblem::StartsBeforePredecessor {
                frame,
                stage,
                pid,
                start_ns,
                predecessor,
                predecessor_start_ns,
            } => write!(
                f,
                "{frame}: {stage} in pid {pid} starts at {start_ns} ns, \
                 {} ns before {predecessor} started at {predecessor_start_ns} ns",
                predecessor_start_ns - start_ns
            ),
            FlowProblem::Gap {
                frame,
                end_to_end_ns,
                covered_ns,
                gap_fraction,
            } => write!(
                f,
                "{frame}: {:.1}% of its {end_to_end_ns} ns handoff is in no stage \
                 ({covered_ns} ns covered)",
                gap_fraction * 100.0
            ),
        }
    }
}

/// [`check_flows_with`] at [`MAX_GAP_FRACTION`].
pub fn check_flows(trace: &ParsedTrace) -> Vec<FlowProblem> {
    check_flows_with(&trace.events, MAX_GAP_FRACTION)
}

/// Checks every frame's handoff (see the [module docs](self)); frames in
/// ascending id, problems of one frame in the order incomplete, out of order,
/// gap. A gap is reported when its fraction exceeds `max_gap_fraction`.
pub fn check_flows_with(events: &[Event], max_gap_fraction: f64) -> Vec<FlowProblem> {
    let mut problems = Vec::new();
    for (frame, spans) in spans_by_frame(events) {
        let mut first_start: BTreeMap<Stage, u64> = BTreeMap::new();
        for span in &spans {
            if let Some(stage) = span.stage() {
                let entry = first_start.entry(stage).or_insert(span.ts_ns);
                *entry = (*entry).min(span.ts_ns);
            }
        }

        let missing: Vec<Stage> = Stage::HANDOFF
            .into_iter()
            .filter(|stage| !first_start.contains_key(stage))
            .collect();
        if !missing.is_empty() {
            problems.push(FlowProblem::Incomplete { frame, missing });
        }

        for span in &spans {
            let Some(stage) = span.stage() else { continue };
            let mut predecessor = stage.predecessor();
            while let Some(candidate) = predecessor {
                if let Some(&predecessor_start_ns) = first_start.get(&candidate) {
                    if span.ts_ns < predecessor_start_ns {
                        problems.push(FlowProblem::StartsBeforePredecessor {
                            frame,
                            stage,
                            pid: span.pid,
                            start_ns: span.ts_ns,
                            predecessor: candidate,
                            predecessor_start_ns,
                        });
                    }
                    break;
                }
                predecessor = candidate.predecessor();
            }
        }

        if let Some(timing) = FrameTiming::of(frame, &spans) {
            let gap_fraction = timing.gap_fraction();
            if gap_fraction > max_gap_fraction {
                problems.push(FlowProblem::Gap {
                    frame,
                    end_to_end_ns: timing.end_to_end_ns(),
                    covered_ns: timing.covered_ns,
                    gap_fraction,
                });
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Args;

    fn span(stage: Stage, frame: u64, pid: u32, start: u64, end: u64) -> Event {
        Event {
            kind: EventKind::Span {
                stage,
                dur_ns: end - start,
            },
            ts_ns: start,
            pid,
            tid: pid,
            frame: Some(frame),
            args: Args::new(),
        }
    }

    /// Frame `frame` of the first view.
    fn key(frame: u64) -> FlowKey {
        FlowKey { view: 0, frame }
    }

    /// A complete frame: nine back-to-back 10 ns stages from `t0`.
    fn whole_frame(frame: u64, t0: u64) -> Vec<Event> {
        Stage::HANDOFF
            .into_iter()
            .enumerate()
            .map(|(i, stage)| {
                let start = t0 + 10 * i as u64;
                span(stage, frame, 1 + i as u32 / 3, start, start + 10)
            })
            .collect()
    }

    #[test]
    fn a_clean_frame_has_no_problems() {
        let events = whole_frame(1, 1000);
        assert_eq!(check_flows_with(&events, 0.0), []);
        let spans = spans_by_frame(&events);
        let timing = FrameTiming::of(key(1), &spans[&key(1)]).expect("complete frame");
        assert_eq!(timing.end_to_end_ns(), 90);
        assert_eq!(timing.covered_ns, 90);
        assert_eq!(timing.gap_fraction(), 0.0);
    }

    #[test]
    fn missing_stages_are_named_in_causal_order() {
        let mut events = whole_frame(4, 0);
        events.retain(|e| !matches!(e.stage(), Some(Stage::FdFetch | Stage::Send)));
        assert_eq!(
            check_flows_with(&events, 1.0),
            [FlowProblem::Incomplete {
                frame: key(4),
                missing: vec![Stage::Send, Stage::FdFetch]
            }]
        );
    }

    #[test]
    fn a_step_starting_before_its_predecessor_is_reported() {
        let mut events = whole_frame(2, 1000);
        // FenceWait (predecessor FdFetch starts at 1050) now starts at 1045.
        events[6].ts_ns = 1045;
        let problems = check_flows_with(&events, 1.0);
        assert_eq!(
            problems,
            [FlowProblem::StartsBeforePredecessor {
                frame: key(2),
                stage: Stage::FenceWait,
                pid: 3,
                start_ns: 1045,
                predecessor: Stage::FdFetch,
                predecessor_start_ns: 1050,
            }]
        );
        assert_eq!(
            problems[0].to_string(),
            "frame 2: fence_wait in pid 3 starts at 1045 ns, 5 ns before fd_fetch started at 1050 ns"
        );
    }

    #[test]
    fn predecessor_skips_missing_stages() {
        // Only GpuRender and Present: Present is checked against GpuRender.
        let events = vec![
            span(Stage::GpuRender, 3, 1, 100, 110),
            span(Stage::Present, 3, 3, 90, 120),
        ];
        let problems = check_flows_with(&events, 1.0);
        assert!(problems.contains(&FlowProblem::StartsBeforePredecessor {
            frame: key(3),
            stage: Stage::Present,
            pid: 3,
            start_ns: 90,
            predecessor: Stage::GpuRender,
            predecessor_start_ns: 100,
        }));
    }

    #[test]
    fn gap_fraction_counts_overlaps_once() {
        // Window 0..100; covered: 0..30 and 20..40 overlap -> 0..40, plus 90..100; the relay
        // 40..60 is the launcher's.
        let events = vec![
            span(Stage::GpuRender, 5, 1, 0, 30),
            span(Stage::Export, 5, 1, 20, 40),
            span(Stage::Send, 5, 1, 40, 40),
            span(Stage::Relay, 5, 3, 40, 60),
            span(Stage::Receive, 5, 2, 60, 60),
            span(Stage::FdFetch, 5, 2, 60, 60),
            span(Stage::FenceWait, 5, 2, 60, 60),
            span(Stage::Composite, 5, 2, 60, 60),
            span(Stage::Present, 5, 3, 90, 100),
            // Release after the window does not count.
            span(Stage::Release, 5, 1, 100, 500),
        ];
        let spans = spans_by_frame(&events);
        let timing = FrameTiming::of(key(5), &spans[&key(5)]).expect("complete frame");
        assert_eq!(
            (timing.start_ns, timing.end_ns, timing.covered_ns),
            (0, 100, 70)
        );
        assert!((timing.gap_fraction() - 0.3).abs() < 1e-12);
        assert_eq!(
            check_flows_with(&events, 0.25),
            [FlowProblem::Gap {
                frame: key(5),
                end_to_end_ns: 100,
                covered_ns: 70,
                gap_fraction: timing.gap_fraction()
            }]
        );
        assert_eq!(check_flows_with(&events, 0.3), []);
    }

    #[test]
    fn frames_of_two_views_with_one_number_are_two_frames() {
        let mut events = whole_frame(7, 0);
        for mut e in whole_frame(7, 1000) {
            e.args.insert(crate::event::VIEW_ARG.into(), 2.into());
            events.push(e);
        }
        let frames = spans_by_frame(&events);
        let keys: Vec<FlowKey> = frames.keys().copied().collect();
        assert_eq!(keys, [key(7), FlowKey { view: 2, frame: 7 }]);
        assert!(frames
            .values()
            .all(|spans| spans.len() == Stage::HANDOFF.len()));
        assert_eq!(check_flows_with(&events, 0.0), []);
        assert_eq!(FlowKey { view: 2, frame: 7 }.to_string(), "view 2 frame 7");
    }
}
