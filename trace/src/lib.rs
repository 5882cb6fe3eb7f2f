//! Cross-process frame-handoff traces for triptych.
//!
//! # What this crate owns
//!
//! Measuring where a frame's time goes on its way from the GPU process,
//! through the sandboxed renderer, to the launcher's screen, and writing it as
//! one trace that [Perfetto UI](https://ui.perfetto.dev) and `chrome://tracing`
//! open, with arrows linking each frame's steps across the three processes.
//!
//! # The sequence
//!
//! 1. **Record** ([`recorder`]). Each process owns a [`Recorder`]: `new(pid)`
//!    when tracing is on, [`Recorder::disabled`] (one branch per call, no
//!    clock read, no allocation) when off. Spans time the closed set of
//!    handoff [`Stage`]s; instants mark well-known [`Marker`]s (crash,
//!    restart, fallback, sandbox violation, fence timeout); counters sample
//!    quantities. Timestamps come from [`now_ns`], `CLOCK_MONOTONIC`, which
//!    every process on the machine shares ([`clock`]).
//! 2. **Ship** (off the hot path). [`Recorder::drain`] takes the buffered
//!    batch; the process sends it to the launcher inside an IPC message. The
//!    renderer's seccomp sandbox lets it open no file, so no process but the
//!    launcher writes traces. Buffers are bounded; overflow is counted and
//!    reported in the trace as the [`DROPPED_EVENTS_COUNTER`] counter.
//! 3. **Write** ([`chrome`]). The launcher merges every batch with its own
//!    events and calls [`write_chrome_json`] once, naming each process by
//!    role ([`ProcessInfo`]). Each frame id becomes a flow id: the frame's
//!    spans are chained in causal order, across pids.
//! 4. **Read and judge** ([`summary`], [`handoff`]). [`parse_chrome_json`]
//!    reads a file back exactly; [`summarize`] gives per-stage and end-to-end
//!    p50/p99/max, printed by [`Summary::table`]; [`check_flows`] reports
//!    frames with missing stages, steps that start before their causal
//!    predecessor, and frames whose time is mostly outside any stage.
//!
//! The causal order of the stages, and which process runs each, is in the
//! [`event`] module docs.
//!
//! # Example
//!
//! ```
//! use triptych_trace::{
//!     check_flows, parse_chrome_json, summarize, write_chrome_json, ProcessInfo, Recorder,
//!     Stage,
//! };
//!
//! let gpu = Recorder::new(100);
//! let renderer = Recorder::new(200);
//! let launcher = Recorder::new(300);
//! for stage in &Stage::HANDOFF[..3] {
//!     let _span = gpu.span(*stage, Some(1));
//! }
//! launcher.span(Stage::Relay, Some(1)).finish();
//! for stage in &Stage::HANDOFF[4..8] {
//!     let _span = renderer.span(*stage, Some(1));
//! }
//! launcher.span(Stage::Present, Some(1)).finish();
//!
//! let mut events = gpu.drain();
//! events.extend(renderer.drain());
//! events.extend(launcher.drain());
//! let processes = [(300, "launcher"), (100, "gpu"), (200, "renderer")]
//!     .map(|(pid, name)| ProcessInfo { pid, name: name.into(), threads: vec![] });
//! let mut file = Vec::new();
//! write_chrome_json(&events, &processes, &mut file)?;
//!
//! let trace = parse_chrome_json(file.as_slice())?;
//! assert_eq!(trace.events, events);
//! assert_eq!(summarize(&trace).frames.len(), 1);
//! assert!(check_flows(&trace).iter().all(|p| !matches!(
//!     p,
//!     triptych_trace::FlowProblem::Incomplete { .. }
//! )));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chrome;
pub mod clock;
pub mod error;
pub mod event;
pub mod handoff;
pub mod recorder;
pub mod ring;
pub mod summary;

pub use chrome::{
    flow_id, parse_chrome_json, write_chrome_json, FlowPhase, FlowRecord, ParsedTrace, ProcessInfo,
    VIEW_TRACK_BASE,
};
pub use clock::{current_tid, now_ns};
pub use error::TraceError;
pub use event::{
    ArgValue, Args, Event, EventKind, InstantScope, Marker, Stage, FRAME_ARG, VIEW_ARG,
};
pub use handoff::{
    check_flows, check_flows_with, FlowKey, FlowProblem, FrameTiming, MAX_GAP_FRACTION,
};
pub use recorder::{Recorder, SpanGuard, DEFAULT_CAPACITY, DROPPED_EVENTS_COUNTER};
pub use ring::Ring;
pub use summary::{percentile, summarize, Stats, Summary};
